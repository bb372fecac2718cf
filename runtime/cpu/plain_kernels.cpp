#include "runtime/cpu/plain_kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "support/errors.h"
#include "support/rng.h"

namespace nas::plain {
namespace {

// The backend fills kernel parameters from plans nasc lowered: a bad one is a bug.
[[noreturn]] void fail(const char* op, const std::string& msg) {
  internal_error(__FILE__, __LINE__, fmt::format("{}: {}", op, msg));
}

// Elementwise kernels split work into chunks that fit in L2 and run them on the OpenMP
// threads oneDNN uses; below kParallelMin elements threading costs more than it saves.
constexpr int64_t kChunk = 16384;
constexpr int64_t kParallelMin = 65536;

void require_positive(const char* op, const char* field, int64_t v) {
  if (v < 1) fail(op, fmt::format("{} must be positive, got {}", field, v));
}

void check_labels(const char* op, const CrossEntropyParams& p, const int32_t* labels) {
  for (int64_t b = 0; b < p.batch; ++b)
    if (labels[b] < 0 || labels[b] >= p.classes)
      fail(op,
           fmt::format("label {} of sample {} is out of range [0, {})", labels[b], b, p.classes));
}

// Maximum of a row of floats.
float row_max(const float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

}  // namespace

double dot(int64_t n, const float* a, const float* b) {
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (n > kParallelMin)
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t end = std::min(n, c + kChunk);
    double acc = 0;
    // In double, reordered into vector lanes (omp simd: the sum's order is free).
#pragma omp simd reduction(+ : acc)
    for (int64_t j = c; j < end; ++j) acc += static_cast<double>(a[j]) * b[j];
    total += acc;
  }
  return total;
}

// --- Softmax cross-entropy -------------------------------------------------------------------

double softmax_cross_entropy(const CrossEntropyParams& p, const float* logits,
                             const int32_t* labels, float* dlogits) {
  p.validate();
  check_labels("softmax_cross_entropy", p, labels);
  const int64_t c = p.classes;
  const double inv_batch = 1.0 / static_cast<double>(p.batch);
  const double on_label = 1.0 - p.smoothing, uniform = p.smoothing / static_cast<double>(c);
  double total = 0;
  for (int64_t b = 0; b < p.batch; ++b) {
    const float* x = logits + b * c;
    const double m = row_max(x, c);
    double sum = 0, row_sum = 0;
    for (int64_t j = 0; j < c; ++j) {
      sum += std::exp(static_cast<double>(x[j]) - m);
      row_sum += x[j];
    }
    const double lse = m + std::log(sum);
    const int32_t label = labels[b];
    total += lse - on_label * static_cast<double>(x[label]);
    if (uniform != 0) total -= uniform * row_sum;
    if (dlogits) {
      // Element j reads x[j] before writing dx[j], so dlogits may alias logits.
      float* dx = dlogits + b * c;
      for (int64_t j = 0; j < c; ++j)
        dx[j] =
            static_cast<float>((std::exp(static_cast<double>(x[j]) - lse) - uniform) * inv_batch);
      dx[label] = static_cast<float>(static_cast<double>(dx[label]) - on_label * inv_batch);
    }
  }
  return total * inv_batch;
}

int64_t top1_correct(const CrossEntropyParams& p, const float* logits, const int32_t* labels) {
  p.validate();
  check_labels("top1_correct", p, labels);
  int64_t correct = 0;
  for (int64_t b = 0; b < p.batch; ++b) {
    const float* x = logits + b * p.classes;
    int64_t best = 0;
    for (int64_t j = 1; j < p.classes; ++j)
      if (x[j] > x[best]) best = j;
    correct += best == labels[b];
  }
  return correct;
}

double top1_accuracy(const CrossEntropyParams& p, const float* logits, const int32_t* labels) {
  return static_cast<double>(top1_correct(p, logits, labels)) / static_cast<double>(p.batch);
}

// --- Softmax over a small vector -------------------------------------------------------------

void softmax_forward(int64_t size, const float* x, float* y) {
  require_positive("softmax", "size", size);
  const double m = row_max(x, size);
  double sum = 0;
  for (int64_t i = 0; i < size; ++i) sum += std::exp(static_cast<double>(x[i]) - m);
  const double lse = m + std::log(sum);
  for (int64_t i = 0; i < size; ++i)
    y[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) - lse));
}

