#include "driver/space_latency.h"

#include <fmt/format.h>

namespace nas::driver {
namespace {
constexpr size_t kListedMissing = 10;
}

std::string missing_signatures_message(const std::string& file, const std::string& lut,
                                       const LatencyTable& table, const ArchEstimator& est,
                                       const Selection* sel,
                                       const std::vector<std::string>& missing,
                                       const Graph& supernet) {
  size_t needed = est.space().jobs(sel, table.device.backend).size();
  std::string msg;
  if (2 * missing.size() > needed)
    msg = fmt::format(
        "the latency table {} was profiled for another search space or input size "
        "(network `{}`, batch {}): only {} of the {} signatures `{}` needs are in it",
        lut, table.network, table.batch, needed - missing.size(), needed, supernet.name);
  else
    msg = fmt::format("the latency table {} lacks {} of the {} signatures `{}` needs", lut,
                      missing.size(), needed, supernet.name);
  msg += "; missing:";
  for (size_t i = 0; i < missing.size() && i < kListedMissing; ++i) msg += "\n  " + missing[i];
  if (missing.size() > kListedMissing)
    msg += fmt::format("\n  ... and {} more", missing.size() - kListedMissing);
  msg += fmt::format(
      "\nrun `nasc profile {} -o {}` (it measures only what is missing) or "
      "pass --profile-missing",
      file, lut);
  return msg;
}

std::string other_device_warning(const std::string& lut, const LatencyTable& table,
                                 bool same_threads) {
  DeviceFingerprint here = current_device(table.device.backend);
  if (!same_threads) here.threads = table.device.threads;
  if (!(here != table.device)) return {};
  return "the latency table " + lut +
         " was measured on another device: " + table.device.describe() +
         "; this machine: " + here.describe() + ". Estimates describe the table's device";
}

std::optional<SpaceLatencyTable> space_latency(const std::string& file, const std::string& lut,
                                               LatencyTable table, const Graph& supernet,
                                               Diagnostics& diags) {
  SpaceLatencyTable out;
  try {
    out.table = std::make_unique<LatencyTable>(std::move(table));
    std::string warning = other_device_warning(lut, *out.table, false);
    if (!warning.empty()) diags.warning({}, warning);
    out.estimator = std::make_unique<ArchEstimator>(supernet, *out.table);
    std::vector<std::string> missing = out.estimator->missing(nullptr);
    if (!missing.empty()) {
      diags.error({}, missing_signatures_message(file, lut, *out.table, *out.estimator, nullptr,
                                                 missing, supernet));
      return std::nullopt;
    }
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return std::nullopt;
  }
  return out;
}

std::optional<SpaceLatencyTable> load_space_latency(const std::string& file, const std::string& lut,
                                                    const Graph& supernet, Diagnostics& diags) {
  try {
    return space_latency(file, lut, load_lut(lut), supernet, diags);
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return std::nullopt;
  }
}

}  // namespace nas::driver
