// The plain-loop CPU kernels (runtime/cpu/plain_kernels.h): forwards against float64
// references written here from the definitions, backwards against central finite differences
// of a float64 loss, cross-entropy against hand-computed values and at extreme logits, the
// DARTS chain alpha -> softmax -> weighted sum, and the parameter errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/cpu/plain_kernels.h"
#include "support/errors.h"
#include "support/rng.h"
#include "tests/cpu_test_util.h"

namespace {

namespace plain = nas::plain;
using nas::derive_seed;
using nas::Rng;
using nas::test::check_close;
using nas::test::check_fd;
using nas::test::random_floats;

// sum(g * y) in double: the scalar loss whose gradient in y is g.
double dot(const std::vector<float>& g, const std::vector<float>& y) {
  double s = 0;
  for (size_t i = 0; i < g.size(); ++i) s += static_cast<double>(g[i]) * y[i];
  return s;
}

std::vector<const float*> ptrs(const std::vector<std::vector<float>>& v) {
  std::vector<const float*> p;
  for (const auto& x : v) p.push_back(x.data());
  return p;
}
std::vector<float*> mut_ptrs(std::vector<std::vector<float>>& v) {
  std::vector<float*> p;
  for (auto& x : v) p.push_back(x.data());
  return p;
}

// --- float64 references -------------------------------------------------------------------

double ref_cross_entropy(int64_t n, int64_t c, const std::vector<float>& logits,
                         const std::vector<int32_t>& labels, std::vector<double>* grad) {
  double total = 0;
  if (grad) grad->assign(static_cast<size_t>(n * c), 0.0);
  for (int64_t b = 0; b < n; ++b) {
    double m = -INFINITY;
    for (int64_t j = 0; j < c; ++j) m = std::max(m, static_cast<double>(logits[b * c + j]));
    double z = 0;
    for (int64_t j = 0; j < c; ++j) z += std::exp(logits[b * c + j] - m);
    total += -(logits[b * c + labels[b]] - m - std::log(z));
    if (grad)
      for (int64_t j = 0; j < c; ++j)
        (*grad)[b * c + j] =
            (std::exp(logits[b * c + j] - m) / z - (j == labels[b] ? 1.0 : 0.0)) / n;
  }
  return total / n;
}

std::vector<double> ref_softmax(const std::vector<float>& x) {
  double m = *std::max_element(x.begin(), x.end());
  std::vector<double> y(x.size());
  double z = 0;
  for (size_t i = 0; i < x.size(); ++i) z += (y[i] = std::exp(x[i] - m));
  for (double& v : y) v /= z;
  return y;
}

}  // namespace

// --- Softmax cross-entropy -------------------------------------------------------------------

TEST_CASE("cross-entropy matches hand-computed values", "[cpu][plain]") {
  plain::CrossEntropyParams p;
  p.batch = 1, p.classes = 2;
  std::vector<float> logits = {0, 0}, d(2);
  std::vector<int32_t> label = {0};
  CHECK(plain::softmax_cross_entropy(p, logits.data(), label.data(), d.data()) ==
        Approx(std::log(2.0)).epsilon(1e-12));
  CHECK(d[0] == Approx(-0.5).epsilon(1e-7));
  CHECK(d[1] == Approx(0.5).epsilon(1e-7));

  // Two samples: [ln 3, 0] label 0 -> softmax [3/4, 1/4], loss ln(4/3); [1, 1] label 1 ->
  // ln 2. The loss is the mean, (ln(4/3) + ln 2) / 2, and the gradients are halved.
  p.batch = 2;
  logits = {static_cast<float>(std::log(3.0)), 0, 1, 1};
  std::vector<int32_t> labels = {0, 1};
  d.assign(4, NAN);
  double loss = plain::softmax_cross_entropy(p, logits.data(), labels.data(), d.data());
  CHECK(loss == Approx((std::log(4.0 / 3.0) + std::log(2.0)) / 2).epsilon(1e-7));
  CHECK(d[0] == Approx((0.75 - 1) / 2).epsilon(1e-6));
  CHECK(d[1] == Approx(0.25 / 2).epsilon(1e-6));
  CHECK(d[2] == Approx(0.5 / 2).epsilon(1e-6));
  CHECK(d[3] == Approx(-0.5 / 2).epsilon(1e-6));
  // No gradient requested: same loss.
  CHECK(plain::softmax_cross_entropy(p, logits.data(), labels.data()) == loss);
}

