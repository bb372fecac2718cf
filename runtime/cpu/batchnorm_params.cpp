#include "runtime/cpu/batchnorm_params.h"

#include <fmt/format.h>

#include <cmath>

#include "support/errors.h"

namespace nas {

void BatchNormParams::validate() const {
  auto fail = [](const std::string& msg) {
    internal_error(__FILE__, __LINE__, "batchnorm: " + msg);
  };
  if (n < 1 || c < 1 || h < 1 || w < 1)
    fail(fmt::format("sizes must be positive, got n={} c={} h={} w={}", n, c, h, w));
  if (!(eps > 0) || !std::isfinite(eps)) fail(fmt::format("eps must be > 0, got {}", eps));
  if (!(momentum >= 0 && momentum <= 1))
    fail(fmt::format("momentum must be in [0, 1], got {}", momentum));
}

std::string BatchNormParams::key() const {
  return fmt::format("batchnorm n{} c{} h{} w{} a{} eps{} m{}", n, c, h, w, affine ? 1 : 0,
                     static_cast<float>(eps), momentum);
}

}  // namespace nas
