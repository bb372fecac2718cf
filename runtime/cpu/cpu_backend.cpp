// The CPU backend: each step of a plan becomes a closure over its oneDNN kernel (from the
// per-signature caches) or plain kernel, built once in prepare() (CpuPlan); memory,
// copies and optimizer updates are host loops (CpuBackend). Parameter gradients are
// accumulated (added) into the store's buffers: kernels write into a scratch buffer that
// is then added, so several runs (gradient accumulation) and shared parameters add up.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "runtime/cpu/batchnorm.h"
#include "runtime/cpu/conv2d.h"
#include "runtime/cpu/eltwise.h"
#include "runtime/cpu/fused_region.h"
#include "runtime/cpu/linear.h"
#include "runtime/cpu/plain_kernels.h"
#include "runtime/cpu/plain_step_params.h"
#include "runtime/cpu/pool2d.h"
#include "runtime/cpu/sync_batchnorm.h"
#include "runtime/exec/backend.h"
#include "runtime/exec/region_programs.h"
#include "support/elementwise_ops.h"
#include "support/rng.h"

namespace nas {
namespace {

using StepFn = std::function<bool(RunState&)>;

LinearParams linear_params(const Step& s) {
  LinearParams p;
  p.n = s.fwd_in_shape[0];
  p.in = shape_elements(s.fwd_in_shape) / p.n;
  p.out = s.int_attr("out");
  p.bias = s.int_attr("bias") != 0;
  return p;
}

EltwiseParams eltwise_params(const Step& s) {
  std::optional<EltwiseKind> kind = eltwise_kind_of(s.fwd_op);
  NAS_CHECK(kind.has_value(), "step `" + s.name + "`: no oneDNN kernel for " + s.fwd_op);
  EltwiseParams p;
  p.kind = *kind;
  p.size = shape_elements(s.fwd_out_shape);
  p.slope = s.float_attr_or("slope", p.slope);
  return p;
}

// An activation oneDNN has no algorithm for runs its scalar formula from the elementwise
// table, so that a new activation needs no CPU code.
std::function<bool(RunState&)> generic_activation(const Step& s) {
  const ElementwiseFn* fn = find_elementwise(s.fwd_op);
  NAS_CHECK(fn != nullptr, "step `" + s.name + "`: no element-wise formula for " + s.fwd_op);
  const double a = fn->param != nullptr ? s.float_attr(fn->param) : 0.0;
  const int64_t n = shape_elements(s.fwd_out_shape);
  if (s.kind == StepKind::Activation)
    return [fn, a, n, x = s.inputs[0], out = s.node](RunState& st) {
      plain::elementwise_forward(n, fn->value, a, st.values[x], st.values[out]);
      return true;
    };
  return [fn, a, n, dy = s.inputs[0], x = s.inputs[1], out = s.node](RunState& st) {
    plain::elementwise_backward(n, fn->derivative, a, st.values[x], st.values[dy], st.values[out]);
    return true;
  };
}

// A conv epilogue's weights as its kernel reads them, and the parameter generations they
// were made from: conv weight, conv bias, batch-norm scale, shift, running mean and
// running variance (-1: absent).
struct FoldedConv {
  std::vector<float> prepared, scale, bias;
  std::array<int, 6> sources{};
  std::array<uint64_t, 6> made_from{};
  bool made = false, batchnorm = false;
  int64_t channels = 0;
  double eps = 0;

  bool stale(const RunState& st) const {
    if (!made) return true;
    for (size_t i = 0; i < sources.size(); ++i)
      if (sources[i] >= 0 && st.param_generation[sources[i]] != made_from[i]) return true;
    return false;
  }

  // scale[c] = gamma / sqrt(var + eps); bias[c] = (conv bias - mean) * scale + beta: the
  // batch norm of the convolution's output as a convolution with scaled weights.
  void prepare(const Conv2dEpilogueKernel& k, const RunState& st) {
    auto param = [&](int slot) { return sources[slot] >= 0 ? st.param[sources[slot]] : nullptr; };
    const float *conv_bias = param(1), *gamma = param(2), *beta = param(3);
    bias.assign(channels, 0.0f);
    if (batchnorm) {
      const float *mean = param(4), *var = param(5);
      scale.resize(channels);
      for (int64_t c = 0; c < channels; ++c) {
        const double inv = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
        const double sc = gamma ? gamma[c] * inv : inv;
        scale[c] = static_cast<float>(sc);
        bias[c] = static_cast<float>(((conv_bias ? conv_bias[c] : 0.0) - mean[c]) * sc +
                                     (beta ? beta[c] : 0.0));
      }
    } else if (conv_bias) {
      std::copy(conv_bias, conv_bias + channels, bias.begin());
    }
    k.prepare_weights(param(0), batchnorm ? scale.data() : nullptr, prepared.data());
    for (size_t i = 0; i < sources.size(); ++i)
      made_from[i] = sources[i] >= 0 ? st.param_generation[sources[i]] : 0;
    made = true;
  }
};

// A plan prepared on the CPU: one closure per step.
class CpuPlan : public PreparedPlan {
 public:
  explicit CpuPlan(const ExecPlan& plan) {
    plan_ = &plan;
    states_.assign(plan.num_states, {});
    size_t scratch = 0;
    for (const ParamSpec& p : plan.params)
      scratch = std::max<size_t>(scratch, shape_elements(p.shape));
    scratch_.assign(scratch, 0.0f);
    scratch2_.assign(scratch, 0.0f);
    for (const Step& s : plan.steps) fns_.push_back(build(s));
  }

