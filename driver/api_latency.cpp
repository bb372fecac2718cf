// libnasc's measurements (include/nasc/latency.h): `nasc profile` as LatencyTable::measure
// (a resumable table of a space's op signatures) and `nasc estimate` as estimate_network
// (the static cost, latency from a table or profiled now, and the network timed whole).
#include <fmt/format.h>

#include <filesystem>
#include <ostream>

#include "driver/api_internal.h"
#include "driver/space_latency.h"
#include "nasc/latency.h"
#include "nasc/nasc.h"
#include "runtime/cpu/threads.h"
#include "runtime/estimate/profiler.h"
#include "runtime/exec/backend_registry.h"

namespace nasc {
namespace {

// The measurement settings the options give, on top of `base`.
nas::MeasureSettings settings_from(const MeasureOptions& o, nas::MeasureSettings base) {
  if (o.warmup >= 0) base.warmup = o.warmup;
  if (o.repetitions >= 0) base.repetitions = o.repetitions;
  if (o.trim >= 0) base.trim = o.trim;
  if (!o.statistic.empty()) base.statistic = o.statistic;
  return base;
}

bool same_settings(const nas::MeasureSettings& a, const nas::MeasureSettings& b) {
  return a.warmup == b.warmup && a.repetitions == b.repetitions && a.trim == b.trim &&
         a.statistic == b.statistic;
}

std::string settings_text(const nas::MeasureSettings& s) {
  return fmt::format("--warmup {} --repetitions {} --trim {} --statistic {}", s.warmup,
                     s.repetitions, s.trim, s.statistic);
}

void check_settings(const std::string& owner, const MeasureOptions& o) {
  if (o.repetitions == 0)
    throw Error(Error::Kind::User, owner + "::settings.repetitions: must be >= 1, got 0");
  if (o.trim >= 0.5)
    throw Error(Error::Kind::User,
                fmt::format("{}::settings.trim: must be in [0, 0.5), got {}", owner, o.trim));
  if (!o.statistic.empty() && o.statistic != "min" && o.statistic != "median" &&
      o.statistic != "trimmed_mean")
    throw Error(Error::Kind::User, owner + "::settings.statistic: takes min, median or " +
                                       "trimmed_mean, got \"" + o.statistic + "\"");
}

// The backend by name ("" = the default), checked.
std::string backend_named(const std::string& field, const std::string& name) {
  if (name.empty()) return nas::default_backend_name();
  const std::string problem = nas::backend_name_problem(name);
  if (!problem.empty()) throw Error(Error::Kind::User, field + ": " + problem);
  // Measuring needs the backend's device (the CUDA plugin's GPU).
  const std::string cannot_run = backend_problem(name);
  if (!cannot_run.empty()) throw Error(Error::Kind::User, field + ": " + name + ": " + cannot_run);
  return nas::canonical_backend_name(name);
}

void check_counts(const std::string& owner, const std::string& batch_field, int64_t batch,
                  int threads) {
  if (batch < 1)
    throw Error(Error::Kind::User,
                fmt::format("{}::{}: must be >= 1, got {}", owner, batch_field, batch));
  if (threads < 0)
    throw Error(Error::Kind::User,
                fmt::format("{}::threads: must be >= 0, got {}", owner, threads));
}

const nas::Selection* selection_of(const Space& space, const std::optional<Architecture>& arch) {
  if (!arch) return nullptr;
  if (arch->impl().space != space.shared_impl())
    throw Error(Error::Kind::User, "the architecture belongs to another space");
  return &arch->impl().selection;
}

// A fresh table for this machine at the current thread count.
nas::LatencyTable empty_table(const std::string& backend, const MeasureOptions& settings,
                              const std::string& network) {
  nas::LatencyTable table;
  table.device = nas::current_device(backend);
  table.settings = settings_from(settings, {});
  table.network = network;
  return table;
}

// Resuming `path`: the table it holds, which must have been measured like `fresh` would
// be. A mismatch, or a file that is not a table, is reported into `diags` (nullopt).
std::optional<nas::LatencyTable> resumed_table(const std::string& path,
                                               const nas::LatencyTable& fresh,
                                               const MeasureOptions& settings,
                                               nas::Diagnostics& diags) {
  try {
    nas::LatencyTable old = nas::load_lut(path);
    if (old.device != fresh.device) {
      diags.error({}, path + " was measured on another device or thread count (" +
                          old.device.describe() + "); this run is " + fresh.device.describe() +
                          ". Write to another -o file");
      return std::nullopt;
    }
    if (old.batch != fresh.batch) {
      diags.error({}, fmt::format("{} holds batch {} measurements; this run is --batch {}. "
                                  "Write to another -o file",
                                  path, old.batch, fresh.batch));
      return std::nullopt;
    }
    if (!same_settings(settings_from(settings, old.settings), old.settings)) {
      diags.error({}, path + " was measured with " + settings_text(old.settings) +
                          "; resume it with the same settings or write to another -o file");
      return std::nullopt;
    }
    old.network = fresh.network;
    return old;
  } catch (const nas::UserError& e) {
    diags.error({}, std::string(e.what()) +
                        " (the -o file exists but is not a latency table; remove it or "
                        "choose another path)");
    return std::nullopt;
  }
}

// Runs fn, reporting a user error it throws into `diags` and throwing them all.
template <typename F>
auto reported(nas::Diagnostics& diags, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const nas::UserError& e) {
    diags.error({}, e.what());
    detail::throw_diagnostics(diags);
  }
}

// ProfileOptions::calibrate: whole networks timed against the table's estimate, unless
// the table's calibration still holds (nothing new measured, at least as many networks).
// Returns why the table stays uncalibrated ("" when it is calibrated, or not asked to be).
std::string calibrate(const nas::Graph& supernet, const nas::Selection* sel,
                      const ProfileOptions& o, int measured_now, nas::LatencyTable& table,
                      nas::Diagnostics& diags) {
  if (o.calibrate == 0) return "";
  const size_t wanted = sel ? 1 : static_cast<size_t>(o.calibrate);
  if (measured_now == 0 && table.calibration && table.calibration->ratios.size() >= wanted) {
    if (o.log)
      *o.log << fmt::format("calibration: kept (x{:.3f}, from {} networks)\n",
                            table.calibration->scale, table.calibration->ratios.size());
    return "";
  }
  const std::string problem = reported(diags, [&] {
    std::string why = nas::calibrate_table(table, supernet, sel, o.calibrate, /*seed=*/0, o.log);
    if (!o.output.empty()) nas::save_lut(table, o.output);
    return why;
  });
  if (o.log)
    *o.log << (!problem.empty()
                   ? "warning: " + problem + "\n"
                   : fmt::format("calibration: estimates x{:.3f} (the median of {} "
                                 "network{})\n",
                                 table.calibration->scale, table.calibration->ratios.size(),
                                 table.calibration->ratios.size() == 1 ? "" : "s"));
  return problem;
}

}  // namespace

