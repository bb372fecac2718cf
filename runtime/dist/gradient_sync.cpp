#include "runtime/dist/gradient_sync.h"

#include <algorithm>
#include <cstring>

#include "support/errors.h"

namespace nas {
namespace {

// The steps that add into parameter gradients (cpu_backend.cpp's `accumulate` calls): the
// weight gradients of convolutions and linear layers, and batch norm's scale and shift.
bool adds_to_param_grads(const Step& s) {
  return s.kind == StepKind::ConvGradWeight || s.kind == StepKind::LinearGradWeight ||
         s.kind == StepKind::BatchNormGrad;
}

}  // namespace

GradientSync::GradientSync(const ExecPlan& plan, Collectives& collectives, size_t bucket_bytes)
    : collectives_(collectives) {
  NAS_CHECK(plan.training, "gradient synchronisation of a plan without backward");
  const size_t n_params = plan.params.size();
  param_sizes_.resize(n_params);
  for (size_t i = 0; i < n_params; ++i)
    param_sizes_[i] = static_cast<size_t>(shape_elements(plan.params[i].shape));
  // The last step that adds to each trainable parameter's gradient; a parameter no step
  // adds to (unused by this plan) goes last, with the stragglers.
  std::vector<size_t> last(n_params, plan.steps.size());
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const Step& s = plan.steps[i];
    if (!adds_to_param_grads(s)) continue;
    for (int p : {s.weight, s.bias})
      if (p >= 0) last[static_cast<size_t>(p)] = i;
  }
  std::vector<int> order;
  for (size_t i = 0; i < n_params; ++i)
    if (plan.params[i].trainable) order.push_back(static_cast<int>(i));
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return last[static_cast<size_t>(a)] < last[static_cast<size_t>(b)];
  });
  const size_t bucket_floats = std::max<size_t>(1, bucket_bytes / sizeof(float));
  for (int p : order) {
    const size_t pi = static_cast<size_t>(p);
    if (buckets_.empty() || buckets_.back().packed.size() >= bucket_floats) buckets_.emplace_back();
    Bucket& b = buckets_.back();
    b.params.push_back(p);
    b.last_step = last[pi];
    b.packed.resize(b.packed.size() + param_sizes_[pi]);
    total_floats_ += param_sizes_[pi];
  }
}

void GradientSync::begin(const std::vector<float*>& grads) {
  NAS_CHECK(grads.size() == param_sizes_.size(), "gradient buffers of another plan");
  grads_ = grads;
  next_bucket_ = 0;
  for (Bucket& b : buckets_) b.started = false;
}

void GradientSync::start(Bucket& b) {
  size_t offset = 0;
  for (int p : b.params) {
    const size_t n = param_sizes_[static_cast<size_t>(p)];
    const float* g = grads_[static_cast<size_t>(p)];
    // A parameter without a gradient this run adds zeros: every rank packs the same layout.
    if (g != nullptr)
      std::memcpy(b.packed.data() + offset, g, n * sizeof(float));
    else
      std::fill_n(b.packed.data() + offset, n, 0.0f);
    offset += n;
  }
  b.pending = collectives_.start_sum(b.packed.data(), b.packed.size(), "gradient allreduce");
  b.started = true;
}

void GradientSync::after_step(size_t step) {
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].last_step <= step)
    start(buckets_[next_bucket_++]);
  collectives_.progress();
}

void GradientSync::finish() {
  for (; next_bucket_ < buckets_.size(); ++next_bucket_) start(buckets_[next_bucket_]);
  const float inverse = 1.0f / static_cast<float>(collectives_.size());
  for (Bucket& b : buckets_) {
    collectives_.wait(b.pending);
    size_t offset = 0;
    for (int p : b.params) {
      const size_t n = param_sizes_[static_cast<size_t>(p)];
      float* g = grads_[static_cast<size_t>(p)];
      if (g != nullptr)
        for (size_t k = 0; k < n; ++k) g[k] = b.packed[offset + k] * inverse;
      offset += n;
    }
  }
}

}  // namespace nas
