#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/data_kernels.h"
#include "runtime/cuda/kernel_util.cuh"
#include "support/rng.h"

namespace nas::cuda {

namespace {

using namespace kernels;

// Inputs one kernel launch takes by value; longer lists run in chunks of this many.
constexpr int kMaxInputs = 32;

void check_positive(const char* op, const char* field, int64_t v) {
  NAS_CHECK(v >= 1, std::string(op) + ": " + field + " must be positive, got " + std::to_string(v));
}

// --- Data movement ---------------------------------------------------------------------------

__global__ void crop_forward_kernel(size_t n, size_t height, size_t width, size_t top, size_t left,
                                    size_t out_h, size_t out_w, const float* x, float* y) {
  const size_t out_plane = out_h * out_w;
  for (size_t i : GridStride{n}) {
    const size_t plane = i / out_plane, rest = i - plane * out_plane;
    const size_t r = rest / out_w, c = rest - r * out_w;
    y[i] = x[(plane * height + top + r) * width + left + c];
  }
}

// One pass over dx: the window from dy, zeros around it.
__global__ void crop_backward_kernel(size_t n, size_t height, size_t width, size_t top, size_t left,
                                     size_t out_h, size_t out_w, const float* dy, float* dx) {
  const size_t plane_size = height * width;
  for (size_t i : GridStride{n}) {
    const size_t plane = i / plane_size, rest = i - plane * plane_size;
    const size_t r = rest / width, c = rest - r * width;
    const bool inside = r >= top && r < top + out_h && c >= left && c < left + out_w;
    dx[i] = inside ? dy[(plane * out_h + (r - top)) * out_w + (c - left)] : 0.0f;
  }
}

__global__ void channel_slice_forward_kernel(size_t n, size_t channels, size_t inner, size_t start,
                                             size_t count, const float* x, float* y) {
  const size_t kept = count * inner;
  for (size_t i : GridStride{n}) {
    const size_t b = i / kept, rest = i - b * kept;
    y[i] = x[(b * channels + start) * inner + rest];
  }
}

__global__ void channel_slice_backward_kernel(size_t n, size_t channels, size_t inner, size_t start,
                                              size_t count, const float* dy, float* dx) {
  const size_t sample = channels * inner;
  for (size_t i : GridStride{n}) {
    const size_t b = i / sample, rest = i - b * sample;
    const size_t c = rest / inner;
    dx[i] = c >= start && c < start + count ? dy[(b * count + (c - start)) * inner + rest % inner]
                                            : 0.0f;
  }
}

// Gathers each output channel from its source, so every element is written once.
__global__ void channel_shuffle_kernel(size_t n, size_t channels, size_t inner, size_t groups,
                                       const float* x, float* y) {
  const size_t sample = channels * inner, per_group = channels / groups;
  for (size_t i : GridStride{n}) {
    const size_t b = i / sample, rest = i - b * sample;
    const size_t out_channel = rest / inner, k = rest - out_channel * inner;
    const size_t j = out_channel / groups, g = out_channel - j * groups;
    y[i] = x[b * sample + (g * per_group + j) * inner + k];
  }
}

// Up to kMaxInputs concat inputs: input i is [outer, chunk[i]] and lands at column
// offset[i] of the [outer, row] output.
struct ConcatGroup {
  const float* x[kMaxInputs];
  size_t chunk[kMaxInputs];
  size_t offset[kMaxInputs];
};

// blockIdx.y picks the input; the x dimension strides over its elements.
__global__ void concat_forward_kernel(ConcatGroup g, size_t outer, size_t row, float* y) {
  const int input = blockIdx.y;
  const size_t chunk = g.chunk[input], offset = g.offset[input];
  const float* x = g.x[input];
  for (size_t i : GridStride{outer * chunk}) {
    const size_t o = i / chunk;
    y[o * row + offset + (i - o * chunk)] = x[i];
  }
}

__global__ void concat_backward_kernel(size_t outer, size_t row, size_t chunk, size_t offset,
                                       const float* dy, float* dx) {
  for (size_t i : GridStride{outer * chunk}) {
    const size_t o = i / chunk;
    dx[i] = dy[o * row + offset + (i - o * chunk)];
  }
}

// --- Products and the dot product -----------------------------------------------------------

__global__ void mul_kernel(size_t n, size_t inner, float scale, const float* x, const float* factor,
                           float* y) {
  for (size_t i : GridStride{n}) {
    const float k = scale * factor[i / inner];
    y[i] = k * x[i];
  }
}

// Products of two floats are exact in double, so a fused multiply-add changes nothing here.
__global__ void dot_partials_kernel(size_t n, const float* a, const float* b, double* partials) {
  double sum = 0;
  for (size_t i : GridStride{n}) sum += static_cast<double>(a[i]) * b[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void add_partials_kernel(int count, const double* partials, double* accumulator) {
  double sum = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) *accumulator += sum;
}

// --- Dropout and drop path (support/rng.h's draws, bit for bit) -----------------------------

__global__ void dropout_kernel(size_t n, size_t per_sample, uint64_t threshold, float keep,
                               uint64_t node_seed, int64_t first_sample, const float* x, float* y) {
  for (size_t i : GridStride{n}) {
    const size_t b = i / per_sample;
    const uint64_t stream =
        dropout_sample_stream(node_seed, first_sample + static_cast<int64_t>(b));
    const bool kept = dropout_keeps(stream, static_cast<int64_t>(i - b * per_sample), threshold);
    y[i] = kept ? x[i] * keep : 0.0f;
  }
}

// Every thread redraws its sample's one draw (cheap) instead of waiting on another kernel;
// a dropped sample is multiplied by 0.0f, not set to 0, as plain::scale_forward does.
__global__ void drop_path_forward_kernel(size_t n, size_t per_sample, uint64_t threshold,
                                         float scale, uint64_t node_seed, int64_t first_sample,
                                         const float* x, float* y, uint8_t* kept) {
  for (size_t i : GridStride{n}) {
    const size_t b = i / per_sample;
    const uint64_t stream =
        dropout_sample_stream(node_seed, first_sample + static_cast<int64_t>(b));
    const bool keep = dropout_keeps(stream, 0, threshold);
    if (i == b * per_sample) kept[b] = keep ? 1 : 0;
    y[i] = (keep ? scale : 0.0f) * x[i];
  }
}

__global__ void drop_path_backward_kernel(size_t n, size_t per_sample, float scale,
                                          const uint8_t* kept, const float* dy, float* dx) {
  for (size_t i : GridStride{n}) dx[i] = (kept[i / per_sample] ? scale : 0.0f) * dy[i];
}

// --- Softmax cross-entropy -------------------------------------------------------------------

// A candidate for a row's maximum: its value and class (-1: none yet).
struct Candidate {
  float value;
  int index;
};

// Whether a is the better maximum under the CPU's sequential rule `if (x[j] > x[best])
// best = j` (row_max's std::max is the same rule): the first of equal values wins, a NaN
// never replaces anything, and a NaN x[0] is never replaced. NaNs other than x[0] are
// filtered out before they become candidates, which makes this a total order on
// candidates, so any reduction tree picks the CPU's index.
__device__ bool beats(const Candidate& a, const Candidate& b) {
  if (a.index < 0) return false;
  if (b.index < 0) return true;
  if (isnan(a.value)) return true;  // x[0], the only NaN candidate
  if (isnan(b.value)) return false;
  if (a.value != b.value) return a.value > b.value;  // -0 == +0: a tie, as for `>`
  return a.index < b.index;
}

// The CPU's row maximum and its first index over x[0 .. n), for every thread of the block.
__device__ Candidate block_argmax(const float* x, int n) {
  __shared__ Candidate warp_best[kThreads / 32];
  Candidate best{0.0f, -1};
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const Candidate c{x[j], j};
    if (isnan(c.value) && j != 0) continue;
    if (beats(c, best)) best = c;
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const Candidate other{__shfl_down_sync(0xffffffffu, best.value, offset),
                          __shfl_down_sync(0xffffffffu, best.index, offset)};
    if (beats(other, best)) best = other;
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_best[warp] = best;
  __syncthreads();
  best = warp_best[0];
  for (int w = 1; w < kThreads / 32; ++w)
    if (beats(warp_best[w], best)) best = warp_best[w];
  __syncthreads();
  return best;
}

// One row's reductions, as softmax_cross_entropy makes them (in double, the maximum
// subtracted); every thread of the block gets them. All reads of the row happen before
// this returns (block_sum's barrier), so a caller may then overwrite the row in place.
struct RowStats {
  double max;      // row_max's value, as a double
  double sum_exp;  // sum_j exp(x[j] - max)
  double sum;      // sum_j x[j] (only when asked for)
  int best;        // top1_correct's class
};

__device__ RowStats row_stats(const float* x, int classes, bool with_sum) {
  const Candidate top = block_argmax(x, classes);
  const double m = top.value;
  double sum_exp = 0, sum = 0;
  for (int j = threadIdx.x; j < classes; j += blockDim.x) {
    // The _rn adds keep exp's last product out of a fused multiply-add, here and below.
    sum_exp = __dadd_rn(sum_exp, exp(static_cast<double>(x[j]) - m));
    sum += x[j];
  }
  sum_exp = block_sum(sum_exp);
  if (with_sum) sum = block_sum(sum);
  return {m, sum_exp, sum, top.index};
}

// softmax_cross_entropy's per-batch constants, computed once on the host in its arithmetic.
struct LossConstants {
  int classes;
  double on_label;   // 1 - eps
  double uniform;    // eps / classes
  double inv_batch;  // 1 / batch
};

LossConstants loss_constants(int64_t classes, int64_t batch, double smoothing) {
  return {static_cast<int>(classes), 1.0 - smoothing, smoothing / static_cast<double>(classes),
          1.0 / static_cast<double>(batch)};
}

// One block per sample: the two terms the CPU adds into its total for the sample,
// lse - (1 - eps) * x[label] and eps / classes * sum(x) (the latter subtracted only when
// eps / classes != 0), and whether the top-1 class is the label. __dmul_rn keeps each
// product rounded before its add, as on the CPU. For the CrossEntropy step (aux false) the
// per-sample loss is finished here, softmax_cross_entropy over a batch of one, and
// scratch[2b] is the hit; for AuxLoss scratch[2b], scratch[2b + 1] are the two terms.
__global__ void cross_entropy_rows_kernel(LossConstants c, bool aux, const float* logits,
                                          const int32_t* labels, float* loss, double* scratch) {
  const size_t b = blockIdx.x;
  const float* x = logits + b * c.classes;
  const RowStats s = row_stats(x, c.classes, true);
  if (threadIdx.x != 0) return;
  const double lse = __dadd_rn(s.max, log(s.sum_exp));
  const int32_t label = labels[b];
  double label_term = __longlong_as_double(0x7ff8000000000000LL);  // NaN: a bad label
  double uniform_term = 0;
  bool hit = false;
  if (label >= 0 && label < c.classes) {
    label_term = __dsub_rn(lse, __dmul_rn(c.on_label, static_cast<double>(x[label])));
    uniform_term = __dmul_rn(c.uniform, s.sum);
    hit = s.best == label;
  }
  if (aux) {
    scratch[2 * b] = label_term;
    scratch[2 * b + 1] = uniform_term;
    return;
  }
  double total = 0;
  total += label_term;
  if (c.uniform != 0) total -= uniform_term;
  loss[b] = static_cast<float>(total * 1.0);  // times inv_batch of a batch of one
  scratch[2 * b] = hit ? 1.0 : 0.0;
}

// build_loss's sums, in sample order: the float losses widened to double, and the hits.
__global__ void cross_entropy_metrics_kernel(int64_t samples, const float* loss,
                                             const double* scratch, double* metrics) {
  double loss_sum = 0;
  int64_t hits = 0;
  for (int64_t b = 0; b < samples; ++b) {
    loss_sum += loss[b];
    hits += scratch[2 * b] != 0 ? 1 : 0;
  }
  metrics[0] += loss_sum;
  metrics[1] += static_cast<double>(hits);
}

// build_aux_loss's metric: softmax_cross_entropy's total over the samples in order, its
// mean, and weight * mean * samples, each product rounded (no fused multiply-add).
__global__ void aux_loss_metrics_kernel(LossConstants c, int64_t samples, float weight,
                                        const double* scratch, double* metrics) {
  double total = 0;
  for (int64_t b = 0; b < samples; ++b) {
    total += scratch[2 * b];
    if (c.uniform != 0) total -= scratch[2 * b + 1];
  }
  const double mean = total * c.inv_batch;
  metrics[0] +=
      __dmul_rn(__dmul_rn(static_cast<double>(weight), mean), static_cast<double>(samples));
}

// One block per row: softmax_cross_entropy's gradient, element j read before dx[j] is
// written (dlogits may alias logits); with `scaled`, times weight after rounding to float,
// as the CPU's scale_forward over the finished gradient.
__global__ void cross_entropy_grad_kernel(LossConstants c, bool scaled, float weight,
                                          const float* logits, const int32_t* labels,
                                          float* dlogits) {
  const size_t b = blockIdx.x;
  const float* x = logits + b * c.classes;
  float* dx = dlogits + b * c.classes;
  const RowStats s = row_stats(x, c.classes, false);
  const double lse = __dadd_rn(s.max, log(s.sum_exp));
  const int32_t label = labels[b];
  const bool valid = label >= 0 && label < c.classes;
  for (int j = threadIdx.x; j < c.classes; j += blockDim.x) {
    float g = __int_as_float(0x7fc00000);  // NaN: a bad label
    if (valid) {
      g = static_cast<float>(__dsub_rn(exp(static_cast<double>(x[j]) - lse), c.uniform) *
                             c.inv_batch);
      if (j == label)
        g = static_cast<float>(
            __dsub_rn(static_cast<double>(g), __dmul_rn(c.on_label, c.inv_batch)));
    }
    dx[j] = scaled ? weight * g : g;
  }
}

void check_loss(const char* op, int64_t classes, int64_t batch, double smoothing) {
  check_positive(op, "classes", classes);
  check_positive(op, "batch", batch);
  NAS_CHECK(classes <= INT_MAX, std::string(op) + ": " + std::to_string(classes) + " classes");
  NAS_CHECK(smoothing >= 0 && smoothing < 1,
            std::string(op) + ": smoothing must be in [0, 1), got " + std::to_string(smoothing));
}

void launch_cross_entropy_grad(const char* op, const plain::CrossEntropyParams& p, bool scaled,
                               float weight, const float* logits, const int32_t* labels,
                               float* dlogits, cudaStream_t stream) {
  check_loss(op, p.classes, p.batch, p.smoothing);
  NAS_CHECK(labels != nullptr, std::string(op) + ": no labels");
  NAS_CHECK(p.batch <= INT_MAX, std::string(op) + ": batch " + std::to_string(p.batch));
  cross_entropy_grad_kernel<<<static_cast<unsigned>(p.batch), kThreads, 0, stream>>>(
      loss_constants(p.classes, p.batch, p.smoothing), scaled, weight, logits, labels, dlogits);
  NAS_CUDA(cudaGetLastError());
}

}  // namespace

// --- Data movement ---------------------------------------------------------------------------

namespace {
void check_crop(const plain::CropParams& p) {
  check_positive("crop", "batch", p.batch);
  check_positive("crop", "channels", p.channels);
  check_positive("crop", "height", p.height);
  check_positive("crop", "width", p.width);
  NAS_CHECK(p.top >= 0 && p.left >= 0 && p.bottom >= 0 && p.right >= 0, "crop: negative border");
  NAS_CHECK(p.out_height() >= 1 && p.out_width() >= 1, "crop: nothing left");
}
}  // namespace

void crop_forward(const plain::CropParams& p, const float* x, float* y, cudaStream_t stream) {
  check_crop(p);
  const size_t n = static_cast<size_t>(p.batch * p.channels * p.out_height() * p.out_width());
  crop_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, p.height, p.width, p.top, p.left,
                                                              p.out_height(), p.out_width(), x, y);
  NAS_CUDA(cudaGetLastError());
}

void crop_backward(const plain::CropParams& p, const float* dy, float* dx, cudaStream_t stream) {
  check_crop(p);
  const size_t n = static_cast<size_t>(p.batch * p.channels * p.height * p.width);
  crop_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(
      n, p.height, p.width, p.top, p.left, p.out_height(), p.out_width(), dy, dx);
  NAS_CUDA(cudaGetLastError());
}

namespace {
void check_slice(const plain::ChannelSliceParams& p) {
  check_positive("channel_slice", "batch", p.batch);
  check_positive("channel_slice", "channels", p.channels);
  check_positive("channel_slice", "inner", p.inner);
  check_positive("channel_slice", "count", p.count);
  NAS_CHECK(p.start >= 0 && p.start + p.count <= p.channels,
            "channel_slice: channels [" + std::to_string(p.start) + ", " +
                std::to_string(p.start + p.count) + ") of " + std::to_string(p.channels));
}
}  // namespace

void channel_slice_forward(const plain::ChannelSliceParams& p, const float* x, float* y,
                           cudaStream_t stream) {
  check_slice(p);
  const size_t n = static_cast<size_t>(p.batch * p.count * p.inner);
  channel_slice_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, p.channels, p.inner,
                                                                       p.start, p.count, x, y);
  NAS_CUDA(cudaGetLastError());
}

