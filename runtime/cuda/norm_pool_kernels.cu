#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string>

#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/kernel_util.cuh"
#include "runtime/cuda/norm_pool_kernels.h"
#include "support/errors.h"

// Where the CPU computes without fused multiply-adds (plain loops built for baseline x86-64,
// which has none), the kernels spell out __fmul_rn/__fadd_rn/__fsub_rn (and the double
// ones): nvcc never contracts those, so each product is rounded before the sum as on the
// CPU. Float division and square root are IEEE-rounded (nvcc's defaults without
// --use_fast_math), as on the CPU.

namespace nas::cuda {

namespace {

using namespace kernels;

constexpr int kWarp = 32;

// --- Batch normalisation ---------------------------------------------------------------------

// The sum of `value` over a group of kGroup consecutive threads (one warp, or the whole
// block), in a fixed tree order; every thread of the group gets the same sum. With the whole
// block, every thread of it must call this.
template <int kGroup>
__device__ float group_sum(float value) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    value += __shfl_down_sync(0xffffffffu, value, offset);
  if constexpr (kGroup == kWarp) {
    return __shfl_sync(0xffffffffu, value, 0);
  } else {
    static_assert(kGroup == kThreads, "a group is a warp or the block");
    __shared__ float warp_sums[kThreads / kWarp];
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    if (lane == 0) warp_sums[warp] = value;
    __syncthreads();
    float total = 0;
    for (int w = 0; w < kThreads / kWarp; ++w) total += warp_sums[w];
    __syncthreads();  // warp_sums is reused by the next call
    return total;
  }
}

// Rows a chunk holds; each row leaves two floats in shared memory until thread 0 folds them.
constexpr int kChunkRows = 256;

// The CPU reduces each sample's row of a channel in float and combines the rows' results in
// double in sample order. Here each group of kGroup threads reduces whole rows, so a row's
// float sums stay within one group (`row(s, lane)` returns the row's two results, the same in
// every lane), and thread 0 folds the rows' results into its double totals (`fold(result)`)
// in sample order, a chunk of rows at a time. Every thread of the block must call this.
template <int kGroup, class RowFn, class FoldFn>
__device__ void reduce_rows(int64_t rows, RowFn row, FoldFn fold) {
  __shared__ float2 results[kChunkRows];
  constexpr int kGroups = kThreads / kGroup;
  const int group = threadIdx.x / kGroup, lane = threadIdx.x % kGroup;
  for (int64_t first = 0; first < rows; first += kChunkRows) {
    const int count = static_cast<int>(rows - first < kChunkRows ? rows - first : kChunkRows);
    for (int r = group; r < count; r += kGroups) {
      const float2 result = row(first + r, lane);
      if (lane == 0) results[r] = result;
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (int r = 0; r < count; ++r) fold(results[r]);
    __syncthreads();  // results is refilled by the next chunk
  }
}

// A channel's values: `rows` samples of `inner` contiguous values, sample s's row starting at
// (s * channels + channel) * inner. Its per_channel (rows * inner) values fit in 32 bits.
struct ChannelRows {
  int64_t rows, channels, inner;
  uint32_t per_channel;

  __device__ int64_t row_start(int64_t s, int64_t channel) const {
    return (s * channels + channel) * inner;
  }
  // The offset of the channel's j-th value (row-major over samples, then positions).
  __device__ int64_t offset(uint32_t j, int64_t channel) const {
    const uint32_t s = j / static_cast<uint32_t>(inner), i = j - s * static_cast<uint32_t>(inner);
    return row_start(s, channel) + i;
  }
};

struct RunningUpdate {
  float* mean;  // either may be null: not updated
  float* var;
  double momentum;
  double bessel;  // m / (m - 1): the biased variance to the unbiased one
};

// BatchNormKernel::forward_training; block = channel.
template <int kGroup>
__global__ void bn_forward_training_kernel(ChannelRows layout, bool affine, double eps,
                                           const float* x, const float* scale, const float* shift,
                                           float* y, float* mean, float* var,
                                           RunningUpdate running) {
  const int64_t ch = blockIdx.x, inner = layout.inner;
  double count = 0, channel_mean = 0, squares = 0;  // squares: sum of squared deviations
  reduce_rows<kGroup>(
      layout.rows,
      [&](int64_t s, int lane) {
        const float* xr = x + layout.row_start(s, ch);
        float row_sum = 0;
        for (int64_t i = lane; i < inner; i += kGroup) row_sum += xr[i];
        const float row_mean = group_sum<kGroup>(row_sum) / static_cast<float>(inner);
        float row_squares = 0;
        for (int64_t i = lane; i < inner; i += kGroup) {
          const float d = __fsub_rn(xr[i], row_mean);
          row_squares = __fadd_rn(row_squares, __fmul_rn(d, d));
        }
        return make_float2(row_mean, group_sum<kGroup>(row_squares));
      },
      [&](float2 row) {
        // Chan et al.'s pairwise update, exactly the CPU's operations.
        const double row_mean = row.x, row_squares = row.y, row_count = static_cast<double>(inner);
        const double delta = row_mean - channel_mean, total = count + row_count;
        channel_mean += delta * row_count / total;
        squares += row_squares + delta * delta * count * row_count / total;
        count = total;
      });

  __shared__ float coefficients[2];  // y = x * a + b
  if (threadIdx.x == 0) {
    const double variance = squares / count;
    const float batch_mean = static_cast<float>(channel_mean);
    const float batch_var = static_cast<float>(variance);
    mean[ch] = batch_mean;
    var[ch] = batch_var;
    const double inv_std = 1.0 / sqrt(variance + eps);
    const double gain = affine ? inv_std * scale[ch] : inv_std;
    coefficients[0] = static_cast<float>(gain);
    coefficients[1] =
        static_cast<float>(__dsub_rn(affine ? shift[ch] : 0.0, __dmul_rn(channel_mean, gain)));
    // PyTorch's running-statistics update from the stored (float) batch statistics, as the
    // CPU's loop after the channels.
    const double m = running.momentum;
    if (running.mean)
      running.mean[ch] = static_cast<float>(
          __dadd_rn(__dmul_rn(1 - m, running.mean[ch]), __dmul_rn(m, batch_mean)));
    if (running.var)
      running.var[ch] = static_cast<float>(__dadd_rn(
          __dmul_rn(1 - m, running.var[ch]), __dmul_rn(__dmul_rn(m, batch_var), running.bessel)));
  }
  __syncthreads();
  const float a = coefficients[0], b = coefficients[1];
  for (uint32_t j = threadIdx.x; j < layout.per_channel; j += blockDim.x) {
    const int64_t at = layout.offset(j, ch);
    y[at] = __fadd_rn(__fmul_rn(x[at], a), b);
  }
}

// BatchNormKernel::forward_inference: oneDNN's x86 kernel, (x - mean) * (1 / sqrt(var + eps)),
// then a fused multiply-add with scale and shift.
__global__ void bn_forward_inference_kernel(size_t size, int64_t channels, int64_t inner,
                                            bool affine, float eps, const float* x,
                                            const float* scale, const float* shift,
                                            const float* running_mean, const float* running_var,
                                            float* y) {
  for (size_t i : GridStride{size}) {
    const int64_t ch = static_cast<int64_t>(i) / inner % channels;
    const float inv_std = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(running_var[ch], eps)));
    const float normalised = __fmul_rn(__fsub_rn(x[i], running_mean[ch]), inv_std);
    y[i] = affine ? fmaf(normalised, scale[ch], shift[ch]) : normalised;
  }
}