  bool run(size_t index, RunState& st) override { return fns_[index](st); }
  // The kernels read the host vectors directly: on the CPU they are device memory.
  void upload_choice_weights(const RunState&) override {}
  void download_choice_weight_grads(RunState&) override {}
  void* state_address(int index) override {
    if (index < 0 || static_cast<size_t>(index) >= states_.size() || states_[index].empty())
      return nullptr;
    return states_[index].data();
  }

 private:
  // Adds `n` floats of `src` into `dst` (the accumulate half of every parameter gradient).
  static void accumulate(float* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
  }

  std::vector<uint8_t>& state(int index, size_t bytes) {
    NAS_CHECK(index >= 0 && static_cast<size_t>(index) < states_.size(),
              "forward state " + std::to_string(index) + " was not planned");
    std::vector<uint8_t>& b = states_[index];
    if (b.size() < bytes) b.assign(bytes, 0);
    return b;
  }

  // One closure per step, built by the step's family.
  StepFn build(const Step& s) {
    switch (s.kind) {
      case StepKind::Input:
      case StepKind::View:
      case StepKind::Copy:
      case StepKind::Zero:
      case StepKind::Crop:
      case StepKind::CropGrad:
      case StepKind::ChannelSlice:
      case StepKind::ChannelSliceGrad:
      case StepKind::ChannelShuffle:
        return build_data_movement(s);
      case StepKind::Conv:
      case StepKind::ConvGradInput:
      case StepKind::ConvGradWeight:
        return build_conv(s);
      case StepKind::Linear:
      case StepKind::LinearGradInput:
      case StepKind::LinearGradWeight:
        return build_linear(s);
      case StepKind::BatchNorm:
      case StepKind::BatchNormGrad:
        return build_batchnorm(s);
      case StepKind::Activation:
      case StepKind::ActivationGrad:
        return build_activation(s);
      case StepKind::Pool:
      case StepKind::PoolGrad:
      case StepKind::GlobalAvgPool:
      case StepKind::GlobalAvgPoolGrad:
        return build_pooling(s);
      case StepKind::Add:
      case StepKind::Concat:
      case StepKind::ConcatGrad:
      case StepKind::Scale:
        return build_combine(s);
      case StepKind::Dropout:
      case StepKind::DropoutGrad:
        return build_dropout(s);
      case StepKind::DropPath:
      case StepKind::DropPathGrad:
        return build_drop_path(s);
      case StepKind::Choice:
      case StepKind::ChoiceGradInput:
      case StepKind::ChoiceGradArch:
        return build_choice(s);
      case StepKind::CrossEntropy:
      case StepKind::CrossEntropyGrad:
        return build_loss(s);
      case StepKind::AuxLoss:
      case StepKind::AuxLossGrad:
        return build_aux_loss(s);
      case StepKind::ElementwiseRegion:
        return [k = std::make_shared<FusedRegionKernel>(s)](RunState& st) { return k->run(st); };
      case StepKind::Fused:  // computed by its region's step
        return [](RunState&) { return false; };
      case StepKind::Recompute:  // lowered to its forward node's kind
        break;
    }
    unsupported(s);
  }

  [[noreturn]] static void unsupported(const Step& s) {
    internal_error(__FILE__, __LINE__, "cpu backend: unsupported step " + s.op);
  }

  // Steps that move or fill memory: inputs and views (computed when what they view is),
  // copies, zeros and crops.
  StepFn build_data_movement(const Step& s) {
    const int out = s.node;
    switch (s.kind) {
      case StepKind::Input:
      case StepKind::View:
        return [in = s.inputs.empty() ? -1 : s.inputs[0]](RunState& st) {
          return in < 0 || st.computed[in] != 0;
        };
      case StepKind::Copy:
        return [in = s.inputs[0], out, n = shape_elements(s.output_shape)](RunState& st) {
          std::memcpy(st.values[out], st.values[in], sizeof(float) * n);
          return true;
        };
      case StepKind::Zero:
        return [n = shape_elements(s.output_shape), out](RunState& st) {
          plain::zero_fill(n, st.values[out]);
          return true;
        };
      case StepKind::Crop:
        return [p = crop_params(s), x = s.inputs[0], out](RunState& st) {
          plain::crop_forward(p, st.values[x], st.values[out]);
          return true;
        };
      case StepKind::CropGrad:
        return [p = crop_params(s), dy = s.inputs[0], out](RunState& st) {
          plain::crop_backward(p, st.values[dy], st.values[out]);
          return true;
        };
      case StepKind::ChannelSlice:
        return [p = channel_slice_params(s), x = s.inputs[0], out](RunState& st) {
          plain::channel_slice_forward(p, st.values[x], st.values[out]);
          return true;
        };
      case StepKind::ChannelSliceGrad:
        return [p = channel_slice_params(s), dy = s.inputs[0], out](RunState& st) {
          plain::channel_slice_backward(p, st.values[dy], st.values[out]);
          return true;
        };
      case StepKind::ChannelShuffle:
        return [p = channel_shuffle_params(s), x = s.inputs[0], out](RunState& st) {
          plain::channel_shuffle_forward(p, st.values[x], st.values[out]);
          return true;
        };
      default:
        unsupported(s);
    }
  }

