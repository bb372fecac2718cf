#include "runtime/jit/depthwise_run.h"

#include "runtime/cpu/plain_step_params.h"
#include "support/errors.h"

namespace nas {

DepthwisePass depthwise_pass(const Step& s) {
  switch (s.kind) {
    case StepKind::Conv:
      return DepthwisePass::Forward;
    case StepKind::ConvGradInput:
      return DepthwisePass::Data;
    case StepKind::ConvGradWeight:
      return DepthwisePass::Weights;
    default:
      internal_error(__FILE__, __LINE__, "step `" + s.name + "` is not a convolution step");
  }
}

DepthwiseRun::DepthwiseRun(const Step& s, RegionBody body)
    : body_(body), pass_(depthwise_pass(s)), weight_(s.weight), bias_(s.bias) {
  const Nchw in = nchw(s.fwd_in_shape);
  elements_ = in.n * in.c * in.h * in.w;
  items_ = pass_ == DepthwisePass::Weights ? in.c : in.n * in.c;
  NAS_CHECK(weight_ >= 0, "step `" + s.name + "`: a convolution without its weight");
  switch (pass_) {
    case DepthwisePass::Forward:  // (x) -> y
      x_ = s.inputs.at(0);
      y_ = s.node;
      break;
    case DepthwisePass::Data:  // (dy) -> dx
      y_ = s.inputs.at(0);
      x_ = s.node;
      break;
    case DepthwisePass::Weights:  // (dy, x) -> dw, db
      y_ = s.inputs.at(0);
      x_ = s.inputs.at(1);
      break;
  }
}

bool DepthwiseRun::run(RunState& st) {
  const bool weights = pass_ == DepthwisePass::Weights;
  const std::vector<float*>& params = weights ? st.grad : st.param;
  void* slots[kDwSlots] = {};
  slots[kDwX] = st.values[x_];
  slots[kDwY] = st.values[y_];
  slots[kDwW] = params[weight_];
  slots[kDwB] = bias_ >= 0 && pass_ != DepthwisePass::Data ? params[bias_] : nullptr;
  nasc_jit_parallel_channels(body_, slots, items_, elements_);
  return true;
}

}  // namespace nas
