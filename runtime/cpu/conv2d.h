// 2-D convolution on the CPU through oneDNN: forward, backward-data and backward-weights on
// plain NCHW float buffers, with primitives created once per signature and cached.
// Depthwise signatures run nasc's own loops (depthwise.h) for the passes where those are
// faster, and 1x1 signatures matrix products on the NCHW planes (pointwise.h)
// (Conv2dKernel::Code).
// Semantics follow the `conv`/`dwconv` ops: square kernel, symmetric zero padding, floor
// output size, weights [c_out, c_in/groups, k, k] (PyTorch layout), optional bias [c_out].
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"

namespace nas {

struct Conv2dParams {
  int64_t n = 1, c_in = 1, h = 1, w = 1, c_out = 1;
  int64_t kernel = 1, stride = 1, pad = 0;
  int64_t dilation = 1;  // user sense: 1 = dense taps (oneDNN counts the gap, dilation - 1)
  int64_t groups = 1;
  bool bias = false;

  int64_t out_h() const;
  int64_t out_w() const;
  int64_t input_size() const { return n * c_in * h * w; }
  int64_t weight_size() const { return c_out * (c_in / groups) * kernel * kernel; }
  int64_t bias_size() const { return bias ? c_out : 0; }
  int64_t output_size() const { return n * c_out * out_h() * out_w(); }

  // An inconsistent field is an InternalError naming it: the backend fills these from
  // plans nasc lowered, so a bad one is a bug.
  void validate() const;
  // Identifies the primitives: equal keys <=> interchangeable kernels.
  std::string key() const;
};

// A conv or dwconv step's (or its gradients') shape and attributes, over its forward input.
Conv2dParams conv_params(const Step& s);

// The three primitives of one convolution signature. Immutable once built, so one instance
// is shared by every caller with the same signature. All outputs are overwritten, never
// accumulated into (gradient accumulation is the executor's business).
class Conv2dKernel {
 public:
  // Which code runs each pass. By default (Fastest):
  //   - a depthwise signature runs nasc's loops (depthwise.h) where oneDNN would fall back
  //     to GEMM or a reference loop, and where they beat its JIT kernel (the forward and
  //     data passes on planes of 32x32 or more at stride 1), oneDNN's primitive elsewhere;
  //   - a pointwise signature (1x1, no padding, one group: pointwise.h) runs its forward
  //     and data passes as matrix products on its NCHW planes, which need none of the
  //     reorders oneDNN's blocked 1x1 kernels do, and its weight gradient too where that
  //     was faster (pointwise_weights_beat_primitive in conv2d.cpp);
  //   - every other signature runs oneDNN's primitives.
  // Nasc and OneDnn force one or the other where nasc has code for the signature (the
  // tests and bench/depthwise_conv.cpp, bench/pointwise_conv.cpp compare them).
  enum class Code { Fastest, Nasc, OneDnn };
  explicit Conv2dKernel(const Conv2dParams& params, Code code = Code::Fastest);

  // Whether each pass runs nasc's own code rather than a oneDNN primitive.
  bool nasc_forward() const { return nasc_forward_; }
  bool nasc_backward_data() const { return nasc_backward_data_; }
  bool nasc_backward_weights() const { return nasc_backward_weights_; }

  const Conv2dParams& params() const { return params_; }

  // y = conv(x, w) + b. `b` is ignored (may be null) when params().bias is false.
  void forward(const float* x, const float* w, const float* b, float* y) const;
  // dx = d(loss)/dx given dy = d(loss)/dy.
  void backward_data(const float* dy, const float* w, float* dx) const;
  // dw (and db when params().bias) from x and dy. `db` may be null without bias.
  void backward_weights(const float* x, const float* dy, float* dw, float* db) const;

  // A user buffer in plain layout and the layout a primitive chose for it, with the
  // reorders between them (unused when they are the same).
  struct Staged {
    Staged() = default;
    Staged(const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen);
    dnnl::memory::desc plain, chosen;
    dnnl::reorder to_chosen, to_plain;
    bool same = true;
  };

