// ProxylessNAS (Cai et al. 2019) with REINFORCE, as in its reference code and NNablaNAS:
//   - weight step: one path per step, drawn from softmax(alpha) ("sample") or by FairNAS'
//     permutations ("fair"); the weight plan runs it in selected mode through a live-step
//     mask, so the unselected candidates cost nothing;
//   - architecture step: `pnas.samples` paths drawn from softmax(alpha), each run forward
//     on one validation batch; reward R = accuracy (or -loss), times
//     min(1, bound / cost)^weight when a regularizer is set (each path runs forward only
//     on the weight plan, so batch-norm uses the batch's statistics); with the moving-average
//     baseline b, alpha's gradient is -(1/M) sum_i (R_i - b) d log p(path_i) / d alpha
//     (minimised by the "valid" optimizer), then b <- decay * b + (1 - decay) * mean R.
//     b starts at the first step's mean reward.
// The final architecture is the most probable path ("max").
#include <cmath>

#include "runtime/search/choice_modes.h"
#include "runtime/search/search_algorithm.h"
#include "runtime/search/search_run.h"
#include "support/errors.h"
#include "support/rng.h"

namespace nas {
namespace {

class ProxylessSearch final : public SearchAlgorithm {
 public:
  explicit ProxylessSearch(SearchContext ctx)
      : ctx_(ctx),
        path_mode_(parse_choice_mode(ctx.config.pnas.path)),
        groups_(ctx.weights.plan().arch) {}

  void arch_step(const Batch&, const Batch& valid, int64_t step, double,
                 StepTotals& totals) override {
    ParamStore& store = ctx_.store;
    const PnasConfig& cfg = ctx_.config.pnas;
    const std::vector<std::vector<double>> probs = arch_probabilities(store);
    const uint64_t seed = derive_seed(ctx_.config.base.seed, 0x5a3b1e);  // sampling stream
    std::vector<ChoiceSelection> paths;
    std::vector<double> rewards;
    // Each rank draws its own `samples` paths (rank r the draws r * samples ..) and rewards
    // them on its shard of the validation batch.
    const int64_t first_draw = ctx_.parallel.rank() * cfg.samples;
    // Summed over this rank's paths, then over the ranks: reward, paths, loss, hits, samples.
    double sums[5] = {0, static_cast<double>(cfg.samples), 0, 0, 0};
    for (int64_t i = first_draw; i < first_draw + cfg.samples; ++i) {
      ChoiceSelection path =
          select_path(ChoiceMode::Sample, groups_, probs, derive_seed(seed, i), step);
      // Forward only, on the training plan: batch-norm on batch statistics, as the path
      // trains. (Running statistics mix every path of the supernet, a poor model of any
      // one of them.)
      Executor& net = ctx_.weights;
      net.use_selection(path);
      net.set_live_mask(ctx_.hooks.live_mask(path));
      net.set_forward_only(true);
      net.set_dropout_seed(derive_seed(seed, 1000003 * static_cast<uint64_t>(step) + i));
      RunResult r = net.run(valid.images.data(), valid.labels.data(), ctx_.batch);
      net.set_forward_only(false);
      sums[2] += r.loss_sum;
      sums[3] += static_cast<double>(r.correct);
      sums[4] += static_cast<double>(r.samples);
      double reward = cfg.reward == "accuracy"
                          ? static_cast<double>(r.correct) / static_cast<double>(r.samples)
                          : -r.loss_sum / static_cast<double>(r.samples);
      reward *= regularizer_factor(path);
      rewards.push_back(reward);
      paths.push_back(std::move(path));
    }
    for (double r : rewards) sums[0] += r;
    if (ctx_.parallel.collectives) ctx_.parallel.collectives->sum(sums, 5, "PNAS reward reduction");
    totals.valid_loss += sums[2];
    totals.valid_correct += static_cast<int64_t>(sums[3]);
    totals.valid_seen += static_cast<int64_t>(sums[4]);
    const double mean = sums[0] / sums[1];  // over every rank's paths: the baseline's
    if (!has_baseline_) {
      baseline_ = mean;
      has_baseline_ = true;
    }
    store.zero_arch_grads();  // the weights' gradients are the weight step's (searcher.cpp)
    const double m = sums[1];
    // The REINFORCE gradient is formed on the host (a few floats per choice) and uploaded.
    std::vector<std::vector<float>> grads(groups_.size());
    for (size_t g = 0; g < groups_.size(); ++g) grads[g] = store.read(store.arch()[g].alpha_grad);
    for (size_t i = 0; i < paths.size(); ++i) {
      const double advantage = rewards[i] - baseline_;
      for (size_t g = 0; g < groups_.size(); ++g) {
        std::vector<double> dlogp = log_prob_gradient(probs[g], paths[i][g]);
        std::vector<float>& grad = grads[g];
        for (size_t c = 0; c < grad.size(); ++c)
          grad[c] -= static_cast<float>(advantage * dlogp[c] / m);
      }
    }
    if (ctx_.parallel.collectives) sum_over_ranks(grads);
    for (size_t g = 0; g < groups_.size(); ++g) store.write(store.arch()[g].alpha_grad, grads[g]);
    ctx_.arch_optimizer.step();
    baseline_ = cfg.baseline_decay * baseline_ + (1 - cfg.baseline_decay) * mean;
    totals.reward += mean;
    ++totals.rewards;
  }

