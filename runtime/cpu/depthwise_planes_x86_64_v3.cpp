// The depthwise plane loops for x86-64-v3 (AVX2, FMA): CMakeLists.txt compiles this file
// with -march=x86-64-v3, and depthwise.cpp calls it only on a CPU that has those features.
#include <cstring>

#include "runtime/cpu/depthwise_planes.h"

#if defined(__x86_64__)
namespace nas::depthwise_planes::x86_64_v3 {
#include "runtime/cpu/depthwise_planes.inc"
}  // namespace nas::depthwise_planes::x86_64_v3
#endif