void softmax_backward(int64_t size, const float* y, const float* dy, float* dx) {
  require_positive("softmax", "size", size);
  double dot = 0;
  for (int64_t i = 0; i < size; ++i) dot += static_cast<double>(dy[i]) * y[i];
  for (int64_t i = 0; i < size; ++i)
    dx[i] = static_cast<float>(static_cast<double>(y[i]) * (static_cast<double>(dy[i]) - dot));
}

// --- Weighted sum ----------------------------------------------------------------------------

void weighted_sum_forward(const WeightedSumParams& p, const float* const* xs, const float* w,
                          float* y) {
  p.validate();
  const int64_t n = p.size;
  // One pass over y in cache-sized chunks (all inputs per chunk), chunks across threads:
  // these sums are memory-bound, and k passes over a large y would read it k times.
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t end = std::min(n, c + kChunk);
    const float w0 = w[0];
    const float* x0 = xs[0];
    for (int64_t j = c; j < end; ++j) y[j] = w0 * x0[j];
    for (int64_t i = 1; i < p.inputs; ++i) {
      const float wi = w[i];
      const float* x = xs[i];
      for (int64_t j = c; j < end; ++j) y[j] += wi * x[j];
    }
  }
}

void weighted_sum_backward(const WeightedSumParams& p, const float* const* xs, const float* w,
                           const float* dy, float* const* dxs, float* dw) {
  p.validate();
  const int64_t n = p.size;
  for (int64_t i = 0; i < p.inputs; ++i) {
    if (dw) dw[i] = static_cast<float>(dot(n, dy, xs[i]));
    if (dxs && dxs[i]) {
      const float wi = w[i];
      float* dx = dxs[i];
      for (int64_t j = 0; j < n; ++j) dx[j] = wi * dy[j];
    }
  }
}

// --- Add -------------------------------------------------------------------------------------

void add_forward(const AddParams& p, const float* const* xs, float* y) {
  p.validate();
  const int64_t n = p.size;
  // Start from the input that y aliases, if any (in place), else from input 0.
  int64_t first = 0;
  for (int64_t i = 0; i < p.inputs; ++i)
    if (xs[i] == y) {
      first = i;
      break;
    }
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t end = std::min(n, c + kChunk);
    if (y != xs[first])
      std::memcpy(y + c, xs[first] + c, static_cast<size_t>(end - c) * sizeof(float));
    for (int64_t i = 0; i < p.inputs; ++i) {
      if (i == first) continue;
      const float* x = xs[i];
      for (int64_t j = c; j < end; ++j) y[j] += x[j];
    }
  }
}

void add_backward(const AddParams& p, const float* dy, float* const* dxs) {
  p.validate();
  for (int64_t i = 0; i < p.inputs; ++i)
    if (dxs[i] && dxs[i] != dy)
      std::memcpy(dxs[i], dy, static_cast<size_t>(p.size) * sizeof(float));
}

// --- Concat ----------------------------------------------------------------------------------

void concat_forward(const ConcatParams& p, const float* const* xs, float* y) {
  p.validate();
  const int64_t row = p.total() * p.inner;
  int64_t offset = 0;
  for (size_t i = 0; i < p.sizes.size(); ++i) {
    const int64_t chunk = p.sizes[i] * p.inner;
    const size_t bytes = static_cast<size_t>(chunk) * sizeof(float);
    for (int64_t o = 0; o < p.outer; ++o)
      std::memcpy(y + o * row + offset, xs[i] + o * chunk, bytes);
    offset += chunk;
  }
}

void concat_backward(const ConcatParams& p, const float* dy, float* const* dxs) {
  p.validate();
  const int64_t row = p.total() * p.inner;
  int64_t offset = 0;
  for (size_t i = 0; i < p.sizes.size(); ++i) {
    const int64_t chunk = p.sizes[i] * p.inner;
    const size_t bytes = static_cast<size_t>(chunk) * sizeof(float);
    if (dxs[i])
      for (int64_t o = 0; o < p.outer; ++o)
        std::memcpy(dxs[i] + o * chunk, dy + o * row + offset, bytes);
    offset += chunk;
  }
}

