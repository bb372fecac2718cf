#include "runtime/cpu/sync_batchnorm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/dist/collectives.h"
#include "support/errors.h"

namespace nas {
namespace {

// Channel `ch` of an NCHW buffer is one contiguous row of h*w values per sample; the loops
// below walk those rows, so each inner loop is a plain vectorisable span.
int64_t row_offset(const BatchNormParams& p, int64_t sample, int64_t ch) {
  return (sample * p.c + ch) * p.h * p.w;
}

// Small layers stay on the calling thread: a parallel region costs more than they do.
bool worth_threads(const BatchNormParams& p) {
  return p.size() > kBatchNormParallelMin;
}

float inv_std(const BatchNormParams& p, float var) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + p.eps));
}

[[noreturn]] void fail(const std::string& msg) {
  internal_error(__FILE__, __LINE__, "sync batchnorm: " + msg);
}

// The global count per channel from a summed local count, which must allow an unbiased
// variance (as BatchNormKernel::forward_training requires of its own batch).
double global_count(const BatchNormParams& p, double summed) {
  if (summed < 2)
    fail(
        fmt::format("training needs more than one value per channel over all ranks, got {} "
                    "(this rank: n={} h={} w={})",
                    summed, p.n, p.h, p.w));
  return summed;
}

// dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)) with the means over the
// global batch, where xhat = (src - center) * spread per channel: center = the batch mean
// and spread = invstd when src is the input x, center 0 and spread 1 when src is the output
// of a batch norm without scale and shift (which is xhat itself, bit for bit).
//
// Why the local dx is this formula with GLOBAL means, and dscale/dshift LOCAL sums: the
// global loss is L = (1/N) sum_r L_r, the mean over the N ranks of each rank's mean loss,
// and rank r's upstream gradient is g = dL_r/dy. With G = g/N the true dL/dy, the usual
// batch-norm backward over the global batch gives dL/dx = (1/N) * (the formula above), so
// this rank's dx is N times its share; every parameter gradient computed from it upstream
// is N times this rank's contribution, and the gradient sync's average over the ranks
// (divide by N) turns their sum into the exact global gradient. Likewise dL/dscale =
// sum over all samples of G * xhat = (1/N) sum_r (local sum of g * xhat): the average of
// the local sums, which is what the same sync makes of them.
void backward(const BatchNormParams& p, Collectives& collectives, const float* src,
              bool src_is_xhat, const float* dy, const float* mean, const float* var,
              const float* scale, float* dx, float* dscale, float* dshift) {
  const int64_t c = p.c, inner = p.h * p.w;
  auto center = [&](int64_t ch) { return src_is_xhat ? 0.0f : mean[ch]; };
  auto spread = [&](int64_t ch) { return src_is_xhat ? 1.0f : inv_std(p, var[ch]); };
  // [count, sum g per channel, sum g * xhat per channel], this rank's, then all ranks'.
  std::vector<double> sums(2 * c + 1);
  sums[0] = static_cast<double>(p.per_channel());
#pragma omp parallel for schedule(static) if (worth_threads(p))
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mu = center(ch), s = spread(ch);
    double sum_g = 0, sum_g_xhat = 0;
    for (int64_t b = 0; b < p.n; ++b) {
      const float* xr = src + row_offset(p, b, ch);
      const float* gr = dy + row_offset(p, b, ch);
#pragma omp simd reduction(+ : sum_g, sum_g_xhat)
      for (int64_t i = 0; i < inner; ++i) {
        sum_g += gr[i];
        sum_g_xhat += static_cast<double>(gr[i]) * ((xr[i] - mu) * s);
      }
    }
    sums[1 + ch] = sum_g;
    sums[1 + c + ch] = sum_g_xhat;
    if (dscale) dscale[ch] = static_cast<float>(sum_g_xhat);
    if (dshift) dshift[ch] = static_cast<float>(sum_g);
  }
  collectives.sum(sums.data(), sums.size(), "batch-norm gradient statistics");
  const double m = global_count(p, sums[0]);

#pragma omp parallel for schedule(static) if (worth_threads(p))
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mu = center(ch), s = spread(ch);
    const float factor = (scale ? scale[ch] : 1.0f) * inv_std(p, var[ch]);
    const float mean_g = static_cast<float>(sums[1 + ch] / m);
    const float mean_g_xhat = static_cast<float>(sums[1 + c + ch] / m);
    for (int64_t b = 0; b < p.n; ++b) {
      const float* xr = src + row_offset(p, b, ch);
      const float* gr = dy + row_offset(p, b, ch);
      float* dxr = dx + row_offset(p, b, ch);
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i)
        dxr[i] = factor * (gr[i] - mean_g - (xr[i] - mu) * s * mean_g_xhat);
    }
  }
}

}  // namespace

