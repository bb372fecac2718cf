#include "runtime/cpu/batchnorm.h"

#include <fmt/format.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "runtime/cpu/dnnl_context.h"
#include "runtime/cpu/kernel_cache.h"
#include "support/errors.h"

namespace nas {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;
using flags = dnnl::normalization_flags;

memory wrap(const memory::desc& md, const float* data) {
  return memory(md, cpu_engine(), const_cast<float*>(data));
}

KernelCache<BatchNormKernel>& cache() {
  static KernelCache<BatchNormKernel> instance;
  return instance;
}

flags affine_flags(const BatchNormParams& p) {
  return p.affine ? flags::use_scale | flags::use_shift : flags::none;
}

}  // namespace

BatchNormKernel::BatchNormKernel(const BatchNormParams& p) : params_(p) {
  p.validate();
  const dnnl::engine& engine = cpu_engine();
  data_md_ = memory::desc({p.n, p.c, p.h, p.w}, dt::f32, tag::nchw);
  stat_md_ = memory::desc({p.c}, dt::f32, tag::a);
  const float eps = static_cast<float>(p.eps);

  dnnl::batch_normalization_forward::desc infer_desc(
      dnnl::prop_kind::forward_inference, data_md_, eps, affine_flags(p) | flags::use_global_stats);
  fwd_infer_ = dnnl::batch_normalization_forward(
      dnnl::batch_normalization_forward::primitive_desc(infer_desc, engine));
}

void BatchNormKernel::forward_training(const float* x, const float* scale, const float* shift,
                                       float* y, float* mean, float* var, float* running_mean,
                                       float* running_var,
                                       const BatchNormEpilogue* epilogue) const {
  const BatchNormParams& p = params_;
  if (p.per_channel() < 2)
    internal_error(
        __FILE__, __LINE__,
        fmt::format("batchnorm: training needs more than one value per channel, got n={} h={} w={}",
                    p.n, p.h, p.w));
  if (!mean || !var)
    internal_error(__FILE__, __LINE__, "batchnorm: training forward needs mean and var outputs");
  if (!y && !epilogue)
    internal_error(__FILE__, __LINE__, "batchnorm: training forward without y needs an epilogue");
  if (p.affine && (!scale || !shift))
    internal_error(__FILE__, __LINE__, "batchnorm: affine needs scale and shift");
  // Plain loops, not oneDNN: on plain NCHW its training forward took about 4x as long (a
  // DARTS step spent a sixth of its time there). Per channel, each sample's row (h*w
  // contiguous values) is reduced twice while it is in L1, its mean and squared deviations,
  // and the rows are combined in double (Chan et al.'s pairwise update, stable for any row
  // length, h = w = 1 included). Then one pass applies y = x * a + b, and the epilogue's
  // activations to each row of y before the next. So x is read twice from memory and y
  // written once (and never read back by an activation after it).
  const int64_t n = p.n, c = p.c, inner = p.h * p.w;
#pragma omp parallel for schedule(static) if (n * c * inner > kBatchNormParallelMin)
  for (int64_t ch = 0; ch < c; ++ch) {
    double count = 0, channel_mean = 0, squares = 0;  // squares: sum of squared deviations
    for (int64_t s = 0; s < n; ++s) {
      const float* xr = x + (s * c + ch) * inner;
      float row_sum = 0;
#pragma omp simd reduction(+ : row_sum)
      for (int64_t i = 0; i < inner; ++i) row_sum += xr[i];
      const float row_mean = row_sum / static_cast<float>(inner);
      float row_squares = 0;
#pragma omp simd reduction(+ : row_squares)
      for (int64_t i = 0; i < inner; ++i) row_squares += (xr[i] - row_mean) * (xr[i] - row_mean);
      const double delta = row_mean - channel_mean, total = count + static_cast<double>(inner);
      channel_mean += delta * static_cast<double>(inner) / total;
      squares += row_squares + delta * delta * count * static_cast<double>(inner) / total;
      count = total;
    }
    const double variance = squares / count;
    mean[ch] = static_cast<float>(channel_mean);
    var[ch] = static_cast<float>(variance);
    const double inv_std = 1.0 / std::sqrt(variance + p.eps);
    const double gain = p.affine ? inv_std * scale[ch] : inv_std;
    const float a = static_cast<float>(gain);
    const float b = static_cast<float>((p.affine ? shift[ch] : 0.0) - channel_mean * gain);
    // Without y (a region whose batch norm output nothing else reads), each row of it
    // lives in `row` only.
    std::vector<float> row(y ? 0 : static_cast<size_t>(inner));
    for (int64_t s = 0; s < n; ++s) {
      const float* xr = x + (s * c + ch) * inner;
      float* yr = y ? y + (s * c + ch) * inner : row.data();
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) yr[i] = xr[i] * a + b;
      if (epilogue) epilogue->apply(yr, (s * c + ch) * inner, inner);
    }
  }

  // PyTorch's running-statistics update, with the unbiased batch variance.
  const double m = static_cast<double>(p.momentum);
  const double bessel = static_cast<double>(p.per_channel()) / (p.per_channel() - 1);
  for (int64_t ch = 0; ch < p.c; ++ch) {
    if (running_mean)
      running_mean[ch] = static_cast<float>((1 - m) * running_mean[ch] + m * mean[ch]);
    if (running_var)
      running_var[ch] = static_cast<float>((1 - m) * running_var[ch] + m * var[ch] * bessel);
  }
}