  void prepare_weight_step(int64_t step, bool) override {
    // Each rank trains its own path (rank 0 the one a single process would draw); the
    // optimizer then updates the weights of every rank's path, alike on every rank.
    uint64_t seed = derive_seed(ctx_.config.base.seed, 0x3e1b5a);  // path stream
    if (ctx_.parallel.rank() > 0)
      seed = derive_seed(seed, static_cast<uint64_t>(ctx_.parallel.rank()));
    ChoiceSelection path =
        select_path(path_mode_, groups_, arch_probabilities(ctx_.store), seed, step);
    std::vector<char> mask = ctx_.hooks.live_mask(path);
    active_ = active_weight_slots(ctx_.weights.plan(), ctx_.store, mask);
    if (ctx_.parallel.collectives) {
      std::vector<double> any(active_.begin(), active_.end());
      ctx_.parallel.collectives->max(any.data(), any.size(), "PNAS active-weights union");
      for (size_t k = 0; k < any.size(); ++k) active_[k] = any[k] > 0 ? 1 : 0;
    }
    ctx_.weights.use_selection(path);
    ctx_.weights.set_live_mask(std::move(mask));
  }

  std::vector<char> active_slots() const override { return active_; }

  GenotypeInfo genotype(const std::vector<std::vector<double>>& probs) override {
    return ctx_.hooks.describe(select_path(ChoiceMode::Max, groups_, probs, 0, 0));
  }

  nlohmann::json save_state() const override {
    nlohmann::json j = nlohmann::json::object();
    if (has_baseline_) j["baseline"] = baseline_;
    return j;
  }
  void load_state(const nlohmann::json& state) override {
    if (state.is_object() && state.contains("baseline") && state["baseline"].is_number()) {
      baseline_ = state["baseline"].get<double>();
      has_baseline_ = true;
    }
  }

 private:
  // The REINFORCE gradients of every rank's paths, summed (each is already divided by the
  // count of all ranks' paths).
  void sum_over_ranks(std::vector<std::vector<float>>& grads) const {
    std::vector<float> flat;
    for (const auto& g : grads) flat.insert(flat.end(), g.begin(), g.end());
    ctx_.parallel.collectives->sum(flat.data(), flat.size(),
                                   "PNAS architecture-gradient allreduce");
    size_t k = 0;
    for (auto& g : grads)
      for (float& v : g) v = flat[k++];
  }

  double regularizer_factor(const ChoiceSelection& path) const {
    const RegularizerConfig& c = ctx_.config.regularizer;
    if (c.estimator == "none") return 1;
    const ArchCost cost = ctx_.hooks.cost(path);
    const double value = c.estimator == "params" ? cost.params
                         : c.estimator == "macs" ? cost.macs
                                                 : cost.latency_ms;
    if (value <= c.bound) return 1;
    return std::pow(c.bound / value, c.weight);
  }

  SearchContext ctx_;
  ChoiceMode path_mode_;
  std::vector<ArchSpec> groups_;
  std::vector<char> active_;  // the weight slots of this step's path
  double baseline_ = 0;
  bool has_baseline_ = false;
};

}  // namespace

std::unique_ptr<SearchAlgorithm> make_proxyless_search(SearchContext ctx) {
  if (!ctx.hooks.live_mask || !ctx.hooks.describe)
    internal_error(__FILE__, __LINE__, "PNAS needs the live_mask and describe hooks");
  return std::make_unique<ProxylessSearch>(ctx);
}

}  // namespace nas