// BatchNormKernel::backward (backward_loops with dy read directly); block = channel.
template <int kGroup>
__global__ void bn_backward_kernel(ChannelRows layout, bool affine, double eps, const float* x,
                                   const float* dy, const float* mean, const float* var,
                                   const float* scale, float* dx, float* dscale, float* dshift) {
  const int64_t ch = blockIdx.x, inner = layout.inner;
  const float channel_mean = mean[ch];
  double sum_dy = 0, sum_dy_centered = 0;
  reduce_rows<kGroup>(
      layout.rows,
      [&](int64_t s, int lane) {
        const int64_t at = layout.row_start(s, ch);
        const float* xr = x + at;
        const float* dyr = dy + at;
        float row_dy = 0, row_dy_centered = 0;
        for (int64_t i = lane; i < inner; i += kGroup) {
          const float d = dyr[i];
          row_dy += d;
          row_dy_centered =
              __fadd_rn(row_dy_centered, __fmul_rn(d, __fsub_rn(xr[i], channel_mean)));
        }
        return make_float2(group_sum<kGroup>(row_dy), group_sum<kGroup>(row_dy_centered));
      },
      [&](float2 row) {
        sum_dy += row.x;
        sum_dy_centered += row.y;
      });

  __shared__ float coefficients[3];  // gain, mean_dy, centered_coefficient
  if (threadIdx.x == 0) {
    const double m = static_cast<double>(layout.per_channel);
    const double inv_std = 1.0 / sqrt(static_cast<double>(var[ch]) + eps);
    const double sum_dy_xhat = sum_dy_centered * inv_std;
    if (affine) {
      // The CPU backend adds its scratch dscale/dshift into the gradients: one float add.
      dscale[ch] = __fadd_rn(dscale[ch], static_cast<float>(sum_dy_xhat));
      dshift[ch] = __fadd_rn(dshift[ch], static_cast<float>(sum_dy));
    }
    coefficients[0] = static_cast<float>((affine ? scale[ch] : 1.0) * inv_std);
    coefficients[1] = static_cast<float>(sum_dy / m);
    // x_hat * dscale / m = (x - mean) * (inv_std * dscale / m)
    coefficients[2] = static_cast<float>(inv_std * sum_dy_xhat / m);
  }
  __syncthreads();
  const float gain = coefficients[0], mean_dy = coefficients[1];
  const float centered_coefficient = coefficients[2];
  for (uint32_t j = threadIdx.x; j < layout.per_channel; j += blockDim.x) {
    const int64_t at = layout.offset(j, ch);
    const float centered = __fmul_rn(__fsub_rn(x[at], channel_mean), centered_coefficient);
    dx[at] = __fmul_rn(gain, __fsub_rn(__fsub_rn(dy[at], mean_dy), centered));
  }
}

