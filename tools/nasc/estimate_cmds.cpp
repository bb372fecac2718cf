#include "tools/nasc/estimate_cmds.h"

#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "nasc/nasc.h"
#include "tools/nasc/cli_output.h"

namespace nas::cli {
namespace {

constexpr int64_t kDefaultTrainBatch = 64;

std::string bytes_text(int64_t b) {
  if (b >= 1000000) return fmt::format("{} B ({:.2f} MB)", with_commas(b), b / 1e6);
  if (b >= 1000) return fmt::format("{} B ({:.1f} KB)", with_commas(b), b / 1e3);
  return fmt::format("{} B", b);
}

nasc::MeasureOptions measure_options(const Options& o) {
  nasc::MeasureOptions m;
  m.warmup = static_cast<int>(o.warmup);
  m.repetitions = static_cast<int>(o.repetitions);
  m.trim = o.trim;
  m.statistic = o.statistic;
  return m;
}

}  // namespace

int cmd_profile(const Options& o) {
  nasc::Space space = nasc::Space::compile_file(o.file, compile_options(o));
  return call_api(
      [&] {
        nasc::ProfileOptions p;
        if (!o.arch.empty()) p.arch = space.fix_file(o.arch);
        p.batch = o.batch;
        p.threads = o.threads >= 0 ? static_cast<int>(o.threads) : 1;
        p.backend = o.backend;
        p.settings = measure_options(o);
        p.output = o.output;
        if (o.calibrate >= 0) p.calibrate = static_cast<int>(o.calibrate);
        if (o.rounds >= 0) p.rounds = static_cast<int>(o.rounds);
        p.log = &std::cout;
        nasc::ProfileReport counts;
        nasc::LatencyTable table = nasc::LatencyTable::measure(space, p, &counts);
        std::cout << "wrote " << o.output << ": " << table.entries() << " entries ("
                  << counts.measured << " measured now, " << counts.reused << " already there)\n";
        return report(space.diagnostics());
      },
      &space);
}

namespace {

nasc::NetworkEstimate estimate(const Options& o, const nasc::Space& space) {
  nasc::NetworkEstimateOptions e;
  if (!o.arch.empty()) e.arch = space.fix_file(o.arch);
  e.train_batch = o.batch_given ? o.batch : kDefaultTrainBatch;
  e.lut = o.lut;
  e.profile_missing = o.profile_missing;
  e.measure = o.measure;
  e.threads = o.threads >= 0 ? static_cast<int>(o.threads) : 1;
  e.backend = o.backend;
  e.settings = measure_options(o);
  e.log = &std::cerr;
  return nasc::estimate_network(space, e);
}

// The estimate as `nasc estimate --json` prints it; the text output reads it too.
nlohmann::ordered_json estimate_json(const Options& o, const nasc::Space& space,
                                     const nasc::NetworkEstimate& r, const std::string& mode) {
  nlohmann::ordered_json j;
  j["network"] = space.name();
  j["arch"] = o.arch.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(o.arch);
  j["mode"] = mode;
  const nasc::StaticEstimate& st = r.cost;
  j["params"] = st.params;
  j["param_bytes"] = st.param_bytes;
  j["macs"] = st.macs;
  j["activation_bytes"] = st.activation_bytes;
  j["train_batch"] = st.train_batch;
  const bool trains = st.train_not_applicable.empty();
  j["train_activation_bytes"] =
      trains ? nlohmann::ordered_json(st.train_activation_bytes) : nlohmann::ordered_json();
  j["train_not_applicable"] =
      trains ? nlohmann::ordered_json() : nlohmann::ordered_json(st.train_not_applicable);
  return j;
}

int print_estimate(const Options& o, const nasc::Space& space, const nasc::NetworkEstimate& r) {
  const bool sel = !o.arch.empty();
  const int64_t train_batch = o.batch_given ? o.batch : kDefaultTrainBatch;
  std::string mode = sel ? "arch" : space.choices().empty() ? "network" : "supernet";
  nlohmann::ordered_json j = estimate_json(o, space, r, mode);
  const std::optional<nasc::LatencyEstimate>& latency = r.latency;
  const int64_t latency_batch = r.latency_batch;
  auto num = [](std::optional<double> v) {
    return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json();
  };
  std::optional<double> fused, accumulated, measured = r.measured_ms, error, error_acc;
  if (latency) fused = latency->fused_ms, accumulated = latency->accumulated_ms;
  if (measured) {
    if (latency) {
      error = (*fused - *measured) / *measured;
      error_acc = (*accumulated - *measured) / *measured;
    }
  }
  j["lut"] = o.lut.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(o.lut);
  j["latency_batch"] =
      latency || measured ? nlohmann::ordered_json(latency_batch) : nlohmann::ordered_json();
  j["latency_ms"] = num(fused);
  j["latency_ms_accumulated"] = num(accumulated);
  j["latency_ms_fused"] = num(fused);
  j["latency_ms_measured"] = num(measured);
  j["latency_error"] = num(error);
  j["latency_error_accumulated"] = num(error_acc);
  j["latency_calibration"] = latency ? num(latency->calibration) : nlohmann::ordered_json();
  if (o.json) {
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return report(space.diagnostics(), r.warnings);
  }
  std::cout << o.file << ": network " << space.name();
  if (sel)
    std::cout << ", arch " << o.arch;
  else if (mode == "supernet")
    std::cout << ", supernet in full mode (every candidate; --arch picks one)";
  std::cout << "\n";
  std::cout << "  params             " << with_commas(j["params"]) << ", "
            << bytes_text(j["param_bytes"]) << " as float32\n";
  std::cout << "  MACs               " << with_commas(j["macs"]) << " per sample\n";
  std::cout << "  activation memory  " << bytes_text(j["activation_bytes"])
            << " (inference, batch 1)\n";
  if (j["train_activation_bytes"].is_null())
    std::cout << "                     training: not applicable ("
              << j["train_not_applicable"].get<std::string>() << ")\n";
  else
    std::cout << "                     " << bytes_text(j["train_activation_bytes"])
              << " (training, batch " << train_batch << ")\n";
  if (latency)
    std::cout << fmt::format(
        "  latency            {:.3f} ms fused, {:.3f} ms accumulated (batch {}, {}{}{})\n", *fused,
        *accumulated, latency_batch, o.lut.empty() ? "profiled now" : "table ", o.lut,
        latency->calibration == 1 ? std::string()
                                  : fmt::format(", calibrated x{:.3f}", latency->calibration));
  else
    std::cout << "  latency            no table (--lut lut.json from `nasc profile`, or "
                 "--profile-missing to measure now)\n";
  if (measured) {
    std::cout << fmt::format("  measured           {:.3f} ms", *measured);
    if (error)
      std::cout << fmt::format(" (fused estimate {:+.1f}%, accumulated {:+.1f}%)", 100 * *error,
                               100 * *error_acc);
    std::cout << "\n";
  }
  return report(space.diagnostics(), r.warnings);
}

}  // namespace

int cmd_estimate(const Options& o) {
  nasc::Space space = nasc::Space::compile_file(o.file, compile_options(o));
  return call_api([&] { return print_estimate(o, space, estimate(o, space)); }, &space);
}

}  // namespace nas::cli
