// `-a evolution`: single-path one-shot search with an evolutionary architecture search
// on the trained supernet (SPOS, Guo et al. 2020; docs/search.md#evolution).
//
// Phase 1, the supernet: `epochs` epochs of weight steps on single paths drawn uniformly
// or by FairNAS' permutations (make_evolution_supernet, run by SearchEpochs like pnas, so
// resume, callbacks, records and checkpoints are the other searches'). No architecture
// parameter is trained.
// Phase 2, the evolution (run_evolution), after the last epoch: populations of
// architectures, each candidate checked against the regularizer's bound with the
// estimators first (an infeasible one is redrawn and costs nothing), then scored on the
// validation split after batch-norm recalibration on a few training batches. The best
// `parents` candidates so far breed the next population by mutation and crossover at the
// level of choice keys. Everything is a pure function of the seed and the supernet's
// weights, so `--resume` from the supernet's last checkpoint redoes the same evolution.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <vector>

#include "runtime/data/loader.h"
#include "runtime/exec/executor.h"
#include "runtime/search/search_algorithm.h"
#include "runtime/search/search_run.h"
#include "support/rng.h"

namespace nas {

// The architecture operators, per choice key (a selection's group): each keeps a group's
// picks valid (k distinct candidates in range), so joins stay joins.
// Every group drawn uniformly (a join: k distinct candidates).
ChoiceSelection random_architecture(const std::vector<ArchSpec>& groups, Rng& rng);
// Each group redrawn with probability `prob` (a join: each pick replaced, with that
// probability, by a candidate the group has not picked).
ChoiceSelection mutate_architecture(const ChoiceSelection& parent,
                                    const std::vector<ArchSpec>& groups, double prob, Rng& rng);
// Each group's picks taken whole from `a` or from `b`, with equal chance.
ChoiceSelection cross_architectures(const ChoiceSelection& a, const ChoiceSelection& b,
                                    const std::vector<ArchSpec>& groups, Rng& rng);
bool is_valid_selection(const ChoiceSelection& sel, const std::vector<ArchSpec>& groups);

// Batch-norm recalibration, as SPOS does before scoring a candidate: the running
// statistics of the batch-norm steps the live mask `live` keeps are re-estimated as the
// cumulative average, over `batches`, of each batch's mean and unbiased variance (what
// PyTorch's momentum=None gives). `training` is a training plan, already in the
// candidate's selection and live mask; it runs forward only. Statistics of steps off the
// path are left alone; no batches leave every statistic as it is.
void recalibrate_batch_norm(Executor& training, ParamStore& store, const std::vector<char>& live,
                            const std::vector<Batch>& batches);

// The supernet phase's per-step part for SearchEpochs: no architecture step; each weight
// step takes one path, drawn uniformly ("uniform") or fairly ("fair").
std::unique_ptr<SearchAlgorithm> make_evolution_supernet(SearchContext ctx);

struct EvolutionPhase {
  const SearchConfig& config;
  const SearchHooks& hooks;  // describe, live_mask, cost; measure_latency when set
  ParamStore& store;
  Executor& training;  // the weight plan (recalibration)
  Executor& eval;      // a forward plan at the search batch size (scores)
  const SearchData& data;
  RunDir& run;
  std::ostream& out;
  // Over N ranks the candidates of each generation are split (candidate i scored by rank
  // i mod N, on whole batches) and the scores shared, so every rank breeds the same next
  // generation; rank 0 times the best ones and tells the others.
  DataParallel parallel{};
};

struct ScoredArchitecture {
  ChoiceSelection path;
  double valid_acc = 0;
  int64_t generation = 0;
};

struct EvolutionResult {
  GenotypeInfo best;  // with measured_latency_ms when the hooks measure
  double valid_accuracy = 0;
  std::vector<ScoredArchitecture> ranked;  // every candidate scored, best first (--rerank)
};

// Runs the evolution and writes arch.json (the best feasible architecture), pareto.json
// and evolution.jsonl into the run folder. Throws a ConfigError naming regularizer.bound
// when no drawn architecture is within the bound.
EvolutionResult run_evolution(const EvolutionPhase& phase);

}  // namespace nas