// BatchNormKernel::backward_from_output (from_output_loops with dy read directly); block =
// channel.
template <int kGroup>
__global__ void bn_backward_from_output_kernel(ChannelRows layout, double eps, const float* y,
                                               const float* dy, const float* var, float* dx) {
  const int64_t ch = blockIdx.x, inner = layout.inner;
  double sum_dy = 0, sum_dy_y = 0;
  reduce_rows<kGroup>(
      layout.rows,
      [&](int64_t s, int lane) {
        const int64_t at = layout.row_start(s, ch);
        const float* yr = y + at;
        const float* dyr = dy + at;
        float row_dy = 0, row_dy_y = 0;
        for (int64_t i = lane; i < inner; i += kGroup) {
          const float d = dyr[i];
          row_dy += d;
          row_dy_y = __fadd_rn(row_dy_y, __fmul_rn(d, yr[i]));
        }
        return make_float2(group_sum<kGroup>(row_dy), group_sum<kGroup>(row_dy_y));
      },
      [&](float2 row) {
        sum_dy += row.x;
        sum_dy_y += row.y;
      });

  __shared__ float coefficients[3];  // inv_std, mean_dy, mean_dy_y
  if (threadIdx.x == 0) {
    const double m = static_cast<double>(layout.per_channel);
    coefficients[0] = static_cast<float>(1.0 / sqrt(static_cast<double>(var[ch]) + eps));
    coefficients[1] = static_cast<float>(sum_dy / m);
    coefficients[2] = static_cast<float>(sum_dy_y / m);
  }
  __syncthreads();
  const float inv_std = coefficients[0], mean_dy = coefficients[1];
  const float mean_dy_y = coefficients[2];
  for (uint32_t j = threadIdx.x; j < layout.per_channel; j += blockDim.x) {
    const int64_t at = layout.offset(j, ch);
    dx[at] = __fmul_rn(__fsub_rn(__fsub_rn(dy[at], mean_dy), __fmul_rn(y[at], mean_dy_y)), inv_std);
  }
}