  // A conv epilogue (exec_plan.h). Its weights are prepared (the batch norm's per-channel
  // scale folded in, reordered into the primitive's layout) and its bias folded once, and
  // again only when a parameter they come from was written since (DeviceBuffer::generation).
  StepFn build_conv_epilogue(const Step& s) {
    ConvEpilogue epilogue;
    const RegionOp* bn = nullptr;
    for (size_t i = 1; i < s.region.size(); ++i) {
      const RegionOp& op = s.region[i];
      if (op.kind == StepKind::BatchNorm) {
        NAS_CHECK(i == 1, "step `" + s.name + "`: a batch norm after the convolution's epilogue");
        epilogue.batchnorm = true;
        bn = &op;
      } else if (op.kind == StepKind::Activation) {
        epilogue.ops.push_back({ConvEpilogueOp::Kind::Activation, op.op, op.param});
      } else {
        NAS_CHECK(op.kind == StepKind::Add && s.inputs.size() == 2,
                  "step `" + s.name + "`: a conv epilogue operation of another kind");
        epilogue.ops.push_back({ConvEpilogueOp::Kind::Add, "", 0.0});
      }
    }
    auto nhwc = [&](int value) { return plan_->values[value].layout == Layout::NHWC; };
    epilogue.src_nhwc = nhwc(s.inputs[0]);
    epilogue.dst_nhwc = nhwc(s.node);
    epilogue.other_nhwc = s.inputs.size() == 2 && nhwc(s.inputs[1]);
    auto k = conv2d_epilogue_kernel(conv_params(s), epilogue);
    auto folded = std::make_shared<FoldedConv>();
    folded->prepared.resize(k->prepared_weights_size());
    folded->channels = k->params().c_out;
    folded->sources = {s.weight, s.bias, -1, -1, -1, -1};
    if (bn) {
      folded->sources[2] = bn->weight;
      folded->sources[3] = bn->bias;
      folded->sources[4] = bn->running_mean;
      folded->sources[5] = bn->running_var;
      folded->eps = bn->param;
      folded->batchnorm = true;
    }
    const int other = s.inputs.size() == 2 ? s.inputs[1] : -1;
    return [k, folded, x = s.inputs[0], other, out = s.node](RunState& st) {
      if (folded->stale(st)) folded->prepare(*k, st);
      k->forward(st.values[x], folded->prepared.data(),
                 k->has_bias() ? folded->bias.data() : nullptr,
                 other >= 0 ? st.values[other] : nullptr, st.values[out]);
      return true;
    };
  }

  StepFn build_conv(const Step& s) {
    if (s.kind == StepKind::Conv && !s.region.empty()) return build_conv_epilogue(s);
    const int out = s.node;
    auto k = conv2d_kernel(conv_params(s));
    if (s.kind == StepKind::Conv)
      return [k, x = s.inputs[0], w = s.weight, b = s.bias, out](RunState& st) {
        k->forward(st.values[x], st.param[w], b >= 0 ? st.param[b] : nullptr, st.values[out]);
        return true;
      };
    if (s.kind == StepKind::ConvGradInput)
      return [k, dy = s.inputs[0], w = s.weight, out](RunState& st) {
        k->backward_data(st.values[dy], st.param[w], st.values[out]);
        return true;
      };
    return [this, k, dy = s.inputs[0], x = s.inputs[1], w = s.weight, b = s.bias](RunState& st) {
      const Conv2dParams& p = k->params();
      k->backward_weights(st.values[x], st.values[dy], scratch_.data(),
                          b >= 0 ? scratch2_.data() : nullptr);
      accumulate(st.grad[w], scratch_.data(), p.weight_size());
      if (b >= 0) accumulate(st.grad[b], scratch2_.data(), p.bias_size());
      return true;
    };
  }

  StepFn build_linear(const Step& s) {
    const int out = s.node;
    auto k = linear_kernel(linear_params(s));
    if (s.kind == StepKind::Linear)
      return [k, x = s.inputs[0], w = s.weight, b = s.bias, out](RunState& st) {
        k->forward(st.values[x], st.param[w], b >= 0 ? st.param[b] : nullptr, st.values[out]);
        return true;
      };
    if (s.kind == StepKind::LinearGradInput)
      return [k, dy = s.inputs[0], w = s.weight, out](RunState& st) {
        k->backward_data(st.values[dy], st.param[w], st.values[out]);
        return true;
      };
    return [this, k, dy = s.inputs[0], x = s.inputs[1], w = s.weight, b = s.bias](RunState& st) {
      const LinearParams& p = k->params();
      k->backward_weights(st.values[x], st.values[dy], scratch_.data(),
                          b >= 0 ? scratch2_.data() : nullptr);
      accumulate(st.grad[w], scratch_.data(), p.weight_size());
      if (b >= 0) accumulate(st.grad[b], scratch2_.data(), p.bias_size());
      return true;
    };
  }

  // Where a data-parallel run synchronises batch norm, the collectives its training steps
  // take the global batch's statistics through; null: the rank's own batch (oneDNN).
  static Collectives* batchnorm_sync(const RunState& st) {
    return st.sync_batchnorm ? st.collectives : nullptr;
  }

