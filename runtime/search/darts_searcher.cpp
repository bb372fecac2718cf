// DARTS (Liu et al. 2019): the supernet runs in full mode (softmax(alpha)-weighted sums);
// each step updates alpha on a validation batch, then the weights on a training batch.
//
// First order: d L_val(w, alpha) / d alpha at the current weights.
// Second order (unrolled, the paper's eq. 7-8): with w' = w - xi * dL_train(w)/dw,
//   grad = dL_val(w', alpha)/dalpha - xi * (dL_train(w+, alpha) - dL_train(w-, alpha))/dalpha / (2
//   eps)
// where w+- = w +- eps * dL_val(w', alpha)/dw' and eps = 0.01 / |dL_val/dw'|: the
// Hessian-vector product by central finite differences. xi is the weights' learning rate
// of the step and the virtual step applies the "train" weight decay; unlike the reference
// code it leaves out the momentum term (the optimizer's momentum buffer is its own).
// The weights and running statistics are restored exactly after the virtual steps. All
// of this runs on the backend's memory; only alpha's gradients (a few floats per choice)
// are read back and written to combine them on the host.
#include <algorithm>
#include <cmath>

#include "runtime/search/expected_cost.h"
#include "runtime/search/search_algorithm.h"
#include "support/errors.h"
#include "support/rng.h"

namespace nas {
namespace {

class DartsSearch final : public SearchAlgorithm {
 public:
  DartsSearch(SearchContext ctx, bool second_order) : ctx_(ctx), second_order_(second_order) {}

  void arch_step(const Batch& train, const Batch& valid, int64_t step, double lr,
                 StepTotals& totals) override {
    if (second_order_) return unrolled_step(train, valid, step, lr, totals);
    ParamStore& store = ctx_.store;
    store.zero_grads();
    ctx_.alphas->set_dropout_seed(seed_for(step, 0));
    RunResult v = ctx_.alphas->run(valid.images.data(), valid.labels.data(), ctx_.batch);
    totals.valid_loss += v.loss_sum;
    totals.valid_correct += v.correct;
    totals.valid_seen += v.samples;
    regularize(v.loss_sum / static_cast<double>(v.samples), totals);
    ctx_.arch_optimizer.step();
  }

  void prepare_weight_step(int64_t, bool) override {}  // full mode throughout

  GenotypeInfo genotype(const std::vector<std::vector<double>>& probs) override {
    return ctx_.hooks.derive(probs);
  }

 private:
  // Dropout masks of the architecture step (the driver's weight step uses 2 * step + 1).
  uint64_t seed_for(int64_t step, uint64_t pass) const {
    const uint64_t s = derive_seed(ctx_.config.base.seed, 2 * static_cast<uint64_t>(step));
    return pass == 0 ? s : derive_seed(s, pass);
  }