LatencyTable LatencyTable::measure(const Space& space, const ProfileOptions& o,
                                   ProfileReport* report) {
  return detail::translate_errors([&] {
    check_counts("ProfileOptions", "batch", o.batch, o.threads);
    check_settings("ProfileOptions", o.settings);
    if (o.calibrate < 0 || o.calibrate > 1000)
      throw Error(
          Error::Kind::User,
          fmt::format("ProfileOptions::calibrate: must be in 0..1000, got {}", o.calibrate));
    if (o.rounds < 1 || o.rounds > 100)
      throw Error(Error::Kind::User,
                  fmt::format("ProfileOptions::rounds: must be in 1..100, got {}", o.rounds));
    const std::string backend = backend_named("ProfileOptions::backend", o.backend);
    const nas::Selection* sel = selection_of(space, o.arch);
    const nas::Graph& supernet = space.impl().supernet;
    nas::set_cpu_threads(o.threads);
    auto impl = std::make_shared<Impl>();
    impl->path = o.output;
    impl->table = empty_table(backend, o.settings, supernet.name);
    impl->table.batch = o.batch;
    nas::Diagnostics diags;
    if (!o.output.empty() && std::filesystem::exists(o.output)) {
      // Resume: keep what the file has, measure only what it lacks, under its settings.
      std::optional<nas::LatencyTable> old =
          resumed_table(o.output, impl->table, o.settings, diags);
      if (!old) detail::throw_diagnostics(diags);
      impl->table = std::move(*old);
    }
    nas::ProfileStats stats = reported(diags, [&] {
      nas::SpaceLatency latency(supernet, impl->table.batch);
      if (o.log)
        *o.log << "profiling " << supernet.name << " at batch " << impl->table.batch << " on "
               << impl->table.device.describe() << " ("
               << (sel ? "architecture " +
                             (o.arch->file().empty() ? o.arch->describe() : o.arch->file())
                       : std::string("every candidate"))
               << ")\n";
      return nas::profile_space(impl->table, latency, sel, o.output, o.log, o.rounds);
    });
    const std::string uncalibrated =
        calibrate(supernet, sel, o, stats.measured, impl->table, diags);
    if (report) {
      *report =
          ProfileReport{stats.measured, std::max(0, stats.skipped), std::nullopt, uncalibrated};
      if (impl->table.calibration) report->calibration = impl->table.calibration->scale;
    }
    return LatencyTable(std::move(impl));
  });
}