TEST_CASE("cross-entropy is stable for huge logits", "[cpu][plain]") {
  plain::CrossEntropyParams p;
  p.batch = 1, p.classes = 3;
  std::vector<float> d(3);
  std::vector<float> logits = {1e4f, 0, -1e4f};
  std::vector<int32_t> label = {0};
  CHECK(plain::softmax_cross_entropy(p, logits.data(), label.data(), d.data()) ==
        Approx(0.0).margin(1e-12));
  CHECK(d == std::vector<float>{0, 0, 0});
  label = {1};
  CHECK(plain::softmax_cross_entropy(p, logits.data(), label.data(), d.data()) ==
        Approx(1e4).epsilon(1e-12));
  CHECK(d == std::vector<float>{1, -1, 0});
  label = {2};
  CHECK(plain::softmax_cross_entropy(p, logits.data(), label.data(), d.data()) ==
        Approx(2e4).epsilon(1e-12));
  logits = {1e4f, 1e4f, 1e4f};
  CHECK(plain::softmax_cross_entropy(p, logits.data(), label.data(), d.data()) ==
        Approx(std::log(3.0)).epsilon(1e-12));
  for (float v : d) CHECK(std::isfinite(v));
  logits = {-1e4f, -1e4f, -1e4f};
  CHECK(plain::softmax_cross_entropy(p, logits.data(), label.data(), d.data()) ==
        Approx(std::log(3.0)).epsilon(1e-12));
}

TEST_CASE("cross-entropy matches the float64 reference and finite differences", "[cpu][plain]") {
  std::mt19937 rng(11);
  for (auto [n, c] : {std::pair<int64_t, int64_t>{1, 1}, {3, 5}, {8, 10}, {2, 1000}}) {
    INFO("batch " << n << " classes " << c);
    plain::CrossEntropyParams p;
    p.batch = n, p.classes = c;
    auto logits = random_floats(n * c, rng, -5, 5);
    std::vector<int32_t> labels(n);
    for (auto& l : labels) l = static_cast<int32_t>(rng() % c);
    std::vector<float> d(n * c, NAN);
    double loss = plain::softmax_cross_entropy(p, logits.data(), labels.data(), d.data());
    std::vector<double> want;
    CHECK(loss == Approx(ref_cross_entropy(n, c, logits, labels, &want)).epsilon(1e-12));
    check_close(d, want, 1e-6, "dlogits");
    if (n * c <= 50) {
      auto f = [&] { return plain::softmax_cross_entropy(p, logits.data(), labels.data()); };
      check_fd(logits, d, f, 1e-3f, 1e-5, nas::test::kApproxEpsilon, "dlogits");
    }
    // In place: the gradient over the logits.
    std::vector<float> inplace = logits;
    CHECK(plain::softmax_cross_entropy(p, inplace.data(), labels.data(), inplace.data()) == loss);
    CHECK(inplace == d);
  }
}

TEST_CASE("cross-entropy rejects out-of-range labels before writing", "[cpu][plain]") {
  plain::CrossEntropyParams p;
  p.batch = 3, p.classes = 4;
  std::vector<float> logits(12, 0.5f), d(12, 7.0f);
  std::vector<int32_t> labels = {0, 3, 4};
  REQUIRE_THROWS_AS(plain::softmax_cross_entropy(p, logits.data(), labels.data(), d.data()),
                    nas::InternalError);
  REQUIRE_THROWS_WITH(plain::softmax_cross_entropy(p, logits.data(), labels.data(), d.data()),
                      Catch::Contains("label 4 of sample 2") && Catch::Contains("[0, 4)"));
  CHECK(d == std::vector<float>(12, 7.0f));
  labels = {-1, 0, 0};
  REQUIRE_THROWS_WITH(plain::softmax_cross_entropy(p, logits.data(), labels.data()),
                      Catch::Contains("label -1 of sample 0"));
  REQUIRE_THROWS_WITH(plain::top1_correct(p, logits.data(), labels.data()),
                      Catch::Contains("label -1 of sample 0"));
  p.classes = 0;
  REQUIRE_THROWS_WITH(p.validate(), Catch::Contains("classes must be positive, got 0"));
  p.classes = 4, p.batch = -2;
  REQUIRE_THROWS_WITH(p.validate(), Catch::Contains("batch must be positive, got -2"));
}