void channel_slice_backward(const plain::ChannelSliceParams& p, const float* dy, float* dx,
                            cudaStream_t stream) {
  check_slice(p);
  const size_t n = static_cast<size_t>(p.batch * p.channels * p.inner);
  channel_slice_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, p.channels, p.inner,
                                                                        p.start, p.count, dy, dx);
  NAS_CUDA(cudaGetLastError());
}

void channel_shuffle_forward(const plain::ChannelShuffleParams& p, const float* x, float* y,
                             cudaStream_t stream) {
  check_positive("channel_shuffle", "batch", p.batch);
  check_positive("channel_shuffle", "channels", p.channels);
  check_positive("channel_shuffle", "inner", p.inner);
  check_positive("channel_shuffle", "groups", p.groups);
  NAS_CHECK(p.channels % p.groups == 0, "channel_shuffle: " + std::to_string(p.groups) +
                                            " groups of " + std::to_string(p.channels) +
                                            " channels");
  const size_t n = static_cast<size_t>(p.batch * p.channels * p.inner);
  channel_shuffle_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, p.channels, p.inner, p.groups,
                                                                 x, y);
  NAS_CUDA(cudaGetLastError());
}

namespace {
// ConcatParams::validate and total(), here so that the plugin needs no code of
// plain_kernels.cpp.
int64_t checked_concat_total(const plain::ConcatParams& p) {
  check_positive("concat", "outer", p.outer);
  check_positive("concat", "inner", p.inner);
  NAS_CHECK(!p.sizes.empty(), "concat: needs at least one input");
  int64_t total = 0;
  for (int64_t s : p.sizes) {
    check_positive("concat", "sizes[i]", s);
    total += s;
  }
  return total;
}
}  // namespace

