#include "runtime/optim/grad_clip.h"

#include <cmath>
#include <string>

#include "support/errors.h"

namespace nas {

double clip_grad_norm(const std::vector<GradSpan>& grads, double max_norm) {
  NAS_CHECK(std::isfinite(max_norm) && max_norm > 0,
            "grad_clip: max_norm must be a finite number > 0, got " + std::to_string(max_norm));
  double sq = 0;
  for (const auto& g : grads)
    for (size_t i = 0; i < g.size; ++i) sq += static_cast<double>(g.data[i]) * g.data[i];
  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm)) return norm;
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1) {
    const float s = static_cast<float>(scale);
    for (const auto& g : grads)
      for (size_t i = 0; i < g.size; ++i) g.data[i] *= s;
  }
  return norm;
}

}  // namespace nas
