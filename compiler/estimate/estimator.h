// The estimators `nasc estimate`, `nasc profile` and the benches use: static costs
// (parameters, MACs, planned activation memory) of a network, and the latency of any
// sub-network of a space from a latency table, computed on the pruned graph.
//
// Static costs are computed on the graph given: a fixed network (an architecture already
// zero-pruned by specialise) or a supernet, which then counts in full mode (every
// candidate computed, as DARTS' supernet runs), like `nasc check` and `nasc ir --stage
// plan` do.
//
// Latency needs no loss: a classifier's inference plan keeps its loss step (as the
// tables profiled so far do), any other network's plan ends at its output.
//
// Latency: the supernet's inference plan (batch = the table's) is compiled once by the
// pipeline (compiler/pipeline), which also gives the execution graph the plan was lowered
// from (the result of its cse stage); a selection becomes a live mask over that graph (LiveMasker:
// Zero cuts its branch, unselected candidates are dead), and the estimate is the masked
// sum of runtime/estimate/latency_model.h. Nothing is rebuilt per architecture.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/passes/live_mask.h"
#include "compiler/passes/selection.h"
#include "runtime/estimate/latency_model.h"
#include "runtime/estimate/lut.h"
#include "runtime/estimate/profiler.h"
#include "runtime/exec/exec_plan.h"

namespace nas {

struct StaticEstimate {
  int64_t params = 0;            // weights the cost model counts (conv, linear, batch-norm affine)
  int64_t param_bytes = 0;       // params * 4 (float32)
  int64_t macs = 0;              // per sample
  int64_t activation_bytes = 0;  // inference arena peak at batch 1
  int64_t train_batch = 0;
  int64_t train_activation_bytes = 0;  // training (fwd + loss + bwd) arena peak at train_batch
  // Why train_activation_bytes is not computed (it is 0 then), "" when it is: training
  // needs a loss, and the loss needs the network to return 1-D logits.
  std::string train_not_applicable;
};

// Every figure but training memory holds for any network; that one only for a network
// that returns 1-D logits (else train_not_applicable says why). Throws UserError at the
// node's source when memory planning refuses the sizes.
StaticEstimate static_estimate(const Graph& network, int64_t train_batch);

// Why `network` cannot be trained with the cross-entropy loss ("" when it can): its output
// is not 1-D logits [classes].
std::string training_output_problem(const Graph& network);

// A space compiled once for latency work at one batch size.
class SpaceLatency {
 public:
  SpaceLatency(const Graph& supernet, int64_t batch);
  SpaceLatency(const SpaceLatency&) = delete;
  SpaceLatency& operator=(const SpaceLatency&) = delete;

  const Graph& graph() const { return exec_; }  // the execution graph the plan runs
  const ExecPlan& plan() const { return plan_; }
  const std::vector<int>& units() const { return units_; }
  // The live mask of `sel` over graph() (selections index the supernet's groups, which
  // the execution graph keeps in order).
  void mask(const Selection& sel, std::vector<char>& live) const { masker_->compute(sel, live); }
  // What profiling needs: for one selection, or (nullptr) every signature of the space.
  std::vector<ProfileJob> jobs(const Selection* sel, const std::string& backend) const;
  // The sub-networks the in-context profile runs: `sel` alone, or (nullptr) rounds
  // r = 0..max candidates - 1 where every group picks candidates r, r+1, ... (mod its
  // size), so that every candidate block runs in some round: as many runs as the largest
  // choice has candidates, not as many as there are architectures.
  std::vector<ContextRound> context_rounds(const Selection* sel) const;

 private:
  Graph exec_;
  ExecPlan plan_;
  std::vector<int> units_;
  std::unique_ptr<LiveMasker> masker_;
};

// Latency of sub-networks of one space from one table. estimate() is allocation-free: a
// live mask and a sum (benchmarked in bench/estimate_speed.cpp).
class ArchEstimator {
 public:
  ArchEstimator(const Graph& supernet, const LatencyTable& lut);
  // Signatures missing for `sel` (nullptr: the supernet in full mode).
  std::vector<std::string> missing(const Selection* sel);
  // Latencies are the table's calibration scale (1 without one) times the model's.
  LatencyEstimate estimate(const Selection& sel);
  LatencyEstimate estimate_full();  // the supernet in full mode
  const SpaceLatency& space() const { return space_; }
  // Per node of space().graph(): its isolated latency (LatencyModel::node_ms), calibrated.
  std::vector<double> node_ms() const;
  double calibration() const { return scale_; }

 private:
  SpaceLatency space_;
  LatencyModel model_;
  double scale_ = 1;
  std::vector<char> live_;
};

// Calibrates `table` (LatencyCalibration): times `networks` architectures of `supernet`
// whole, drawn uniformly from `seed` (with `sel`: that one alone), against the table's
// uncalibrated estimate of them, and stores the median ratio. The whole runs take the
// table's settings, with at least kCalibrationWarmup warm-up and kCalibrationRuns timed
// runs (a cold first run times oneDNN's setup, not the network). Each network is timed in
// kCalibrationRounds interleaved rounds (every network once per round) and keeps its
// fastest: machine noise only adds time, in stretches, and a calibration taken in one slow
// stretch scaled every later estimate by it. A network whose ratio
// is beyond kMaxCalibration either way is reported to `log` and left out; when none is
// left the table stays uncalibrated and the reason is returned ("" on success).
// Precondition: the table has every signature the networks need.
constexpr int kCalibrationWarmup = 2, kCalibrationRuns = 5, kCalibrationRounds = 3;
std::string calibrate_table(LatencyTable& table, const Graph& supernet, const Selection* sel,
                            int networks, uint64_t seed, std::ostream* log);

// Fills `table` with what estimates for `sel` (nullptr: every sub-network and the full
// supernet) need and it lacks: units timed in context first, then every remaining step,
// choice mix and unit in isolation. Saves to `path` as it goes (see profile_into).
// With `rounds` > 1, what it measured is measured again, in turn, that many times in all,
// and each signature keeps its fastest entry: noise on a shared machine only adds time,
// in stretches of seconds, and a table profiled in one pass catches some signatures in a
// slow stretch, which reorders the estimates of networks that differ by a few percent
// (docs/results.md).
ProfileStats profile_space(LatencyTable& table, const SpaceLatency& space, const Selection* sel,
                           const std::string& path, std::ostream* log, int rounds = 1);

// The "true" latency: the network run whole through the executor and timed. With `sel`,
// the zero-pruned network it selects (compiled on its own, as it would be deployed);
// without, `network` itself (a supernet in full mode). `backend`: a registered backend.
LutEntry measure_network(const Graph& network, const Selection* sel, int64_t batch,
                         const MeasureSettings& settings, const std::string& backend);

}  // namespace nas
