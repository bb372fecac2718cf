// The per-step part of a search algorithm, behind one interface, so that DARTS (first
// and second order), ProxylessNAS and evolution's supernet phase share one epoch (searcher.cpp:
// data, warm-up, progress, the record, the checkpoint's payload, report) on the epoch driver that
// train and random search use too (runtime/train/epoch_driver.h). Random search trains whole
// architectures one after the other (random_searcher.cpp).
//
// Per step the driver calls arch_step() on a validation batch (not during warm-up), then
// prepare_weight_step() and runs the weight plan on a training batch itself (clipping,
// schedule, optimizer).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "runtime/data/loader.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/optimizer.h"
#include "runtime/search/searcher.h"

namespace nas {

// Sums over an epoch's steps (the driver divides them for the metrics).
struct StepTotals {
  double train_loss = 0, valid_loss = 0, reward = 0, expected_cost = 0;
  int64_t train_correct = 0, train_seen = 0;
  int64_t valid_correct = 0, valid_seen = 0, rewards = 0, expected_costs = 0;
};

struct SearchContext {
  const SearchConfig& config;
  const SearchHooks& hooks;
  const std::vector<CostTerm>& cost_terms;  // darts regularizer
  ParamStore& store;
  Executor& weights;  // the weight plan (training, weight gradients)
  Executor* alphas;   // DARTS: the architecture plan (training, alpha gradients)
  Optimizer& arch_optimizer;
  int64_t batch;            // the plans' (this rank's share of a batch)
  DataParallel parallel{};  // pnas: each rank samples its own paths
};

class SearchAlgorithm {
 public:
  virtual ~SearchAlgorithm() = default;
  // One architecture update on `valid` (second-order DARTS also reads `train`). `lr` is
  // the weights' learning rate of this step.
  virtual void arch_step(const Batch& train, const Batch& valid, int64_t step, double lr,
                         StepTotals& totals) = 0;
  // Puts the weight plan in the mode of this step's weight update (full, or a path).
  virtual void prepare_weight_step(int64_t step, bool warming) = 0;
  // The weight slots this step's weight update may touch (empty: all of them).
  virtual std::vector<char> active_slots() const { return {}; }
  // False when the epochs train weights only and the architecture comes after them
  // (evolution): the records then hold no probabilities or genotype, and no arch.json is
  // written per epoch.
  virtual bool derives_architecture() const { return true; }
  // The architecture the current probabilities stand for.
  virtual GenotypeInfo genotype(const std::vector<std::vector<double>>& probs) = 0;
  // State beyond weights, alphas and optimizers that a resumed run needs (the reward
  // baseline); stored in the checkpoint's `extra`.
  virtual nlohmann::json save_state() const { return nlohmann::json::object(); }
  virtual void load_state(const nlohmann::json& /*state*/) {}
};

// darts (first order) and darts2 (unrolled, finite-difference Hessian-vector product).
std::unique_ptr<SearchAlgorithm> make_darts_search(SearchContext ctx, bool second_order);
// pnas: sampled paths, REINFORCE with a moving-average baseline.
std::unique_ptr<SearchAlgorithm> make_proxyless_search(SearchContext ctx);
// evolution's supernet phase: make_evolution_supernet in runtime/search/evolution.h.

// Softmax of every stored alpha, in store order (= plan group order).
std::vector<std::vector<double>> arch_probabilities(const ParamStore& store);

}  // namespace nas