TEST_CASE("top-1 accuracy counts argmax hits, ties to the lowest class", "[cpu][plain]") {
  plain::CrossEntropyParams p;
  p.batch = 4, p.classes = 3;
  std::vector<float> logits = {0.1f, 0.9f, 0.3f,   // argmax 1
                               2,    2,    1,      // tie -> 0
                               -1,   -3,   -0.5f,  // argmax 2
                               5,    5,    5};     // tie -> 0
  std::vector<int32_t> labels = {1, 1, 2, 0};
  CHECK(plain::top1_correct(p, logits.data(), labels.data()) == 3);
  CHECK(plain::top1_accuracy(p, logits.data(), labels.data()) == 0.75);
}

// --- Softmax and weighted sum ----------------------------------------------------------------

TEST_CASE("softmax matches the reference and finite differences", "[cpu][plain]") {
  std::mt19937 rng(5);
  for (int64_t k : {1, 2, 8, 20}) {
    INFO("size " << k);
    auto x = random_floats(k, rng, -3, 3);
    auto g = random_floats(k, rng);
    std::vector<float> y(k), dx(k);
    plain::softmax_forward(k, x.data(), y.data());
    check_close(y, ref_softmax(x), 1e-6, "softmax");
    plain::softmax_backward(k, y.data(), g.data(), dx.data());
    std::vector<float> tmp(k);
    auto loss = [&] {
      plain::softmax_forward(k, x.data(), tmp.data());
      return dot(g, tmp);
    };
    check_fd(x, dx, loss, 1e-2f, 2e-4, nas::test::kApproxEpsilon, "dx");
    // In place forward and backward.
    std::vector<float> in = x;
    plain::softmax_forward(k, in.data(), in.data());
    CHECK(in == y);
    std::vector<float> gin = g;
    plain::softmax_backward(k, y.data(), gin.data(), gin.data());
    CHECK(gin == dx);
  }
  std::vector<float> big = {1e4f, 0, -1e4f}, y(3);
  plain::softmax_forward(3, big.data(), y.data());
  CHECK(y == std::vector<float>{1, 0, 0});
  REQUIRE_THROWS_WITH(plain::softmax_forward(0, big.data(), y.data()),
                      Catch::Contains("size must be positive"));
}

TEST_CASE("weighted sum matches the reference, gradients by finite differences", "[cpu][plain]") {
  std::mt19937 rng(7);
  for (auto [k, size] : {std::pair<int64_t, int64_t>{1, 1}, {3, 17}, {8, 130}}) {
    INFO("k " << k << " size " << size);
    plain::WeightedSumParams p;
    p.inputs = k, p.size = size;
    std::vector<std::vector<float>> xs;
    for (int64_t i = 0; i < k; ++i) xs.push_back(random_floats(size, rng));
    auto w = random_floats(k, rng);
    auto g = random_floats(size, rng);
    std::vector<float> y(size, NAN);
    plain::weighted_sum_forward(p, ptrs(xs).data(), w.data(), y.data());
    std::vector<double> want(size, 0.0);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < size; ++j) want[j] += static_cast<double>(w[i]) * xs[i][j];
    check_close(y, want, 1e-6, "forward");

    std::vector<std::vector<float>> dxs(k, std::vector<float>(size, NAN));
    std::vector<float> dw(k, NAN);
    plain::weighted_sum_backward(p, ptrs(xs).data(), w.data(), g.data(), mut_ptrs(dxs).data(),
                                 dw.data());
    std::vector<float> tmp(size);
    auto loss = [&] {
      plain::weighted_sum_forward(p, ptrs(xs).data(), w.data(), tmp.data());
      return dot(g, tmp);
    };
    // The loss is linear in each variable: a large step is exact up to rounding.
    check_fd(w, dw, loss, 0.25f, 1e-4, nas::test::kApproxEpsilon, "dw");
    for (int64_t i = 0; i < k; ++i)
      check_fd(xs[i], dxs[i], loss, 0.25f, 1e-5, nas::test::kApproxEpsilon, "dx");

    // Null outputs are skipped.
    std::vector<float*> none(k, nullptr);
    plain::weighted_sum_backward(p, ptrs(xs).data(), w.data(), g.data(), none.data(), nullptr);
  }
}

