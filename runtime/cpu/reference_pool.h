// Naive float64 max and average pooling written straight from the definition, the oracle
// for the oneDNN pooling kernels. Max picks the first maximum in window order on ties, as
// oneDNN's workspace does, though tests avoid ties because the gradient has a kink there.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "runtime/cpu/pool2d.h"

namespace nas::reference {

// Calls f(y_index, x_indices_in_window, padded_window_size) once per output element.
template <typename F>
void for_each_pool_window(const Pool2dParams& p, F&& f) {
  int64_t oh = p.out_h(), ow = p.out_w(), s = p.effective_stride();
  std::vector<int64_t> taps;
  for (int64_t nc = 0; nc < p.n * p.c; ++nc)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        taps.clear();
        for (int64_t ky = 0; ky < p.kernel; ++ky)
          for (int64_t kx = 0; kx < p.kernel; ++kx) {
            int64_t iy = oy * s - p.pad + ky, ix = ox * s - p.pad + kx;
            if (iy >= 0 && iy < p.h && ix >= 0 && ix < p.w)
              taps.push_back((nc * p.h + iy) * p.w + ix);
          }
        f((nc * oh + oy) * ow + ox, taps);
      }
}

inline double pool_divisor(const Pool2dParams& p, const std::vector<int64_t>& taps) {
  return p.count_include_pad ? static_cast<double>(p.kernel * p.kernel)
                             : static_cast<double>(taps.size());
}

inline std::vector<double> pool2d_forward(const Pool2dParams& p, const std::vector<double>& x) {
  std::vector<double> y(p.output_size());
  for_each_pool_window(p, [&](int64_t yi, const std::vector<int64_t>& taps) {
    if (p.kind == PoolKind::max) {
      double best = -std::numeric_limits<double>::infinity();
      for (int64_t t : taps) best = x[t] > best ? x[t] : best;
      y[yi] = best;
    } else {
      double sum = 0;
      for (int64_t t : taps) sum += x[t];
      y[yi] = sum / pool_divisor(p, taps);
    }
  });
  return y;
}

inline std::vector<double> pool2d_backward(const Pool2dParams& p, const std::vector<double>& x,
                                           const std::vector<double>& dy) {
  std::vector<double> dx(p.input_size(), 0.0);
  for_each_pool_window(p, [&](int64_t yi, const std::vector<int64_t>& taps) {
    if (p.kind == PoolKind::max) {
      int64_t arg = taps.front();
      for (int64_t t : taps)
        if (x[t] > x[arg]) arg = t;
      dx[arg] += dy[yi];
    } else {
      for (int64_t t : taps) dx[t] += dy[yi] / pool_divisor(p, taps);
    }
  });
  return dx;
}

}  // namespace nas::reference
