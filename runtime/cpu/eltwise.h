// Elementwise activations on the CPU through oneDNN, forward and backward (from the source)
// on contiguous float buffers, primitives created once per signature and cached. Semantics
// follow the activation ops of the op registry (PyTorch's definitions):
//   relu         max(x, 0)
//   relu6        min(max(x, 0), 6)
//   leaky_relu   x if x > 0 else slope * x
//   sigmoid      1 / (1 + exp(-x))
//   hard_swish   x * relu6(x + 3) / 6
//   hard_sigmoid relu6(x + 3) / 6
// At the kinks (0 for relu/leaky_relu, 0 and 6 for relu6, -3 and 3 for the hard ops) the
// gradient is a one-sided derivative chosen by oneDNN; it may differ from PyTorch's choice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nas {

enum class EltwiseKind { relu, relu6, leaky_relu, sigmoid, hard_swish, hard_sigmoid };

// The op name of `kind` ("relu", "hard_swish", ...).
const char* eltwise_name(EltwiseKind kind);
// The oneDNN kernel of activation op `op`, or nullopt when oneDNN has no algorithm for it:
// the backend then runs the generic kernel over the op's scalar formula
// (support/elementwise_ops.h, plain::elementwise_forward).
std::optional<EltwiseKind> eltwise_kind_of(std::string_view op);

// The oneDNN eltwise algorithms (with their alpha and beta) that compute activation `kind`'s
// forward in order: one, or two for hard_sigmoid (an affine map, then a clip). Convolution
// epilogues append them as post-ops.
struct EltwiseAlgorithm {
  dnnl::algorithm alg;
  float alpha = 0, beta = 0;
};
std::vector<EltwiseAlgorithm> eltwise_forward_algorithms(EltwiseKind kind, double slope);

struct EltwiseParams {
  EltwiseKind kind = EltwiseKind::relu;
  int64_t size = 1;     // number of elements (the op is shape-agnostic)
  double slope = 0.01;  // leaky_relu only; ignored (and not part of the key) otherwise

  // An inconsistent field is an InternalError naming it: the backend fills these from
  // plans nasc lowered, so a bad one is a bug.
  void validate() const;
  // Identifies the primitives: equal keys <=> interchangeable kernels.
  std::string key() const;
};

// Forward and backward primitives of one activation signature; immutable and shared.
// Outputs are overwritten. Forward may run in place (y == x); backward may run in place on
// the gradient (dx == dy) but x must stay intact.
class EltwiseKernel {
 public:
  explicit EltwiseKernel(const EltwiseParams& params);

  const EltwiseParams& params() const { return params_; }

  void forward(const float* x, float* y) const;
  // dx = dy * f'(x), computed from the forward's input x.
  void backward(const float* x, const float* dy, float* dx) const;

 private:
  EltwiseParams params_;
  dnnl::memory::desc md_;
  // hard_sigmoid has no oneDNN algorithm in 2.6: forward is the affine map x / 6 + 1/2
  // (fwd_) then clip to [0, 1] in place (post_fwd_); backward is the affine map's gradient
  // (post_bwd_) then the mask of clip(x, -3, 3) (bwd_), in place on dx. The other kinds
  // leave post_fwd_/post_bwd_ empty.
  dnnl::eltwise_forward fwd_, post_fwd_;
  dnnl::eltwise_backward bwd_, post_bwd_;
  bool has_post_ = false;
};

// The cached kernel for `params` (validated first); thread-safe, built once per signature.
std::shared_ptr<const EltwiseKernel> eltwise_kernel(const EltwiseParams& params);

// How many EltwiseKernel objects the cache has built since start-up.
std::size_t eltwise_kernels_created();

}  // namespace nas
