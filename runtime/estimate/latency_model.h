// Latency of a sub-network from a latency table, as a sum over its live steps: the
// supernet's inference plan is compiled once, every step's and unit's cost is looked up
// once, and each architecture is then one pass over a live-node mask (the compiler's
// LiveMasker), with no compilation and no lookups — what a searcher evaluates per sample.
//
// Two estimates:
//   - accumulated: the sum of the live steps' isolated latencies;
//   - fused: units are measured as one piece, in context (the executor has no fused
//     kernels yet, so a unit is a run of steps between choice points — a candidate block
//     or a fixed chain — that the compiler marks, see compiler/estimate/latency_units.h).
//     A unit whose steps are all live counts its own measured time; a unit that is only
//     partly live (a Zero inside it) falls back to its live steps' sum.
// A choice step costs nothing when it forwards one candidate (zero-pruning makes it an
// alias); mixing m > 1 nonzero candidates (a join, or full mode) costs the weighted sum
// of m inputs, signature "choice active=m". Input and view steps cost nothing.
#pragma once

#include <string>
#include <vector>

#include "runtime/estimate/lut.h"
#include "runtime/exec/exec_plan.h"

namespace nas {

// One measurement `nasc profile` makes: a step (one entry in `steps`), a unit, or a
// choice step mixing `active` candidates.
struct ProfileJob {
  std::string signature;
  std::vector<int> steps;
  int active = -1;
  bool unit = false;
};

// The entries a plan needs, without duplicates, in plan order. With `chosen` (one entry
// per plan arch group) and `live` (per forward node): those of that sub-network only;
// without: every step, every unit and every choice mixing count (full mode: all
// candidates; a join of k: 2..k) of the space — so the table covers every sub-network,
// and its size grows with the number of candidates, not the number of architectures.
// unit_of_step: per plan step, its unit (consecutive steps), or -1.
std::vector<ProfileJob> profile_jobs(const ExecPlan& plan, const std::vector<int>& unit_of_step,
                                     const std::string& backend,
                                     const std::vector<std::vector<int>>* chosen = nullptr,
                                     const std::vector<char>* live = nullptr);

struct LatencyEstimate {
  double accumulated_ms = 0;
  double fused_ms = 0;
};

class LatencyModel {
 public:
  // Resolves every step, unit and choice count of `plan` against `lut` (missing entries
  // are NaN: check missing() first).
  LatencyModel(const ExecPlan& plan, const std::vector<int>& unit_of_step, const LatencyTable& lut);

  // The signatures an estimate under (chosen, live) needs that the table lacks.
  std::vector<std::string> missing(const std::vector<std::vector<int>>* chosen,
                                   const std::vector<char>* live) const;

  // The sub-network `chosen` selects, whose live forward nodes are `live`; without
  // `chosen`, the supernet in full mode (every candidate mixed; `live` may be empty).
  LatencyEstimate estimate(const std::vector<std::vector<int>>* chosen,
                           const std::vector<char>& live);

  // Each forward node's isolated (accumulated) latency, by the node its steps are gated
  // on; choice steps count 0 (one candidate forwarded is an alias). `nodes` sizes the
  // result. DARTS' differentiable expected latency weighs these by liveness.
  std::vector<double> node_ms(size_t nodes) const;

 private:
  struct CostedStep {
    int guard = -1;
    int unit = -1;
    int group = -1;  // a choice step: its plan arch group
    double ms = 0;
  };
  struct ChoiceCost {
    std::vector<char> nonzero;  // per input: not a Zero step
    std::vector<double> by_active;
  };
  const ExecPlan* plan_;
  std::vector<int> units_;
  const LatencyTable* lut_;
  std::vector<CostedStep> steps_;
  std::vector<ChoiceCost> choices_;  // indexed by CostedStep::group position
  std::vector<int> choice_of_step_;  // per costed step: index into choices_, or -1
  std::vector<double> unit_ms_;
  std::vector<int> unit_size_;
  std::vector<int> unit_live_;  // scratch
  std::vector<double> unit_sum_;
};

}  // namespace nas