  void unrolled_step(const Batch& train, const Batch& valid, int64_t step, double xi,
                     StepTotals& totals) {
    ParamStore& store = ctx_.store;
    Backend& backend = store.backend();
    Executor& weights = ctx_.weights;
    Executor& alphas = *ctx_.alphas;
    std::vector<ParamSlot> slots = store.weight_slots();
    if (saved_.empty()) {  // allocated once: every weight and running statistic, and dw'
      for (const StoredParam& p : store.params()) saved_.emplace_back(backend, p.value.size());
      for (const ParamSlot& s : slots) dw_.emplace_back(backend, s.size());
    }
    for (size_t i = 0; i < saved_.size(); ++i) backend.copy(saved_[i], store.params()[i].value);

    // The virtual step w' = w - xi * (dL_train/dw + wd * w): plain SGD on the backend.
    store.zero_grads();
    weights.set_dropout_seed(seed_for(step, 0));
    weights.run(train.images.data(), train.labels.data(), ctx_.batch);
    SgdUpdate virtual_step;
    virtual_step.lr = static_cast<float>(xi);
    for (ParamSlot& s : slots) {
      virtual_step.weight_decay =
          s.decay ? static_cast<float>(ctx_.config.base.optimizer.weight_decay) : 0.0f;
      backend.sgd_update(virtual_step, *s.value, *s.grad, nullptr);
    }

    // dL_val(w', alpha) for alpha and for the weights.
    store.zero_grads();
    alphas.set_gradients(true, true);
    alphas.set_dropout_seed(seed_for(step, 1));
    RunResult v = alphas.run(valid.images.data(), valid.labels.data(), ctx_.batch);
    totals.valid_loss += v.loss_sum;
    totals.valid_correct += v.correct;
    totals.valid_seen += v.samples;
    std::vector<std::vector<float>> dalpha;
    for (const StoredArch& a : store.arch()) dalpha.push_back(store.read(a.alpha_grad));
    std::vector<const DeviceBuffer*> grads;
    for (size_t k = 0; k < slots.size(); ++k) {
      backend.copy(dw_[k], *slots[k].grad);
      grads.push_back(&dw_[k]);
    }
    const double norm = std::sqrt(backend.sum_squares(grads));

    // The Hessian-vector product d^2 L_train / (dalpha dw) . dw' at w +- eps dw'.
    std::vector<std::vector<double>> hvp(store.arch().size());
    for (size_t g = 0; g < hvp.size(); ++g) hvp[g].assign(store.arch()[g].alpha.size(), 0.0);
    if (norm > 0 && xi > 0) {
      const double eps = 0.01 / norm;
      alphas.set_gradients(false, true);
      for (int sign : {1, -1}) {
        size_t k = 0;
        for (size_t i = 0; i < store.params().size(); ++i)
          if (store.params()[i].spec.trainable) {
            backend.copy(store.params()[i].value, saved_[i]);
            backend.axpy(store.params()[i].value, static_cast<float>(sign * eps), dw_[k++]);
          }
        store.zero_grads();
        alphas.set_dropout_seed(seed_for(step, 0));  // the same masks as the virtual step
        alphas.run(train.images.data(), train.labels.data(), ctx_.batch);
        for (size_t g = 0; g < hvp.size(); ++g) {
          const std::vector<float> grad = store.read(store.arch()[g].alpha_grad);
          for (size_t c = 0; c < hvp[g].size(); ++c) hvp[g][c] += sign * grad[c] / (2 * eps);
        }
      }
    }

    for (size_t i = 0; i < saved_.size(); ++i) backend.copy(store.params()[i].value, saved_[i]);
    store.zero_grads();
    for (size_t g = 0; g < hvp.size(); ++g) {
      std::vector<float> grad(hvp[g].size());
      for (size_t c = 0; c < hvp[g].size(); ++c)
        grad[c] = static_cast<float>(dalpha[g][c] - xi * hvp[g][c]);
      store.write(store.arch()[g].alpha_grad, grad);
    }
    regularize(v.loss_sum / static_cast<double>(v.samples), totals);
    ctx_.arch_optimizer.step();
  }

  // The hardware term on top of the validation loss's alpha gradient (in the store):
  //   linear:  L + weight * E[cost] / bound;
  //   mul#log: L * (log E[cost] / log bound)^weight (ProxylessNAS' form).
  void regularize(double loss, StepTotals& totals) {
    const RegularizerConfig& r = ctx_.config.regularizer;
    if (r.estimator == "none") return;
    std::vector<std::vector<double>> dcost;
    const std::vector<std::vector<double>> probs = arch_probabilities(ctx_.store);
    const double e = expected_cost(ctx_.cost_terms, ctx_.weights.plan().arch, probs, &dcost);
    totals.expected_cost += e;
    ++totals.expected_costs;
    double scale_loss_grad = 1, scale_cost_grad = r.weight / r.bound;
    if (r.form == "mul#log") {
      const double ratio = std::log(std::max(e, 1e-30)) / std::log(r.bound);
      scale_loss_grad = std::pow(ratio, r.weight);
      scale_cost_grad = loss * r.weight * std::pow(ratio, r.weight - 1) /
                        (std::max(e, 1e-30) * std::log(r.bound));
    }
    for (size_t g = 0; g < dcost.size(); ++g) {
      DeviceBuffer& stored = ctx_.store.arch()[g].alpha_grad;
      std::vector<float> grad = ctx_.store.read(stored);
      for (size_t c = 0; c < grad.size(); ++c)
        grad[c] = static_cast<float>(scale_loss_grad * grad[c] + scale_cost_grad * dcost[g][c]);
      ctx_.store.write(stored, grad);
    }
  }

  SearchContext ctx_;
  bool second_order_;
  // darts2's copies in backend memory: the weights before the virtual step, and dw'.
  std::vector<DeviceBuffer> saved_, dw_;
};

}  // namespace

std::unique_ptr<SearchAlgorithm> make_darts_search(SearchContext ctx, bool second_order) {
  NAS_CHECK(ctx.alphas != nullptr, "DARTS needs an architecture plan");
  return std::make_unique<DartsSearch>(ctx, second_order);
}

}  // namespace nas
