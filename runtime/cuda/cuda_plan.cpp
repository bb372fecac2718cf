#include "runtime/cuda/cuda_plan.h"

#include <algorithm>
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "runtime/cpu/plain_step_params.h"
#include "runtime/cuda/conv_cudnn.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/data_kernels.h"
#include "runtime/cuda/linear_cublas.h"
#include "runtime/cuda/norm_pool_kernels.h"
#include "runtime/cuda/region_ptx.h"
#include "runtime/exec/region_programs.h"
#include "support/elementwise_ops.h"
#include "support/errors.h"

namespace nas::cuda {

namespace {

using StepFn = std::function<bool(RunState&)>;

ConvShape conv_shape(const Step& s) {
  return conv_fields<ConvShape>(s);
}

LinearShape linear_shape(const Step& s) {
  LinearShape p;
  p.n = s.fwd_in_shape[0];
  p.in = shape_elements(s.fwd_in_shape) / p.n;
  p.out = s.int_attr("out");
  p.bias = s.int_attr("bias") != 0;
  return p;
}

// Operations [first, end) of a step's region as a program of their own, and where each of
// the program's inputs comes from: kPreviousResult (what operation first - 1 computed,
// which the caller supplies) or the step's input k. Only the inputs the operations read
// become program inputs, so that the kernel loads nothing else.
constexpr int kPreviousResult = -1;
struct SubProgram {
  ElementwiseProgram program;
  std::vector<int> sources;
};

SubProgram sub_program(const Step& s, size_t first, size_t end) {
  SubProgram sub;
  sub.program.name = s.name;
  auto input_for = [&](int source) {
    for (size_t k = 0; k < sub.sources.size(); ++k)
      if (sub.sources[k] == source) return static_cast<int>(k);
    sub.sources.push_back(source);
    return static_cast<int>(sub.sources.size()) - 1;
  };
  for (size_t i = first; i < end; ++i) {
    RegionOp op = s.region[i];
    for (int& k : op.operands) {
      if (k >= 0) {
        k = input_for(k);
        continue;
      }
      const int result = -k - 1;
      NAS_CHECK(result + 1 >= static_cast<int>(first),
                "step `" + s.name + "`: a region operation reads a result before the previous one");
      k = result + 1 == static_cast<int>(first) ? input_for(kPreviousResult)
                                                : -(result - static_cast<int>(first)) - 1;
    }
    sub.program.ops.push_back(std::move(op));
  }
  sub.program.inputs = static_cast<int>(sub.sources.size());
  return sub;
}

// One activation of `op` (its formula's attribute from the step), forward or gradient.
RegionOp activation_op(const Step& s, bool gradient) {
  const ElementwiseFn* fn = find_elementwise(s.fwd_op);
  NAS_CHECK(fn != nullptr, "step `" + s.name + "`: no element-wise formula for " + s.fwd_op);
  RegionOp op;
  op.kind = gradient ? StepKind::ActivationGrad : StepKind::Activation;
  op.op = s.fwd_op;
  op.param = fn->param != nullptr ? s.float_attr(fn->param) : 0.0;
  op.operands = gradient ? std::vector<int>{0, 1} : std::vector<int>{0};
  return op;
}

// One step of a layer with weights (a convolution, a linear layer) on its kernel's
// forward, backward_data or backward_weights; the weight gradients accumulate into
// RunState::grad, as the CPU backend's do.
template <typename Kernel>
StepFn layer_step(std::shared_ptr<const Kernel> k, const Step& s) {
  const int out = s.node;
  if (s.kind == StepKind::Conv || s.kind == StepKind::Linear)
    return [k, x = s.inputs[0], w = s.weight, b = s.bias, out](RunState& st) {
      k->forward(st.values[x], st.param[w], b >= 0 ? st.param[b] : nullptr, st.values[out]);
      return true;
    };
  if (s.kind == StepKind::ConvGradInput || s.kind == StepKind::LinearGradInput)
    return [k, dy = s.inputs[0], w = s.weight, out](RunState& st) {
      k->backward_data(st.values[dy], st.param[w], st.values[out]);
      return true;
    };
  return [k, dy = s.inputs[0], x = s.inputs[1], w = s.weight, b = s.bias](RunState& st) {
    k->backward_weights(st.values[x], st.values[dy], st.grad[w], b >= 0 ? st.grad[b] : nullptr);
    return true;
  };
}

// Device memory a plan owns (saved forward state, scratch).
class DeviceMemory {
 public:
  explicit DeviceMemory(size_t bytes) : p_(device_malloc(bytes, "a plan's saved state")) {}
  ~DeviceMemory() { device_free(p_); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  void* get() const { return p_; }

 private:
  void* p_ = nullptr;
};

class CudaPlan : public PreparedPlan {
 public:
  CudaPlan(const ExecPlan& plan, std::shared_ptr<CudaContext> context)
      : plan_(plan), ctx_(std::move(context)), kernels_(*ctx_) {
    state_bytes_.assign(plan.num_states, 0);
    size_t arch_slots = 0;
    for (const ArchSpec& a : plan.arch) {
      arch_offsets_.push_back(arch_slots);
      arch_slots += a.candidates.size();
    }
    arch_grads_ = std::make_unique<DeviceMemory>(arch_slots * sizeof(double));
    dot_partials_ = std::make_unique<DeviceMemory>(kDotBlocks * sizeof(double));
    loss_scratch_ = std::make_unique<DeviceMemory>(static_cast<size_t>(plan.batch) *
                                                   kLossScratchPerSample * sizeof(double));
    for (const Step& s : plan.steps) fns_.push_back(build(s));
    // Scratch sized for the largest use of each slot, the programs compiled in one module.
    for (size_t slot = 0; slot < kScratchSlots; ++slot)
      scratch_[slot] = std::make_unique<DeviceMemory>(scratch_floats_[slot] * sizeof(float));
    for (size_t bytes : state_bytes_) states_.push_back(std::make_unique<DeviceMemory>(bytes));
    kernels_.load();
  }