// BatchNormParams::validate, and what the kernels' indexing needs.
void check_batchnorm(const BatchNormParams& p) {
  p.validate();
  NAS_CHECK(p.per_channel() < (int64_t{1} << 31) && p.c < (int64_t{1} << 31),
            "batchnorm: a channel's " + std::to_string(p.per_channel()) + " values or " +
                std::to_string(p.c) + " channels exceed the CUDA kernels' 32-bit indexing");
}

ChannelRows channel_rows(const BatchNormParams& p) {
  return {p.n, p.c, p.h * p.w, static_cast<uint32_t>(p.per_channel())};
}

// Whether a whole block reduces each row (long rows) rather than a warp (short rows, several
// reduced at once).
bool block_per_row(const BatchNormParams& p) {
  return p.h * p.w >= 512;
}

// --- Pooling ---------------------------------------------------------------------------------

// A pooling's sizes as the kernels read them: `planes` = n * c input planes of h x w, each
// pooled to oh x ow.
struct PoolGeometry {
  int64_t planes, h, w, oh, ow, kernel, stride, pad;
  bool count_include_pad;

  // The window of output (oy, ox), clipped to the input: rows [y0, y1), columns [x0, x1).
  __device__ void window(int64_t oy, int64_t ox, int64_t& y0, int64_t& y1, int64_t& x0,
                         int64_t& x1) const {
    const int64_t top = oy * stride - pad, left = ox * stride - pad;
    y0 = top > 0 ? top : 0;
    y1 = top + kernel < h ? top + kernel : h;
    x0 = left > 0 ? left : 0;
    x1 = left + kernel < w ? left + kernel : w;
  }
  // The outputs whose windows hold input coordinate `i` (of a side of `outputs`):
  // [first, last].
  __device__ void covering(int64_t i, int64_t outputs, int64_t& first, int64_t& last) const {
    // Output o covers o * stride - pad <= i <= o * stride - pad + kernel - 1.
    const int64_t low = i + pad - kernel + 1;
    first = low > 0 ? (low + stride - 1) / stride : 0;
    const int64_t high = (i + pad) / stride;
    last = high < outputs - 1 ? high : outputs - 1;
  }
  // oneDNN's divisor: kernel^2 including padding (every window lies inside the padded
  // image), else the window's inputs.
  __device__ float divisor(int64_t y0, int64_t y1, int64_t x0, int64_t x1) const {
    return static_cast<float>(count_include_pad ? kernel * kernel : (y1 - y0) * (x1 - x0));
  }
};

__global__ void max_pool_forward_kernel(PoolGeometry g, const float* x, float* y, int32_t* argmax) {
  for (size_t o : GridStride{static_cast<size_t>(g.planes * g.oh * g.ow)}) {
    const int64_t ox = static_cast<int64_t>(o) % g.ow, rest = static_cast<int64_t>(o) / g.ow;
    const int64_t oy = rest % g.oh, plane = rest / g.oh;
    const float* xp = x + plane * g.h * g.w;
    int64_t y0, y1, x0, x1;
    g.window(oy, ox, y0, y1, x0, x1);
    // oneDNN's running maximum starts at the lowest float, replaced only by a greater value
    // (so the first maximum wins, and NaN never does).
    float best = -FLT_MAX;
    int64_t best_at = y0 * g.w + x0;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) {
        const float v = xp[iy * g.w + ix];
        if (v > best) {
          best = v;
          best_at = iy * g.w + ix;
        }
      }
    y[o] = best;
    if (argmax) argmax[o] = static_cast<int32_t>(best_at);
  }
}