  // Inference reads the running statistics; training saves the batch statistics in the
  // step's state for the backward step. Whether training synchronises is read at run time,
  // so one prepared plan serves runs with and without it.
  StepFn build_batchnorm(const Step& s) {
    const int out = s.node;
    auto k = batchnorm_kernel(batchnorm_params(s));
    if (s.kind == StepKind::BatchNorm && !plan_->training)
      return [k, x = s.inputs[0], sc = s.weight, sh = s.bias, rm = s.running_mean,
              rv = s.running_var, out](RunState& st) {
        k->forward_inference(st.values[x], sc >= 0 ? st.param[sc] : nullptr,
                             sh >= 0 ? st.param[sh] : nullptr, st.param[rm], st.param[rv],
                             st.values[out]);
        return true;
      };
    int64_t c = k->params().c;
    float* stats = reinterpret_cast<float*>(state(s.state, 2 * c * sizeof(float)).data());
    if (!s.region.empty()) return build_batchnorm_region(s, k, stats);
    if (s.kind == StepKind::BatchNorm)
      return [k, stats, c, x = s.inputs[0], sc = s.weight, sh = s.bias, rm = s.running_mean,
              rv = s.running_var, out](RunState& st) {
        const float* scale = sc >= 0 ? st.param[sc] : nullptr;
        const float* shift = sh >= 0 ? st.param[sh] : nullptr;
        if (Collectives* sync = batchnorm_sync(st))
          sync_batchnorm_forward_training(k->params(), *sync, st.values[x], scale, shift,
                                          st.values[out], stats, stats + c, st.param[rm],
                                          st.param[rv]);
        else
          k->forward_training(st.values[x], scale, shift, st.values[out], stats, stats + c,
                              st.param[rm], st.param[rv]);
        return true;
      };
    if (s.int_attr_or("from_output", 0))
      return [k, stats, c, dy = s.inputs[0], y = s.inputs[1], out](RunState& st) {
        if (Collectives* sync = batchnorm_sync(st))
          sync_batchnorm_backward_from_output(k->params(), *sync, st.values[y], st.values[dy],
                                              stats + c, st.values[out]);
        else
          k->backward_from_output(st.values[y], st.values[dy], stats + c, st.values[out]);
        return true;
      };
    return [this, k, stats, c, dy = s.inputs[0], x = s.inputs[1], sc = s.weight, sh = s.bias,
            out](RunState& st) {
      bool affine = sc >= 0;
      const float* scale = affine ? st.param[sc] : nullptr;
      float* dscale = affine ? scratch_.data() : nullptr;
      float* dshift = affine ? scratch2_.data() : nullptr;
      if (Collectives* sync = batchnorm_sync(st))
        sync_batchnorm_backward(k->params(), *sync, st.values[x], st.values[dy], stats, stats + c,
                                scale, st.values[out], dscale, dshift);
      else
        k->backward(st.values[x], st.values[dy], stats, stats + c, scale, st.values[out], dscale,
                    dshift);
      if (affine) {
        accumulate(st.grad[sc], scratch_.data(), c);
        accumulate(st.grad[sh], scratch2_.data(), c);
      }
      return true;
    };
  }

