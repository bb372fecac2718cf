#include "runtime/jit/batchnorm_region.h"

#include "runtime/cpu/plain_step_params.h"
#include "support/errors.h"

namespace nas {

BatchNormRegionRun::BatchNormRegionRun(const ExecPlan& plan, const Step& s, RegionBody body,
                                       float* stats)
    : body_(body), stats_(stats), program_(BatchNormProgram::of(plan, s)) {
  const BatchNormParams p = batchnorm_params(s);
  channels_ = p.c;
  elements_ = p.size();
  scale_ = s.weight;
  shift_ = s.bias;
  out_ = s.node;
  running_mean_ = s.running_mean;
  running_var_ = s.running_var;
  if (program_.product_group >= 0) products_.assign(static_cast<size_t>(channels_), 0.0);
}

bool BatchNormRegionRun::run(size_t index, RunState& st, PreparedPlan& library) {
  if (st.sync_batchnorm && st.collectives) return library.run(index, st);
  if (program_.forward) return run_forward(st);
  float weight = 1.0f;
  if (program_.share_group >= 0) {
    weight = st.choice_weights.at(program_.share_group).at(program_.share_index);
    if (weight == 0.0f) return library.run(index, st);
  }
  return run_backward(st, weight);
}

bool BatchNormRegionRun::run_forward(RunState& st) {
  auto param = [&](int k) -> void* { return k >= 0 ? st.param[k] : nullptr; };
  void* slots[kFwdSlots] = {};
  slots[kFwdX] = st.values[program_.x];
  slots[kFwdY] = program_.y >= 0 ? st.values[program_.y] : nullptr;
  slots[kFwdOut] = st.values[out_];
  slots[kFwdScale] = param(scale_);
  slots[kFwdShift] = param(shift_);
  slots[kFwdMean] = stats_;
  slots[kFwdVar] = stats_ + channels_;
  slots[kFwdRunningMean] = param(running_mean_);
  slots[kFwdRunningVar] = param(running_var_);
  nasc_jit_parallel_channels(body_, slots, channels_, elements_);
  if (program_.y >= 0) st.computed[program_.y] = 1;  // read by the backward pass
  return true;
}

bool BatchNormRegionRun::run_backward(RunState& st, float weight) {
  auto param = [&](int k) -> void* { return k >= 0 ? st.param[k] : nullptr; };
  auto grad = [&](int k) -> void* { return k >= 0 ? st.grad[k] : nullptr; };
  const bool take_product = program_.product_group >= 0 && st.arch_grads;
  void* slots[kBwdSlots] = {};
  slots[kBwdG] = st.values[program_.g];
  const int act_x = program_.activation_input;
  slots[kBwdActivationInput] = act_x >= 0 ? st.values[act_x] : nullptr;
  slots[kBwdSaved] = st.values[program_.saved];
  slots[kBwdDx] = st.values[out_];
  slots[kBwdScale] = param(scale_);
  slots[kBwdMean] = stats_;
  slots[kBwdVar] = stats_ + channels_;
  slots[kBwdGradScale] = grad(scale_);
  slots[kBwdGradShift] = grad(shift_);
  slots[kBwdWeight] = &weight;
  slots[kBwdProducts] = take_product ? products_.data() : nullptr;
  nasc_jit_parallel_channels(body_, slots, channels_, elements_);
  if (take_product) {
    double dw = 0;
    for (double channel : products_) dw += channel;  // in order: reproducible
    st.choice_weight_grads[program_.product_group][program_.product_index] += dw;
  }
  return true;
}

}  // namespace nas