  bool run(size_t index, RunState& st) override { return fns_[index](st); }

  // The choice weights stay on the host (kernels take them as arguments); the device's
  // architecture-gradient sums start from zero.
  void upload_choice_weights(const RunState&) override {
    if (!plan_.arch.empty())
      NAS_CUDA(cudaMemsetAsync(arch_grads_->get(), 0, arch_slot_count() * sizeof(double),
                               ctx_->stream()));
  }
  void download_choice_weight_grads(RunState& st) override {
    if (plan_.arch.empty()) return;
    std::vector<double> sums(arch_slot_count());
    NAS_CUDA(cudaMemcpyAsync(sums.data(), arch_grads_->get(), sums.size() * sizeof(double),
                             cudaMemcpyDeviceToHost, ctx_->stream()));
    NAS_CUDA(cudaStreamSynchronize(ctx_->stream()));
    for (size_t g = 0; g < plan_.arch.size(); ++g)
      for (size_t c = 0; c < plan_.arch[g].candidates.size(); ++c)
        st.choice_weight_grads[g][c] += sums[arch_offsets_[g] + c];
  }

 private:
  static constexpr size_t kScratchSlots = 3;

  cudaStream_t stream() const { return ctx_->stream(); }
  size_t arch_slot_count() const {
    return arch_offsets_.empty() ? 0 : arch_offsets_.back() + plan_.arch.back().candidates.size();
  }
  // Where d(loss)/d(weight) of candidate `index` of arch group `group` accumulates.
  double* arch_grad(int group, int index) const {
    return static_cast<double*>(arch_grads_->get()) + arch_offsets_.at(group) + index;
  }
  void add_dot(int64_t n, const float* a, const float* b, double* into) const {
    cuda::add_dot(n, a, b, static_cast<double*>(dot_partials_->get()), into, stream());
  }

  // Saved forward state `index` (batch statistics, argmax, masks): reserved while the
  // steps are built (the forward and gradient steps that share one may ask different
  // sizes), allocated after, read by the closures at run time.
  int reserve_state(int index, size_t bytes) {
    NAS_CHECK(index >= 0 && static_cast<size_t>(index) < state_bytes_.size(),
              "forward state " + std::to_string(index) + " was not planned");
    state_bytes_[index] = std::max(state_bytes_[index], bytes);
    return index;
  }
  void* state(int index) const { return states_[index]->get(); }
  // Scratch slot `slot`, which must hold `floats` (sized after every step is built; a
  // step's closure reads it at run time). Steps run one at a time on one stream, so every
  // step may use every slot.
  size_t reserve_scratch(size_t slot, int64_t floats) {
    scratch_floats_[slot] = std::max(scratch_floats_[slot], static_cast<size_t>(floats));
    return slot;
  }
  float* scratch(size_t slot) const { return static_cast<float*>(scratch_[slot]->get()); }

  // A program's kernel and how each run launches it: its inputs from `sources`
  // (kPreviousResult: `previous`), decided by the CPU's region rules.
  bool launch_program(int kernel, const SubProgram& sub, const RunState& st, const Step& s,
                      float* previous, float* out, int64_t n) const {
    std::vector<char> computed;
    std::vector<const float*> inputs;
    for (int source : sub.sources) {
      computed.push_back(source == kPreviousResult ? 1 : st.computed[s.inputs[source]]);
      inputs.push_back(source == kPreviousResult ? previous : st.values[s.inputs[source]]);
    }
    ProgramDraws draws{st.dropout_seed, st.first_sample, 1};
    if (!s.output_shape.empty())
      draws.per_sample = shape_elements(s.output_shape) / s.output_shape[0];
    const ProgramRun run = decide_program_run(sub.program, computed, st.choice_weights, draws);
    if (!run.writes) return false;
    kernels_.launch(kernel, out, inputs, n, run, stream());
    return true;
  }

