// Fully connected layer on the CPU through oneDNN inner product: forward, backward-data and
// backward-weights on plain float buffers, primitives created once per signature and cached.
// Semantics follow the `linear` op and PyTorch's nn.Linear: x [n, in], weights [out, in],
// optional bias [out], y [n, out] = x * weights^T + bias.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

namespace nas {

struct LinearParams {
  int64_t n = 1, in = 1, out = 1;
  bool bias = true;

  int64_t input_size() const { return n * in; }
  int64_t weight_size() const { return out * in; }
  int64_t bias_size() const { return bias ? out : 0; }
  int64_t output_size() const { return n * out; }

  // An inconsistent field is an InternalError naming it: the backend fills these from
  // plans nasc lowered, so a bad one is a bug.
  void validate() const;
  // Identifies the primitives: equal keys <=> interchangeable kernels.
  std::string key() const;
};

// The three primitives of one linear signature; immutable and shared. All outputs are
// overwritten, never accumulated into.
class LinearKernel {
 public:
  explicit LinearKernel(const LinearParams& params);

  const LinearParams& params() const { return params_; }

  // y = x w^T + b. `b` is ignored (may be null) when params().bias is false.
  void forward(const float* x, const float* w, const float* b, float* y) const;
  // dx = dy w.
  void backward_data(const float* dy, const float* w, float* dx) const;
  // dw = dy^T x, and db = column sums of dy when params().bias (`db` may be null without).
  void backward_weights(const float* x, const float* dy, float* dw, float* db) const;

 private:
  LinearParams params_;
  dnnl::memory::desc src_md_, weights_md_, bias_md_, dst_md_;
  dnnl::inner_product_forward fwd_;
  dnnl::inner_product_backward_data bwd_data_;
  dnnl::inner_product_backward_weights bwd_weights_;
};

// The cached kernel for `params` (validated first); thread-safe, built once per signature.
std::shared_ptr<const LinearKernel> linear_kernel(const LinearParams& params);

// How many LinearKernel objects the cache has built since start-up.
std::size_t linear_kernels_created();

}  // namespace nas