TEST_CASE("alpha -> softmax -> weighted sum: gradient in alpha by finite differences",
          "[cpu][plain]") {
  std::mt19937 rng(9);
  const int64_t k = 5, size = 64;
  plain::WeightedSumParams p;
  p.inputs = k, p.size = size;
  std::vector<std::vector<float>> xs;
  for (int64_t i = 0; i < k; ++i) xs.push_back(random_floats(size, rng));
  auto alpha = random_floats(k, rng, -1, 1);
  auto g = random_floats(size, rng);

  std::vector<float> w(k), y(size), dw(k), dalpha(k);
  plain::softmax_forward(k, alpha.data(), w.data());
  plain::weighted_sum_forward(p, ptrs(xs).data(), w.data(), y.data());
  plain::weighted_sum_backward(p, ptrs(xs).data(), w.data(), g.data(), nullptr, dw.data());
  plain::softmax_backward(k, w.data(), dw.data(), dalpha.data());

  // float64 loss from a float64 forward written here.
  auto loss = [&] {
    auto wd = ref_softmax(alpha);
    double s = 0;
    for (int64_t j = 0; j < size; ++j) {
      double v = 0;
      for (int64_t i = 0; i < k; ++i) v += wd[i] * xs[i][j];
      s += g[j] * v;
    }
    return s;
  };
  check_fd(alpha, dalpha, loss, 1e-2f, 1e-4, nas::test::kApproxEpsilon, "dalpha");
}

// --- Add and concat --------------------------------------------------------------------------

TEST_CASE("add: forward, in place and backward", "[cpu][plain]") {
  std::mt19937 rng(3);
  for (auto [k, size] : {std::pair<int64_t, int64_t>{1, 5}, {2, 33}, {4, 100}}) {
    plain::AddParams p;
    p.inputs = k, p.size = size;
    std::vector<std::vector<float>> xs;
    for (int64_t i = 0; i < k; ++i) xs.push_back(random_floats(size, rng));
    std::vector<float> y(size, NAN);
    plain::add_forward(p, ptrs(xs).data(), y.data());
    std::vector<double> want(size, 0.0);
    for (const auto& x : xs)
      for (int64_t j = 0; j < size; ++j) want[j] += x[j];
    check_close(y, want, 1e-6, "forward");
    // In place on the last input.
    auto saved = xs;
    plain::add_forward(p, ptrs(xs).data(), xs.back().data());
    check_close(xs.back(), want, 1e-6, "in place");
    xs = saved;

    auto g = random_floats(size, rng);
    std::vector<std::vector<float>> dxs(k, std::vector<float>(size, NAN));
    plain::add_backward(p, g.data(), mut_ptrs(dxs).data());
    std::vector<float> tmp(size);
    auto loss = [&] {
      plain::add_forward(p, ptrs(xs).data(), tmp.data());
      return dot(g, tmp);
    };
    for (int64_t i = 0; i < k; ++i)
      check_fd(xs[i], dxs[i], loss, 0.25f, 1e-5, nas::test::kApproxEpsilon, "dx");
  }
  plain::AddParams bad;
  bad.inputs = 0;
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("add: inputs must be positive, got 0"));
}