// --- Mul by a constant -----------------------------------------------------------------------

void scale_forward(int64_t size, double scale, const float* x, float* y) {
  require_positive("mul", "size", size);
  if (!std::isfinite(scale)) fail("mul", fmt::format("scale must be finite, got {}", scale));
  const float s = static_cast<float>(scale);
#pragma omp parallel for schedule(static) if (size > kParallelMin)
  for (int64_t i = 0; i < size; ++i) y[i] = s * x[i];
}

void scale_backward(int64_t size, double scale, const float* dy, float* dx) {
  scale_forward(size, scale, dy, dx);
}

// --- Dropout ---------------------------------------------------------------------------------

void dropout_range(const DropoutParams& p, int64_t begin, int64_t n, const float* x, float* y) {
  p.validate();
  const uint64_t threshold = dropout_threshold(p.p);
  const float scale = dropout_keep_scale(p.p);
  const int64_t first = begin / p.per_sample, last = (begin + n - 1) / p.per_sample;
  // One sample's part of the range at a time: its stream is derived once.
#pragma omp parallel for schedule(static) if (n > kParallelMin && last > first)
  for (int64_t b = first; b <= last; ++b) {
    const uint64_t stream = dropout_sample_stream(p.node_seed, p.first_sample + b);
    const int64_t from = std::max(begin, b * p.per_sample);
    const int64_t to = std::min(begin + n, (b + 1) * p.per_sample);
    for (int64_t i = from; i < to; ++i)
      y[i - begin] =
          dropout_keeps(stream, i - b * p.per_sample, threshold) ? x[i - begin] * scale : 0.0f;
  }
}

// --- Mul by a tensor -------------------------------------------------------------------------

void mul_forward(const MulParams& p, const float* x, const float* factor, float* y) {
  p.validate();
  const float s = static_cast<float>(p.scale);
  const int64_t inner = p.inner;
#pragma omp parallel for schedule(static) if (p.factors * inner > kParallelMin)
  for (int64_t f = 0; f < p.factors; ++f) {
    const float k = s * factor[f];
    for (int64_t i = 0; i < inner; ++i) y[f * inner + i] = k * x[f * inner + i];
  }
}

// --- Generic elementwise ---------------------------------------------------------------------

void elementwise_forward(int64_t size, double (*value)(double, double), double a, const float* x,
                         float* y) {
  require_positive("elementwise", "size", size);
  if (value == nullptr) fail("elementwise", "no scalar formula");
#pragma omp parallel for schedule(static) if (size > kParallelMin)
  for (int64_t i = 0; i < size; ++i) y[i] = static_cast<float>(value(x[i], a));
}

void elementwise_backward(int64_t size, double (*derivative)(double, double), double a,
                          const float* x, const float* dy, float* dx) {
  require_positive("elementwise", "size", size);
  if (derivative == nullptr) fail("elementwise", "no scalar derivative");
#pragma omp parallel for schedule(static) if (size > kParallelMin)
  for (int64_t i = 0; i < size; ++i) dx[i] = static_cast<float>(dy[i] * derivative(x[i], a));
}

// --- Global average pooling ------------------------------------------------------------------

void global_avg_pool_forward(const GlobalAvgPoolParams& p, const float* x, float* y,
                             const std::vector<RowActivation>& activations) {
  p.validate();
  const int64_t planes = p.batch * p.channels, area = p.height * p.width;
  const double inv = 1.0 / static_cast<double>(area);
  std::vector<float> activated(activations.empty() ? 0 : static_cast<size_t>(area));
  for (int64_t c = 0; c < planes; ++c) {
    const float* plane = x + c * area;
    for (const RowActivation& activation : activations) {
      activation.value(plane, activated.data(), area);
      plane = activated.data();
    }
    double acc = 0;
    for (int64_t i = 0; i < area; ++i) acc += plane[i];
    y[c] = static_cast<float>(acc * inv);
  }
}