void concat_forward(const plain::ConcatParams& p, const float* const* xs, float* y,
                    cudaStream_t stream) {
  const int64_t total = checked_concat_total(p);
  const size_t outer = static_cast<size_t>(p.outer);
  const size_t row = static_cast<size_t>(total * p.inner);
  const size_t inputs = p.sizes.size();
  size_t offset = 0;
  for (size_t first = 0; first < inputs; first += kMaxInputs) {
    const size_t count = std::min<size_t>(kMaxInputs, inputs - first);
    ConcatGroup g{};
    size_t largest = 0;
    for (size_t k = 0; k < count; ++k) {
      g.x[k] = xs[first + k];
      g.chunk[k] = static_cast<size_t>(p.sizes[first + k] * p.inner);
      g.offset[k] = offset;
      offset += g.chunk[k];
      largest = std::max(largest, g.chunk[k]);
    }
    const dim3 grid(blocks_for(outer * largest), static_cast<unsigned>(count));
    concat_forward_kernel<<<grid, kThreads, 0, stream>>>(g, outer, row, y);
    NAS_CUDA(cudaGetLastError());
  }
}

void concat_backward_one(const plain::ConcatParams& p, const float* dy, int64_t index, float* dx,
                         cudaStream_t stream) {
  const int64_t total = checked_concat_total(p);
  NAS_CHECK(index >= 0 && index < static_cast<int64_t>(p.sizes.size()),
            "concat: input " + std::to_string(index) + " of " + std::to_string(p.sizes.size()));
  int64_t offset = 0;
  for (int64_t i = 0; i < index; ++i) offset += p.sizes[i] * p.inner;
  const size_t outer = static_cast<size_t>(p.outer);
  const size_t chunk = static_cast<size_t>(p.sizes[index] * p.inner);
  concat_backward_kernel<<<blocks_for(outer * chunk), kThreads, 0, stream>>>(
      outer, static_cast<size_t>(total * p.inner), chunk, static_cast<size_t>(offset), dy, dx);
  NAS_CUDA(cudaGetLastError());
}

