// Helpers shared by the CPU kernel tests (test_cpu_kernels.cpp, test_cpu_ops.cpp,
// test_cpu_plain.cpp): seeded random buffers, widening to float64 for the references, and
// the tolerance rule every kernel is compared with.
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace nas::test {

inline std::vector<float> random_floats(int64_t count, std::mt19937& rng, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& f : v) f = dist(rng);
  return v;
}

inline std::vector<double> widen(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

// Elementwise |got - want| <= tol * max(1, max|want|): float32 sums of many products lose
// precision relative to the largest magnitude involved, not to each (possibly tiny) element.
inline void check_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                        const std::string& what) {
  REQUIRE(got.size() == want.size());
  double scale = 1.0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  size_t bad = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::abs(static_cast<double>(got[i]) - want[i]);
    worst = std::max(worst, err);
    if (!(err <= tol * scale)) ++bad;
  }
  INFO(what << ": " << bad << " of " << got.size() << " elements off, worst error " << worst
            << ", scale " << scale);
  CHECK(bad == 0);
}

// Catch's default relative tolerance for Approx.
constexpr double kApproxEpsilon = std::numeric_limits<float>::epsilon() * 100;

// Central finite differences of loss() in every element of `param`, compared with `grad`
// (Catch's Approx with the given margin and relative epsilon). The step used is the
// difference of the perturbed values as stored, not 2*eps exactly, which matters in float.
template <typename T, typename G>
void check_fd(std::vector<T>& param, const std::vector<G>& grad,
              const std::function<double()>& loss, T eps, double margin,
              double epsilon = kApproxEpsilon, const char* what = "") {
  REQUIRE(param.size() == grad.size());
  for (size_t i = 0; i < param.size(); ++i) {
    T saved = param[i];
    param[i] = saved + eps;
    double up = loss();
    param[i] = saved - eps;
    double down = loss();
    param[i] = saved;
    double step = static_cast<double>(saved + eps) - static_cast<double>(saved - eps);
    INFO(what << "[" << i << "]");
    CHECK((up - down) / step ==
          Approx(static_cast<double>(grad[i])).margin(margin).epsilon(epsilon));
  }
}

}  // namespace nas::test