void BatchNormKernel::forward_inference(const float* x, const float* scale, const float* shift,
                                        const float* running_mean, const float* running_var,
                                        float* y) const {
  if (!running_mean || !running_var)
    internal_error(__FILE__, __LINE__, "batchnorm: inference needs running mean and var");
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(data_md_, x)},
                                       {DNNL_ARG_DST, wrap(data_md_, y)},
                                       {DNNL_ARG_MEAN, wrap(stat_md_, running_mean)},
                                       {DNNL_ARG_VARIANCE, wrap(stat_md_, running_var)}};
  if (params_.affine) {
    if (!scale || !shift)
      internal_error(__FILE__, __LINE__, "batchnorm: affine needs scale and shift");
    args.emplace(DNNL_ARG_SCALE, wrap(stat_md_, scale));
    args.emplace(DNNL_ARG_SHIFT, wrap(stat_md_, shift));
  }
  fwd_infer_.execute(cpu_stream(), args);
  cpu_stream().wait();
}

namespace {

// How a backward pass reads its incoming gradient dy, element by element: g itself,
// scale * g, or scale * g where x > 0 and 0 elsewhere (a ReLU's gradient before it). Inline
// in the loops, so a fused region costs no pass and no scratch of its own.
enum class Incoming { Direct, Scaled, ScaledRelu };

struct IncomingGradient {
  const float* g;
  const float* x;  // ScaledRelu: the ReLU's input
  float scale;
};

// dy at element i of a row whose g and x start at `g` and `x`. The select vectorises only
// without trapping math (CMakeLists.txt sets it for this file).
template <Incoming kind>
inline float incoming_at(const float* g, const float* x, float scale, int64_t i) {
  if constexpr (kind == Incoming::Direct) {
    return g[i];
  } else if constexpr (kind == Incoming::Scaled) {
    return scale * g[i];
  } else {
    const float d = scale * g[i];
    return x[i] > 0.0f ? d : 0.0f;
  }
}

// The backward from the input (BatchNormKernel::backward's formula) with dy read as `kind`.
template <Incoming kind>
void backward_loops(const BatchNormParams& p, const float* x, const IncomingGradient& dy,
                    const float* mean, const float* var, const float* scale, float* dx,
                    float* dscale, float* dshift) {
  const int64_t n = p.n, c = p.c, inner = p.h * p.w;
  const double m = static_cast<double>(p.per_channel());
#pragma omp parallel for schedule(static) if (n * c * inner > kBatchNormParallelMin)
  for (int64_t ch = 0; ch < c; ++ch) {
    const float channel_mean = mean[ch];
    double sum_dy = 0, sum_dy_centered = 0;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t at = (s * c + ch) * inner;
      const float* xr = x + at;
      const float* gr = dy.g + at;
      const float* relu_x = dy.x ? dy.x + at : nullptr;
      float row_dy = 0, row_dy_centered = 0;
#pragma omp simd reduction(+ : row_dy, row_dy_centered)
      for (int64_t i = 0; i < inner; ++i) {
        const float d = incoming_at<kind>(gr, relu_x, dy.scale, i);
        row_dy += d;
        row_dy_centered += d * (xr[i] - channel_mean);
      }
      sum_dy += row_dy;
      sum_dy_centered += row_dy_centered;
    }
    const double inv_std = 1.0 / std::sqrt(static_cast<double>(var[ch]) + p.eps);
    const double sum_dy_xhat = sum_dy_centered * inv_std;
    if (p.affine) {
      dscale[ch] = static_cast<float>(sum_dy_xhat);
      dshift[ch] = static_cast<float>(sum_dy);
    }
    const float gain = static_cast<float>((p.affine ? scale[ch] : 1.0) * inv_std);
    const float mean_dy = static_cast<float>(sum_dy / m);
    // x_hat * dscale / m = (x - mean) * (inv_std * dscale / m)
    const float centered_coefficient = static_cast<float>(inv_std * sum_dy_xhat / m);
    for (int64_t s = 0; s < n; ++s) {
      const int64_t at = (s * c + ch) * inner;
      const float* xr = x + at;
      const float* gr = dy.g + at;
      const float* relu_x = dy.x ? dy.x + at : nullptr;
      float* dxr = dx + at;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i)
        dxr[i] = gain * (incoming_at<kind>(gr, relu_x, dy.scale, i) - mean_dy -
                         (xr[i] - channel_mean) * centered_coefficient);
    }
  }
}