TEST_CASE("concat on NCHW channels and other axes, backward splits", "[cpu][plain]") {
  std::mt19937 rng(13);
  const int64_t n = 2, h = 3, w = 4;
  const std::vector<int64_t> chans = {1, 3, 2};
  std::vector<std::vector<int64_t>> shapes;
  for (int64_t c : chans) shapes.push_back({c, h, w});
  auto p = plain::ConcatParams::from_shapes(n, shapes, 0);
  CHECK(p.outer == n);
  CHECK(p.inner == h * w);
  CHECK(p.total() == 6);
  std::vector<std::vector<float>> xs;
  for (int64_t c : chans) xs.push_back(random_floats(n * c * h * w, rng));
  std::vector<float> y(n * 6 * h * w, NAN);
  plain::concat_forward(p, ptrs(xs).data(), y.data());
  // Reference by NCHW indexing: output channel oc of sample b comes from input i channel c.
  std::vector<double> want(y.size());
  for (int64_t b = 0; b < n; ++b) {
    int64_t oc = 0;
    for (size_t i = 0; i < chans.size(); ++i)
      for (int64_t c = 0; c < chans[i]; ++c, ++oc)
        for (int64_t r = 0; r < h * w; ++r)
          want[(b * 6 + oc) * h * w + r] = xs[i][(b * chans[i] + c) * h * w + r];
  }
  check_close(y, want, 0, "forward");

  auto g = random_floats(static_cast<int64_t>(y.size()), rng);
  std::vector<std::vector<float>> dxs;
  for (const auto& x : xs) dxs.emplace_back(x.size(), NAN);
  plain::concat_backward(p, g.data(), mut_ptrs(dxs).data());
  std::vector<float> tmp(y.size());
  auto loss = [&] {
    plain::concat_forward(p, ptrs(xs).data(), tmp.data());
    return dot(g, tmp);
  };
  for (size_t i = 0; i < xs.size(); ++i)
    check_fd(xs[i], dxs[i], loss, 0.25f, 1e-6, nas::test::kApproxEpsilon, "dx");

  // Axis 2 (width) of [C,H,W]: outer = n*C*H, inner = 1; round trip through the split.
  auto q = plain::ConcatParams::from_shapes(n, {{2, 3, 1}, {2, 3, 4}}, 2);
  CHECK(q.outer == n * 6);
  CHECK(q.inner == 1);
  std::vector<std::vector<float>> parts = {random_floats(n * 6, rng), random_floats(n * 24, rng)};
  std::vector<float> joined(n * 30);
  plain::concat_forward(q, ptrs(parts).data(), joined.data());
  CHECK(joined[0] == parts[0][0]);
  CHECK(joined[1] == parts[1][0]);
  CHECK(joined[5] == parts[0][1]);
  std::vector<std::vector<float>> back = {std::vector<float>(n * 6), std::vector<float>(n * 24)};
  plain::concat_backward(q, joined.data(), mut_ptrs(back).data());
  CHECK(back == parts);

  REQUIRE_THROWS_WITH(plain::ConcatParams::from_shapes(1, {{2, 3, 3}, {2, 4, 3}}, 0),
                      Catch::Contains("input 1 has size 4 on axis 1 but input 0 has 3"));
  REQUIRE_THROWS_WITH(plain::ConcatParams::from_shapes(1, {{2, 3, 3}}, 3),
                      Catch::Contains("axis must be in [0, 3)"));
  REQUIRE_THROWS_WITH(plain::ConcatParams::from_shapes(1, {{2, 3, 3}, {2, 3}}, 0),
                      Catch::Contains("input 1 has rank 2"));
  plain::ConcatParams empty;
  REQUIRE_THROWS_WITH(empty.validate(), Catch::Contains("at least one input"));
  empty.sizes = {2, 0};
  REQUIRE_THROWS_WITH(empty.validate(), Catch::Contains("sizes[1] must be positive"));
}

// --- Mul, global average pooling, crop, zero -------------------------------------------------

TEST_CASE("mul by a constant", "[cpu][plain]") {
  std::mt19937 rng(17);
  auto x = random_floats(40, rng), g = random_floats(40, rng);
  std::vector<float> y(40), dx(40);
  plain::scale_forward(40, -2.5, x.data(), y.data());
  std::vector<double> want(40);
  for (int i = 0; i < 40; ++i) want[i] = -2.5 * x[i];
  check_close(y, want, 1e-7, "forward");
  plain::scale_backward(40, -2.5, g.data(), dx.data());
  auto loss = [&] {
    plain::scale_forward(40, -2.5, x.data(), y.data());
    return dot(g, y);
  };
  check_fd(x, dx, loss, 0.25f, 1e-5, nas::test::kApproxEpsilon, "dx");
  REQUIRE_THROWS_WITH(plain::scale_forward(40, INFINITY, x.data(), y.data()),
                      Catch::Contains("scale must be finite"));
}

TEST_CASE("dropout: each element's draw from its sample's stream, over any range", "[cpu][plain]") {
  std::mt19937 rng(19);
  const int64_t batch = 5, per = 37, n = batch * per;
  auto x = random_floats(n, rng), g = random_floats(n, rng);
  plain::DropoutParams p;
  p.node_seed = derive_seed(7, 3);
  p.first_sample = 4;  // this rank's sample 0 is the global batch's sample 4
  p.per_sample = per;
  p.p = 0.3;
  // The reference: sample b's elements in order from Rng(derive_seed(node_seed, 4 + b)),
  // kept with probability 0.7 and scaled by 1 / 0.7 in double.
  std::vector<double> want(n);
  for (int64_t b = 0; b < batch; ++b) {
    Rng stream(derive_seed(p.node_seed, static_cast<uint64_t>(4 + b)));
    for (int64_t k = 0; k < per; ++k)
      want[b * per + k] = stream.uniform_float() >= 0.3 ? x[b * per + k] / 0.7 : 0.0;
  }
  std::vector<float> y(n, NAN);
  plain::dropout_range(p, 0, n, x.data(), y.data());
  check_close(y, want, 1e-7, "forward");
  // In ranges that start and end inside samples (a fused region's blocks), and in place.
  std::vector<float> pieces = x;
  const int64_t bounds[] = {0, 13, 50, 111, 150, n};
  for (int r = 0; r + 1 < 6; ++r)
    plain::dropout_range(p, bounds[r], bounds[r + 1] - bounds[r], pieces.data() + bounds[r],
                         pieces.data() + bounds[r]);
  CHECK(pieces == y);
  // The gradient draws the same mask: dL/dx of L = sum(g * y) by finite differences.
  std::vector<float> dx(n);
  plain::dropout_range(p, 0, n, g.data(), dx.data());
  auto loss = [&] {
    plain::dropout_range(p, 0, n, x.data(), y.data());
    return dot(g, y);
  };
  check_fd(x, dx, loss, 0.25f, 1e-5, nas::test::kApproxEpsilon, "dx");
  p.p = 1.0;
  REQUIRE_THROWS_WITH(plain::dropout_range(p, 0, n, x.data(), y.data()),
                      Catch::Contains("p must be in [0, 1)"));
}