  // A fused batch norm region (exec_plan.h, compiler/passes/fusion.h). BatchNorm: the
  // training forward whose apply pass also runs the activations after it, writing the
  // region's output and, when stored, the batch norm's. BatchNormGrad: the backward whose
  // incoming gradient (a ReLU's or a mixed op candidate's share) it reads inline
  // (BatchNormPrologue). Synchronised batch norm (data parallelism) runs the same
  // operations unfused, through full-size scratch.
  StepFn build_batchnorm_region(const Step& s, std::shared_ptr<const BatchNormKernel> k,
                                float* stats) {
    const int64_t c = k->params().c, inner = k->params().h * k->params().w;
    const int64_t rows = k->params().n * c;
    const BatchNormProgram program = BatchNormProgram::of(*plan_, s);
    if (program.forward) {
      BatchNormEpilogue epilogue;
      for (const auto& [op, param] : program.epilogue) epilogue.activations.emplace_back(op, param);
      // The batch norm's own output when the backward pass reads it, else nothing (the
      // synchronised path then writes it to scratch).
      const int y = program.y;
      const bool y_stored = y >= 0;
      auto y_scratch = std::make_shared<std::vector<float>>();
      return [k, stats, c, inner, rows, epilogue, y_stored, y_scratch, x = program.x, y,
              sc = s.weight, sh = s.bias, rm = s.running_mean, rv = s.running_var,
              out = s.node](RunState& st) mutable {
        const float* scale = sc >= 0 ? st.param[sc] : nullptr;
        const float* shift = sh >= 0 ? st.param[sh] : nullptr;
        epilogue.out = st.values[out];
        float* y_out = y_stored ? st.values[y] : nullptr;
        if (Collectives* sync = batchnorm_sync(st)) {
          if (!y_stored) {
            y_scratch->resize(static_cast<size_t>(rows * inner));
            y_out = y_scratch->data();
          }
          sync_batchnorm_forward_training(k->params(), *sync, st.values[x], scale, shift, y_out,
                                          stats, stats + c, st.param[rm], st.param[rv]);
          epilogue.apply(y_out, 0, rows * inner);
        } else {
          k->forward_training(st.values[x], scale, shift, y_out, stats, stats + c, st.param[rm],
                              st.param[rv], &epilogue);
        }
        if (y_stored) st.computed[y] = 1;  // read by the backward pass
        return true;
      };
    }
    const int g = program.g, act_x = program.activation_input, second = program.saved;
    BatchNormPrologue prologue;
    if (!program.prologue_op.empty())
      prologue.activation.emplace(program.prologue_op, program.prologue_param);
    // Per run: the activation's input, the candidate's weight (zero: the candidate did not
    // run, so neither does its gradient).
    auto prepare = [act_x, group = program.share_group, index = program.share_index](
                       BatchNormPrologue& p, const RunState& st) {
      if (act_x >= 0) p.x = st.values[act_x];
      if (group >= 0) p.scale = st.choice_weights[group][index];
      return p.scale != 0.0f;
    };
    // dy materialised, for the synchronised path only (allocated on first use).
    auto full_dy = std::make_shared<std::vector<float>>();
    auto materialise = [full_dy, size = rows * inner](const BatchNormPrologue& p, const float* gv) {
      full_dy->resize(static_cast<size_t>(size));
      p.incoming(gv, 0, full_dy->data(), size);
      return full_dy->data();
    };
    // A mixed op's d/dw for this candidate (BatchNormProgram::product_group): sum(g * y),
    // added to its weight gradient in runs that compute architecture gradients; with
    // weight 0 too, as choice_grad_arch adds it for every candidate that ran.
    if (program.from_output)
      return [k, stats, c, rows, inner, prologue, prepare, materialise, g, y = second,
              group = program.product_group, index = program.product_index,
              out = s.node](RunState& st) mutable {
        const bool take_product = group >= 0 && st.arch_grads;
        double dw = 0;
        const bool runs = prepare(prologue, st);
        Collectives* sync = runs ? batchnorm_sync(st) : nullptr;
        if (runs && !sync) {
          k->backward_from_output(st.values[y], st.values[g], stats + c, st.values[out], &prologue,
                                  take_product ? &dw : nullptr);
        } else {
          // The gradient synchronised (or not run, weight 0), the product on its own.
          if (sync)
            sync_batchnorm_backward_from_output(k->params(), *sync, st.values[y],
                                                materialise(prologue, st.values[g]), stats + c,
                                                st.values[out]);
          if (take_product) dw = plain::dot(rows * inner, st.values[g], st.values[y]);
        }
        if (take_product) st.choice_weight_grads[group][index] += dw;
        return runs;
      };
    return [this, k, stats, c, prologue, prepare, materialise, g, x = second, sc = s.weight,
            sh = s.bias, out = s.node](RunState& st) mutable {
      if (!prepare(prologue, st)) return false;
      const bool affine = sc >= 0;
      const float* scale = affine ? st.param[sc] : nullptr;
      float* dscale = affine ? scratch_.data() : nullptr;
      float* dshift = affine ? scratch2_.data() : nullptr;
      if (Collectives* sync = batchnorm_sync(st))
        sync_batchnorm_backward(k->params(), *sync, st.values[x],
                                materialise(prologue, st.values[g]), stats, stats + c, scale,
                                st.values[out], dscale, dshift);
      else
        k->backward(st.values[x], st.values[g], stats, stats + c, scale, st.values[out], dscale,
                    dshift, &prologue);
      if (affine) {
        accumulate(st.grad[sc], scratch_.data(), c);
        accumulate(st.grad[sh], scratch2_.data(), c);
      }
      return true;
    };
  }

  // oneDNN's algorithm where it has one, else the op's scalar formula.
  StepFn build_activation(const Step& s) {
    const int out = s.node;
    if (!eltwise_kind_of(s.fwd_op)) return generic_activation(s);
    auto k = eltwise_kernel(eltwise_params(s));
    if (s.kind == StepKind::Activation)
      return [k, x = s.inputs[0], out](RunState& st) {
        k->forward(st.values[x], st.values[out]);
        return true;
      };
    return [k, dy = s.inputs[0], x = s.inputs[1], out](RunState& st) {
      k->backward(st.values[x], st.values[dy], st.values[out]);
      return true;
    };
  }

  StepFn build_pooling(const Step& s) {
    const int out = s.node;
    if (s.kind == StepKind::GlobalAvgPool || s.kind == StepKind::GlobalAvgPoolGrad) {
      Nchw x = nchw(s.fwd_in_shape);
      plain::GlobalAvgPoolParams p{x.n, x.c, x.h, x.w};
      bool forward = s.kind == StepKind::GlobalAvgPool;
      if (forward && !s.region.empty()) {
        // A GlobalAvgPool region (compiler/passes/fusion.h): its activations, then the mean.
        std::vector<RowActivation> activations;
        for (const RegionOp* op : pooled_activations(s))
          activations.emplace_back(op->op, op->param);
        return [p, activations, in = s.inputs[0], out](RunState& st) {
          plain::global_avg_pool_forward(p, st.values[in], st.values[out], activations);
          return true;
        };
      }
      return [p, forward, in = s.inputs[0], out](RunState& st) {
        if (forward)
          plain::global_avg_pool_forward(p, st.values[in], st.values[out]);
        else
          plain::global_avg_pool_backward(p, st.values[in], st.values[out]);
        return true;
      };
    }
    auto k = pool2d_kernel(pool_params(s));
    if (s.kind == StepKind::PoolGrad) {
      void* ws = k->workspace_bytes() > 0 ? state(s.state, k->workspace_bytes()).data() : nullptr;
      return [k, ws, dy = s.inputs[0], out](RunState& st) {
        k->backward(st.values[dy], ws, st.values[out]);
        return true;
      };
    }
    void* ws = nullptr;
    if (k->workspace_bytes() > 0 && s.state >= 0) ws = state(s.state, k->workspace_bytes()).data();
    if (k->workspace_bytes() > 0 && ws == nullptr) {
      // Inference: max pooling still writes a workspace; it is scratch here.
      inference_ws_.emplace_back(k->workspace_bytes());
      ws = inference_ws_.back().data();
    }
    return [k, ws, x = s.inputs[0], out](RunState& st) {
      k->forward(st.values[x], st.values[out], ws);
      return true;
    };
  }

