// 2-D convolution on the CPU through oneDNN: forward, backward-data and backward-weights on
// plain NCHW float buffers, with primitives created once per signature and cached.
// Semantics follow the `conv`/`dwconv` ops: square kernel, symmetric zero padding, floor
// output size, weights [c_out, c_in/groups, k, k] (PyTorch layout), optional bias [c_out].
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

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

// The three primitives of one convolution signature. Immutable once built, so one instance
// is shared by every caller with the same signature. All outputs are overwritten, never
// accumulated into (gradient accumulation is the executor's business).
class Conv2dKernel {
 public:
  explicit Conv2dKernel(const Conv2dParams& params);

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
  dnnl::memory::desc src_md_, weights_md_, bias_md_, dst_md_;
  dnnl::convolution_forward fwd_;
  dnnl::convolution_backward_data bwd_data_;
  dnnl::convolution_backward_weights bwd_weights_;
  Staged fwd_src_, fwd_weights_, fwd_dst_;
  Staged bd_diff_dst_, bd_weights_, bd_diff_src_;
  Staged bw_src_, bw_diff_dst_, bw_diff_weights_;
};

// The cached kernel for `params` (validated first), built on the first request for its
// signature. Thread-safe: concurrent first requests build it once.
std::shared_ptr<const Conv2dKernel> conv2d_kernel(const Conv2dParams& params);

// How many Conv2dKernel objects the cache has built since start-up; lets tests check that
// primitives are created once per signature.
std::size_t conv2d_kernels_created();

}  // namespace nas
