// Architecture search loops on the executor (docs/search.md):
//   - darts:  first-order DARTS alternates an architecture step on a validation batch
//             with a weight step on a training batch, over one supernet compiled twice
//             (a weight plan and an alpha-only plan sharing one arena);
//   - darts2: the same with the unrolled (second-order) architecture gradient;
//   - pnas:   ProxylessNAS: sampled paths through live-step masks, REINFORCE on alpha;
//   - random: N architectures drawn uniformly, each trained from scratch, the best on the
//             validation split kept;
//   - evolution: SPOS: a supernet trained on single paths, then an evolutionary search
//             over it with batch-norm recalibration and hard hardware bounds
//             (runtime/search/evolution.h).
// Optional warm-up epochs (darts, darts2, pnas) train the weights alone with their own
// optimizer.
//
// The runtime does not know the front end, so what needs the compiler (the genotype
// from the probabilities, its params/MACs, drawing it) comes in as hooks from the caller.
// Per epoch: a progress bar, a metrics record (losses, accuracies, mean alpha entropy,
// probabilities, the current genotype and its cost), arch.json, a checkpoint; `--resume`
// continues bit-identically (same seed and threads).
#pragma once

#include <cmath>
#include <functional>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/dist/collectives.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/exec_plan.h"
#include "runtime/search/choice_modes.h"
#include "runtime/search/expected_cost.h"
#include "runtime/search/search_config.h"
#include "runtime/train/run_control.h"

namespace nas {

struct GenotypeInfo {
  nlohmann::ordered_json arch;               // the arch file (network, choices)
  std::map<std::string, std::string> names;  // key -> chosen candidate(s), "+"-joined
  double params = 0, macs = 0;
  double latency_ms = NAN;           // estimated from the regularizer's table, when given
  double activation_bytes = NAN;     // inference at batch 1, from the memory planner
  double measured_latency_ms = NAN;  // evolution: the fixed network timed (median)
  // darts: the derived genotype's parameter-free operations per cell, counted before the
  // darts.max_param_free cap, and the choice keys the cap changed (docs/search.md).
  std::map<std::string, int64_t> param_free;
  std::vector<std::string> param_free_replaced;
};

struct ArchCost {
  double params = 0, macs = 0, latency_ms = NAN;
};

// The cost a regularizer bounds (`params`, `macs` or `latency`), and its unit for messages.
double cost_in(const ArchCost& cost, const std::string& estimator);
const char* cost_unit(const std::string& estimator);

// Random draws tried before deciding that no architecture is within a regularizer's bound
// (evolution, random search): the estimators cost microseconds, so this is under a second.
constexpr int64_t kMaxBoundDraws = 20000;
// The error when none of kMaxBoundDraws draws was within `reg`'s bound; `cheapest` is the
// lowest cost drawn.
[[noreturn]] void throw_no_draw_within_bound(const RegularizerConfig& reg, double cheapest);

// What the retrain of the found architecture did (--retrain, docs/search.md#retrain).
struct RetrainOutcome {
  std::string dir;  // its run folder, <search run>/retrain
  nlohmann::ordered_json network = nlohmann::ordered_json::object();  // its parameters
  double params = 0, macs = 0;  // of the retrained (evaluation) network
  int64_t epochs = 0;           // the retrain config's
  int64_t epochs_run = 0;       // by this call
  double train_loss = NAN, train_accuracy = NAN;
  double test_loss = NAN, test_accuracy = NAN;  // after the last epoch; NaN when stopped
  double seconds = 0;
  bool stopped = false;  // a callback stopped it
};

struct SearchHooks {
  // DARTS' genotype for per-choice probabilities (indexed like ExecPlan::arch).
  std::function<GenotypeInfo(const std::vector<std::vector<double>>& probs)> derive;
  // The architecture a selection stands for (pnas' final path, random's samples).
  std::function<GenotypeInfo(const ChoiceSelection&)> describe;
  // The live-node mask of a selection over the graph the plans were compiled from, so
  // that a sampled path runs only its own steps (pnas, random).
  std::function<std::vector<char>(const ChoiceSelection&)> live_mask;
  // Params, MACs and (with a latency table) latency of a selection, for the pnas reward's
  // regularizer (fast: masked sums).
  std::function<ArchCost(const ChoiceSelection&)> cost;
  // The latency of a selection's fixed network, timed whole on the backend as `nasc
  // estimate --measure` does (the median of several runs, at the latency table's batch);
  // evolution reports it beside the estimate. May be empty (no latency table).
  std::function<double(const ChoiceSelection&)> measure_latency;
  // Called once at the end with the final genotype (draws arch.svg); may be empty.
  std::function<void(const GenotypeInfo&, const std::string& dir)> finish;
  // --retrain: trains the final genotype into <dir>/retrain (resuming it when the search
  // resumes) and says how it went; called after `finish`, not when the search stopped.
  // Empty: no retrain.
  std::function<RetrainOutcome(const GenotypeInfo&, const std::string& dir)> retrain;
};

struct SearchSetup {
  SearchConfig config;
  std::string algorithm = "darts";
  ExecPlan weight_plan;  // training, weight gradients only (every algorithm)
  ExecPlan alpha_plan;   // darts: alpha gradients only; darts2: alpha and weight gradients
  ExecPlan eval_plan;    // random, evolution: forward + loss at the search batch size
  // --rerank after a PC-DARTS search: the space's own training plan for the trials (the
  // weight plan trains the transformed supernet; eval_plan is then the space's). Empty:
  // the trials run on weight_plan.
  ExecPlan scratch_plan;
  // evolution over several ranks: the weight plan at the whole batch, which recalibrates
  // each candidate's batch norm (the weight plan holds a rank's share). Empty otherwise.
  ExecPlan recalibration_plan;
  // darts, darts2 with a regularizer: E[cost] as a polynomial in the probabilities, in
  // the regularizer estimator's unit (compiler/estimate/expected_cost_terms.h).
  std::vector<CostTerm> cost_terms;
  SearchHooks hooks;
  nlohmann::json meta = nlohmann::json::object();  // network, file, command line
  // PC-DARTS (darts.edge_normalization): the plans' last groups are edge weights (beta),
  // not choices; the choice count and alpha_entropy leave them out.
  size_t edge_weight_groups = 0;
  std::string backend = default_backend_name();  // a registered backend (backend_registry.h)
  // Data parallelism (docs/scaling.md): the plans are this rank's share of each batch;
  // only rank 0 writes the run folder.
  DataParallel parallel;
  // An embedder's callbacks, which may stop the run. Random search calls on_epoch after
  // each architecture (its records' "epoch") and on_step after each optimizer step of an
  // architecture's training (run_control.h says what its numbers count).
  RunControl control;
};

struct SearchSummary {
  GenotypeInfo genotype;
  std::vector<std::vector<double>> probs;
  double valid_accuracy = 0, seconds = 0;
  int64_t epochs_run = 0;
  bool stopped = false;       // setup.control stopped it
  std::string early_stop;     // why the search ended before its epochs (darts.stop_at_param_free)
  double search_seconds = 0;  // the search's share of `seconds` (the rest is the retrain)
  std::optional<RetrainOutcome> retrain;
};

// Runs the search into `dir` (fresh, or resumed from its checkpoint). Throws for bad
// data, a corrupt checkpoint or I/O errors.
SearchSummary run_search(SearchSetup setup, const std::string& dir, bool resume, std::ostream& out);

}  // namespace nas
