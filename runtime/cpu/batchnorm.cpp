#include "runtime/cpu/batchnorm.h"

#include <fmt/format.h>

#include <cmath>

#include "runtime/cpu/dnnl_context.h"
#include "runtime/cpu/kernel_cache.h"
#include "support/elementwise_ops.h"
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

void BatchNormParams::validate() const {
  auto fail = [](const std::string& msg) {
    internal_error(__FILE__, __LINE__, "batchnorm: " + msg);
  };
  if (n < 1 || c < 1 || h < 1 || w < 1)
    fail(fmt::format("sizes must be positive, got n={} c={} h={} w={}", n, c, h, w));
  if (!(eps > 0) || !std::isfinite(eps)) fail(fmt::format("eps must be > 0, got {}", eps));
  if (!(momentum >= 0 && momentum <= 1))
    fail(fmt::format("momentum must be in [0, 1], got {}", momentum));
}

std::string BatchNormParams::key() const {
  return fmt::format("batchnorm n{} c{} h{} w{} a{} eps{} m{}", n, c, h, w, affine ? 1 : 0,
                     static_cast<float>(eps), momentum);
}

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
#pragma omp parallel for schedule(static) if (n * c * inner > 32768)
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
      if (!epilogue) continue;
      const float* in = yr;
      float* out = epilogue->out + (s * c + ch) * inner;
      for (const RowActivation& activation : epilogue->activations) {
        activation.value(in, out, inner);
        in = out;
      }
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

// A channel's rows of the incoming gradient: dy's own, or (with a prologue) g * f'(x)
// computed into a row of scratch.
class GradientRows {
 public:
  GradientRows(const float* dy, const BatchNormPrologue* prologue, int64_t inner)
      : dy_(dy), prologue_(prologue), inner_(inner) {
    if (prologue) row_.resize(static_cast<size_t>(inner));
  }
  // The row at element offset `at`.
  const float* row(int64_t at) {
    if (!prologue_) return dy_ + at;
    prologue_->activation.grad(dy_ + at, prologue_->x + at, row_.data(), inner_);
    return row_.data();
  }

 private:
  const float* dy_;
  const BatchNormPrologue* prologue_;
  int64_t inner_;
  std::vector<float> row_;
};

}  // namespace

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
  const int64_t n = params_.n, c = params_.c, inner = params_.h * params_.w;
  const double m = static_cast<double>(params_.per_channel());
#pragma omp parallel for schedule(static) if (n * c * inner > 32768)
  for (int64_t ch = 0; ch < c; ++ch) {
    GradientRows rows(dy, prologue, inner);
    const float channel_mean = mean[ch];
    double sum_dy = 0, sum_dy_centered = 0;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t at = (s * c + ch) * inner;
      const float* xr = x + at;
      const float* dyr = rows.row(at);
      float row_dy = 0, row_dy_centered = 0;
#pragma omp simd reduction(+ : row_dy, row_dy_centered)
      for (int64_t i = 0; i < inner; ++i) {
        row_dy += dyr[i];
        row_dy_centered += dyr[i] * (xr[i] - channel_mean);
      }
      sum_dy += row_dy;
      sum_dy_centered += row_dy_centered;
    }
    const double inv_std = 1.0 / std::sqrt(static_cast<double>(var[ch]) + params_.eps);
    const double sum_dy_xhat = sum_dy_centered * inv_std;
    if (params_.affine) {
      dscale[ch] = static_cast<float>(sum_dy_xhat);
      dshift[ch] = static_cast<float>(sum_dy);
    }
    const float gain = static_cast<float>((params_.affine ? scale[ch] : 1.0) * inv_std);
    const float mean_dy = static_cast<float>(sum_dy / m);
    // x_hat * dscale / m = (x - mean) * (inv_std * dscale / m)
    const float centered_coefficient = static_cast<float>(inv_std * sum_dy_xhat / m);
    for (int64_t s = 0; s < n; ++s) {
      const int64_t at = (s * c + ch) * inner;
      const float* xr = x + at;
      const float* dyr = rows.row(at);
      float* dxr = dx + at;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i)
        dxr[i] = gain * (dyr[i] - mean_dy - (xr[i] - channel_mean) * centered_coefficient);
    }
  }
}

void BatchNormKernel::backward_from_output(const float* y, const float* dy, const float* var,
                                           float* dx, const BatchNormPrologue* prologue) const {
  if (params_.affine)
    internal_error(__FILE__, __LINE__, "batchnorm: backward from the output needs affine=false");
  if (!var) internal_error(__FILE__, __LINE__, "batchnorm: backward needs the batch variance");
  // dx = (dy - mean(dy) - y * mean(dy * y)) / sqrt(var + eps), per channel over n, h, w:
  // the usual formula with x_hat = y. One pass reduces, one applies; the channels' rows
  // (one per sample) are contiguous, so each inner loop is a plain vectorisable span.
  const int64_t n = params_.n, c = params_.c, inner = params_.h * params_.w;
  const double m = static_cast<double>(params_.per_channel());
#pragma omp parallel for schedule(static) if (n * c * inner > 32768)
  for (int64_t ch = 0; ch < c; ++ch) {
    GradientRows rows(dy, prologue, inner);
    double sum_dy = 0, sum_dy_y = 0;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t at = (s * c + ch) * inner;
      const float* yr = y + at;
      const float* dyr = rows.row(at);
      float row_dy = 0, row_dy_y = 0;
#pragma omp simd reduction(+ : row_dy, row_dy_y)
      for (int64_t i = 0; i < inner; ++i) {
        row_dy += dyr[i];
        row_dy_y += dyr[i] * yr[i];
      }
      sum_dy += row_dy;
      sum_dy_y += row_dy_y;
    }
    const float inv_std =
        static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[ch]) + params_.eps));
    const float mean_dy = static_cast<float>(sum_dy / m);
    const float mean_dy_y = static_cast<float>(sum_dy_y / m);
    for (int64_t s = 0; s < n; ++s) {
      const int64_t at = (s * c + ch) * inner;
      const float* yr = y + at;
      const float* dyr = rows.row(at);
      float* dxr = dx + at;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) dxr[i] = (dyr[i] - mean_dy - yr[i] * mean_dy_y) * inv_std;
    }
  }
}

RowActivation::RowActivation(const std::string& op, double param)
    : fn_(find_elementwise(op)), param_(param), relu_(op == "relu") {
  if (!fn_) internal_error(__FILE__, __LINE__, "batchnorm: no element-wise formula for " + op);
}

void RowActivation::value(const float* x, float* y, int64_t n) const {
  if (relu_) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(fn_->value(x[i], param_));
}

void RowActivation::grad(const float* dy, const float* x, float* out, int64_t n) const {
  if (relu_) {
    // dy is loaded whatever x is: a load under the condition would not vectorise, and the
    // branch it needs mispredicts on about half the elements.
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float d = dy[i];
      out[i] = x[i] > 0.0f ? d : 0.0f;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(dy[i] * fn_->derivative(x[i], param_));
}

std::shared_ptr<const BatchNormKernel> batchnorm_kernel(const BatchNormParams& params) {
  params.validate();
  return cache().get(params.key(), [&] { return std::make_shared<const BatchNormKernel>(params); });
}

std::size_t batchnorm_kernels_created() {
  return cache().created();
}

}  // namespace nas
