// Measuring latencies on a backend: a step, a run of steps (a unit), or a whole plan.
//
// A step or unit is cut out of its plan into a small plan of its own (its inputs become
// fresh buffers of random values, its parameters random weights with unit variances for
// batch norm), prepared once on a fresh instance of the named backend, and timed: `warmup` untimed
// runs, then `repetitions` samples, each repeating the work until it lasts `min_sample_us` (so that
// the clock's resolution does not matter for microsecond steps) and dividing; the `trim` fraction
// of samples at each end is dropped, and the entry keeps the median and the trimmed mean. The whole
// plan (the "true" latency) is timed the same way through the executor, one network run per
// repetition.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runtime/estimate/latency_model.h"
#include "runtime/estimate/lut.h"
#include "runtime/exec/exec_plan.h"

namespace nas {

// Summarises raw per-run samples (milliseconds) by the settings.
LutEntry summarise(std::vector<double> samples_ms, const MeasureSettings& settings);

// Times steps `steps` of `plan` (in plan order) run back to back on the registered
// backend `backend`. For a choice step, `active` candidates are mixed (the first `active`
// inputs; -1: all).
LutEntry measure_steps(const std::string& backend, const ExecPlan& plan,
                       const std::vector<int>& steps, const MeasureSettings& settings,
                       int active = -1);

// Times whole runs of `plan` through the executor on the registered backend `backend`:
// the selected sub-network when `chosen` is given (one-hot choices, only live steps run
// when `live` is non-empty), else full mode.
LutEntry measure_plan(const std::string& backend, const ExecPlan& plan,
                      const MeasureSettings& settings,
                      const std::vector<std::vector<int>>* chosen = nullptr,
                      const std::vector<char>& live = {});

struct ProfileStats {
  int measured = 0;  // jobs measured in this call
  int skipped = 0;   // jobs the table already had
};

// Measures every job whose signature `table` lacks and adds it, on the backend the table
// is for (table.device.backend). When `path` is set, the
// table is saved there (atomically) after a measurement whenever `save_every_s` seconds
// have passed since the last save, and at the end — so an interrupted profile keeps what
// it measured and a rerun skips it. `log` (may be null) gets one progress line per job.
ProfileStats profile_into(LatencyTable& table, const ExecPlan& plan,
                          const std::vector<ProfileJob>& jobs, const std::string& path,
                          std::ostream* log, double save_every_s = 1.0);

// One sub-network run of the in-context profile: a selection (per plan arch group) and
// its live-node mask.
struct ContextRound {
  std::vector<std::vector<int>> chosen;
  std::vector<char> live;
};

// Times units in context: for each round with a fully live unit whose signature `table`
// lacks, runs that sub-network of `plan` through the executor (`warmup` runs, then
// `repetitions` runs with per-step timing) and adds an entry per such unit, pooling the
// samples of all its occurrences in the round (a unit's time in a run is the sum of its
// steps' times). Saves like profile_into. Units no round covers are left to profile_into.
ProfileStats profile_units_in_context(LatencyTable& table, const ExecPlan& plan,
                                      const std::vector<int>& unit_of_step,
                                      const std::vector<ContextRound>& rounds,
                                      const std::string& path, std::ostream* log,
                                      double save_every_s = 1.0);

}  // namespace nas
