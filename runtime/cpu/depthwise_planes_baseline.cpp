// The depthwise plane loops for the build's own target (SSE2 on x86-64): the copy every CPU
// can run.
#include <cstring>

#include "runtime/cpu/depthwise_planes.h"

namespace nas::depthwise_planes::baseline {
#include "runtime/cpu/depthwise_planes.inc"
}  // namespace nas::depthwise_planes::baseline