  // Steps that combine tensors: sums, concatenation and its gradient, products.
  StepFn build_combine(const Step& s) {
    const int out = s.node;
    if (s.kind == StepKind::Add) {
      // Sums the inputs that were computed: all of them in a forward pass; in backward,
      // the gradient contributions of the consumers that ran.
      int64_t n = shape_elements(s.output_shape);
      return [n, inputs = s.inputs, out](RunState& st) {
        std::vector<const float*> xs;
        for (int in : inputs)
          if (st.computed[in]) xs.push_back(st.values[in]);
        if (xs.empty()) return false;
        plain::AddParams p{static_cast<int64_t>(xs.size()), n};
        plain::add_forward(p, xs.data(), st.values[out]);
        return true;
      };
    }
    if (s.kind == StepKind::Scale) {
      if (s.inputs.size() == 2) {
        // By a same-shaped or per-channel factor tensor, in either input.
        const auto [xi, p] = mul_params(s);
        return [p = p, x = s.inputs[xi], f = s.inputs[1 - xi], out](RunState& st) {
          plain::mul_forward(p, st.values[x], st.values[f], st.values[out]);
          return true;
        };
      }
      return [n = shape_elements(s.output_shape), scale = s.float_attr("scale"), x = s.inputs[0],
              out](RunState& st) {
        plain::scale_forward(n, scale, st.values[x], st.values[out]);
        return true;
      };
    }
    plain::ConcatParams p = concat_params(*plan_, s);
    if (s.kind == StepKind::Concat)
      return [p, inputs = s.inputs, out](RunState& st) {
        std::vector<const float*> xs;
        for (int in : inputs) xs.push_back(st.values[in]);
        plain::concat_forward(p, xs.data(), st.values[out]);
        return true;
      };
    return [p, index = s.index, dy = s.inputs[0], out](RunState& st) {
      std::vector<float*> dxs(p.sizes.size(), nullptr);
      dxs[index] = st.values[out];
      plain::concat_backward(p, st.values[dy], dxs.data());
      return true;
    };
  }

  // Both steps draw each element's mask from the run's dropout seed, the forward node and
  // the element's place in the global batch (plain::dropout_range, support/rng.h): a
  // data-parallel rank draws what one process would, and the backward step draws the
  // forward's mask again instead of reading a saved one.
  StepFn build_dropout(const Step& s) {
    const int64_t n = shape_elements(s.output_shape);
    plain::DropoutParams params;
    params.per_sample = n / s.output_shape[0];
    params.p = s.float_attr("p");
    return [n, params, node = s.fwd_node, x = s.inputs[0], out = s.node](RunState& st) mutable {
      params.node_seed = dropout_node_seed(st, node);
      params.first_sample = st.first_sample;
      plain::dropout_range(params, 0, n, st.values[x], st.values[out]);
      return true;
    };
  }

  // The random stream of sample `b` of this rank at dropout node `node`.
  static uint64_t sample_seed(const RunState& st, int node, int64_t b) {
    return dropout_sample_stream(dropout_node_seed(st, node), st.first_sample + b);
  }

  // Drop path: one draw per sample, from the run's dropout seed, the node and the sample's
  // index in the global batch, keeps the whole sample (scaled by 1 / (1 - p)) or zeroes it;
  // the forward step saves the draws for the backward step. p is the op's, or the run's
  // (RunState::drop_path_prob) when it is -1; both steps of one run read the same.
  StepFn build_drop_path(const Step& s) {
    const int64_t batch = s.output_shape[0];
    const int64_t per_sample = shape_elements(s.output_shape) / batch;
    uint8_t* kept = state(s.state, static_cast<size_t>(batch)).data();
    const double fixed = s.float_attr("p");
    auto keep_scale = [fixed](const RunState& st) {
      const double p = fixed >= 0 ? fixed : st.drop_path_prob;
      return std::make_pair(p, dropout_keep_scale(p));
    };
    if (s.kind == StepKind::DropPath)
      return [batch, per_sample, kept, keep_scale, node = s.node, x = s.inputs[0]](RunState& st) {
        const auto [p, scale] = keep_scale(st);
        for (int64_t b = 0; b < batch; ++b) {
          kept[b] = Rng(sample_seed(st, node, b)).uniform_float() >= p ? 1 : 0;
          plain::scale_forward(per_sample, kept[b] ? scale : 0.0f, st.values[x] + b * per_sample,
                               st.values[node] + b * per_sample);
        }
        return true;
      };
    return [batch, per_sample, kept, keep_scale, dy = s.inputs[0], out = s.node](RunState& st) {
      const float scale = keep_scale(st).second;
      for (int64_t b = 0; b < batch; ++b)
        plain::scale_forward(per_sample, kept[b] ? scale : 0.0f, st.values[dy] + b * per_sample,
                             st.values[out] + b * per_sample);
      return true;
    };
  }