// --- Products and the dot product -----------------------------------------------------------

void mul_forward(const plain::MulParams& p, const float* x, const float* factor, float* y,
                 cudaStream_t stream) {
  check_positive("mul", "factors", p.factors);
  check_positive("mul", "inner", p.inner);
  NAS_CHECK(std::isfinite(p.scale), "mul: scale must be finite, got " + std::to_string(p.scale));
  const size_t n = static_cast<size_t>(p.factors * p.inner);
  mul_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, static_cast<size_t>(p.inner),
                                                     static_cast<float>(p.scale), x, factor, y);
  NAS_CUDA(cudaGetLastError());
}

void add_dot(int64_t n, const float* a, const float* b, double* partials_scratch,
             double* accumulator, cudaStream_t stream) {
  if (n <= 0) return;  // plain::dot is 0
  // The block count depends on n only, so the summation tree is the same on every run.
  const int blocks = static_cast<int>(std::min<unsigned>(kDotBlocks, blocks_for(n)));
  dot_partials_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<size_t>(n), a, b,
                                                       partials_scratch);
  NAS_CUDA(cudaGetLastError());
  add_partials_kernel<<<1, kThreads, 0, stream>>>(blocks, partials_scratch, accumulator);
  NAS_CUDA(cudaGetLastError());
}