__global__ void max_pool_backward_kernel(PoolGeometry g, const float* dy, const int32_t* argmax,
                                         float* dx) {
  for (size_t i : GridStride{static_cast<size_t>(g.planes * g.h * g.w)}) {
    const int64_t ix = static_cast<int64_t>(i) % g.w, rest = static_cast<int64_t>(i) / g.w;
    const int64_t iy = rest % g.h, plane = rest / g.h;
    const int32_t here = static_cast<int32_t>(iy * g.w + ix);
    int64_t oy0, oy1, ox0, ox1;
    g.covering(iy, g.oh, oy0, oy1);
    g.covering(ix, g.ow, ox0, ox1);
    float sum = 0;
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const int64_t o = (plane * g.oh + oy) * g.ow + ox;
        if (argmax[o] == here) sum += dy[o];
      }
    dx[i] = sum;
  }
}

__global__ void avg_pool_forward_kernel(PoolGeometry g, const float* x, float* y) {
  for (size_t o : GridStride{static_cast<size_t>(g.planes * g.oh * g.ow)}) {
    const int64_t ox = static_cast<int64_t>(o) % g.ow, rest = static_cast<int64_t>(o) / g.ow;
    const int64_t oy = rest % g.oh, plane = rest / g.oh;
    const float* xp = x + plane * g.h * g.w;
    int64_t y0, y1, x0, x1;
    g.window(oy, ox, y0, y1, x0, x1);
    float sum = 0;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) sum += xp[iy * g.w + ix];
    y[o] = __fdiv_rn(sum, g.divisor(y0, y1, x0, x1));
  }
}

__global__ void avg_pool_backward_kernel(PoolGeometry g, const float* dy, float* dx) {
  for (size_t i : GridStride{static_cast<size_t>(g.planes * g.h * g.w)}) {
    const int64_t ix = static_cast<int64_t>(i) % g.w, rest = static_cast<int64_t>(i) / g.w;
    const int64_t iy = rest % g.h, plane = rest / g.h;
    int64_t oy0, oy1, ox0, ox1;
    g.covering(iy, g.oh, oy0, oy1);
    g.covering(ix, g.ow, ox0, ox1);
    float sum = 0;
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        int64_t y0, y1, x0, x1;
        g.window(oy, ox, y0, y1, x0, x1);
        sum += __fdiv_rn(dy[(plane * g.oh + oy) * g.ow + ox], g.divisor(y0, y1, x0, x1));
      }
    dx[i] = sum;
  }
}

// Pool2dParams::validate, and what the argmax encoding needs.
PoolGeometry pool_geometry(const Pool2dParams& p) {
  p.validate();
  NAS_CHECK(p.h * p.w <= INT32_MAX, "pool2d: a " + std::to_string(p.h) + "x" + std::to_string(p.w) +
                                        " plane exceeds the int32 argmax encoding");
  return {p.n * p.c,          p.h, p.w, p.out_h(), p.out_w(), p.kernel, p.effective_stride(), p.pad,
          p.count_include_pad};
}

// --- Global average pooling ------------------------------------------------------------------

// One thread per plane, summing it in memory order: the CPU's loop, so the same double sum.
__global__ void global_avg_pool_forward_kernel(size_t planes, int64_t area, double inv,
                                               const float* x, float* y) {
  for (size_t plane : GridStride{planes}) {
    const float* xp = x + static_cast<int64_t>(plane) * area;
    double acc = 0;
    for (int64_t i = 0; i < area; ++i) acc += xp[i];
    y[plane] = static_cast<float>(acc * inv);
  }
}

