// fuzz_lut: the latency table reader (load_lut, the JSON that `nasc profile` writes and
// `nasc estimate` / `nasc search --lut` read). What it accepts must write back
// (lut_to_json, which `nasc profile` uses when it resumes a table) and read back equal.
//
// Loading a table against a space (ArchEstimator) only looks signatures up: a missing
// one is reported by missing(), and the values were range-checked here, so that path has
// no checks of its own to fuzz.
#include "runtime/estimate/lut.h"

#include <optional>

#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

namespace {

bool same_entry(const nas::LutEntry& a, const nas::LutEntry& b) {
  return a.ms == b.ms && a.median_ms == b.median_ms && a.mean_ms == b.mean_ms &&
         a.min_ms == b.min_ms && a.max_ms == b.max_ms && a.samples == b.samples &&
         a.kind == b.kind && a.in_network == b.in_network && a.steps == b.steps;
}

bool same_table(const nas::LatencyTable& a, const nas::LatencyTable& b) {
  const nas::MeasureSettings &x = a.settings, &y = b.settings;
  if (a.device != b.device || a.batch != b.batch || a.network != b.network ||
      x.warmup != y.warmup || x.repetitions != y.repetitions || x.trim != y.trim ||
      x.statistic != y.statistic || x.min_sample_us != y.min_sample_us ||
      a.entries.size() != b.entries.size())
    return false;
  for (auto i = a.entries.begin(), j = b.entries.begin(); i != a.entries.end(); ++i, ++j)
    if (i->first != j->first || !same_entry(i->second, j->second)) return false;
  return true;
}

}  // namespace

bool fuzz_lut(const std::string& input) {
  const std::string path = write_scratch("lut.json", input);
  std::optional<nas::LatencyTable> table;
  if (!accepted([&] { table = nas::load_lut(path); })) return false;
  for (const auto& [signature, e] : table->entries)
    if (!(e.ms >= 0) || e.samples < 1) bug("load_lut", "entry \"" + signature + "\" out of range");

  const std::string written = nas::lut_to_json(*table);
  std::optional<nas::LatencyTable> back;
  if (!accepted([&] { back = nas::parse_lut(written, "written-lut.json"); }))
    bug("latency table round trip", "parse_lut refuses what lut_to_json wrote: " + written);
  if (!same_table(*table, *back))
    bug("latency table round trip", "the table read back differs: " + written);
  return true;
}

}  // namespace nas_fuzz
