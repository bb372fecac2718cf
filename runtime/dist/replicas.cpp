#include "runtime/dist/replicas.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "support/errors.h"

namespace nas {

void average_running_statistics(ParamStore& store, const DataParallel& parallel) {
  if (parallel.collectives == nullptr) return;
  std::vector<float> flat;
  for (const StoredParam& p : store.params())
    if (!p.spec.trainable) {
      const std::vector<float> v = store.read(p.value);
      flat.insert(flat.end(), v.begin(), v.end());
    }
  if (flat.empty()) return;
  parallel.collectives->sum(flat.data(), flat.size(), "running-statistics average");
  const float inverse = 1.0f / static_cast<float>(parallel.ranks());
  size_t k = 0;
  for (StoredParam& p : store.params())
    if (!p.spec.trainable) {
      std::vector<float> v(p.value.size());
      for (float& x : v) x = flat[k++] * inverse;
      store.write(p.value, v);
    }
}

namespace {

// FNV-1a over the bytes of every value the ranks must share.
uint64_t state_hash(const ParamStore& store) {
  uint64_t h = 1469598103934665603ull;
  auto add = [&](const std::vector<float>& v) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
    for (size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  };
  for (const StoredParam& p : store.params()) add(store.read(p.value));
  for (const StoredArch& a : store.arch()) add(store.read(a.alpha));
  return h;
}

}  // namespace

void check_replicas_agree(const ParamStore& store, const DataParallel& parallel) {
  if (parallel.collectives == nullptr) return;
  const uint64_t h = state_hash(store);
  // Two 32-bit halves are exact in a double; the maximum of h and of -h is the minimum.
  const double high = static_cast<double>(h >> 32), low = static_cast<double>(h & 0xffffffffu);
  double v[4] = {high, low, -high, -low};
  parallel.collectives->max(v, 4, "replica check");
  NAS_CHECK(v[0] == -v[2] && v[1] == -v[3],
            "the ranks of a data-parallel run hold different weights (rank " +
                std::to_string(parallel.rank()) + " of " + std::to_string(parallel.ranks()) +
                "): their reductions must give every rank the same bits");
}

std::string data_parallel_line(const ParamStore& store, const DataParallel& parallel, bool alphas) {
  const int64_t weights = store.trainable_count();
  int64_t arch = 0;
  if (alphas)
    for (const StoredArch& a : store.arch()) arch += static_cast<int64_t>(a.alpha.size());
  const double bytes = static_cast<double>(weights + arch) * sizeof(float);
  return fmt::format(
      "data parallel: {} ranks over {}, each 1/{} of every batch, batch norm {}; each step "
      "all-reduces {} weight gradients{} ({})",
      parallel.ranks(), parallel.collectives->transport(), parallel.ranks(),
      parallel.sync_batchnorm ? "synchronised over the ranks" : "per rank", weights,
      alphas ? fmt::format(" and {} alpha gradients", arch) : "",
      bytes >= 1e4 ? fmt::format("{:.2f} MB", bytes / 1e6) : fmt::format("{:.0f} bytes", bytes));
}

}  // namespace nas