// The backward from the output (BatchNormKernel::backward_from_output's formula) with dy
// read as `kind`. A Scaled dy is reduced as g, its sums scaled after; `products` (Scaled
// only, or null) then gets each channel's sum(g * y).
template <Incoming kind>
void from_output_loops(const BatchNormParams& p, const float* y, const IncomingGradient& dy,
                       const float* var, float* dx, double* products) {
  const int64_t n = p.n, c = p.c, inner = p.h * p.w;
  const double m = static_cast<double>(p.per_channel());
  constexpr Incoming reduced = kind == Incoming::Scaled ? Incoming::Direct : kind;
#pragma omp parallel for schedule(static) if (n * c * inner > kBatchNormParallelMin)
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum_dy = 0, sum_dy_y = 0;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t at = (s * c + ch) * inner;
      const float* yr = y + at;
      const float* gr = dy.g + at;
      const float* relu_x = dy.x ? dy.x + at : nullptr;
      float row_dy = 0, row_dy_y = 0;
#pragma omp simd reduction(+ : row_dy, row_dy_y)
      for (int64_t i = 0; i < inner; ++i) {
        const float d = incoming_at<reduced>(gr, relu_x, dy.scale, i);
        row_dy += d;
        row_dy_y += d * yr[i];
      }
      sum_dy += row_dy;
      sum_dy_y += row_dy_y;
    }
    if constexpr (kind == Incoming::Scaled) {
      if (products) products[ch] = sum_dy_y;
      sum_dy *= dy.scale;
      sum_dy_y *= dy.scale;
    }
    const float inv_std = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[ch]) + p.eps));
    const float mean_dy = static_cast<float>(sum_dy / m);
    const float mean_dy_y = static_cast<float>(sum_dy_y / m);
    for (int64_t s = 0; s < n; ++s) {
      const int64_t at = (s * c + ch) * inner;
      const float* yr = y + at;
      const float* gr = dy.g + at;
      const float* relu_x = dy.x ? dy.x + at : nullptr;
      float* dxr = dx + at;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i)
        dxr[i] =
            (incoming_at<kind>(gr, relu_x, dy.scale, i) - mean_dy - yr[i] * mean_dy_y) * inv_std;
    }
  }
}