// The variance in one reduction without the cancellation of a plain sum of squares: each
// rank takes its channel's local mean mu_r and its sum of squared deviations about it,
// M2_r, in two passes in double (stable), and contributes sum x and M2_r + n_r * mu_r^2
// (= sum x^2 exactly in real arithmetic). The global var = sum(M2_r + n_r mu_r^2) / m -
// mean^2 then cancels only the rank means' terms, each rounded once: its relative error is
// about 1e-16 * mean^2 / var, far below float's until |mean| reaches ~1e4 standard
// deviations. The count travels with the sums so that ranks may hold different batches.
void sync_batchnorm_forward_training(const BatchNormParams& p, Collectives& collectives,
                                     const float* x, const float* scale, const float* shift,
                                     float* y, float* mean, float* var, float* running_mean,
                                     float* running_var) {
  if (!mean || !var) fail("training forward needs mean and var outputs");
  if (p.affine && (!scale || !shift)) fail("affine needs scale and shift");
  const int64_t c = p.c, inner = p.h * p.w;
  const double local = static_cast<double>(p.per_channel());
  // [count, sum x per channel, sum x^2 per channel (as M2_r + n_r mu_r^2)].
  std::vector<double> sums(2 * c + 1);
  sums[0] = local;
#pragma omp parallel for schedule(static) if (worth_threads(p))
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0;
    for (int64_t b = 0; b < p.n; ++b) {
      const float* xr = x + row_offset(p, b, ch);
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < inner; ++i) sum += xr[i];
    }
    const double mu = sum / local;
    double m2 = 0;
    for (int64_t b = 0; b < p.n; ++b) {
      const float* xr = x + row_offset(p, b, ch);
#pragma omp simd reduction(+ : m2)
      for (int64_t i = 0; i < inner; ++i) m2 += (xr[i] - mu) * (xr[i] - mu);
    }
    sums[1 + ch] = sum;
    sums[1 + c + ch] = m2 + sum * mu;
  }
  collectives.sum(sums.data(), sums.size(), "batch-norm statistics");
  const double m = global_count(p, sums[0]);

  // PyTorch's running-statistics update with the unbiased variance of the global batch.
  const double momentum = p.momentum, bessel = m / (m - 1);
#pragma omp parallel for schedule(static) if (worth_threads(p))
  for (int64_t ch = 0; ch < c; ++ch) {
    const double global_mean = sums[1 + ch] / m;
    mean[ch] = static_cast<float>(global_mean);
    var[ch] = static_cast<float>(std::max(0.0, sums[1 + c + ch] / m - global_mean * global_mean));
    // The normalisation reads the saved float statistics, as the backward will.
    const float mu = mean[ch], factor = (p.affine ? scale[ch] : 1.0f) * inv_std(p, var[ch]);
    const float offset = p.affine ? shift[ch] : 0.0f;
    for (int64_t b = 0; b < p.n; ++b) {
      const float* xr = x + row_offset(p, b, ch);
      float* yr = y + row_offset(p, b, ch);
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) yr[i] = (xr[i] - mu) * factor + offset;
    }
    if (running_mean)
      running_mean[ch] =
          static_cast<float>((1 - momentum) * running_mean[ch] + momentum * mean[ch]);
    if (running_var)
      running_var[ch] =
          static_cast<float>((1 - momentum) * running_var[ch] + momentum * var[ch] * bessel);
  }
}

void sync_batchnorm_backward(const BatchNormParams& p, Collectives& collectives, const float* x,
                             const float* dy, const float* mean, const float* var,
                             const float* scale, float* dx, float* dscale, float* dshift) {
  if (!mean || !var) fail("backward needs the batch mean/var");
  if (p.affine && (!scale || !dscale || !dshift))
    fail("affine backward needs scale, dscale and dshift");
  backward(p, collectives, x, false, dy, mean, var, p.affine ? scale : nullptr, dx,
           p.affine ? dscale : nullptr, p.affine ? dshift : nullptr);
}

void sync_batchnorm_backward_from_output(const BatchNormParams& p, Collectives& collectives,
                                         const float* y, const float* dy, const float* var,
                                         float* dx) {
  if (p.affine) fail("backward from the output needs affine=false");
  if (!var) fail("backward needs the batch variance");
  backward(p, collectives, y, true, dy, nullptr, var, nullptr, dx, nullptr, nullptr);
}

}  // namespace nas