// --- Dropout and drop path -------------------------------------------------------------------

void dropout_apply(int64_t n, int64_t batch, double p, uint64_t dropout_seed, int node,
                   int64_t first_sample, const float* x, float* y, cudaStream_t stream) {
  check_positive("dropout", "size", n);
  check_positive("dropout", "batch", batch);
  NAS_CHECK(n % batch == 0,
            "dropout: " + std::to_string(n) + " elements in " + std::to_string(batch) + " samples");
  const uint64_t node_seed = derive_seed(dropout_seed, static_cast<uint64_t>(node));
  dropout_kernel<<<blocks_for(static_cast<size_t>(n)), kThreads, 0, stream>>>(
      static_cast<size_t>(n), static_cast<size_t>(n / batch), dropout_threshold(p),
      dropout_keep_scale(p), node_seed, first_sample, x, y);
  NAS_CUDA(cudaGetLastError());
}

void drop_path_forward(int64_t batch, int64_t per_sample, double p, uint64_t dropout_seed, int node,
                       int64_t first_sample, const float* x, float* y, uint8_t* kept,
                       cudaStream_t stream) {
  check_positive("drop_path", "batch", batch);
  check_positive("drop_path", "per_sample", per_sample);
  const size_t n = static_cast<size_t>(batch * per_sample);
  const uint64_t node_seed = derive_seed(dropout_seed, static_cast<uint64_t>(node));
  drop_path_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(
      n, static_cast<size_t>(per_sample), dropout_threshold(p), dropout_keep_scale(p), node_seed,
      first_sample, x, y, kept);
  NAS_CUDA(cudaGetLastError());
}

