// Naive float64 activations, batch normalisation and linear layers written straight from
// their definitions, the oracles for the oneDNN eltwise, batch-norm and inner-product kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/cpu/batchnorm.h"
#include "runtime/cpu/eltwise.h"
#include "runtime/cpu/linear.h"

namespace nas::reference {

// --- Activations ---------------------------------------------------------------------------

inline double relu6(double x) {
  return std::min(std::max(x, 0.0), 6.0);
}

inline double eltwise_value(const EltwiseParams& p, double x) {
  switch (p.kind) {
    case EltwiseKind::relu:
      return std::max(x, 0.0);
    case EltwiseKind::relu6:
      return relu6(x);
    case EltwiseKind::leaky_relu:
      return x > 0 ? x : p.slope * x;
    case EltwiseKind::sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case EltwiseKind::hard_swish:
      return x * relu6(x + 3) / 6;
    case EltwiseKind::hard_sigmoid:
      return relu6(x + 3) / 6;
  }
  return 0;
}

// f'(x) away from the kinks (where any one-sided value is a valid subgradient).
inline double eltwise_derivative(const EltwiseParams& p, double x) {
  switch (p.kind) {
    case EltwiseKind::relu:
      return x > 0 ? 1.0 : 0.0;
    case EltwiseKind::relu6:
      return x > 0 && x < 6 ? 1.0 : 0.0;
    case EltwiseKind::leaky_relu:
      return x > 0 ? 1.0 : p.slope;
    case EltwiseKind::sigmoid: {
      double s = 1.0 / (1.0 + std::exp(-x));
      return s * (1 - s);
    }
    case EltwiseKind::hard_swish:
      return x <= -3 ? 0.0 : x >= 3 ? 1.0 : (2 * x + 3) / 6;
    case EltwiseKind::hard_sigmoid:
      return x > -3 && x < 3 ? 1.0 / 6 : 0.0;
  }
  return 0;
}

inline std::vector<double> eltwise_forward(const EltwiseParams& p, const std::vector<double>& x) {
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = eltwise_value(p, x[i]);
  return y;
}

inline std::vector<double> eltwise_backward(const EltwiseParams& p, const std::vector<double>& x,
                                            const std::vector<double>& dy) {
  std::vector<double> dx(x.size());
  for (size_t i = 0; i < x.size(); ++i) dx[i] = dy[i] * eltwise_derivative(p, x[i]);
  return dx;
}

// --- Batch normalisation (NCHW, statistics per channel) ---------------------------------------

// Calls f(channel, flat_index) for every element, channel by channel.
template <typename F>
void for_each_in_channels(const BatchNormParams& p, F&& f) {
  int64_t hw = p.h * p.w;
  for (int64_t ch = 0; ch < p.c; ++ch)
    for (int64_t b = 0; b < p.n; ++b)
      for (int64_t i = 0; i < hw; ++i) f(ch, (b * p.c + ch) * hw + i);
}

struct BatchStats {
  std::vector<double> mean, var;  // var is biased (divides by n*h*w)
};

inline BatchStats batch_stats(const BatchNormParams& p, const std::vector<double>& x) {
  BatchStats s{std::vector<double>(p.c, 0.0), std::vector<double>(p.c, 0.0)};
  double m = static_cast<double>(p.per_channel());
  for_each_in_channels(p, [&](int64_t ch, int64_t i) { s.mean[ch] += x[i] / m; });
  for_each_in_channels(p, [&](int64_t ch, int64_t i) {
    double d = x[i] - s.mean[ch];
    s.var[ch] += d * d / m;
  });
  return s;
}

// y from given statistics; scale/shift empty when not affine.
inline std::vector<double> batchnorm_apply(const BatchNormParams& p, const std::vector<double>& x,
                                           const std::vector<double>& scale,
                                           const std::vector<double>& shift,
                                           const std::vector<double>& mean,
                                           const std::vector<double>& var) {
  std::vector<double> y(x.size());
  for_each_in_channels(p, [&](int64_t ch, int64_t i) {
    double xhat = (x[i] - mean[ch]) / std::sqrt(var[ch] + p.eps);
    y[i] = p.affine ? xhat * scale[ch] + shift[ch] : xhat;
  });
  return y;
}

inline std::vector<double> batchnorm_forward_training(const BatchNormParams& p,
                                                      const std::vector<double>& x,
                                                      const std::vector<double>& scale,
                                                      const std::vector<double>& shift) {
  BatchStats s = batch_stats(p, x);
  return batchnorm_apply(p, x, scale, shift, s.mean, s.var);
}

// PyTorch's update: running = (1 - m) running + m batch, with the unbiased batch variance.
inline void batchnorm_update_running(const BatchNormParams& p, const BatchStats& s,
                                     std::vector<double>& running_mean,
                                     std::vector<double>& running_var) {
  double count = static_cast<double>(p.per_channel());
  for (int64_t ch = 0; ch < p.c; ++ch) {
    running_mean[ch] = (1 - p.momentum) * running_mean[ch] + p.momentum * s.mean[ch];
    running_var[ch] =
        (1 - p.momentum) * running_var[ch] + p.momentum * s.var[ch] * count / (count - 1);
  }
}

struct BatchNormGrads {
  std::vector<double> dx, dscale, dshift;
};

// Gradients of the training forward (batch statistics depend on x).
inline BatchNormGrads batchnorm_backward(const BatchNormParams& p, const std::vector<double>& x,
                                         const std::vector<double>& dy,
                                         const std::vector<double>& scale) {
  BatchStats s = batch_stats(p, x);
  double m = static_cast<double>(p.per_channel());
  BatchNormGrads g{std::vector<double>(x.size()), std::vector<double>(p.c, 0.0),
                   std::vector<double>(p.c, 0.0)};
  std::vector<double> mean_dxhat(p.c, 0.0), mean_dxhat_xhat(p.c, 0.0);
  auto xhat = [&](int64_t ch, int64_t i) {
    return (x[i] - s.mean[ch]) / std::sqrt(s.var[ch] + p.eps);
  };
  auto gamma = [&](int64_t ch) { return p.affine ? scale[ch] : 1.0; };
  for_each_in_channels(p, [&](int64_t ch, int64_t i) {
    g.dshift[ch] += dy[i];
    g.dscale[ch] += dy[i] * xhat(ch, i);
    mean_dxhat[ch] += dy[i] * gamma(ch) / m;
    mean_dxhat_xhat[ch] += dy[i] * gamma(ch) * xhat(ch, i) / m;
  });
  for_each_in_channels(p, [&](int64_t ch, int64_t i) {
    g.dx[i] = (dy[i] * gamma(ch) - mean_dxhat[ch] - xhat(ch, i) * mean_dxhat_xhat[ch]) /
              std::sqrt(s.var[ch] + p.eps);
  });
  return g;
}

// --- Linear (weights [out, in]) --------------------------------------------------------------

inline std::vector<double> linear_forward(const LinearParams& p, const std::vector<double>& x,
                                          const std::vector<double>& w,
                                          const std::vector<double>& b) {
  std::vector<double> y(p.output_size());
  for (int64_t i = 0; i < p.n; ++i)
    for (int64_t o = 0; o < p.out; ++o) {
      double sum = p.bias ? b[o] : 0.0;
      for (int64_t k = 0; k < p.in; ++k) sum += x[i * p.in + k] * w[o * p.in + k];
      y[i * p.out + o] = sum;
    }
  return y;
}

inline std::vector<double> linear_backward_data(const LinearParams& p,
                                                const std::vector<double>& dy,
                                                const std::vector<double>& w) {
  std::vector<double> dx(p.input_size(), 0.0);
  for (int64_t i = 0; i < p.n; ++i)
    for (int64_t o = 0; o < p.out; ++o)
      for (int64_t k = 0; k < p.in; ++k) dx[i * p.in + k] += dy[i * p.out + o] * w[o * p.in + k];
  return dx;
}

inline std::vector<double> linear_backward_weights(const LinearParams& p,
                                                   const std::vector<double>& x,
                                                   const std::vector<double>& dy) {
  std::vector<double> dw(p.weight_size(), 0.0);
  for (int64_t i = 0; i < p.n; ++i)
    for (int64_t o = 0; o < p.out; ++o)
      for (int64_t k = 0; k < p.in; ++k) dw[o * p.in + k] += dy[i * p.out + o] * x[i * p.in + k];
  return dw;
}

inline std::vector<double> linear_backward_bias(const LinearParams& p,
                                                const std::vector<double>& dy) {
  std::vector<double> db(p.bias_size(), 0.0);
  if (!p.bias) return db;
  for (int64_t i = 0; i < p.n; ++i)
    for (int64_t o = 0; o < p.out; ++o) db[o] += dy[i * p.out + o];
  return db;
}

}  // namespace nas::reference