 private:
  Conv2dParams params_;
  bool nasc_forward_ = false, nasc_backward_data_ = false, nasc_backward_weights_ = false;
  dnnl::memory::desc src_md_, weights_md_, bias_md_, dst_md_;
  dnnl::convolution_forward fwd_;
  dnnl::convolution_backward_data bwd_data_;
  dnnl::convolution_backward_weights bwd_weights_;
  Staged fwd_src_, fwd_weights_, fwd_dst_;
  Staged bd_diff_dst_, bd_weights_, bd_diff_src_;
  Staged bw_src_, bw_diff_dst_, bw_diff_weights_;
};

// What a conv epilogue (compiler/passes/fusion.h; exec_plan.h, RegionOp) applies to the
// convolution's output at inference, after the batch norm the caller folds into the
// weights and bias.
struct ConvEpilogueOp {
  enum class Kind { Activation, Add };
  Kind kind = Kind::Activation;
  std::string op;    // Activation: the op ("relu6")
  double param = 0;  // Activation: its formula's attribute (leaky_relu's slope)
};
struct ConvEpilogue {
  bool batchnorm = false;  // a folded batch norm: per-channel weight scales and a bias
  std::vector<ConvEpilogueOp> ops;
  // Channels-last (NHWC) rather than NCHW: the input, the output, the add's other operand
  // (compiler/passes/layout.h).
  bool src_nhwc = false, dst_nhwc = false, other_nhwc = false;
  std::string key() const;
};

// A convolution at inference with its epilogue in the same pass over the output: the batch
// norm folded into the weights (scaled per output channel) and the bias, activations and
// the add as oneDNN post-ops (eltwise, sum). An activation oneDNN has no algorithm for makes
// the whole epilogue run as loops over the output after the convolution instead.
//
// The weights are prepared apart from the run (scaled, reordered into the primitive's
// layout), so that a caller runs many inferences on one preparation while the parameters
// stay unchanged: at batch 1 the reorder alone cost more than the convolutions.
class Conv2dEpilogueKernel {
 public:
  Conv2dEpilogueKernel(const Conv2dParams& params, const ConvEpilogue& epilogue);

  const Conv2dParams& params() const { return params_; }
  // Whether oneDNN applies the epilogue (false: loops after the convolution).
  bool uses_post_ops() const { return post_ops_; }
  // Whether forward reads a bias: the convolution's own, or the folded batch norm's.
  bool has_bias() const { return has_bias_; }

  // Floats of the prepared weights.
  size_t prepared_weights_size() const;
  // prepared = reorder(w * channel_scale[o] per output channel o). channel_scale ([c_out])
  // must be given exactly when the epilogue has a batch norm.
  void prepare_weights(const float* w, const float* channel_scale, float* prepared) const;
  // y = epilogue(conv(x, prepared) + bias). bias ([c_out]) is read when has_bias(); `other`
  // is the add's operand (null without an add).
  void forward(const float* x, const float* prepared, const float* bias, const float* other,
               float* y) const;

 private:
  void run_epilogue_loops(const float* other, float* y) const;

  Conv2dParams params_;
  ConvEpilogue epilogue_;
  bool post_ops_ = false;
  bool has_add_ = false;
  bool has_bias_ = false;
  dnnl::memory::desc weights_md_, bias_md_;
  dnnl::convolution_forward fwd_;
  Conv2dKernel::Staged src_, weights_, dst_;
  // The add's operand into the output's layout (the sum post-op's starting value, or the
  // loops' operand); none when it already has that layout.
  dnnl::memory::desc other_md_;
  dnnl::reorder other_to_dst_, other_to_plain_dst_;
};

std::shared_ptr<const Conv2dEpilogueKernel> conv2d_epilogue_kernel(const Conv2dParams& params,
                                                                   const ConvEpilogue& epilogue);

// The cached kernel for `params` (validated first), built on the first request for its
// signature. Thread-safe: concurrent first requests build it once.
std::shared_ptr<const Conv2dKernel> conv2d_kernel(const Conv2dParams& params);

// How many Conv2dKernel objects the cache has built since start-up; lets tests check that
// primitives are created once per signature.
std::size_t conv2d_kernels_created();

}  // namespace nas
