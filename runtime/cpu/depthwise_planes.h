// The per-plane loops of the depthwise convolution (depthwise.h), compiled once per
// instruction set: depthwise_planes.inc holds them, and each depthwise_planes_<isa>.cpp
// includes it inside its own namespace with its own compiler flags (CMakeLists.txt).
// depthwise.cpp runs them over the planes of a batch and picks the copy the CPU can run.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nas::depthwise_planes {

// One plane's convolution: an h x w input, zero-padded by `pad` on every side, read by a
// kernel x kernel window with the given stride and dilation into out_h x out_w outputs.
struct PlaneGeometry {
  int64_t h = 1, w = 1, kernel = 1, stride = 1, pad = 0, dilation = 1, out_h = 1, out_w = 1;
};

// The scratch layout, shared by depthwise.cpp and the loops. These helpers have internal
// linkage (the unnamed namespace): an out-of-line copy compiled with -march=x86-64-v3 must
// not be the one the linker keeps for the baseline code too.
namespace {

// The loops work on groups of kLanes floats (one AVX register), in blocks of at most
// kRunGrain floats: runs are rounded up to a multiple of it, so no block is partial.
constexpr int64_t kLanes = 8;
constexpr int64_t kRunGrain = 64;

// The padded input plane in scratch, split into stride x stride phases: phase (a, b) holds
// the padded plane's rows a, a + stride, a + 2 * stride, ... and, of each, the columns b,
// b + stride, ... (with stride 1, the padded plane itself). A tap at padded row
// r * stride + o and column c * stride + q reads phase (o % stride, q % stride) at row
// r + o / stride and column c + q / stride, so the taps of consecutive outputs are
// consecutive floats, and consecutive output rows are one phase row apart.
inline int64_t phase_height(const PlaneGeometry& g) {
  return (g.h + 2 * g.pad + g.stride - 1) / g.stride;
}
inline int64_t phase_width(const PlaneGeometry& g) {
  return (g.w + 2 * g.pad + g.stride - 1) / g.stride;
}
inline int64_t phase_floats(const PlaneGeometry& g) {
  return phase_height(g) * phase_width(g);
}
// The phases, then kRunGrain zeros that the rounded-up runs below read past the last row.
inline int64_t phases_floats(const PlaneGeometry& g) {
  return g.stride * g.stride * phase_floats(g) + kRunGrain;
}
inline int64_t row_step(const PlaneGeometry& g) {
  return phase_width(g);
}
// The loops treat the outputs as one flat run with rows row_step(g) apart, so that each tap
// is one long multiply-add over the plane (a loop per row and tap costs more than its work
// on 8x8 planes). Output (r, c) is at r * row_step(g) + c; the columns from out_w to the row
// step, and the run's end up to a multiple of kRunGrain, are computed and dropped. Its
// length:
inline int64_t wide_floats(const PlaneGeometry& g) {
  const int64_t used = (g.out_h - 1) * row_step(g) + g.out_w;
  return (used + kRunGrain - 1) / kRunGrain * kRunGrain;
}
// Floats of scratch the loops below need for one plane of `g`: the phases, the wide run, and
// kLanes partial sums per tap.
inline size_t scratch_floats(const PlaneGeometry& g) {
  return static_cast<size_t>(phases_floats(g) + wide_floats(g) + g.kernel * g.kernel * kLanes);
}

}  // namespace

struct Loops {
  // out[r][c] = bias + sum over taps (kh, kw) of taps[kh * kernel + kw] times the padded
  // input at (r * stride + kh * dilation, c * stride + kw * dilation).
  // tap_offsets[t]: where tap t's reads for output row 0 start in the phases (row r's start
  // r * row_step(g) further).
  void (*correlate)(const PlaneGeometry& g, const int64_t* tap_offsets, const float* in,
                    const float* taps, float bias, float* out, float* scratch);
  // sums[kh * kernel + kw] += the sum over outputs (r, c) of gy[r][c] times the padded input
  // element that tap reads for (r, c): one plane's share of the weight gradient.
  void (*tap_products)(const PlaneGeometry& g, const int64_t* tap_offsets, const float* in,
                       const float* gy, double* sums, float* scratch);
};

namespace baseline {
extern const Loops loops;
}
#if defined(__x86_64__)
namespace x86_64_v3 {
extern const Loops loops;
}
#endif

}  // namespace nas::depthwise_planes
