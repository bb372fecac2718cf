#include "runtime/cpu/pointwise.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <vector>

#include "support/errors.h"

namespace nas {
namespace {

void check_pointwise(const Conv2dParams& p) {
  p.validate();
  NAS_CHECK(is_pointwise(p), "pointwise: not a 1x1 convolution without padding: " + p.key());
}

// Per-thread scratch for one sample's strided input, grown on demand and reused.
float* sample_scratch(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < static_cast<size_t>(floats)) buffer.resize(floats);
  return buffer.data();
}

// Sample n's input as the product reads it, [c_in, out_h * out_w]: its own planes at
// stride 1, else the pixels the 1x1 window visits (every stride-th row and column),
// gathered into scratch.
const float* sampled_input(const Conv2dParams& p, const float* x, int64_t n) {
  const float* planes = x + n * p.c_in * p.h * p.w;
  if (p.stride == 1) return planes;
  const int64_t oh = p.out_h(), ow = p.out_w();
  float* out = sample_scratch(p.c_in * oh * ow);
  for (int64_t c = 0; c < p.c_in; ++c)
    for (int64_t r = 0; r < oh; ++r) {
      const float* row = planes + (c * p.h + r * p.stride) * p.w;
      float* to = out + (c * oh + r) * ow;
      for (int64_t col = 0; col < ow; ++col) to[col] = row[col * p.stride];
    }
  return out;
}

// C [m, n] = A [m, k] * B [k, n] (+ C when accumulate), row-major, A read transposed when
// `transpose_a` (then A is stored [k, m]), B when `transpose_b` (stored [n, k]). oneDNN's
// sgemm runs on the calling thread when called inside a parallel region. Returns false if
// oneDNN refused the call: the callers run inside parallel loops, out of which nothing may
// throw, and report it after the loop (check_products).
bool sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
           const float* b, float* c, bool accumulate) {
  const int64_t lda = transpose_a ? m : k, ldb = transpose_b ? k : n;
  return dnnl_sgemm(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb,
                    accumulate ? 1.0f : 0.0f, c, n) == dnnl_success;
}

void check_products(int64_t failed, const Conv2dParams& p) {
  NAS_CHECK(failed == 0, "pointwise: oneDNN's sgemm refused a product of " + p.key());
}

// The weight gradient's samples are summed in groups of this many, each group's sum kept
// apart until the groups are added in order: enough groups to spread over the threads, few
// enough that their partial sums stay small.
constexpr int64_t kSamplesPerGroup = 4;

}  // namespace

bool is_pointwise(const Conv2dParams& p) {
  return p.kernel == 1 && p.pad == 0 && p.groups == 1;
}

void pointwise_forward(const Conv2dParams& p, const float* x, const float* w, const float* b,
                       float* y) {
  check_pointwise(p);
  const int64_t plane = p.out_h() * p.out_w();
  int64_t failed = 0;
#pragma omp parallel for schedule(static) reduction(+ : failed)
  for (int64_t n = 0; n < p.n; ++n) {
    float* out = y + n * p.c_out * plane;
    failed += !sgemm(false, false, p.c_out, plane, p.c_in, w, sampled_input(p, x, n), out, false);
    if (!p.bias) continue;
    for (int64_t c = 0; c < p.c_out; ++c) {
      const float bias = b[c];
      float* row = out + c * plane;
#pragma omp simd
      for (int64_t i = 0; i < plane; ++i) row[i] += bias;
    }
  }
  check_products(failed, p);
}

void pointwise_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx) {
  check_pointwise(p);
  const int64_t plane = p.out_h() * p.out_w(), in_plane = p.h * p.w;
  int64_t failed = 0;
#pragma omp parallel for schedule(static) reduction(+ : failed)
  for (int64_t n = 0; n < p.n; ++n) {
    float* grad = dx + n * p.c_in * in_plane;
    if (p.stride == 1) {
      failed +=
          !sgemm(true, false, p.c_in, plane, p.c_out, w, dy + n * p.c_out * plane, grad, false);
      continue;
    }
    // At a stride the product's [c_in, out_h * out_w] lands on the visited pixels; the
    // others get no gradient.
    const int64_t oh = p.out_h(), ow = p.out_w();
    float* sampled = sample_scratch(p.c_in * plane);
    failed +=
        !sgemm(true, false, p.c_in, plane, p.c_out, w, dy + n * p.c_out * plane, sampled, false);
    std::fill(grad, grad + p.c_in * in_plane, 0.0f);
    for (int64_t c = 0; c < p.c_in; ++c)
      for (int64_t r = 0; r < oh; ++r) {
        float* row = grad + (c * p.h + r * p.stride) * p.w;
        const float* from = sampled + (c * oh + r) * ow;
        for (int64_t col = 0; col < ow; ++col) row[col * p.stride] = from[col];
      }
  }
  check_products(failed, p);
}

void pointwise_backward_weights(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                                float* db) {
  check_pointwise(p);
  const int64_t plane = p.out_h() * p.out_w(), weights = p.c_out * p.c_in;
  const int64_t groups = (p.n + kSamplesPerGroup - 1) / kSamplesPerGroup;
  // oneDNN's sgemm ran this product 1.5-5x faster with the larger side of the result as
  // its rows (48 -> 16 at 32x32: 0.6 ms against 2.9 ms), so the partial sums hold dw^T
  // [c_in, c_out] when there are more input channels.
  const bool transposed = p.c_in > p.c_out;
  std::vector<float> partial(groups * weights);
  std::vector<double> bias_partial(p.bias ? groups * p.c_out : 0);
  int64_t failed = 0;
#pragma omp parallel for schedule(static) reduction(+ : failed)
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t first = g * kSamplesPerGroup, last = std::min(p.n, first + kSamplesPerGroup);
    for (int64_t n = first; n < last; ++n) {
      const float* gy = dy + n * p.c_out * plane;
      const float* in = sampled_input(p, x, n);
      float* sum = partial.data() + g * weights;
      failed += transposed ? !sgemm(false, true, p.c_in, p.c_out, plane, in, gy, sum, n > first)
                           : !sgemm(false, true, p.c_out, p.c_in, plane, gy, in, sum, n > first);
      if (!p.bias) continue;
      for (int64_t c = 0; c < p.c_out; ++c) {
        float row_sum = 0;
#pragma omp simd reduction(+ : row_sum)
        for (int64_t i = 0; i < plane; ++i) row_sum += gy[c * plane + i];
        bias_partial[g * p.c_out + c] += row_sum;
      }
    }
  }
  check_products(failed, p);
  for (int64_t o = 0; o < p.c_out; ++o)
    for (int64_t i = 0; i < p.c_in; ++i) {
      const int64_t at = transposed ? i * p.c_out + o : o * p.c_in + i;
      float sum = partial[at];
      for (int64_t g = 1; g < groups; ++g) sum += partial[g * weights + at];
      dw[o * p.c_in + i] = sum;
    }
  if (!p.bias || !db) return;
  for (int64_t c = 0; c < p.c_out; ++c) {
    double sum = 0;
    for (int64_t g = 0; g < groups; ++g) sum += bias_partial[g * p.c_out + c];
    db[c] = static_cast<float>(sum);
  }
}

}  // namespace nas
