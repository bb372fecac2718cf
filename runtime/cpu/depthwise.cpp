#include "runtime/cpu/depthwise.h"

#include <algorithm>
#include <vector>

#include "runtime/cpu/depthwise_planes.h"
#include "support/errors.h"

namespace nas {
namespace {

using depthwise_planes::Loops;
using depthwise_planes::PlaneGeometry;

const Loops& loops_for(DepthwiseIsa isa) {
#if defined(__x86_64__)
  if (isa == DepthwiseIsa::X86_64_V3) return depthwise_planes::x86_64_v3::loops;
#endif
  NAS_CHECK(isa == DepthwiseIsa::Baseline,
            std::string("depthwise: no ") + depthwise_isa_name(isa) + " loops in this build");
  return depthwise_planes::baseline::loops;
}

// The level the x86-64-v3 copy is compiled for (-march=x86-64-v3), as a whole: GCC may
// emit any of its instructions (MOVBE and LZCNT as well as AVX2 and FMA), so checking a
// few features by name would not be enough.
bool cpu_has_x86_64_v3() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("x86-64-v3") != 0;
#else
  return false;
#endif
}

// Per-thread scratch for one plane, grown on demand and reused across calls.
float* plane_scratch(const PlaneGeometry& g) {
  thread_local std::vector<float> buffer;
  const size_t need = depthwise_planes::scratch_floats(g);
  if (buffer.size() < need) buffer.resize(need);
  return buffer.data();
}

// Per tap (kh * kernel + kw): where in the phases its reads for output row 0 start. Row r's
// start further by r * row_step(g). Computed once per call: the divisions by the stride
// would otherwise cost more than a small plane's multiply-adds.
std::vector<int64_t> tap_offsets(const PlaneGeometry& g) {
  std::vector<int64_t> out;
  const int64_t s = g.stride, width = depthwise_planes::phase_width(g);
  for (int64_t kh = 0; kh < g.kernel; ++kh)
    for (int64_t kw = 0; kw < g.kernel; ++kw) {
      const int64_t row = kh * g.dilation, column = kw * g.dilation;
      const int64_t phase = (row % s) * s + column % s;
      out.push_back(phase * depthwise_planes::phase_floats(g) + (row / s) * width + column / s);
    }
  return out;
}
PlaneGeometry forward_geometry(const Conv2dParams& p) {
  return {p.h, p.w, p.kernel, p.stride, p.pad, p.dilation, p.out_h(), p.out_w()};
}

// dx = the correlation of dy, zero-padded by (k - 1) * dilation - pad, with the filter
// turned by 180 degrees: true at stride 1, where every input row and column meets each tap
// once. Returns false where it does not apply.
bool backward_data_geometry(const Conv2dParams& p, PlaneGeometry& g) {
  const int64_t pad = (p.kernel - 1) * p.dilation - p.pad;
  if (p.stride != 1 || pad < 0) return false;
  // out_h + 2 * pad - (k - 1) * dilation is h again: the correlation's output is dx's plane.
  g = {p.out_h(), p.out_w(), p.kernel, 1, pad, p.dilation, p.h, p.w};
  return true;
}

// The output columns [lo, hi) whose input column ow*stride - pad + offset is inside [0, w).
void valid_columns(const Conv2dParams& p, int64_t offset, int64_t& lo, int64_t& hi) {
  const int64_t ow = p.out_w();
  lo = 0;
  while (lo < ow && lo * p.stride - p.pad + offset < 0) ++lo;
  hi = ow;
  while (hi > lo && (hi - 1) * p.stride - p.pad + offset >= p.w) --hi;
}

// Backward data at a stride above 1 (reduction cells): each output gradient row scattered
// into the input rows its taps read, row[col * stride] += tap * grow[col]. Distinct
// columns write distinct elements, so `omp simd` may vectorise it.
void scatter_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx) {
  const int64_t oh = p.out_h(), ow = p.out_w(), k = p.kernel;
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < p.n * p.c_in; ++plane) {
    const int64_t c = plane % p.c_in;
    float* out = dx + plane * p.h * p.w;
    const float* g = dy + plane * oh * ow;
    std::fill(out, out + p.h * p.w, 0.0f);
    for (int64_t kh = 0; kh < k; ++kh)
      for (int64_t kw = 0; kw < k; ++kw) {
        const float tap = w[(c * k + kh) * k + kw];
        int64_t lo, hi;
        valid_columns(p, kw * p.dilation, lo, hi);
        for (int64_t r = 0; r < oh; ++r) {
          const int64_t ih = r * p.stride - p.pad + kh * p.dilation;
          if (ih < 0 || ih >= p.h) continue;
          float* row = out + ih * p.w - p.pad + kw * p.dilation;
          const float* grow = g + r * ow;
#pragma omp simd
          for (int64_t col = lo; col < hi; ++col) row[col * p.stride] += tap * grow[col];
        }
      }
  }
}