namespace {

// The latency half of estimate_network: from the table (measuring what it lacks when
// asked) or profiled now, then the network timed whole.
void estimate_latency(const Space& space, const NetworkEstimateOptions& o,
                      const nas::Selection* sel, NetworkEstimate& out, nas::Diagnostics& diags) {
  const nas::Graph& supernet = space.impl().supernet;
  std::optional<nas::LatencyTable> table;
  if (!o.lut.empty()) {
    table = reported(diags, [&] { return nas::load_lut(o.lut); });
    nas::set_cpu_threads(table->device.threads);
    std::string warning = nas::driver::other_device_warning(o.lut, *table);
    if (!warning.empty()) diags.warning({}, warning);
  } else {
    nas::set_cpu_threads(o.threads);
    if (o.profile_missing)
      table = empty_table(backend_named("NetworkEstimateOptions::backend", o.backend), o.settings,
                          supernet.name);
  }
  out.latency_batch = table ? table->batch : 1;
  if (table) {
    reported(diags, [&] {
      auto est = std::make_unique<nas::ArchEstimator>(supernet, *table);
      std::vector<std::string> missing = est->missing(sel);
      if (!missing.empty() && o.profile_missing) {
        if (o.log)
          *o.log << "measuring " << missing.size() << " missing signature"
                 << (missing.size() == 1 ? "" : "s") << "\n";
        nas::profile_space(*table, est->space(), sel, o.lut, nullptr);
        est = std::make_unique<nas::ArchEstimator>(supernet, *table);
        missing = est->missing(sel);
      }
      if (!missing.empty()) {
        diags.error({}, nas::driver::missing_signatures_message(space.file(), o.lut, *table, *est,
                                                                sel, missing, supernet));
        detail::throw_diagnostics(diags);
      }
      nas::LatencyEstimate e = sel ? est->estimate(*sel) : est->estimate_full();
      out.latency =
          LatencyEstimate{e.fused_ms, e.accumulated_ms, out.latency_batch, est->calibration()};
    });
  }
  if (o.measure) {
    reported(diags, [&] {
      nas::MeasureSettings ms = table ? table->settings : settings_from(o.settings, {});
      const std::string backend = !o.backend.empty() ? o.backend
                                  : table            ? table->device.backend
                                                     : nas::default_backend_name();
      out.measured_ms = nas::measure_network(supernet, sel, out.latency_batch, ms, backend).ms;
    });
  }
}

}  // namespace

NetworkEstimate estimate_network(const Space& space, const NetworkEstimateOptions& o) {
  return detail::translate_errors([&] {
    check_counts("NetworkEstimateOptions", "train_batch", o.train_batch, o.threads);
    check_settings("NetworkEstimateOptions", o.settings);
    if (!o.backend.empty()) backend_named("NetworkEstimateOptions::backend", o.backend);
    const nas::Selection* sel = selection_of(space, o.arch);
    const nas::Graph& supernet = space.impl().supernet;
    nas::Diagnostics diags;
    NetworkEstimate out;
    out.cost = reported(diags, [&] {
      return detail::to_public(
          nas::static_estimate(sel ? nas::specialise(supernet, *sel) : supernet, o.train_batch));
    });
    estimate_latency(space, o, sel, out, diags);
    out.warnings = detail::to_public(diags);
    return out;
  });
}

}  // namespace nasc
