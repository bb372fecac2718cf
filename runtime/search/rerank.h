// --rerank K (docs/search.md#re-ranking): weight-sharing rankings are unreliable at small
// budgets, so after the search its K best distinct candidate architectures are each
// trained briefly from scratch (`rerank_epochs` epochs on the training split,
// scratch_trial.h) and scored on the validation split; the best of them is the result.
//
// Where the candidates come from, best first by the search's own ranking:
//   - darts, darts2, pnas: the genotypes of the search epochs in metrics.jsonl, the last
//     epoch's first, then earlier ones, newest first; while fewer than K are distinct,
//     genotypes of the final probabilities perturbed by Gumbel noise on their logarithms
//     (a draw in proportion to them, from the run's seed), through the same genotype rule
//     (so darts' cap applies to them too);
//   - random: its samples by their validation accuracy (ties: the earlier sample);
//   - evolution: the best candidates it scored on the supernet.
// Ties in the re-ranking go to the candidate the search ranked higher.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/search/scratch_trial.h"
#include "runtime/train/run_dir.h"

namespace nas {

struct RerankCandidate {
  ChoiceSelection path;
  std::string source;         // "epoch 4", "perturbed", "sample 3", "evolution #2"
  double search_score = NAN;  // the search's own validation accuracy for it, when it has one
};

// The selection an arch's names stand for (key -> "a" or "a+b" for a join), or an empty
// selection when a key or a name is not the space's.
ChoiceSelection selection_from_names(const std::vector<ArchSpec>& groups,
                                     const std::map<std::string, std::string>& names);

// darts, darts2, pnas: at most k distinct candidates from the search records of
// `metrics_file`, then from perturbed `probs` through `genotype`.
std::vector<RerankCandidate> genotype_candidates(
    const std::string& metrics_file, const std::vector<ArchSpec>& groups,
    const std::vector<std::vector<double>>& probs,
    const std::function<GenotypeInfo(const std::vector<std::vector<double>>&)>& genotype, int64_t k,
    uint64_t seed);

// random: the k best distinct samples of `metrics_file` by validation accuracy.
std::vector<RerankCandidate> sampled_candidates(const std::string& metrics_file,
                                                const std::vector<ArchSpec>& groups, int64_t k);

struct RerankResult {
  size_t kept = 0;  // index into the candidates
  GenotypeInfo genotype;
  double valid_accuracy = 0;
};

// Trains and scores every candidate (progress lines per candidate, to `t.out` and the
// log), writes rerank.json and arch.json (the kept one, with its score), and returns the
// best. Precondition: at least one candidate.
RerankResult rerank(const ScratchTraining& t, const std::vector<RerankCandidate>& candidates,
                    RunDir& run);

}  // namespace nas