// Runs loops.correlate on each of the n x channels planes of `in` (g.h x g.w each) into
// `out` (g.out_h x g.out_w each), channel c with taps[c * k * k ...] and bias[c] (0 without
// a bias).
void correlate_planes(const Loops& loops, const PlaneGeometry& g, int64_t n, int64_t channels,
                      const float* in, const float* taps, const float* bias, float* out) {
  const std::vector<int64_t> offsets = tap_offsets(g);
  const int64_t k2 = g.kernel * g.kernel, in_plane = g.h * g.w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < n * channels; ++plane) {
    const int64_t c = plane % channels;
    loops.correlate(g, offsets.data(), in + plane * in_plane, taps + c * k2, bias ? bias[c] : 0.0f,
                    out + plane * out_plane, plane_scratch(g));
  }
}

void check_depthwise(const Conv2dParams& p) {
  NAS_CHECK(is_depthwise(p), "depthwise loops on a non-depthwise signature: " + p.key());
}

}  // namespace

bool is_depthwise(const Conv2dParams& p) {
  return p.groups == p.c_in && p.c_out == p.c_in;
}

const char* depthwise_isa_name(DepthwiseIsa isa) {
  return isa == DepthwiseIsa::X86_64_V3 ? "x86-64-v3" : "baseline";
}

DepthwiseIsa depthwise_isa() {
  static const DepthwiseIsa best =
      cpu_has_x86_64_v3() ? DepthwiseIsa::X86_64_V3 : DepthwiseIsa::Baseline;
  return best;
}

std::vector<DepthwiseIsa> depthwise_isas_runnable() {
  std::vector<DepthwiseIsa> out{DepthwiseIsa::Baseline};
  if (depthwise_isa() == DepthwiseIsa::X86_64_V3) out.push_back(DepthwiseIsa::X86_64_V3);
  return out;
}

void depthwise_forward(const Conv2dParams& p, const float* x, const float* w, const float* b,
                       float* y, DepthwiseIsa isa) {
  check_depthwise(p);
  correlate_planes(loops_for(isa), forward_geometry(p), p.n, p.c_in, x, w, p.bias ? b : nullptr, y);
}

void depthwise_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx,
                             DepthwiseIsa isa) {
  check_depthwise(p);
  PlaneGeometry g;
  if (!backward_data_geometry(p, g)) return scatter_backward_data(p, dy, w, dx);
  const int64_t k2 = p.kernel * p.kernel;
  std::vector<float> turned(p.c_in * k2);
  for (int64_t c = 0; c < p.c_in; ++c)
    for (int64_t t = 0; t < k2; ++t) turned[c * k2 + t] = w[c * k2 + (k2 - 1 - t)];
  correlate_planes(loops_for(isa), g, p.n, p.c_in, dy, turned.data(), nullptr, dx);
}

// One channel per task, its planes in batch order, so the weight gradient's sums do not
// depend on the thread count.
void depthwise_backward_weights(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                                float* db, DepthwiseIsa isa) {
  check_depthwise(p);
  const Loops& loops = loops_for(isa);
  const PlaneGeometry g = forward_geometry(p);
  const std::vector<int64_t> offsets = tap_offsets(g);
  const int64_t k2 = p.kernel * p.kernel, in_plane = p.h * p.w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < p.c_in; ++c) {
    std::vector<double> sums(k2, 0.0);
    double bias_sum = 0;
    for (int64_t n = 0; n < p.n; ++n) {
      const int64_t plane = n * p.c_in + c;
      const float* gy = dy + plane * out_plane;
      loops.tap_products(g, offsets.data(), x + plane * in_plane, gy, sums.data(),
                         plane_scratch(g));
      if (p.bias && db) {
        float part = 0;
#pragma omp simd reduction(+ : part)
        for (int64_t i = 0; i < out_plane; ++i) part += gy[i];
        bias_sum += part;
      }
    }
    for (int64_t t = 0; t < k2; ++t) dw[c * k2 + t] = static_cast<float>(sums[t]);
    if (p.bias && db) db[c] = static_cast<float>(bias_sum);
  }
}

}  // namespace nas
