#include "runtime/cpu/row_activation.h"

#include "support/elementwise_ops.h"
#include "support/errors.h"

namespace nas {

RowActivation::RowActivation(const std::string& op, double param)
    : fn_(find_elementwise(op)), param_(param), relu_(op == "relu") {
  if (!fn_) internal_error(__FILE__, __LINE__, "fused region: no element-wise formula for " + op);
}

void RowActivation::value(const float* x, float* y, int64_t n) const {
  if (relu_) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(fn_->value(x[i], param_));
}

void RowActivation::grad(const float* dy, const float* x, float* out, int64_t n) const {
  if (relu_) {
    // dy is loaded whatever x is: a load under the condition would not vectorise, and the
    // branch it needs mispredicts on about half the elements.
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float d = dy[i];
      out[i] = x[i] > 0.0f ? d : 0.0f;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(dy[i] * fn_->derivative(x[i], param_));
}

}  // namespace nas
