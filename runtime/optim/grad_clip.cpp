#include "runtime/optim/grad_clip.h"

#include <cmath>
#include <string>

#include "support/errors.h"

namespace nas {

double clip_grad_norm(Backend& backend, const std::vector<DeviceBuffer*>& grads, double max_norm) {
  NAS_CHECK(std::isfinite(max_norm) && max_norm > 0,
            "grad_clip: max_norm must be a finite number > 0, got " + std::to_string(max_norm));
  const std::vector<const DeviceBuffer*> read(grads.begin(), grads.end());
  const double norm = std::sqrt(backend.sum_squares(read));
  if (!std::isfinite(norm)) return norm;
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1)
    for (DeviceBuffer* g : grads) backend.scale(*g, static_cast<float>(scale));
  return norm;
}

}  // namespace nas