TEST_CASE("global average pooling: forward and backward", "[cpu][plain]") {
  std::mt19937 rng(19);
  plain::GlobalAvgPoolParams p;
  p.batch = 2, p.channels = 3, p.height = 5, p.width = 7;
  auto x = random_floats(2 * 3 * 35, rng);
  std::vector<float> y(6, NAN);
  plain::global_avg_pool_forward(p, x.data(), y.data());
  std::vector<double> want(6, 0.0);
  for (int64_t bc = 0; bc < 6; ++bc) {
    for (int64_t i = 0; i < 35; ++i) want[bc] += x[bc * 35 + i];
    want[bc] /= 35;
  }
  check_close(y, want, 1e-6, "forward");
  auto g = random_floats(6, rng);
  std::vector<float> dx(x.size(), NAN);
  plain::global_avg_pool_backward(p, g.data(), dx.data());
  auto loss = [&] {
    std::vector<float> t(6);
    plain::global_avg_pool_forward(p, x.data(), t.data());
    return dot(g, t);
  };
  check_fd(x, dx, loss, 0.25f, 1e-6, nas::test::kApproxEpsilon, "dx");
  p.width = 0;
  REQUIRE_THROWS_WITH(p.validate(), Catch::Contains("width must be positive, got 0"));
}

TEST_CASE("crop: forward and backward", "[cpu][plain]") {
  std::mt19937 rng(23);
  plain::CropParams p;
  p.batch = 2, p.channels = 2, p.height = 6, p.width = 5;
  p.top = 1, p.left = 2, p.bottom = 2, p.right = 0;
  REQUIRE(p.out_height() == 3);
  REQUIRE(p.out_width() == 3);
  auto x = random_floats(2 * 2 * 30, rng);
  std::vector<float> y(2 * 2 * 9, NAN);
  plain::crop_forward(p, x.data(), y.data());
  std::vector<double> want;
  for (int64_t bc = 0; bc < 4; ++bc)
    for (int64_t r = 1; r < 4; ++r)
      for (int64_t c = 2; c < 5; ++c) want.push_back(x[bc * 30 + r * 5 + c]);
  check_close(y, want, 0, "forward");
  auto g = random_floats(static_cast<int64_t>(y.size()), rng);
  std::vector<float> dx(x.size(), NAN);
  plain::crop_backward(p, g.data(), dx.data());
  auto loss = [&] {
    std::vector<float> t(y.size());
    plain::crop_forward(p, x.data(), t.data());
    return dot(g, t);
  };
  check_fd(x, dx, loss, 0.25f, 1e-6, nas::test::kApproxEpsilon, "dx");

  p.bottom = 5;
  REQUIRE_THROWS_WITH(p.validate(), Catch::Contains("at least 1 row and 1 column"));
  p.bottom = 0, p.left = -1;
  REQUIRE_THROWS_WITH(p.validate(), Catch::Contains("left must be >= 0, got -1"));
}

TEST_CASE("zero fills the strided shape", "[cpu][plain]") {
  CHECK(plain::zero_output_size(2, 3, 5, 4, 2) == 2 * 3 * 3 * 2);
  CHECK(plain::zero_output_size(1, 1, 7, 7, 1) == 49);
  std::vector<float> y(12, 3.0f);
  plain::zero_fill(12, y.data());
  CHECK(y == std::vector<float>(12, 0.0f));
  REQUIRE_THROWS_WITH(plain::zero_output_size(1, 1, 4, 4, 0),
                      Catch::Contains("stride must be positive, got 0"));
  REQUIRE_THROWS_WITH(plain::zero_fill(0, y.data()), Catch::Contains("size must be positive"));
}