void drop_path_backward(int64_t batch, int64_t per_sample, float scale, const uint8_t* kept,
                        const float* dy, float* dx, cudaStream_t stream) {
  check_positive("drop_path", "batch", batch);
  check_positive("drop_path", "per_sample", per_sample);
  const size_t n = static_cast<size_t>(batch * per_sample);
  drop_path_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(
      n, static_cast<size_t>(per_sample), scale, kept, dy, dx);
  NAS_CUDA(cudaGetLastError());
}

// --- Softmax cross-entropy -------------------------------------------------------------------

void cross_entropy_forward(int64_t classes, int64_t valid_samples, double label_smoothing,
                           const float* logits, const int32_t* labels, float* loss, double* metrics,
                           float* logits_out, double* scratch, cudaStream_t stream) {
  check_positive("cross_entropy", "classes", classes);
  if (logits_out && valid_samples > 0)
    NAS_CUDA(cudaMemcpyAsync(logits_out, logits,
                             static_cast<size_t>(valid_samples * classes) * sizeof(float),
                             cudaMemcpyDeviceToDevice, stream));
  // No valid rows: nothing to add (top1_correct would refuse an empty batch on the CPU).
  if (labels == nullptr || valid_samples <= 0) return;
  check_loss("cross_entropy", classes, valid_samples, label_smoothing);
  NAS_CHECK(valid_samples <= INT_MAX,
            "cross_entropy: " + std::to_string(valid_samples) + " samples");
  // Each sample's loss is softmax_cross_entropy over a batch of one.
  cross_entropy_rows_kernel<<<static_cast<unsigned>(valid_samples), kThreads, 0, stream>>>(
      loss_constants(classes, 1, label_smoothing), false, logits, labels, loss, scratch);
  NAS_CUDA(cudaGetLastError());
  cross_entropy_metrics_kernel<<<1, 1, 0, stream>>>(valid_samples, loss, scratch, metrics);
  NAS_CUDA(cudaGetLastError());
}

