#include "tools/nasc/estimate_cmds.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "compiler/estimate/estimator.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/pipeline/pipeline.h"
#include "driver/space_latency.h"
#include "runtime/cpu/threads.h"
#include "runtime/estimate/profiler.h"
#include "runtime/exec/backend_registry.h"
#include "tools/nasc/cli_output.h"

namespace nas::cli {
namespace {

constexpr int64_t kDefaultTrainBatch = 64;

std::string bytes_text(int64_t b) {
  if (b >= 1000000) return fmt::format("{} B ({:.2f} MB)", with_commas(b), b / 1e6);
  if (b >= 1000) return fmt::format("{} B ({:.1f} KB)", with_commas(b), b / 1e3);
  return fmt::format("{} B", b);
}

struct Loaded {
  Compilation c;
  std::optional<Selection> sel;
};

std::optional<Loaded> load(const Options& o, Diagnostics& diags) {
  CompileOptions copt;
  copt.include_paths = o.include_paths;
  copt.elaborate.network = o.network;
  copt.elaborate.overrides = o.overrides;
  Loaded l;
  l.c = compile_file(o.file, copt, diags);
  if (diags.has_errors() || !l.c.supernet) return std::nullopt;
  if (!o.arch.empty()) {
    l.sel = load_arch(*l.c.supernet, o.arch, diags);
    if (!l.sel) return std::nullopt;
  }
  return l;
}

// The measurement settings the flags give, on top of `base`.
MeasureSettings settings_from(const Options& o, MeasureSettings base) {
  if (o.warmup >= 0) base.warmup = static_cast<int>(o.warmup);
  if (o.repetitions >= 0) base.repetitions = static_cast<int>(o.repetitions);
  if (o.trim >= 0) base.trim = o.trim;
  if (!o.statistic.empty()) base.statistic = o.statistic;
  return base;
}

bool same_settings(const MeasureSettings& a, const MeasureSettings& b) {
  return a.warmup == b.warmup && a.repetitions == b.repetitions && a.trim == b.trim &&
         a.statistic == b.statistic;
}

std::string settings_text(const MeasureSettings& s) {
  return fmt::format("--warmup {} --repetitions {} --trim {} --statistic {}", s.warmup,
                     s.repetitions, s.trim, s.statistic);
}

// With `same_threads` false (a search, whose own thread count is its business), only the
// hardware and libraries are compared.
void warn_other_device(const std::string& lut, const LatencyTable& table, Diagnostics& diags,
                       bool same_threads = true) {
  std::string warning = driver::other_device_warning(lut, table, same_threads);
  if (!warning.empty()) diags.warning({}, warning);
}

}  // namespace

int cmd_profile(const Options& o, Diagnostics& diags) {
  std::optional<Loaded> l = load(o, diags);
  if (!l) return report(diags);
  const Graph& supernet = *l->c.supernet;
  set_cpu_threads(o.threads >= 0 ? static_cast<int>(o.threads) : 1);
  LatencyTable table;
  table.device = current_device();
  table.device.backend = o.backend.empty() ? default_backend_name() : o.backend;
  table.settings = settings_from(o, {});
  table.batch = o.batch;
  table.network = supernet.name;
  if (std::filesystem::exists(o.output)) {
    // Resume: keep what the file has, measure only what it lacks, under its settings.
    try {
      LatencyTable old = load_lut(o.output);
      if (old.device != table.device) {
        diags.error({}, o.output + " was measured on another device or thread count (" +
                            old.device.describe() + "); this run is " + table.device.describe() +
                            ". Write to another -o file");
        return report(diags);
      }
      if (old.batch != table.batch) {
        diags.error({}, fmt::format("{} holds batch {} measurements; this run is --batch {}. "
                                    "Write to another -o file",
                                    o.output, old.batch, table.batch));
        return report(diags);
      }
      MeasureSettings wanted = settings_from(o, old.settings);
      if (!same_settings(wanted, old.settings)) {
        diags.error({}, o.output + " was measured with " + settings_text(old.settings) +
                            "; resume it with the same settings or write to another -o file");
        return report(diags);
      }
      old.network = supernet.name;
      table = std::move(old);
    } catch (const UserError& e) {
      diags.error({}, std::string(e.what()) +
                          " (the -o file exists but is not a latency table; remove it or "
                          "choose another path)");
      return report(diags);
    }
  }
  try {
    SpaceLatency space(supernet, table.batch);
    std::cout << "profiling " << supernet.name << " at batch " << table.batch << " on "
              << table.device.describe() << " ("
              << (l->sel ? "architecture " + o.arch : std::string("every candidate")) << ")\n";
    const Selection* sel = l->sel ? &*l->sel : nullptr;
    ProfileStats s = profile_space(table, space, sel, o.output, &std::cout);
    std::cout << "wrote " << o.output << ": " << table.entries.size() << " entries (" << s.measured
              << " measured now, " << std::max(0, s.skipped) << " already there)\n";
  } catch (const UserError& e) {
    diags.error({}, e.what());
  }
  return report(diags);
}

int cmd_estimate(const Options& o, Diagnostics& diags) {
  std::optional<Loaded> l = load(o, diags);
  if (!l) return report(diags);
  const Graph& supernet = *l->c.supernet;
  const Selection* sel = l->sel ? &*l->sel : nullptr;
  const int64_t train_batch = o.batch_given ? o.batch : kDefaultTrainBatch;
  std::string mode = sel ? "arch" : supernet.arch.empty() ? "network" : "supernet";
  nlohmann::ordered_json j;
  j["network"] = supernet.name;
  j["arch"] = o.arch.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(o.arch);
  j["mode"] = mode;
  try {
    StaticEstimate st = static_estimate(sel ? specialise(supernet, *sel) : supernet, train_batch);
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
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return report(diags);
  }

  // Latency: from --lut, or profiled now (--profile-missing without --lut), or none.
  std::optional<LatencyTable> table;
  if (!o.lut.empty()) {
    try {
      table = load_lut(o.lut);
    } catch (const UserError& e) {
      diags.error({}, e.what());
      return report(diags);
    }
    set_cpu_threads(table->device.threads);
    warn_other_device(o.lut, *table, diags);
  } else if (o.profile_missing) {
    set_cpu_threads(o.threads >= 0 ? static_cast<int>(o.threads) : 1);
    table.emplace();
    table->device = current_device();
    table->device.backend = o.backend.empty() ? default_backend_name() : o.backend;
    table->settings = settings_from(o, {});
    table->network = supernet.name;
  } else {
    set_cpu_threads(o.threads >= 0 ? static_cast<int>(o.threads) : 1);
  }
  std::optional<LatencyEstimate> latency;
  int64_t latency_batch = table ? table->batch : 1;
  try {
    if (table) {
      auto est = std::make_unique<ArchEstimator>(supernet, *table);
      std::vector<std::string> missing = est->missing(sel);
      if (!missing.empty() && o.profile_missing) {
        std::cerr << "measuring " << missing.size() << " missing signature"
                  << (missing.size() == 1 ? "" : "s") << "\n";
        profile_space(*table, est->space(), sel, o.lut, nullptr);
        est = std::make_unique<ArchEstimator>(supernet, *table);
        missing = est->missing(sel);
      }
      if (!missing.empty()) {
        std::string msg =
            driver::missing_signatures_message(o.file, o.lut, *table, *est, sel, missing, supernet);
        diags.error({}, msg);
        return report(diags);
      }
      latency = sel ? est->estimate(*sel) : est->estimate_full();
    }
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return report(diags);
  }
  auto num = [](std::optional<double> v) {
    return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json();
  };
  std::optional<double> fused, accumulated, measured, error, error_acc;
  if (latency) fused = latency->fused_ms, accumulated = latency->accumulated_ms;
  if (o.measure) {
    try {
      MeasureSettings ms = table ? table->settings : settings_from(o, {});
      const std::string backend = !o.backend.empty() ? o.backend
                                  : table            ? table->device.backend
                                                     : default_backend_name();
      measured = measure_network(supernet, sel, latency_batch, ms, backend).ms;
    } catch (const UserError& e) {
      diags.error({}, e.what());
      return report(diags);
    }
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
  if (o.json) {
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return report(diags);
  }
  std::cout << o.file << ": network " << supernet.name;
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
        "  latency            {:.3f} ms fused, {:.3f} ms accumulated (batch {}, {}{})\n", *fused,
        *accumulated, latency_batch, o.lut.empty() ? "profiled now" : "table ", o.lut);
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
  return report(diags);
}

}  // namespace nas::cli
