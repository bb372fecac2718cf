#include "runtime/jit/batchnorm_region.h"

#include "runtime/cpu/plain_step_params.h"
#include "support/errors.h"

namespace nas {

BatchNormRegionRun::BatchNormRegionRun(const ExecPlan& plan, const Step& s, RegionBody body,
                                       float* stats)
    : body_(body), stats_(stats), forward_(s.kind == StepKind::BatchNorm) {
  const BatchNormParams p = batchnorm_params(s);
  channels_ = p.c;
  elements_ = p.size();
  auto input = [&](const RegionOp& op, size_t operand) {
    const int k = op.operands.at(operand);
    NAS_CHECK(k >= 0 && k < static_cast<int>(s.inputs.size()),
              "step `" + s.name + "`: a batch norm region operand out of range");
    return s.inputs[k];
  };
  scale_ = s.weight;
  shift_ = s.bias;
  out_ = s.node;
  running_mean_ = s.running_mean;
  running_var_ = s.running_var;
  if (s.region.empty()) {  // a batch norm step of its own: (x), or (dy, x or y)
    if (forward_) {
      x_ = s.inputs.at(0);
    } else {
      g_ = s.inputs.at(0);
      saved_ = s.inputs.at(1);
    }
    return;
  }
  const RegionOp& first = s.region[0];
  if (forward_) {
    x_ = input(first, 0);
    if (plan.values.at(first.node).storage != ValueStorage::None) y_ = first.node;
    return;
  }
  g_ = input(first, 0);
  saved_ = input(s.region.at(1), 1);
  if (first.kind == StepKind::ActivationGrad) {
    act_x_ = input(first, 1);
  } else {
    share_group_ = first.group;
    share_index_ = first.index;
  }
  if (s.region.size() > 2) {
    product_group_ = s.region[2].group;
    product_index_ = s.region[2].index;
    products_.assign(static_cast<size_t>(channels_), 0.0);
  }
}

bool BatchNormRegionRun::run(size_t index, RunState& st, PreparedPlan& library) {
  if (st.sync_batchnorm && st.collectives) return library.run(index, st);
  if (forward_) return run_forward(st);
  float weight = 1.0f;
  if (share_group_ >= 0) {
    weight = st.choice_weights.at(share_group_).at(share_index_);
    if (weight == 0.0f) return library.run(index, st);
  }
  return run_backward(st, weight);
}

bool BatchNormRegionRun::run_forward(RunState& st) {
  auto param = [&](int k) -> void* { return k >= 0 ? st.param[k] : nullptr; };
  void* slots[kFwdSlots] = {};
  slots[kFwdX] = st.values[x_];
  slots[kFwdY] = y_ >= 0 ? st.values[y_] : nullptr;
  slots[kFwdOut] = st.values[out_];
  slots[kFwdScale] = param(scale_);
  slots[kFwdShift] = param(shift_);
  slots[kFwdMean] = stats_;
  slots[kFwdVar] = stats_ + channels_;
  slots[kFwdRunningMean] = param(running_mean_);
  slots[kFwdRunningVar] = param(running_var_);
  nasc_jit_parallel_channels(body_, slots, channels_, elements_);
  if (y_ >= 0) st.computed[y_] = 1;  // read by the backward pass
  return true;
}

bool BatchNormRegionRun::run_backward(RunState& st, float weight) {
  auto param = [&](int k) -> void* { return k >= 0 ? st.param[k] : nullptr; };
  auto grad = [&](int k) -> void* { return k >= 0 ? st.grad[k] : nullptr; };
  const bool take_product = product_group_ >= 0 && st.arch_grads;
  void* slots[kBwdSlots] = {};
  slots[kBwdG] = st.values[g_];
  slots[kBwdActivationInput] = act_x_ >= 0 ? st.values[act_x_] : nullptr;
  slots[kBwdSaved] = st.values[saved_];
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
    st.choice_weight_grads[product_group_][product_index_] += dw;
  }
  return true;
}

}  // namespace nas