  // Batch norm synchronised across data-parallel ranks needs the collectives on the GPU
  // (the MPI issue): refused, where the CPU backends run it.
  static void refuse_sync_batchnorm(const RunState& st) {
    if (st.sync_batchnorm)
      throw UserError("--backend cuda",
                      "batch norm synchronised across ranks (sync_batchnorm) does not run on the "
                      "GPU yet; use --backend jit, or turn sync_batchnorm off");
  }

  [[noreturn]] static void unsupported(const Step& s) {
    internal_error(__FILE__, __LINE__, "cuda backend: unsupported step " + s.op);
  }

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
      case StepKind::ElementwiseRegion:
        return build_elementwise(s);
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
      case StepKind::DropPath:
      case StepKind::DropPathGrad:
        return build_dropout(s);
      case StepKind::Choice:
      case StepKind::ChoiceGradInput:
      case StepKind::ChoiceGradArch:
        return build_choice(s);
      case StepKind::CrossEntropy:
      case StepKind::CrossEntropyGrad:
      case StepKind::AuxLoss:
      case StepKind::AuxLossGrad:
        return build_loss(s);
      case StepKind::Fused:  // computed by its region's step
        return [](RunState&) { return false; };
      case StepKind::Recompute:  // lowered to its forward node's kind
        break;
    }
    unsupported(s);
  }

  StepFn build_data_movement(const Step& s);
  StepFn build_conv(const Step& s);
  StepFn build_conv_epilogue(const Step& s);
  StepFn build_linear(const Step& s);
  StepFn build_batchnorm(const Step& s);
  StepFn build_batchnorm_region(const Step& s);
  StepFn build_elementwise(const Step& s);
  StepFn build_pooling(const Step& s);
  StepFn build_combine(const Step& s);
  StepFn build_dropout(const Step& s);
  StepFn build_choice(const Step& s);
  StepFn build_loss(const Step& s);