// Runs `loops` with dy read as the prologue says: inline for none, a weight and ReLU; any
// other activation's gradient is computed into `scratch` first.
template <class Loops>
void with_incoming(const float* dy, const BatchNormPrologue* prologue, int64_t size,
                   std::vector<float>& scratch, Loops&& loops) {
  if (!prologue)
    return loops(std::integral_constant<Incoming, Incoming::Direct>{},
                 IncomingGradient{dy, nullptr, 1.0f});
  if (!prologue->activation)
    return loops(std::integral_constant<Incoming, Incoming::Scaled>{},
                 IncomingGradient{dy, nullptr, prologue->scale});
  if (prologue->activation->is_relu())
    return loops(std::integral_constant<Incoming, Incoming::ScaledRelu>{},
                 IncomingGradient{dy, prologue->x, prologue->scale});
  scratch.resize(static_cast<size_t>(size));
  prologue->incoming(dy, 0, scratch.data(), size);
  loops(std::integral_constant<Incoming, Incoming::Direct>{},
        IncomingGradient{scratch.data(), nullptr, 1.0f});
}

}  // namespace

void BatchNormEpilogue::apply(const float* y, int64_t at, int64_t n) const {
  const float* in = y;
  for (const RowActivation& activation : activations) {
    activation.value(in, out + at, n);
    in = out + at;
  }
}

void BatchNormPrologue::incoming(const float* g, int64_t at, float* dy, int64_t n) const {
  if (activation) {
    activation->grad(g, x + at, dy, n);
    if (scale != 1.0f) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dy[i] *= scale;
    }
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dy[i] = scale * g[i];
}

void BatchNormKernel::backward(const float* x, const float* dy, const float* mean, const float* var,
                               const float* scale, float* dx, float* dscale, float* dshift,
                               const BatchNormPrologue* prologue) const {
  if (!mean || !var)
    internal_error(__FILE__, __LINE__, "batchnorm: backward needs the batch mean/var");
  if (params_.affine && (!scale || !dscale || !dshift))
    internal_error(__FILE__, __LINE__, "batchnorm: affine backward needs scale, dscale and dshift");
  // Plain loops, as in forward_training (oneDNN's on plain NCHW were several times slower):
  // with x_hat = (x - mean) * inv_std, per channel over n, h, w,
  //   dshift = sum(dy), dscale = sum(dy * x_hat),
  //   dx = scale * inv_std * (dy - dshift / m - x_hat * dscale / m).
  // One pass reduces (each row in float, the rows combined in double), one applies.
  std::vector<float> scratch;
  with_incoming(dy, prologue, params_.size(), scratch, [&](auto kind, const IncomingGradient& in) {
    backward_loops<decltype(kind)::value>(params_, x, in, mean, var, scale, dx, dscale, dshift);
  });
}

void BatchNormKernel::backward_from_output(const float* y, const float* dy, const float* var,
                                           float* dx, const BatchNormPrologue* prologue,
                                           double* product) const {
  if (params_.affine)
    internal_error(__FILE__, __LINE__, "batchnorm: backward from the output needs affine=false");
  if (!var) internal_error(__FILE__, __LINE__, "batchnorm: backward needs the batch variance");
  // dx = (dy - mean(dy) - y * mean(dy * y)) / sqrt(var + eps), per channel over n, h, w:
  // the usual formula with x_hat = y. One pass reduces, one applies; the channels' rows
  // (one per sample) are contiguous, so each inner loop is a plain vectorisable span.
  if (product && (!prologue || prologue->activation))
    internal_error(__FILE__, __LINE__,
                   "batchnorm: a d/dw product needs a prologue that only scales");
  std::vector<float> scratch;
  std::vector<double> products(product ? static_cast<size_t>(params_.c) : 0);
  with_incoming(dy, prologue, params_.size(), scratch, [&](auto kind, const IncomingGradient& in) {
    from_output_loops<decltype(kind)::value>(params_, y, in, var, dx,
                                             product ? products.data() : nullptr);
  });
  if (product) {
    *product = 0;
    for (double channel : products) *product += channel;  // in order: reproducible
  }
}

std::shared_ptr<const BatchNormKernel> batchnorm_kernel(const BatchNormParams& params) {
  params.validate();
  return cache().get(params.key(), [&] { return std::make_shared<const BatchNormKernel>(params); });
}

std::size_t batchnorm_kernels_created() {
  return cache().created();
}

}  // namespace nas