void cross_entropy_backward(const plain::CrossEntropyParams& p, const float* logits,
                            const int32_t* labels, float* dlogits, cudaStream_t stream) {
  launch_cross_entropy_grad("cross_entropy", p, false, 1.0f, logits, labels, dlogits, stream);
}

void aux_loss_forward(int64_t n, const float* x, float* y, int64_t classes, int64_t valid_samples,
                      double label_smoothing, float weight, const float* logits,
                      const int32_t* labels, double* metrics, double* scratch,
                      cudaStream_t stream) {
  check_positive("aux_loss", "size", n);
  if (y != x)
    NAS_CUDA(cudaMemcpyAsync(y, x, static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToDevice,
                             stream));
  if (labels == nullptr || valid_samples <= 0) return;
  check_loss("aux_loss", classes, valid_samples, label_smoothing);
  NAS_CHECK(valid_samples <= INT_MAX, "aux_loss: " + std::to_string(valid_samples) + " samples");
  const LossConstants c = loss_constants(classes, valid_samples, label_smoothing);
  cross_entropy_rows_kernel<<<static_cast<unsigned>(valid_samples), kThreads, 0, stream>>>(
      c, true, logits, labels, nullptr, scratch);
  NAS_CUDA(cudaGetLastError());
  aux_loss_metrics_kernel<<<1, 1, 0, stream>>>(c, valid_samples, weight, scratch, metrics);
  NAS_CUDA(cudaGetLastError());
}

void aux_loss_backward(const plain::CrossEntropyParams& p, float weight, const float* logits,
                       const int32_t* labels, float* dlogits, cudaStream_t stream) {
  launch_cross_entropy_grad("aux_loss", p, true, weight, logits, labels, dlogits, stream);
}

}  // namespace nas::cuda
