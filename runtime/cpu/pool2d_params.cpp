#include "runtime/cpu/pool2d_params.h"

#include <fmt/format.h>

#include "support/errors.h"

namespace nas {

void Pool2dParams::validate() const {
  auto fail = [](const std::string& msg) { internal_error(__FILE__, __LINE__, "pool2d: " + msg); };
  if (n < 1 || c < 1 || h < 1 || w < 1)
    fail(fmt::format("sizes must be positive, got n={} c={} h={} w={}", n, c, h, w));
  if (kernel < 1 || stride < 0 || pad < 0)
    fail(fmt::format("bad window kernel={} stride={} pad={}", kernel, stride, pad));
  // Beyond kernel/2 a window could hold only padding: max would be -inf, avg undefined.
  if (pad > kernel / 2) fail(fmt::format("pad={} exceeds kernel/2 = {}", pad, kernel / 2));
  if (h + 2 * pad < kernel || w + 2 * pad < kernel)
    fail(fmt::format("kernel {} does not fit the padded {}x{} input", kernel, h + 2 * pad,
                     w + 2 * pad));
}

std::string Pool2dParams::key() const {
  return fmt::format("pool2d {} n{} c{} h{} w{} k{} s{} p{} i{}",
                     kind == PoolKind::max ? "max" : "avg", n, c, h, w, kernel, effective_stride(),
                     pad, kind == PoolKind::avg && count_include_pad ? 1 : 0);
}

}  // namespace nas