__global__ void global_avg_pool_backward_kernel(size_t size, int64_t area, double inv,
                                                const float* dy, float* dx) {
  for (size_t i : GridStride{size})
    dx[i] = static_cast<float>(static_cast<double>(dy[static_cast<int64_t>(i) / area]) * inv);
}

void check_global_avg_pool(int64_t n, int64_t c, int64_t h, int64_t w) {
  NAS_CHECK(n >= 1 && c >= 1 && h >= 1 && w >= 1,
            "global_avg_pool: sizes must be positive, got batch=" + std::to_string(n) +
                " channels=" + std::to_string(c) + " height=" + std::to_string(h) +
                " width=" + std::to_string(w));
}

}  // namespace

// --- Batch normalisation launchers -----------------------------------------------------------

void batchnorm_forward_training(const BatchNormParams& p, const float* x, const float* scale,
                                const float* shift, float* y, float* mean, float* var,
                                float* running_mean, float* running_var, cudaStream_t stream) {
  check_batchnorm(p);
  NAS_CHECK(p.per_channel() >= 2,
            "batchnorm: training needs more than one value per channel, got n=" +
                std::to_string(p.n) + " h=" + std::to_string(p.h) + " w=" + std::to_string(p.w));
  NAS_CHECK(mean && var, "batchnorm: training forward needs mean and var outputs");
  NAS_CHECK(y, "batchnorm: training forward needs y");
  NAS_CHECK(!p.affine || (scale && shift), "batchnorm: affine needs scale and shift");
  const RunningUpdate running{running_mean, running_var, p.momentum,
                              static_cast<double>(p.per_channel()) / (p.per_channel() - 1)};
  const unsigned blocks = static_cast<unsigned>(p.c);
  if (block_per_row(p))
    bn_forward_training_kernel<kThreads><<<blocks, kThreads, 0, stream>>>(
        channel_rows(p), p.affine, p.eps, x, scale, shift, y, mean, var, running);
  else
    bn_forward_training_kernel<kWarp><<<blocks, kThreads, 0, stream>>>(
        channel_rows(p), p.affine, p.eps, x, scale, shift, y, mean, var, running);
  NAS_CUDA(cudaGetLastError());
}

void batchnorm_forward_inference(const BatchNormParams& p, const float* x, const float* scale,
                                 const float* shift, const float* running_mean,
                                 const float* running_var, float* y, cudaStream_t stream) {
  check_batchnorm(p);
  NAS_CHECK(running_mean && running_var, "batchnorm: inference needs running mean and var");
  NAS_CHECK(!p.affine || (scale && shift), "batchnorm: affine needs scale and shift");
  const size_t size = static_cast<size_t>(p.size());
  // oneDNN takes eps as a float (BatchNormKernel's constructor).
  bn_forward_inference_kernel<<<blocks_for(size), kThreads, 0, stream>>>(
      size, p.c, p.h * p.w, p.affine, static_cast<float>(p.eps), x, scale, shift, running_mean,
      running_var, y);
  NAS_CUDA(cudaGetLastError());
}

void batchnorm_backward(const BatchNormParams& p, const float* x, const float* dy,
                        const float* mean, const float* var, const float* scale, float* dx,
                        float* dscale, float* dshift, cudaStream_t stream) {
  check_batchnorm(p);
  NAS_CHECK(mean && var, "batchnorm: backward needs the batch mean/var");
  NAS_CHECK(!p.affine || (scale && dscale && dshift),
            "batchnorm: affine backward needs scale, dscale and dshift");
  const unsigned blocks = static_cast<unsigned>(p.c);
  if (block_per_row(p))
    bn_backward_kernel<kThreads><<<blocks, kThreads, 0, stream>>>(
        channel_rows(p), p.affine, p.eps, x, dy, mean, var, scale, dx, dscale, dshift);
  else
    bn_backward_kernel<kWarp><<<blocks, kThreads, 0, stream>>>(
        channel_rows(p), p.affine, p.eps, x, dy, mean, var, scale, dx, dscale, dshift);
  NAS_CUDA(cudaGetLastError());
}

