// How a supernet's choices run during a step, as in the original MixedOp:
//   - full:   the softmax(alpha)-weighted sum of every candidate (DARTS); the executor's
//             use_full_choices();
//   - sample: one candidate per choice drawn from softmax(alpha) (ProxylessNAS); a join
//             (k of n) draws k distinct candidates one after the other (Plackett-Luce);
//   - max:    the most probable candidate(s) (ties: the lower index);
//   - fair:   FairNAS' strict fairness: each choice walks through a random permutation of
//             its candidates, one per step, so over n consecutive steps every candidate
//             of an n-way choice is trained exactly once.
// The last three give a selection (chosen[group] = candidate indices) that the executor
// runs through a live-step mask, so unselected branches cost nothing. Choices that share
// a key are one group, so they share one alpha and one selection.
//
// Everything here is a pure function of (seed, step): a resumed search draws the same
// paths as an uninterrupted one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"

namespace nas {

enum class ChoiceMode { Full, Sample, Max, Fair };

// "full", "sample", "max", "fair"; another name is an InternalError (the config parser
// allows only these).
ChoiceMode parse_choice_mode(const std::string& name);
const char* choice_mode_name(ChoiceMode mode);

using ChoiceSelection = std::vector<std::vector<int>>;  // chosen[group] = candidate indices

// The selection for `step` under `mode` (not Full). `probs[g]` are group g's candidate
// probabilities (Sample, Max); Fair ignores them. Full, or probabilities that do not
// match the groups, is an InternalError.
ChoiceSelection select_path(ChoiceMode mode, const std::vector<ArchSpec>& groups,
                            const std::vector<std::vector<double>>& probs, uint64_t seed,
                            int64_t step);

// Draws k distinct candidates from `probs` (Plackett-Luce: one after the other, each
// from the renormalised remainder), with random numbers from `seed`.
std::vector<int> sample_candidates(const std::vector<double>& probs, int k, uint64_t seed);

// d log P(picks) / d alpha for picks drawn by sample_candidates from softmax(alpha) =
// `probs`: the sum over picks of (one-hot(pick) - the renormalised remaining probs).
std::vector<double> log_prob_gradient(const std::vector<double>& probs,
                                      const std::vector<int>& picks);

}  // namespace nas
