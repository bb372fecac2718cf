// Naive float64 convolution written straight from the definition, as the oracle the oneDNN
// kernels (and later every other backend) are tested against. Slow on purpose: plain loops,
// no layout tricks, so that it is obviously right.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/cpu/conv2d.h"

namespace nas::reference {

// Calls f(x_index, w_index, y_index) for every tap that reads a
// real (non-padding) input element; forward and both gradients are sums over these taps.
template <typename F>
void for_each_conv_tap(const Conv2dParams& p, F&& f) {
  int64_t oh = p.out_h(), ow = p.out_w(), icg = p.c_in / p.groups, ocg = p.c_out / p.groups;
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t oc = 0; oc < p.c_out; ++oc) {
      int64_t g = oc / ocg;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox)
          for (int64_t i = 0; i < icg; ++i)
            for (int64_t ky = 0; ky < p.kernel; ++ky)
              for (int64_t kx = 0; kx < p.kernel; ++kx) {
                int64_t iy = oy * p.stride - p.pad + ky * p.dilation;
                int64_t ix = ox * p.stride - p.pad + kx * p.dilation;
                if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                int64_t ic = g * icg + i;
                int64_t xi = ((n * p.c_in + ic) * p.h + iy) * p.w + ix;
                int64_t wi = ((oc * icg + i) * p.kernel + ky) * p.kernel + kx;
                int64_t yi = ((n * p.c_out + oc) * oh + oy) * ow + ox;
                f(xi, wi, yi);
              }
    }
}

inline std::vector<double> conv2d_forward(const Conv2dParams& p, const std::vector<double>& x,
                                          const std::vector<double>& w,
                                          const std::vector<double>& b) {
  std::vector<double> y(p.output_size(), 0.0);
  for_each_conv_tap(p, [&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += x[xi] * w[wi]; });
  if (p.bias) {
    int64_t plane = p.out_h() * p.out_w();
    for (int64_t i = 0; i < p.output_size(); ++i) y[i] += b[(i / plane) % p.c_out];
  }
  return y;
}

inline std::vector<double> conv2d_backward_data(const Conv2dParams& p,
                                                const std::vector<double>& dy,
                                                const std::vector<double>& w) {
  std::vector<double> dx(p.input_size(), 0.0);
  for_each_conv_tap(p, [&](int64_t xi, int64_t wi, int64_t yi) { dx[xi] += dy[yi] * w[wi]; });
  return dx;
}

inline std::vector<double> conv2d_backward_weights(const Conv2dParams& p,
                                                   const std::vector<double>& x,
                                                   const std::vector<double>& dy) {
  std::vector<double> dw(p.weight_size(), 0.0);
  for_each_conv_tap(p, [&](int64_t xi, int64_t wi, int64_t yi) { dw[wi] += dy[yi] * x[xi]; });
  return dw;
}

inline std::vector<double> conv2d_backward_bias(const Conv2dParams& p,
                                                const std::vector<double>& dy) {
  std::vector<double> db(p.c_out, 0.0);
  int64_t plane = p.out_h() * p.out_w();
  for (int64_t i = 0; i < p.output_size(); ++i) db[(i / plane) % p.c_out] += dy[i];
  return db;
}

}  // namespace nas::reference