  const ExecPlan& plan_;
  std::shared_ptr<CudaContext> ctx_;
  ElementwiseKernels kernels_;
  std::vector<StepFn> fns_;
  std::vector<std::unique_ptr<DeviceMemory>> states_;
  std::vector<size_t> state_bytes_;
  std::vector<size_t> arch_offsets_;
  std::unique_ptr<DeviceMemory> arch_grads_, dot_partials_, loss_scratch_;
  std::array<size_t, kScratchSlots> scratch_floats_{};
  std::array<std::unique_ptr<DeviceMemory>, kScratchSlots> scratch_;
};

// Steps that move or fill memory.
StepFn CudaPlan::build_data_movement(const Step& s) {
  const int out = s.node;
  const int64_t n = shape_elements(s.output_shape);
  switch (s.kind) {
    case StepKind::Input:
    case StepKind::View:
      return [in = s.inputs.empty() ? -1 : s.inputs[0]](RunState& st) {
        return in < 0 || st.computed[in] != 0;
      };
    case StepKind::Copy:
      return [this, in = s.inputs[0], out, n](RunState& st) {
        NAS_CUDA(cudaMemcpyAsync(st.values[out], st.values[in], n * sizeof(float),
                                 cudaMemcpyDeviceToDevice, stream()));
        return true;
      };
    case StepKind::Zero:
      return [this, out, n](RunState& st) {
        NAS_CUDA(cudaMemsetAsync(st.values[out], 0, n * sizeof(float), stream()));
        return true;
      };
    case StepKind::Crop:
      return [this, p = crop_params(s), x = s.inputs[0], out](RunState& st) {
        crop_forward(p, st.values[x], st.values[out], stream());
        return true;
      };
    case StepKind::CropGrad:
      return [this, p = crop_params(s), dy = s.inputs[0], out](RunState& st) {
        crop_backward(p, st.values[dy], st.values[out], stream());
        return true;
      };
    case StepKind::ChannelSlice:
      return [this, p = channel_slice_params(s), x = s.inputs[0], out](RunState& st) {
        channel_slice_forward(p, st.values[x], st.values[out], stream());
        return true;
      };
    case StepKind::ChannelSliceGrad:
      return [this, p = channel_slice_params(s), dy = s.inputs[0], out](RunState& st) {
        channel_slice_backward(p, st.values[dy], st.values[out], stream());
        return true;
      };
    case StepKind::ChannelShuffle:
      return [this, p = channel_shuffle_params(s), x = s.inputs[0], out](RunState& st) {
        channel_shuffle_forward(p, st.values[x], st.values[out], stream());
        return true;
      };
    default:
      unsupported(s);
  }
}

// Convolutions on cuDNN; parameter gradients accumulate into RunState::grad.
StepFn CudaPlan::build_conv(const Step& s) {
  if (s.kind == StepKind::Conv && !s.region.empty()) return build_conv_epilogue(s);
  auto k = cudnn_conv(*ctx_, conv_shape(s));
  // The pass's algorithm is timed now, when the plan is prepared.
  k->choose(s.kind == StepKind::Conv            ? CudnnConv::Pass::Forward
            : s.kind == StepKind::ConvGradInput ? CudnnConv::Pass::Data
                                                : CudnnConv::Pass::Filter);
  return layer_step(k, s);
}

// A conv epilogue (exec_plan.h): the convolution (with its bias), the batch norm folded
// after it at inference, then its activations and add as one generated kernel. Values may
// be channels-last (compiler/passes/layout.h); cuDNN's tensor transform brings them to
// NCHW and back around the NCHW kernels.
StepFn CudaPlan::build_conv_epilogue(const Step& s) {
  const ConvShape shape = conv_shape(s);
  auto k = cudnn_conv(*ctx_, shape);
  k->choose(CudnnConv::Pass::Forward);
  const bool batchnorm = s.region.size() > 1 && s.region[1].kind == StepKind::BatchNorm;
  for (size_t i = 1; i < s.region.size(); ++i)
    NAS_CHECK(s.region[i].kind == StepKind::Activation || s.region[i].kind == StepKind::Add ||
                  (i == 1 && batchnorm),
              "step `" + s.name + "`: a conv epilogue operation of another kind");
  BatchNormParams bn_shape;
  const RegionOp* bn = batchnorm ? &s.region[1] : nullptr;
  if (bn) {
    bn_shape.n = shape.n, bn_shape.c = shape.c_out, bn_shape.h = shape.out_h(),
    bn_shape.w = shape.out_w();
    bn_shape.affine = bn->weight >= 0;
    bn_shape.eps = bn->param;
  }
  const SubProgram tail = sub_program(s, batchnorm ? 2 : 1, s.region.size());
  const int kernel = tail.program.ops.empty() ? -1 : kernels_.add(tail.program);
  auto nhwc = [&](int value) { return plan_.values[value].layout == Layout::NHWC; };
  const bool src_nhwc = nhwc(s.inputs[0]), dst_nhwc = nhwc(s.node);
  const bool other_nhwc = s.inputs.size() == 2 && nhwc(s.inputs[1]);
  const int64_t in_size = shape.n * shape.c_in * shape.h * shape.w;
  const int64_t out_size = shape.n * shape.c_out * shape.out_h() * shape.out_w();
  // Scratch: 0 the NCHW input, 1 the NCHW result, 2 the NCHW add operand.
  if (src_nhwc) reserve_scratch(0, in_size);
  const bool result_in_scratch = dst_nhwc || s.inputs.size() == 2;
  if (result_in_scratch) reserve_scratch(1, out_size);
  if (other_nhwc) reserve_scratch(2, out_size);
  auto layouts = std::make_shared<LayoutTransform>(*ctx_);
  return [this, k, kernel, tail, bn, bn_shape, layouts, s, src_nhwc, dst_nhwc, other_nhwc,
          result_in_scratch, out_size](RunState& st) {
    const ConvShape& p = k->shape();
    const float* x = st.values[s.inputs[0]];
    if (src_nhwc) {
      layouts->to_nchw(p.n, p.c_in, p.h, p.w, x, scratch(0));
      x = scratch(0);
    }
    float* y = result_in_scratch ? scratch(1) : st.values[s.node];
    k->forward(x, st.param[s.weight], s.bias >= 0 ? st.param[s.bias] : nullptr, y);
    if (bn)
      batchnorm_forward_inference(bn_shape, y, bn->weight >= 0 ? st.param[bn->weight] : nullptr,
                                  bn->bias >= 0 ? st.param[bn->bias] : nullptr,
                                  st.param[bn->running_mean], st.param[bn->running_var], y,
                                  stream());
    if (kernel >= 0) {
      float* out = dst_nhwc ? y : st.values[s.node];
      if (other_nhwc) {
        // The add reads an NCHW copy of its channels-last operand for this launch (the
        // run's pointer is put back however the launch ends).
        float*& operand = st.values[s.inputs[1]];
        layouts->to_nchw(p.n, p.c_out, p.out_h(), p.out_w(), operand, scratch(2));
        struct Restore {
          float*& slot;
          float* value;
          ~Restore() { slot = value; }
        } restore{operand, operand};
        operand = scratch(2);
        launch_program(kernel, tail, st, s, y, out, out_size);
      } else {
        launch_program(kernel, tail, st, s, y, out, out_size);
      }
    } else if (result_in_scratch && !dst_nhwc) {
      NAS_CUDA(cudaMemcpyAsync(st.values[s.node], y, out_size * sizeof(float),
                               cudaMemcpyDeviceToDevice, stream()));
    }
    if (dst_nhwc) layouts->to_nhwc(p.n, p.c_out, p.out_h(), p.out_w(), y, st.values[s.node]);
    return true;
  };
}

StepFn CudaPlan::build_linear(const Step& s) {
  const LinearShape shape = linear_shape(s);
  auto k = ctx_->cached<CublasLinear>(
      "linear " + std::to_string(shape.n) + "x" + std::to_string(shape.in) + " -> " +
          std::to_string(shape.out),
      [&] { return std::make_shared<const CublasLinear>(*ctx_, shape); });
  return layer_step(k, s);
}

// Activations, their gradients and fused elementwise regions: one generated kernel each.
StepFn CudaPlan::build_elementwise(const Step& s) {
  SubProgram sub;
  if (s.kind == StepKind::ElementwiseRegion) {
    sub = sub_program(s, 0, s.region.size());
    const std::vector<RegionReadMap> maps = region_read_maps(s);
    for (int source : sub.sources) sub.program.maps.push_back(maps.at(source));
  } else {
    const bool gradient = s.kind == StepKind::ActivationGrad;
    sub.program.name = s.name;
    sub.program.inputs = gradient ? 2 : 1;
    sub.program.ops.push_back(activation_op(s, gradient));
    sub.sources = gradient ? std::vector<int>{0, 1} : std::vector<int>{0};
  }
  const int kernel = kernels_.add(sub.program);
  return [this, kernel, sub, s, n = shape_elements(s.output_shape)](RunState& st) {
    return launch_program(kernel, sub, st, s, nullptr, st.values[s.node], n);
  };
}

// Sums, products, concatenation and its gradient.
StepFn CudaPlan::build_combine(const Step& s) {
  const int out = s.node;
  const int64_t n = shape_elements(s.output_shape);
  if (s.kind == StepKind::Add || (s.kind == StepKind::Scale && s.inputs.size() == 1)) {
    // A sum of the inputs computed in this run (a gradient sum adds the contributions of
    // the consumers that ran), or a scale: a generated kernel.
    SubProgram sub;
    sub.program.name = s.name;
    RegionOp op;
    op.kind = s.kind;
    op.scale = s.kind == StepKind::Scale ? s.float_attr("scale") : 1.0;
    for (size_t k = 0; k < s.inputs.size(); ++k) {
      op.operands.push_back(static_cast<int>(k));
      sub.sources.push_back(static_cast<int>(k));
    }
    sub.program.inputs = static_cast<int>(s.inputs.size());
    sub.program.ops.push_back(op);
    const int kernel = kernels_.add(sub.program);
    return [this, kernel, sub, s, n](RunState& st) {
      return launch_program(kernel, sub, st, s, nullptr, st.values[s.node], n);
    };
  }
  if (s.kind == StepKind::Scale) {
    const auto [xi, p] = mul_params(s);
    return [this, p = p, x = s.inputs[xi], f = s.inputs[1 - xi], out](RunState& st) {
      mul_forward(p, st.values[x], st.values[f], st.values[out], stream());
      return true;
    };
  }
  const plain::ConcatParams p = concat_params(plan_, s);
  if (s.kind == StepKind::Concat)
    return [this, p, inputs = s.inputs, out](RunState& st) {
      std::vector<const float*> xs;
      for (int in : inputs) xs.push_back(st.values[in]);
      concat_forward(p, xs.data(), st.values[out], stream());
      return true;
    };
  return [this, p, index = s.index, dy = s.inputs[0], out](RunState& st) {
    concat_backward_one(p, st.values[dy], index, st.values[out], stream());
    return true;
  };
}

// A choice is the sum of its candidates weighted by the group's choice weights (a zero
// weight skips the candidate, and in backward its branch); its weight gradients are dot
// products, summed on the device.
StepFn CudaPlan::build_choice(const Step& s) {
  if (s.kind == StepKind::Choice) {
    SubProgram sub;
    sub.program.name = s.name;
    RegionOp op;
    op.kind = StepKind::Choice;
    op.group = s.group;
    for (size_t k = 0; k < s.inputs.size(); ++k) {
      op.operands.push_back(static_cast<int>(k));
      sub.sources.push_back(static_cast<int>(k));
    }
    sub.program.inputs = static_cast<int>(s.inputs.size());
    sub.program.ops.push_back(op);
    const int kernel = kernels_.add(sub.program);
    return [this, kernel, sub, s, n = shape_elements(s.output_shape)](RunState& st) {
      return launch_program(kernel, sub, st, s, nullptr, st.values[s.node], n);
    };
  }
  if (s.kind == StepKind::ChoiceGradInput) {
    // w * dy: a one-candidate choice whose weight is candidate `index`'s.
    ElementwiseProgram scaled;
    scaled.name = s.name;
    scaled.inputs = 1;
    RegionOp op;
    op.kind = StepKind::Choice;
    op.operands = {0};
    scaled.ops.push_back(op);
    const int kernel = kernels_.add(scaled);
    return [this, kernel, group = s.group, index = s.index, dy = s.inputs[0], out = s.node,
            n = shape_elements(s.output_shape)](RunState& st) {
      const float w = st.choice_weights[group][index];
      if (w == 0.0f) return false;  // an unselected candidate: its branch does not run
      kernels_.launch(kernel, st.values[out], {st.values[dy]}, n, ProgramRun{true, {w}, {1}},
                      stream());
      return true;
    };
  }
  // Candidates whose product a batch norm gradient region takes (exec_plan.h) are skipped.
  std::vector<char> elsewhere(s.inputs.size(), 0);
  for (const RegionOp& op : s.region) elsewhere.at(static_cast<size_t>(op.index) + 1) = 1;
  return [this, n = shape_elements(s.input_shapes[0]), group = s.group, inputs = s.inputs,
          elsewhere](RunState& st) {
    for (size_t i = 1; i < inputs.size(); ++i) {
      if (elsewhere[i] || !st.computed[inputs[i]]) continue;
      add_dot(n, st.values[inputs[0]], st.values[inputs[i]],
              arch_grad(group, static_cast<int>(i) - 1));
    }
    return true;
  };
}

// Batch norm: inference reads the running statistics; training saves the batch mean and
// variance in the step's state for the gradient step.
StepFn CudaPlan::build_batchnorm(const Step& s) {
  const BatchNormParams p = batchnorm_params(s);
  const int out = s.node;
  if (s.kind == StepKind::BatchNorm && !plan_.training)
    return [this, p, x = s.inputs[0], sc = s.weight, sh = s.bias, rm = s.running_mean,
            rv = s.running_var, out](RunState& st) {
      batchnorm_forward_inference(p, st.values[x], sc >= 0 ? st.param[sc] : nullptr,
                                  sh >= 0 ? st.param[sh] : nullptr, st.param[rm], st.param[rv],
                                  st.values[out], stream());
      return true;
    };
  reserve_state(s.state, 2 * p.c * sizeof(float));
  if (!s.region.empty()) return build_batchnorm_region(s);
  if (s.kind == StepKind::BatchNorm)
    return [this, p, stats = s.state, x = s.inputs[0], sc = s.weight, sh = s.bias,
            rm = s.running_mean, rv = s.running_var, out](RunState& st) {
      refuse_sync_batchnorm(st);
      float* mean = static_cast<float*>(state(stats));
      batchnorm_forward_training(p, st.values[x], sc >= 0 ? st.param[sc] : nullptr,
                                 sh >= 0 ? st.param[sh] : nullptr, st.values[out], mean, mean + p.c,
                                 st.param[rm], st.param[rv], stream());
      return true;
    };
  if (s.int_attr_or("from_output", 0))
    return [this, p, stats = s.state, dy = s.inputs[0], y = s.inputs[1], out](RunState& st) {
      refuse_sync_batchnorm(st);
      const float* mean = static_cast<const float*>(state(stats));
      batchnorm_backward_from_output(p, st.values[y], st.values[dy], mean + p.c, st.values[out],
                                     stream());
      return true;
    };
  return [this, p, stats = s.state, dy = s.inputs[0], x = s.inputs[1], sc = s.weight, sh = s.bias,
          out](RunState& st) {
    refuse_sync_batchnorm(st);
    const float* mean = static_cast<const float*>(state(stats));
    const bool affine = sc >= 0;
    batchnorm_backward(p, st.values[x], st.values[dy], mean, mean + p.c,
                       affine ? st.param[sc] : nullptr, st.values[out],
                       affine ? st.grad[sc] : nullptr, affine ? st.grad[sh] : nullptr, stream());
    return true;
  };
}

// A fused batch norm region (exec_plan.h, compiler/passes/fusion.h). BatchNorm: the
// training forward, then its activations as one generated kernel from the batch norm's
// output (stored when the gradient reads it, else in scratch). BatchNormGrad: the incoming
// gradient (an activation's gradient, or a mixed op candidate's share w * g) as a generated
// kernel into scratch, then the batch norm's gradient from it, and with region[2] the
// mixed op's d/dw for the candidate, sum(g * y).
StepFn CudaPlan::build_batchnorm_region(const Step& s) {
  const BatchNormParams p = batchnorm_params(s);
  const BatchNormProgram program = BatchNormProgram::of(plan_, s);
  if (program.forward) {
    const SubProgram tail = sub_program(s, 1, s.region.size());
    const int kernel = kernels_.add(tail.program);
    const int y = program.y;
    const bool y_stored = y >= 0;
    if (!y_stored) reserve_scratch(0, p.size());
    return [this, p, kernel, tail, s, y, y_stored, x = program.x](RunState& st) {
      refuse_sync_batchnorm(st);
      float* mean = static_cast<float*>(state(s.state));
      float* y_out = y_stored ? st.values[y] : scratch(0);
      batchnorm_forward_training(p, st.values[x], s.weight >= 0 ? st.param[s.weight] : nullptr,
                                 s.bias >= 0 ? st.param[s.bias] : nullptr, y_out, mean, mean + p.c,
                                 st.param[s.running_mean], st.param[s.running_var], stream());
      launch_program(kernel, tail, st, s, y_out, st.values[s.node], p.size());
      if (y_stored) st.computed[y] = 1;  // read by the backward pass
      return true;
    };
  }
  const bool activation = !program.prologue_op.empty();
  // The incoming gradient: the activation's gradient g * f'(x), or the share w * g (a
  // one-operand choice whose weight is the candidate's).
  SubProgram incoming = sub_program(s, 0, 1);
  if (!activation) {
    RegionOp share;
    share.kind = StepKind::Choice;
    share.operands = {0};
    incoming.program.ops = {share};
  }
  const int kernel = kernels_.add(incoming.program);
  reserve_scratch(0, p.size());
  return [this, p, kernel, incoming, activation, from_output = program.from_output, s,
          g = program.g, second = program.saved, group = program.share_group,
          index = program.share_index, product_group = program.product_group,
          product_index = program.product_index](RunState& st) {
    const float weight = activation ? 1.0f : st.choice_weights[group][index];
    const bool runs = weight != 0.0f;  // a candidate with weight 0 did not run
    if (runs) {
      refuse_sync_batchnorm(st);
      float* dy = scratch(0);
      if (activation)
        launch_program(kernel, incoming, st, s, nullptr, dy, p.size());
      else
        kernels_.launch(kernel, dy, {st.values[g]}, p.size(), ProgramRun{true, {weight}, {1}},
                        stream());
      const float* mean = static_cast<const float*>(state(s.state));
      if (from_output) {
        batchnorm_backward_from_output(p, st.values[second], dy, mean + p.c, st.values[s.node],
                                       stream());
      } else {
        const bool affine = s.weight >= 0;
        batchnorm_backward(p, st.values[second], dy, mean, mean + p.c,
                           affine ? st.param[s.weight] : nullptr, st.values[s.node],
                           affine ? st.grad[s.weight] : nullptr, affine ? st.grad[s.bias] : nullptr,
                           stream());
      }
    }
    // The mixed op's d/dw is taken for every candidate that ran, weight 0 included.
    if (product_group >= 0 && st.arch_grads)
      add_dot(p.size(), st.values[g], st.values[second], arch_grad(product_group, product_index));
    return runs;
  };
}

// Pooling: max pooling saves each output's argmax in the step's state for its gradient.
// A GlobalAvgPool region computes its activations (one generated kernel into scratch)
// before the mean.
StepFn CudaPlan::build_pooling(const Step& s) {
  const int out = s.node;
  if (s.kind == StepKind::GlobalAvgPool || s.kind == StepKind::GlobalAvgPoolGrad) {
    const Nchw x = nchw(s.fwd_in_shape);
    if (s.kind == StepKind::GlobalAvgPoolGrad)
      return [this, x, dy = s.inputs[0], out](RunState& st) {
        global_avg_pool_backward(x.n, x.c, x.h, x.w, st.values[dy], st.values[out], stream());
        return true;
      };
    if (s.region.empty())
      return [this, x, in = s.inputs[0], out](RunState& st) {
        global_avg_pool_forward(x.n, x.c, x.h, x.w, st.values[in], st.values[out], stream());
        return true;
      };
    pooled_activations(s);  // checks the region
    const SubProgram head = sub_program(s, 0, s.region.size() - 1);
    const int kernel = kernels_.add(head.program);
    reserve_scratch(0, x.n * x.c * x.h * x.w);
    return [this, x, kernel, head, s, out](RunState& st) {
      launch_program(kernel, head, st, s, nullptr, scratch(0), x.n * x.c * x.h * x.w);
      global_avg_pool_forward(x.n, x.c, x.h, x.w, scratch(0), st.values[out], stream());
      return true;
    };
  }
  const Pool2dParams p = pool_params(s);
  const bool max = s.int_attr("max") != 0;
  if (s.kind == StepKind::PoolGrad) {
    if (!max)
      return [this, p, dy = s.inputs[0], out](RunState& st) {
        avg_pool_backward(p, st.values[dy], st.values[out], stream());
        return true;
      };
    reserve_state(s.state, max_pool_workspace_bytes(p));
    return [this, p, argmax = s.state, dy = s.inputs[0], out](RunState& st) {
      max_pool_backward(p, st.values[dy], static_cast<const int32_t*>(state(argmax)),
                        st.values[out], stream());
      return true;
    };
  }
  if (!max)
    return [this, p, x = s.inputs[0], out](RunState& st) {
      avg_pool_forward(p, st.values[x], st.values[out], stream());
      return true;
    };
  // Inference keeps no argmax.
  const int argmax = s.state >= 0 ? reserve_state(s.state, max_pool_workspace_bytes(p)) : -1;
  return [this, p, argmax, x = s.inputs[0], out](RunState& st) {
    max_pool_forward(p, st.values[x], st.values[out],
                     argmax >= 0 ? static_cast<int32_t*>(state(argmax)) : nullptr, stream());
    return true;
  };
}

// Dropout draws each element's mask from the run's dropout seed, the forward node and the
// element's place in the global batch, as the CPU does (the same draws); its gradient draws
// them again. Drop path keeps or zeroes whole samples, p the op's or the run's.
StepFn CudaPlan::build_dropout(const Step& s) {
  const int out = s.node;
  const int64_t n = shape_elements(s.output_shape);
  const int64_t batch = s.output_shape[0];
  if (s.kind == StepKind::Dropout || s.kind == StepKind::DropoutGrad) {
    const double p = s.float_attr("p");
    return [this, n, batch, p, node = s.fwd_node, x = s.inputs[0], out](RunState& st) {
      dropout_apply(n, batch, p, st.dropout_seed, node, st.first_sample, st.values[x],
                    st.values[out], stream());
      return true;
    };
  }
  const int kept = reserve_state(s.state, static_cast<size_t>(batch));
  const double fixed = s.float_attr("p");
  const int64_t per_sample = n / batch;
  if (s.kind == StepKind::DropPath)
    return [this, batch, per_sample, fixed, kept, node = s.node, x = s.inputs[0]](RunState& st) {
      const double p = fixed >= 0 ? fixed : st.drop_path_prob;
      drop_path_forward(batch, per_sample, p, st.dropout_seed, node, st.first_sample, st.values[x],
                        st.values[node], static_cast<uint8_t*>(state(kept)), stream());
      return true;
    };
  return [this, batch, per_sample, fixed, kept, dy = s.inputs[0], out](RunState& st) {
    const double p = fixed >= 0 ? fixed : st.drop_path_prob;
    drop_path_backward(batch, per_sample, dropout_keep_scale(p),
                       static_cast<const uint8_t*>(state(kept)), st.values[dy], st.values[out],
                       stream());
    return true;
  };
}

// The loss steps: the forward also hands out the logits and adds the batch's loss and hits
// to the run's metrics on the device; aux_loss adds weight * its cross-entropy.
StepFn CudaPlan::build_loss(const Step& s) {
  const int out = s.node;
  double* scratch = static_cast<double*>(loss_scratch_->get());
  if (s.kind == StepKind::CrossEntropy)
    return
        [this, scratch, classes = s.input_shapes[0][1], logits = s.inputs[0], out](RunState& st) {
          cross_entropy_forward(classes, st.valid_samples, st.label_smoothing, st.values[logits],
                                st.labels, st.values[out], st.metrics, st.logits_out, scratch,
                                stream());
          return true;
        };
  if (s.kind == StepKind::CrossEntropyGrad)
    return [this, shape = s.input_shapes[0], logits = s.inputs[0], out](RunState& st) {
      plain::CrossEntropyParams p{shape[0], shape[1], st.label_smoothing};
      cross_entropy_backward(p, st.values[logits], st.labels, st.values[out], stream());
      return true;
    };
  const float weight = static_cast<float>(s.float_attr("weight"));
  if (s.kind == StepKind::AuxLoss)
    return
        [this, scratch, weight, classes = s.input_shapes[1][1], n = shape_elements(s.output_shape),
         x = s.inputs[0], logits = s.inputs[1], out](RunState& st) {
          aux_loss_forward(n, st.values[x], st.values[out], classes, st.valid_samples,
                           st.label_smoothing, weight, st.values[logits], st.labels, st.metrics,
                           scratch, stream());
          return true;
        };
  return [this, weight, shape = s.input_shapes[0], logits = s.inputs[0], out](RunState& st) {
    plain::CrossEntropyParams p{shape[0], shape[1], st.label_smoothing};
    aux_loss_backward(p, weight, st.values[logits], st.labels, st.values[out], stream());
    return true;
  };
}

}  // namespace

bool cuda_plan_supports(const Step& step) {
  return step.kind != StepKind::Recompute;
}

std::unique_ptr<PreparedPlan> make_cuda_plan(const ExecPlan& plan,
                                             std::shared_ptr<CudaContext> context) {
  return std::make_unique<CudaPlan>(plan, std::move(context));
}

}  // namespace nas::cuda