void global_avg_pool_backward(const GlobalAvgPoolParams& p, const float* dy, float* dx) {
  p.validate();
  const int64_t planes = p.batch * p.channels, area = p.height * p.width;
  const double inv = 1.0 / static_cast<double>(area);
  for (int64_t c = 0; c < planes; ++c) {
    const float g = static_cast<float>(static_cast<double>(dy[c]) * inv);
    float* plane = dx + c * area;
    for (int64_t i = 0; i < area; ++i) plane[i] = g;
  }
}

// --- Crop ------------------------------------------------------------------------------------

void crop_forward(const CropParams& p, const float* x, float* y) {
  p.validate();
  const int64_t planes = p.batch * p.channels, oh = p.out_height(), ow = p.out_width();
  const size_t bytes = static_cast<size_t>(ow) * sizeof(float);
  for (int64_t c = 0; c < planes; ++c) {
    const float* src = x + c * p.height * p.width + p.top * p.width + p.left;
    float* dst = y + c * oh * ow;
    for (int64_t r = 0; r < oh; ++r) std::memcpy(dst + r * ow, src + r * p.width, bytes);
  }
}

void crop_backward(const CropParams& p, const float* dy, float* dx) {
  p.validate();
  const int64_t planes = p.batch * p.channels, oh = p.out_height(), ow = p.out_width();
  std::fill(dx, dx + planes * p.height * p.width, 0.0f);
  const size_t bytes = static_cast<size_t>(ow) * sizeof(float);
  for (int64_t c = 0; c < planes; ++c) {
    float* dst = dx + c * p.height * p.width + p.top * p.width + p.left;
    const float* src = dy + c * oh * ow;
    for (int64_t r = 0; r < oh; ++r) std::memcpy(dst + r * p.width, src + r * ow, bytes);
  }
}

// --- Channel slice and shuffle ---------------------------------------------------------------

void channel_slice_forward(const ChannelSliceParams& p, const float* x, float* y) {
  p.validate();
  const size_t bytes = static_cast<size_t>(p.count * p.inner) * sizeof(float);
  for (int64_t b = 0; b < p.batch; ++b)
    std::memcpy(y + b * p.count * p.inner, x + (b * p.channels + p.start) * p.inner, bytes);
}

void channel_slice_backward(const ChannelSliceParams& p, const float* dy, float* dx) {
  p.validate();
  std::memset(dx, 0, static_cast<size_t>(p.batch * p.channels * p.inner) * sizeof(float));
  const size_t bytes = static_cast<size_t>(p.count * p.inner) * sizeof(float);
  for (int64_t b = 0; b < p.batch; ++b)
    std::memcpy(dx + (b * p.channels + p.start) * p.inner, dy + b * p.count * p.inner, bytes);
}

void channel_shuffle_forward(const ChannelShuffleParams& p, const float* x, float* y) {
  p.validate();
  const int64_t per_group = p.channels / p.groups;
  const size_t bytes = static_cast<size_t>(p.inner) * sizeof(float);
  for (int64_t b = 0; b < p.batch; ++b) {
    const float* xs = x + b * p.channels * p.inner;
    float* ys = y + b * p.channels * p.inner;
    for (int64_t i = 0; i < p.groups; ++i)
      for (int64_t j = 0; j < per_group; ++j)
        std::memcpy(ys + (j * p.groups + i) * p.inner, xs + (i * per_group + j) * p.inner, bytes);
  }
}

// --- Zero ------------------------------------------------------------------------------------

void zero_fill(int64_t size, float* y) {
  require_positive("zero", "size", size);
  std::fill(y, y + size, 0.0f);
}

int64_t zero_output_size(int64_t batch, int64_t channels, int64_t height, int64_t width,
                         int64_t stride) {
  require_positive("zero", "batch", batch);
  require_positive("zero", "channels", channels);
  require_positive("zero", "height", height);
  require_positive("zero", "width", width);
  require_positive("zero", "stride", stride);
  return batch * channels * ((height + stride - 1) / stride) * ((width + stride - 1) / stride);
}

}  // namespace nas::plain