void batchnorm_backward_from_output(const BatchNormParams& p, const float* y, const float* dy,
                                    const float* var, float* dx, cudaStream_t stream) {
  check_batchnorm(p);
  NAS_CHECK(!p.affine, "batchnorm: backward from the output needs affine=false");
  NAS_CHECK(var, "batchnorm: backward needs the batch variance");
  const unsigned blocks = static_cast<unsigned>(p.c);
  if (block_per_row(p))
    bn_backward_from_output_kernel<kThreads>
        <<<blocks, kThreads, 0, stream>>>(channel_rows(p), p.eps, y, dy, var, dx);
  else
    bn_backward_from_output_kernel<kWarp>
        <<<blocks, kThreads, 0, stream>>>(channel_rows(p), p.eps, y, dy, var, dx);
  NAS_CUDA(cudaGetLastError());
}

// --- Pooling launchers -----------------------------------------------------------------------

void max_pool_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax,
                      cudaStream_t stream) {
  const PoolGeometry g = pool_geometry(p);
  const size_t outputs = static_cast<size_t>(p.output_size());
  max_pool_forward_kernel<<<blocks_for(outputs), kThreads, 0, stream>>>(g, x, y, argmax);
  NAS_CUDA(cudaGetLastError());
}

void max_pool_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx,
                       cudaStream_t stream) {
  const PoolGeometry g = pool_geometry(p);
  NAS_CHECK(argmax, "pool2d: max pooling backward needs the forward's argmax workspace");
  const size_t inputs = static_cast<size_t>(p.input_size());
  max_pool_backward_kernel<<<blocks_for(inputs), kThreads, 0, stream>>>(g, dy, argmax, dx);
  NAS_CUDA(cudaGetLastError());
}

void avg_pool_forward(const Pool2dParams& p, const float* x, float* y, cudaStream_t stream) {
  const PoolGeometry g = pool_geometry(p);
  const size_t outputs = static_cast<size_t>(p.output_size());
  avg_pool_forward_kernel<<<blocks_for(outputs), kThreads, 0, stream>>>(g, x, y);
  NAS_CUDA(cudaGetLastError());
}

void avg_pool_backward(const Pool2dParams& p, const float* dy, float* dx, cudaStream_t stream) {
  const PoolGeometry g = pool_geometry(p);
  const size_t inputs = static_cast<size_t>(p.input_size());
  avg_pool_backward_kernel<<<blocks_for(inputs), kThreads, 0, stream>>>(g, dy, dx);
  NAS_CUDA(cudaGetLastError());
}

// --- Global average pooling launchers --------------------------------------------------------

void global_avg_pool_forward(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, float* y,
                             cudaStream_t stream) {
  check_global_avg_pool(n, c, h, w);
  const size_t planes = static_cast<size_t>(n * c);
  const int64_t area = h * w;
  const double inv = 1.0 / static_cast<double>(area);
  global_avg_pool_forward_kernel<<<blocks_for(planes), kThreads, 0, stream>>>(planes, area, inv, x,
                                                                              y);
  NAS_CUDA(cudaGetLastError());
}

void global_avg_pool_backward(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy,
                              float* dx, cudaStream_t stream) {
  check_global_avg_pool(n, c, h, w);
  const int64_t area = h * w;
  const size_t size = static_cast<size_t>(n * c * area);
  const double inv = 1.0 / static_cast<double>(area);
  global_avg_pool_backward_kernel<<<blocks_for(size), kThreads, 0, stream>>>(size, area, inv, dy,
                                                                             dx);
  NAS_CUDA(cudaGetLastError());
}

}  // namespace nas::cuda