  // A choice is the sum of its candidates weighted by the group's choice weights; a zero
  // weight skips the candidate (and, in backward, its branch).
  StepFn build_choice(const Step& s) {
    const int out = s.node;
    if (s.kind == StepKind::Choice)
      return [n = shape_elements(s.output_shape), group = s.group, inputs = s.inputs,
              out](RunState& st) {
        const std::vector<float>& w = st.choice_weights[group];
        std::vector<const float*> xs;
        std::vector<float> ws;
        for (size_t i = 0; i < inputs.size(); ++i)
          if (w[i] != 0.0f) {
            xs.push_back(st.values[inputs[i]]);
            ws.push_back(w[i]);
          }
        if (xs.empty()) {
          plain::zero_fill(n, st.values[out]);
          return true;
        }
        plain::WeightedSumParams p{static_cast<int64_t>(xs.size()), n};
        plain::weighted_sum_forward(p, xs.data(), ws.data(), st.values[out]);
        return true;
      };
    if (s.kind == StepKind::ChoiceGradInput)
      return [n = shape_elements(s.output_shape), group = s.group, index = s.index,
              dy = s.inputs[0], out](RunState& st) {
        float w = st.choice_weights[group][index];
        if (w == 0.0f) return false;  // an unselected candidate: its branch does not run
        plain::scale_forward(n, w, st.values[dy], st.values[out]);
        return true;
      };
    // Candidates whose product a batch norm gradient region takes (exec_plan.h) are skipped.
    std::vector<char> elsewhere(s.inputs.size(), 0);
    for (const RegionOp& op : s.region) elsewhere.at(static_cast<size_t>(op.index) + 1) = 1;
    return [n = shape_elements(s.input_shapes[0]), group = s.group, inputs = s.inputs,
            elsewhere](RunState& st) {
      std::vector<double>& dw = st.choice_weight_grads[group];
      const float* g = st.values[inputs[0]];
      for (size_t i = 1; i < inputs.size(); ++i) {
        if (elsewhere[i] || !st.computed[inputs[i]]) continue;
        dw[i - 1] += plain::dot(n, g, st.values[inputs[i]]);
      }
      return true;
    };
  }

  // The forward step also hands out the logits and adds the batch's loss and correct count
  // to the run's metrics.
  StepFn build_loss(const Step& s) {
    const int out = s.node;
    if (s.kind == StepKind::CrossEntropy)
      return [classes = s.input_shapes[0][1], logits = s.inputs[0], out](RunState& st) {
        const float* z = st.values[logits];
        float* loss = st.values[out];
        const int64_t batch = st.valid_samples;
        if (st.logits_out) std::memcpy(st.logits_out, z, sizeof(float) * batch * classes);
        if (st.labels == nullptr) return true;
        plain::CrossEntropyParams one{1, classes, st.label_smoothing};
        double loss_sum = 0;
        for (int64_t b = 0; b < batch; ++b) {
          loss[b] =
              static_cast<float>(plain::softmax_cross_entropy(one, z + b * classes, st.labels + b));
          loss_sum += loss[b];
        }
        st.metrics[0] += loss_sum;
        st.metrics[1] += static_cast<double>(plain::top1_correct({batch, classes}, z, st.labels));
        return true;
      };
    return [shape = s.input_shapes[0], logits = s.inputs[0], out](RunState& st) {
      plain::CrossEntropyParams p{shape[0], shape[1], st.label_smoothing};
      plain::softmax_cross_entropy(p, st.values[logits], st.labels, st.values[out]);
      return true;
    };
  }

  // aux_loss: the forward step passes x on and adds weight * the auxiliary logits' summed
  // cross-entropy to the run's loss (labels, smoothing and the valid rows as the loss step
  // has them); the gradient step writes weight * d(mean loss)/d(logits).
  StepFn build_aux_loss(const Step& s) {
    const float weight = static_cast<float>(s.float_attr("weight"));
    if (s.kind == StepKind::AuxLoss) {
      const int64_t classes = s.input_shapes[1][1];
      return [weight, classes, n = shape_elements(s.output_shape), x = s.inputs[0],
              logits = s.inputs[1], out = s.node](RunState& st) {
        std::memcpy(st.values[out], st.values[x], sizeof(float) * n);
        if (st.labels == nullptr) return true;
        plain::CrossEntropyParams p{st.valid_samples, classes, st.label_smoothing};
        const double mean = plain::softmax_cross_entropy(p, st.values[logits], st.labels);
        st.metrics[0] += weight * mean * static_cast<double>(st.valid_samples);
        return true;
      };
    }
    return [weight, shape = s.input_shapes[0], logits = s.inputs[0], out = s.node](RunState& st) {
      plain::CrossEntropyParams p{shape[0], shape[1], st.label_smoothing};
      plain::softmax_cross_entropy(p, st.values[logits], st.labels, st.values[out]);
      plain::scale_forward(shape[0] * shape[1], weight, st.values[out], st.values[out]);
      return true;
    };
  }

