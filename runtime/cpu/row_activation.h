// Activations applied row by row inside the kernels of fused regions
// (compiler/passes/fusion.h: batch norm's passes, global average pooling), while a row of
// their input is still in cache.
#pragma once

#include <cstdint>
#include <string>

namespace nas {

struct ElementwiseFn;

// One activation over a row (h*w contiguous values). ReLU has vectorised loops of its own;
// every other activation runs its scalar formula (support/elementwise_ops.h).
class RowActivation {
 public:
  // `op`: the activation's op name; `param`: its formula's attribute (leaky_relu's slope).
  RowActivation(const std::string& op, double param);
  // y = f(x); y may be x.
  void value(const float* x, float* y, int64_t n) const;
  // out = dy * f'(x).
  void grad(const float* dy, const float* x, float* out, int64_t n) const;
  // Whether this is ReLU, whose gradient kernels can inline (x > 0 ? dy : 0).
  bool is_relu() const { return relu_; }

 private:
  const ElementwiseFn* fn_;
  double param_;
  bool relu_;
};

}  // namespace nas
