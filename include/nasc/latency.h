// libnasc's measurements: profiling a space into a latency table (`nasc profile`) and the
// whole cost report of one network (`nasc estimate`: params, MACs, memory, latency from a
// table, measured latency). Part of the public API (docs/embedding.md, docs/estimate.md).
//
// Measuring sets the process's CPU thread count (options.threads): the measurements are
// of that many threads, and the table records it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "nasc/diagnostics.h"
#include "nasc/space.h"

namespace nasc {

// How each latency is timed (docs/estimate.md). A negative number or an empty statistic
// keeps the default (warmup 10, repetitions 50, trim 0.1, "min"), or a resumed table's.
struct MeasureOptions {
  int warmup = -1;        // untimed runs first
  int repetitions = -1;   // timed samples
  double trim = -1;       // fraction of samples dropped at each end
  std::string statistic;  // "min", "median" or "trimmed_mean"
};

struct ProfileOptions {
  int64_t batch = 1;    // the batch size every signature is measured at
  int threads = 1;      // CPU threads (0 = every core)
  std::string backend;  // a registered backend ("" = the default)
  MeasureOptions settings;
  // One architecture's signatures only; none: every candidate of the space.
  std::optional<Architecture> arch;
  // The table file to resume and to save into as it grows ("" = keep it in memory).
  std::string output;
  // Calibration (docs/estimate.md): after the signatures, this many architectures drawn
  // uniformly (with `arch`: it alone) are timed whole against the table's estimate, and
  // the median ratio corrects every later estimate. 0: none. A resumed table keeps its
  // calibration when nothing new was measured and it timed at least as many networks.
  int calibrate = 5;
  // Rounds (1..100): the signatures measured now are measured this many times in turn,
  // each keeping its fastest entry, so that a slow stretch of a shared machine does not
  // skew some of them against the others (docs/estimate.md).
  int rounds = 3;
  std::ostream* log = nullptr;  // the progress lines `nasc profile` prints; null: none
};

// What LatencyTable::measure did.
struct ProfileReport {
  int measured = 0;  // signatures measured by this call
  int reused = 0;    // signatures the resumed table already had
  // The table's calibration scale after the call (none without calibration).
  std::optional<double> calibration;
  // Why calibration was asked for but the table stays uncalibrated ("" otherwise): every
  // network timed whole was too far off its estimate to be a bias of it.
  std::string calibration_problem;
};

struct NetworkEstimateOptions {
  // The architecture; none: the space's network (a supernet in full mode, every
  // candidate at once).
  std::optional<Architecture> arch;
  int64_t train_batch = 64;  // of the training memory estimate
  // A latency table from `nasc profile`. It needs only the signatures this network uses.
  std::string lut;
  // Measure what the table lacks and save it into `lut`; without `lut`, profile the
  // network now (into a table kept in memory).
  bool profile_missing = false;
  // Also run the whole network and time it (at the table's batch size, else 1).
  bool measure = false;
  int threads = 1;              // CPU threads without `lut` (0 = every core); a table's own with it
  std::string backend;          // "" = the table's, else the default
  MeasureOptions settings;      // without `lut`: for profile_missing and measure
  std::ostream* log = nullptr;  // "measuring N missing signatures"; null: none
};

struct NetworkEstimate {
  StaticEstimate cost;
  std::optional<LatencyEstimate> latency;  // with a table or profile_missing
  std::optional<double> measured_ms;       // with measure
  // The batch size of the latency numbers (the table's; 1 without a table).
  int64_t latency_batch = 1;
  // E.g. a table measured on another device (the estimate describes that device).
  std::vector<Diagnostic> warnings;
};

// Throws a user Error for a table that cannot be read, that lacks signatures the network
// needs (listing them and the `nasc profile` command that measures them, unless
// profile_missing), and for a network that cannot be compiled or run.
NetworkEstimate estimate_network(const Space& space, const NetworkEstimateOptions& options);

}  // namespace nasc