  const ExecPlan* plan_ = nullptr;
  std::vector<StepFn> fns_;
  std::vector<std::vector<uint8_t>> states_;
  std::vector<std::vector<uint8_t>> inference_ws_;
  std::vector<float> scratch_, scratch2_;
};

// The host as a device: memory is 64-byte aligned host memory, copies are memcpy, the
// vector and optimizer operations are plain loops (the optimizers' reference arithmetic),
// and everything runs on the calling thread, so streams and events have nothing to order.
class CpuBackend : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  bool supports(const Step&) const override { return true; }  // every StepKind
  bool supports(DType dtype, Layout layout) const override {
    // NHWC: the values only conv epilogues read and write (compiler/passes/layout.h).
    return dtype == DType::F32 && (layout == Layout::NCHW || layout == Layout::NHWC);
  }

  void* allocate(size_t bytes) override {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    // Out of memory is the size of the user's network and batch, not a bug.
    if (p == nullptr)
      throw UserError("cpu backend", "cannot allocate " + std::to_string(rounded) +
                                         " bytes of memory for the network's tensors; a "
                                         "smaller batch size needs less");
    allocations_.added(p, rounded);
    return p;
  }
  void release(void* p) override {
    allocations_.removed(p);
    std::free(p);
  }
  MemoryUse memory_use() const override { return allocations_.use(); }

  void upload(DeviceBuffer& dst, const void* host, size_t bytes, size_t offset) override {
    check_buffer_range(dst, bytes, offset, "upload");
    std::memcpy(static_cast<char*>(dst.raw()) + offset, host, bytes);
    dst.mark_written();
  }
  void download(void* host, const DeviceBuffer& src, size_t bytes, size_t offset) override {
    check_buffer_range(src, bytes, offset, "download");
    std::memcpy(host, static_cast<const char*>(src.raw()) + offset, bytes);
  }
  void copy(DeviceBuffer& dst, const DeviceBuffer& src) override {
    check_same_fp32(dst, src, "copy");
    std::memcpy(dst.raw(), src.raw(), src.bytes());
    dst.mark_written();
  }
  void fill(DeviceBuffer& dst, float value) override {
    float* x = dst.data();
    std::fill(x, x + dst.size(), value);
    dst.mark_written();
  }
  void scale(DeviceBuffer& x, float factor) override {
    float* d = x.data();
    for (size_t i = 0; i < x.size(); ++i) d[i] *= factor;
    x.mark_written();
  }
  void axpy(DeviceBuffer& y, float a, const DeviceBuffer& x) override {
    check_same_fp32(y, x, "axpy");
    float* yd = y.data();
    const float* xd = x.data();
    for (size_t i = 0; i < y.size(); ++i) yd[i] += a * xd[i];
    y.mark_written();
  }
  double sum_squares(const std::vector<const DeviceBuffer*>& xs) override {
    double sq = 0;
    for (const DeviceBuffer* x : xs) {
      const float* d = x->data();
      for (size_t i = 0; i < x->size(); ++i) sq += static_cast<double>(d[i]) * d[i];
    }
    return sq;
  }

  void sgd_update(const SgdUpdate& u, DeviceBuffer& value, const DeviceBuffer& grad,
                  DeviceBuffer* momentum) override {
    check_same_fp32(value, grad, "sgd_update");
    if (momentum) check_same_fp32(value, *momentum, "sgd_update momentum");
    float* w = value.data();
    const float* g = grad.data();
    float* buf = momentum ? momentum->data() : nullptr;
    for (size_t i = 0; i < value.size(); ++i) {
      float d = g[i];
      if (u.weight_decay != 0) d += u.weight_decay * w[i];
      if (buf) {
        buf[i] = u.first ? d : u.momentum * buf[i] + d;
        d = u.nesterov ? d + u.momentum * buf[i] : buf[i];
      }
      w[i] -= u.lr * d;
    }
    value.mark_written();
    if (momentum) momentum->mark_written();
  }
  void adam_update(const AdamUpdate& u, DeviceBuffer& value, const DeviceBuffer& grad,
                   DeviceBuffer& m_buf, DeviceBuffer& v_buf) override {
    check_same_fp32(value, grad, "adam_update");
    check_same_fp32(value, m_buf, "adam_update m");
    check_same_fp32(value, v_buf, "adam_update v");
    float* w = value.data();
    const float* g_in = grad.data();
    float* m = m_buf.data();
    float* v = v_buf.data();
    for (size_t i = 0; i < value.size(); ++i) {
      float g = g_in[i];
      if (u.weight_decay != 0) g += u.weight_decay * w[i];
      m[i] += u.w1 * (g - m[i]);
      v[i] = u.b2 * v[i] + u.w2 * g * g;
      float denom = std::sqrt(v[i]) / u.bc2_sqrt + u.eps;
      w[i] -= u.step_size * (m[i] / denom);
    }
    value.mark_written();
    m_buf.mark_written();
    v_buf.mark_written();
  }

  Stream create_stream() override { return {}; }
  void set_stream(Stream) override {}
  Event record_event() override { return {}; }
  void wait_event(const Event&) override {}
  void synchronize() override {}  // CPU streams run primitives synchronously

  std::unique_ptr<PreparedPlan> prepare(const ExecPlan& plan) override {
    return std::make_unique<CpuPlan>(plan);
  }

 private:
  AllocationTracker allocations_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() {
  return std::make_unique<CpuBackend>();
}

}  // namespace nas
