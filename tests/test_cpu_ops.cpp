// The oneDNN eltwise, batch-norm and inner-product (linear) CPU kernels, the generic
// elementwise kernel and mul by a tensor against naive float64 references (forward and
// gradients), the references and kernels against central finite
// differences, batch-norm running statistics and inference mode, and the once-per-signature
// primitive caches.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/cpu/batchnorm.h"
#include "runtime/cpu/eltwise.h"
#include "runtime/cpu/linear.h"
#include "runtime/cpu/plain_kernels.h"
#include "runtime/cpu/reference_ops.h"
#include "support/elementwise_ops.h"
#include "support/errors.h"
#include "tests/cpu_test_util.h"

namespace {

using nas::test::check_close;
using nas::test::check_fd;
using nas::test::random_floats;
using nas::test::widen;

using nas::BatchNormParams;
using nas::EltwiseKind;
using nas::EltwiseParams;
using nas::LinearParams;

const std::vector<EltwiseKind> all_kinds = {EltwiseKind::relu,       EltwiseKind::relu6,
                                            EltwiseKind::leaky_relu, EltwiseKind::sigmoid,
                                            EltwiseKind::hard_swish, EltwiseKind::hard_sigmoid};

EltwiseParams make_eltwise(EltwiseKind kind, int64_t size, double slope = 0.01) {
  EltwiseParams p;
  p.kind = kind, p.size = size, p.slope = slope;
  return p;
}

// Inputs in [-8, 8] kept at least `margin` away from every kink of every activation
// (0 for relu/leaky_relu, 0 and 6 for relu6, -3 and 3 for the hard ops), so that both the
// reference derivative and central differences are well defined.
std::vector<float> kink_free_floats(int64_t count, std::mt19937& rng, float margin = 0.05f) {
  std::uniform_real_distribution<float> dist(-8.0f, 8.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& f : v) {
    for (;;) {
      f = dist(rng);
      bool near = false;
      for (float k : {-3.0f, 0.0f, 3.0f, 6.0f}) near = near || std::abs(f - k) < margin;
      if (!near) break;
    }
  }
  return v;
}

void check_eltwise_against_reference(const EltwiseParams& p, uint32_t seed) {
  INFO(p.key());
  std::mt19937 rng(seed);
  auto x = kink_free_floats(p.size, rng);
  auto dy = random_floats(p.size, rng);
  auto kernel = nas::eltwise_kernel(p);
  const float nan = std::nanf("");
  std::vector<float> y(p.size, nan), dx(p.size, nan);
  kernel->forward(x.data(), y.data());
  kernel->backward(x.data(), dy.data(), dx.data());
  check_close(y, nas::reference::eltwise_forward(p, widen(x)), 1e-6, "forward");
  check_close(dx, nas::reference::eltwise_backward(p, widen(x), widen(dy)), 1e-6, "backward");

  // In place: y over x, and dx over dy, give the same results.
  std::vector<float> inplace = x;
  kernel->forward(inplace.data(), inplace.data());
  CHECK(inplace == y);
  std::vector<float> grad = dy;
  kernel->backward(x.data(), grad.data(), grad.data());
  CHECK(grad == dx);
}

}  // namespace

// --- Eltwise -------------------------------------------------------------------------------

TEST_CASE("eltwise matches the float64 reference for every activation", "[cpu][eltwise]") {
  uint32_t seed = 1;
  for (EltwiseKind kind : all_kinds)
    for (int64_t size : {1, 7, 64, 1000, 4099})
      check_eltwise_against_reference(make_eltwise(kind, size), seed++);
  for (double slope : {0.2, 0.0, -0.5, 3.0})
    check_eltwise_against_reference(make_eltwise(EltwiseKind::leaky_relu, 513, slope), seed++);
}

TEST_CASE("eltwise matches the float64 reference on random sizes", "[cpu][eltwise]") {
  std::mt19937 rng(20240612);
  for (uint32_t i = 0; i < 30; ++i) {
    EltwiseKind kind = all_kinds[std::uniform_int_distribution<size_t>(0, 5)(rng)];
    int64_t size = std::uniform_int_distribution<int64_t>(1, 3000)(rng);
    double slope = std::uniform_real_distribution<double>(-1.0, 1.0)(rng);
    check_eltwise_against_reference(make_eltwise(kind, size, slope), 200 + i);
  }
}

TEST_CASE("eltwise follows the PyTorch definitions at chosen points", "[cpu][eltwise]") {
  // Values straight from torch.nn.functional (hardswish, hardsigmoid, relu6) away from kinks.
  std::vector<float> x = {-4.0f, -1.5f, 1.5f, 4.0f, 7.0f};
  auto run = [&](EltwiseKind kind) {
    std::vector<float> y(x.size());
    nas::eltwise_kernel(make_eltwise(kind, static_cast<int64_t>(x.size())))
        ->forward(x.data(), y.data());
    return y;
  };
  auto hs = run(EltwiseKind::hard_swish);
  CHECK(hs[0] == Approx(0.0));
  CHECK(hs[1] == Approx(-0.375));
  CHECK(hs[2] == Approx(1.125));
  CHECK(hs[3] == Approx(4.0));
  auto hsig = run(EltwiseKind::hard_sigmoid);
  CHECK(hsig[0] == Approx(0.0));
  CHECK(hsig[1] == Approx(0.25));
  CHECK(hsig[2] == Approx(0.75));
  CHECK(hsig[3] == Approx(1.0));
  auto r6 = run(EltwiseKind::relu6);
  CHECK(r6[0] == 0.0f);
  CHECK(r6[2] == 1.5f);
  CHECK(r6[4] == 6.0f);
}

TEST_CASE("eltwise reference derivatives match central finite differences", "[cpu][eltwise]") {
  std::mt19937 rng(5);
  for (EltwiseKind kind : all_kinds) {
    EltwiseParams p = make_eltwise(kind, 200, 0.3);
    INFO(p.key());
    auto x = widen(kink_free_floats(p.size, rng));
    const double eps = 1e-5;
    for (double v : x) {
      double fd =
          (nas::reference::eltwise_value(p, v + eps) - nas::reference::eltwise_value(p, v - eps)) /
          (2 * eps);
      INFO("x = " << v);
      CHECK(fd == Approx(nas::reference::eltwise_derivative(p, v)).margin(1e-8).epsilon(1e-6));
    }
  }
}

TEST_CASE("eltwise oneDNN gradients match finite differences of its own forward",
          "[cpu][eltwise]") {
  // Each output depends on one input only, so perturbing the whole vector at once gives every
  // partial derivative from two forward calls. The kink margin (0.05) exceeds the step.
  std::mt19937 rng(9);
  for (EltwiseKind kind : all_kinds) {
    EltwiseParams p = make_eltwise(kind, 300, 0.25);
    INFO(p.key());
    auto kernel = nas::eltwise_kernel(p);
    auto x = kink_free_floats(p.size, rng);
    auto r = random_floats(p.size, rng);
    std::vector<float> dx(p.size), up(x), down(x), y_up(p.size), y_down(p.size);
    kernel->backward(x.data(), r.data(), dx.data());
    const float eps = 1e-2f;
    for (size_t i = 0; i < x.size(); ++i) up[i] = x[i] + eps, down[i] = x[i] - eps;
    kernel->forward(up.data(), y_up.data());
    kernel->forward(down.data(), y_down.data());
    for (size_t i = 0; i < x.size(); ++i) {
      double step = static_cast<double>(up[i]) - static_cast<double>(down[i]);
      double fd = r[i] * (static_cast<double>(y_up[i]) - y_down[i]) / step;
      INFO("x[" << i << "] = " << x[i]);
      CHECK(fd == Approx(dx[i]).margin(1e-3).epsilon(1e-3));
    }
  }
}

TEST_CASE("eltwise primitives are created once per signature", "[cpu][eltwise]") {
  size_t before = nas::eltwise_kernels_created();
  auto a = nas::eltwise_kernel(make_eltwise(EltwiseKind::hard_swish, 12345));
  auto b = nas::eltwise_kernel(make_eltwise(EltwiseKind::hard_swish, 12345));
  CHECK(a == b);
  CHECK(nas::eltwise_kernels_created() == before + 1);
  // The slope matters for leaky_relu only.
  auto r1 = nas::eltwise_kernel(make_eltwise(EltwiseKind::relu, 12345, 0.5));
  auto r2 = nas::eltwise_kernel(make_eltwise(EltwiseKind::relu, 12345, 0.7));
  CHECK(r1 == r2);
  CHECK(nas::eltwise_kernels_created() == before + 2);
  auto l1 = nas::eltwise_kernel(make_eltwise(EltwiseKind::leaky_relu, 12345, 0.5));
  auto l2 = nas::eltwise_kernel(make_eltwise(EltwiseKind::leaky_relu, 12345, 0.7));
  CHECK(l1 != l2);
  CHECK(nas::eltwise_kernels_created() == before + 4);

  std::vector<std::shared_ptr<const nas::EltwiseKernel>> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back(
        [&, i] { got[i] = nas::eltwise_kernel(make_eltwise(EltwiseKind::sigmoid, 12345)); });
  for (std::thread& t : threads) t.join();
  CHECK(nas::eltwise_kernels_created() == before + 5);
  for (const auto& k : got) CHECK(k == got[0]);
}

TEST_CASE("eltwise rejects inconsistent signatures", "[cpu][eltwise]") {
  CHECK_THROWS_AS(nas::eltwise_kernel(make_eltwise(EltwiseKind::relu, 0)), nas::InternalError);
  CHECK_THROWS_AS(nas::eltwise_kernel(make_eltwise(EltwiseKind::relu, -4)), nas::InternalError);
  CHECK_THROWS_AS(nas::eltwise_kernel(make_eltwise(EltwiseKind::leaky_relu, 4, INFINITY)),
                  nas::InternalError);
  CHECK_THROWS_AS(nas::eltwise_kernel(make_eltwise(EltwiseKind::leaky_relu, 4, std::nan(""))),
                  nas::InternalError);
  CHECK_THROWS_AS(nas::eltwise_kernel(make_eltwise(static_cast<EltwiseKind>(99), 4)),
                  nas::InternalError);
}

// --- Batch normalisation -------------------------------------------------------------------

namespace {

BatchNormParams make_bn(int64_t n, int64_t c, int64_t h, int64_t w, bool affine, double eps = 1e-5,
                        double momentum = 0.1) {
  BatchNormParams p;
  p.n = n, p.c = c, p.h = h, p.w = w, p.affine = affine, p.eps = eps, p.momentum = momentum;
  return p;
}

// Training forward, running update, inference forward and backward against the reference.
void check_bn_against_reference(const BatchNormParams& p, uint32_t seed) {
  INFO(p.key());
  std::mt19937 rng(seed);
  // A per-channel offset and spread so that normalisation has something to remove.
  auto x = random_floats(p.size(), rng);
  auto offsets = random_floats(p.c, rng, -3.0f, 3.0f);
  auto spreads = random_floats(p.c, rng, 0.5f, 4.0f);
  for (int64_t b = 0; b < p.n; ++b)
    for (int64_t ch = 0; ch < p.c; ++ch)
      for (int64_t i = 0; i < p.h * p.w; ++i) {
        float& v = x[(b * p.c + ch) * p.h * p.w + i];
        v = v * spreads[ch] + offsets[ch];
      }
  auto dy = random_floats(p.size(), rng);
  std::vector<float> scale, shift;
  if (p.affine) scale = random_floats(p.c, rng, 0.5f, 2.0f), shift = random_floats(p.c, rng);
  auto running_mean = random_floats(p.c, rng);
  auto running_var = random_floats(p.c, rng, 0.5f, 2.0f);
  auto kernel = nas::batchnorm_kernel(p);

  const float nan = std::nanf("");
  std::vector<float> y(p.size(), nan), mean(p.c, nan), var(p.c, nan), dx(p.size(), nan),
      dscale(p.c, nan), dshift(p.c, nan), y_inf(p.size(), nan);
  std::vector<float> rm = running_mean, rv = running_var;
  kernel->forward_training(x.data(), scale.data(), shift.data(), y.data(), mean.data(), var.data(),
                           rm.data(), rv.data());
  kernel->backward(x.data(), dy.data(), mean.data(), var.data(), scale.data(), dx.data(),
                   dscale.data(), dshift.data());
  kernel->forward_inference(x.data(), scale.data(), shift.data(), rm.data(), rv.data(),
                            y_inf.data());

  auto xd = widen(x), scd = widen(scale), shd = widen(shift);
  auto stats = nas::reference::batch_stats(p, xd);
  check_close(y, nas::reference::batchnorm_forward_training(p, xd, scd, shd), 1e-4, "forward");
  check_close(mean, stats.mean, 1e-5, "batch mean");
  check_close(var, stats.var, 1e-4, "batch variance (biased)");
  auto want_rm = widen(running_mean), want_rv = widen(running_var);
  nas::reference::batchnorm_update_running(p, stats, want_rm, want_rv);
  check_close(rm, want_rm, 1e-5, "running mean");
  check_close(rv, want_rv, 1e-4, "running variance (unbiased batch variance)");
  // Inference normalises with the running statistics just updated.
  check_close(y_inf, nas::reference::batchnorm_apply(p, xd, scd, shd, widen(rm), widen(rv)), 1e-4,
              "inference forward");
  auto g = nas::reference::batchnorm_backward(p, xd, widen(dy), scd);
  check_close(dx, g.dx, 1e-4, "dx");
  if (p.affine) {
    check_close(dscale, g.dscale, 1e-4, "dscale");
    check_close(dshift, g.dshift, 1e-4, "dshift");
  } else {
    // Without scale and shift the output is x_hat, and the gradient can be read from it.
    std::vector<float> dx_from_y(p.size(), nan);
    kernel->backward_from_output(y.data(), dy.data(), var.data(), dx_from_y.data());
    check_close(dx_from_y, g.dx, 1e-4, "dx from the output");
  }
}

}  // namespace

TEST_CASE("batchnorm matches the float64 reference on chosen signatures", "[cpu][batchnorm]") {
  std::vector<BatchNormParams> cases = {
      make_bn(4, 3, 5, 5, true),             // small image batch
      make_bn(2, 8, 7, 9, false),            // no scale/shift
      make_bn(16, 10, 1, 1, true),           // feature vectors (h = w = 1)
      make_bn(1, 4, 6, 6, true),             // batch of one image: statistics over h*w
      make_bn(2, 1, 1, 1, false, 1e-3),      // the smallest trainable case
      make_bn(3, 5, 4, 4, true, 0.1, 1.0),   // momentum 1: running stats = batch stats
      make_bn(3, 5, 4, 4, true, 1e-5, 0.0),  // momentum 0: running stats unchanged
      make_bn(16, 4, 32, 32, false)          // large enough for the threaded loops
  };
  uint32_t seed = 1;
  for (const BatchNormParams& p : cases) check_bn_against_reference(p, seed++);
}

TEST_CASE("batchnorm matches the float64 reference on random signatures", "[cpu][batchnorm]") {
  std::mt19937 rng(20240613);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (uint32_t i = 0; i < 25; ++i) {
    BatchNormParams p = make_bn(pick(1, 6), pick(1, 12), pick(1, 9), pick(1, 9), pick(0, 1) == 1,
                                std::vector<double>{1e-5, 1e-3, 0.1}[pick(0, 2)],
                                std::uniform_real_distribution<double>(0.0, 1.0)(rng));
    if (p.per_channel() < 2) p.n = 2;
    check_bn_against_reference(p, 300 + i);
  }
}

TEST_CASE("batchnorm statistics stay accurate far from zero", "[cpu][batchnorm]") {
  // A mean 10^4 times the spread: E[x^2] - E[x]^2 in float would lose every digit of the
  // variance; the per-row deviations the kernel sums keep it.
  BatchNormParams p = make_bn(8, 2, 5, 7, false);
  std::mt19937 rng(7);
  auto x = random_floats(p.size(), rng);
  for (float& v : x) v = 1000.0f + 0.1f * v;
  std::vector<float> y(p.size()), mean(p.c), var(p.c);
  nas::batchnorm_kernel(p)->forward_training(x.data(), nullptr, nullptr, y.data(), mean.data(),
                                             var.data(), nullptr, nullptr);
  auto xd = widen(x);
  auto stats = nas::reference::batch_stats(p, xd);
  for (int64_t ch = 0; ch < p.c; ++ch) CHECK(var[ch] == Approx(stats.var[ch]).epsilon(1e-2));
  check_close(y, nas::reference::batchnorm_forward_training(p, xd, {}, {}), 1e-2,
              "forward far from zero");
}

TEST_CASE("batchnorm momentum semantics follow PyTorch", "[cpu][batchnorm]") {
  // n*h*w = 4 values per channel: 1, 2, 3, 4. Batch mean 2.5, biased var 1.25, unbiased 5/3.
  BatchNormParams p = make_bn(4, 1, 1, 1, false, 1e-5, 0.1);
  std::vector<float> x = {1, 2, 3, 4}, y(4), mean(1), var(1), rm = {0.0f}, rv = {1.0f};
  nas::batchnorm_kernel(p)->forward_training(x.data(), nullptr, nullptr, y.data(), mean.data(),
                                             var.data(), rm.data(), rv.data());
  CHECK(mean[0] == Approx(2.5));
  CHECK(var[0] == Approx(1.25));
  CHECK(rm[0] == Approx(0.25));
  CHECK(rv[0] == Approx(0.9 + 0.1 * 5.0 / 3.0));
  // Null running buffers skip the update.
  CHECK_NOTHROW(nas::batchnorm_kernel(p)->forward_training(
      x.data(), nullptr, nullptr, y.data(), mean.data(), var.data(), nullptr, nullptr));
}

TEST_CASE("batchnorm reference gradients match central finite differences", "[cpu][batchnorm]") {
  for (bool affine : {true, false}) {
    BatchNormParams p = make_bn(3, 2, 2, 3, affine);
    INFO(p.key());
    std::mt19937 rng(17);
    auto x = widen(random_floats(p.size(), rng));
    auto scale = affine ? widen(random_floats(p.c, rng, 0.5f, 2.0f)) : std::vector<double>{};
    auto shift = affine ? widen(random_floats(p.c, rng)) : std::vector<double>{};
    auto r = widen(random_floats(p.size(), rng));
    std::function<double()> loss = [&] {
      auto y = nas::reference::batchnorm_forward_training(p, x, scale, shift);
      double sum = 0;
      for (size_t i = 0; i < y.size(); ++i) sum += y[i] * r[i];
      return sum;
    };
    auto g = nas::reference::batchnorm_backward(p, x, r, scale);
    check_fd(x, g.dx, loss, 1e-5, 1e-7, 1e-5, "dx");
    if (affine) {
      check_fd(scale, g.dscale, loss, 1e-5, 1e-7, 1e-5, "dscale");
      check_fd(shift, g.dshift, loss, 1e-5, 1e-7, 1e-5, "dshift");
    }
  }
}

TEST_CASE("batchnorm kernel gradients match finite differences of its own forward",
          "[cpu][batchnorm]") {
  for (bool affine : {true, false}) {
    BatchNormParams p = make_bn(2, 3, 3, 2, affine);
    INFO(p.key());
    std::mt19937 rng(23);
    auto x = random_floats(p.size(), rng, -2.0f, 2.0f);
    std::vector<float> scale, shift;
    if (affine) scale = random_floats(p.c, rng, 0.5f, 2.0f), shift = random_floats(p.c, rng);
    auto r = random_floats(p.size(), rng);
    auto kernel = nas::batchnorm_kernel(p);
    std::vector<float> y(p.size()), mean(p.c), var(p.c);
    std::function<double()> loss = [&] {
      kernel->forward_training(x.data(), scale.data(), shift.data(), y.data(), mean.data(),
                               var.data(), nullptr, nullptr);
      double sum = 0;
      for (size_t i = 0; i < y.size(); ++i) sum += static_cast<double>(y[i]) * r[i];
      return sum;
    };
    loss();
    std::vector<float> dx(p.size()), dscale(p.c), dshift(p.c);
    kernel->backward(x.data(), r.data(), mean.data(), var.data(), scale.data(), dx.data(),
                     dscale.data(), dshift.data());
    check_fd(x, dx, loss, 1e-2f, 1e-2, 1e-2, "dx");
    if (affine) {
      check_fd(scale, dscale, loss, 1e-2f, 1e-2, 1e-2, "dscale");
      check_fd(shift, dshift, loss, 1e-2f, 1e-2, 1e-2, "dshift");
    }
  }
}

namespace {

// A batch norm's training forward, kept for its backward passes.
struct BatchNormRun {
  BatchNormParams p;
  std::vector<float> x, y, mean, var, scale;
};

// Every backward pass of `run` fed g with `prologue` against the same pass fed dy, which
// the prologue computes from g: from the input and (without scale and shift) the output.
void check_prologue(const BatchNormRun& run, const std::vector<float>& g,
                    const std::vector<float>& dy, const nas::BatchNormPrologue& prologue,
                    double tol) {
  const BatchNormParams& p = run.p;
  auto kernel = nas::batchnorm_kernel(p);
  std::vector<float> dx(p.size()), dx_fused(p.size());
  std::vector<float> dscale(p.c), dshift(p.c), dscale_fused(p.c), dshift_fused(p.c);
  kernel->backward(run.x.data(), dy.data(), run.mean.data(), run.var.data(), run.scale.data(),
                   dx.data(), dscale.data(), dshift.data());
  kernel->backward(run.x.data(), g.data(), run.mean.data(), run.var.data(), run.scale.data(),
                   dx_fused.data(), dscale_fused.data(), dshift_fused.data(), &prologue);
  check_close(dx_fused, widen(dx), tol, "dx");
  if (p.affine) {
    check_close(dscale_fused, widen(dscale), tol, "dscale");
    check_close(dshift_fused, widen(dshift), tol, "dshift");
    return;
  }
  kernel->backward_from_output(run.y.data(), dy.data(), run.var.data(), dx.data());
  kernel->backward_from_output(run.y.data(), g.data(), run.var.data(), dx_fused.data(), &prologue);
  check_close(dx_fused, widen(dx), tol, "dx from the output");
}

}  // namespace

// The fused regions' kernels (compiler/passes/fusion.h): the training forward with
// activations after it, and the backward whose incoming gradient is an activation's,
// against the same activation run on its own before or after (the oneDNN kernel where the
// activation has one, so the fused scalar loops are checked against another code path).
TEST_CASE("batchnorm epilogue and prologue equal the activation run on its own",
          "[cpu][batchnorm][fusion]") {
  struct Activation {
    const char* op;
    double param;
  };
  for (Activation act : {Activation{"relu", 0.0}, Activation{"leaky_relu", 0.2},
                         Activation{"hard_swish", 0.0}, Activation{"sigmoid", 0.0}})
    for (bool affine : {true, false}) {
      BatchNormParams p = make_bn(4, 3, 5, 6, affine);
      INFO(act.op << " " << p.key());
      std::mt19937 rng(31);
      auto x = random_floats(p.size(), rng, -2.0f, 2.0f);
      auto g = random_floats(p.size(), rng);
      std::vector<float> scale, shift;
      if (affine) scale = random_floats(p.c, rng, 0.5f, 2.0f), shift = random_floats(p.c, rng);
      auto kernel = nas::batchnorm_kernel(p);
      EltwiseParams ep;
      ep.kind = *nas::eltwise_kind_of(act.op);
      ep.size = p.size();
      ep.slope = act.param;
      auto eltwise = nas::eltwise_kernel(ep);

      // Forward: y, and the activation of y in the same pass.
      std::vector<float> y(p.size()), mean(p.c), var(p.c), rm(p.c, 0.0f), rv(p.c, 1.0f);
      kernel->forward_training(x.data(), scale.data(), shift.data(), y.data(), mean.data(),
                               var.data(), rm.data(), rv.data());
      std::vector<float> expected(p.size());
      eltwise->forward(y.data(), expected.data());
      nas::BatchNormEpilogue epilogue;
      epilogue.activations.emplace_back(act.op, act.param);
      std::vector<float> fused_out(p.size()), fused_y(p.size()), rm2(p.c, 0.0f), rv2(p.c, 1.0f);
      epilogue.out = fused_out.data();
      kernel->forward_training(x.data(), scale.data(), shift.data(), fused_y.data(), mean.data(),
                               var.data(), rm2.data(), rv2.data(), &epilogue);
      CHECK(fused_y == y);
      CHECK(rm2 == rm);
      CHECK(rv2 == rv);
      check_close(fused_out, widen(expected), 1e-6, "activation of y");

      // Backward: dy = g * f'(y) (the activation reads the batch norm's output).
      std::vector<float> dy(p.size());
      eltwise->backward(y.data(), g.data(), dy.data());
      nas::BatchNormPrologue prologue{nas::RowActivation(act.op, act.param), y.data()};
      check_prologue({p, x, y, mean, var, scale}, g, dy, prologue, 1e-5);
    }
}

TEST_CASE("batchnorm prologue of a mixed op's candidate scales the incoming gradient",
          "[cpu][batchnorm][fusion]") {
  for (bool affine : {true, false}) {
    BatchNormParams p = make_bn(3, 4, 5, 5, affine);
    INFO(p.key());
    std::mt19937 rng(37);
    auto x = random_floats(p.size(), rng, -2.0f, 2.0f);
    auto g = random_floats(p.size(), rng);
    std::vector<float> scale, shift;
    if (affine) scale = random_floats(p.c, rng, 0.5f, 2.0f), shift = random_floats(p.c, rng);
    std::vector<float> y(p.size()), mean(p.c), var(p.c);
    nas::batchnorm_kernel(p)->forward_training(x.data(), scale.data(), shift.data(), y.data(),
                                               mean.data(), var.data(), nullptr, nullptr);
    const float w = 0.3f;
    std::vector<float> dy(p.size());
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = w * g[i];
    nas::BatchNormPrologue prologue;
    prologue.scale = w;
    check_prologue({p, x, y, mean, var, scale}, g, dy, prologue, 1e-6);
    if (affine) continue;
    // The mixed op's d/dw for the candidate, taken in the same pass: sum(g * y), against
    // a float64 sum; dx unchanged by taking it.
    double want = 0;
    for (size_t i = 0; i < g.size(); ++i) want += static_cast<double>(g[i]) * y[i];
    std::vector<float> dx(p.size()), dx_product(p.size());
    auto kernel = nas::batchnorm_kernel(p);
    kernel->backward_from_output(y.data(), g.data(), var.data(), dx.data(), &prologue);
    double product = -1;
    kernel->backward_from_output(y.data(), g.data(), var.data(), dx_product.data(), &prologue,
                                 &product);
    CHECK(dx_product == dx);
    CHECK(product == Approx(want).epsilon(1e-5));
    // Only a share's scale gives it: a prologue with an activation has no such product.
    nas::BatchNormPrologue relu{nas::RowActivation("relu", 0.0), y.data()};
    CHECK_THROWS_AS(
        kernel->backward_from_output(y.data(), g.data(), var.data(), dx.data(), &relu, &product),
        nas::InternalError);
  }
}

TEST_CASE("batchnorm primitives are created once per signature", "[cpu][batchnorm]") {
  size_t before = nas::batchnorm_kernels_created();
  BatchNormParams a = make_bn(5, 7, 11, 3, true);
  auto first = nas::batchnorm_kernel(a);
  CHECK(first == nas::batchnorm_kernel(a));
  CHECK(nas::batchnorm_kernels_created() == before + 1);
  BatchNormParams b = a;
  b.affine = false;
  BatchNormParams c = a;
  c.momentum = 0.3;  // the kernel applies the momentum, so it is part of the signature
  CHECK(nas::batchnorm_kernel(b) != first);
  CHECK(nas::batchnorm_kernel(c) != first);
  CHECK(nas::batchnorm_kernels_created() == before + 3);
  CHECK(nas::batchnorm_kernel(c)->params().momentum == 0.3);
}

TEST_CASE("batchnorm rejects inconsistent signatures and arguments", "[cpu][batchnorm]") {
  CHECK_THROWS_AS(nas::batchnorm_kernel(make_bn(0, 3, 4, 4, true)), nas::InternalError);
  CHECK_THROWS_AS(nas::batchnorm_kernel(make_bn(2, 3, 4, 4, true, 0.0)), nas::InternalError);
  CHECK_THROWS_AS(nas::batchnorm_kernel(make_bn(2, 3, 4, 4, true, -1e-5)), nas::InternalError);
  CHECK_THROWS_AS(nas::batchnorm_kernel(make_bn(2, 3, 4, 4, true, 1e-5, 1.5)), nas::InternalError);
  CHECK_THROWS_AS(nas::batchnorm_kernel(make_bn(2, 3, 4, 4, true, 1e-5, -0.1)), nas::InternalError);

  // One value per channel: inference works, training does not (as in PyTorch).
  BatchNormParams single = make_bn(1, 2, 1, 1, false);
  auto kernel = nas::batchnorm_kernel(single);
  std::vector<float> x = {1, 2}, y(2), mean(2), var(2), rm = {0, 0}, rv = {1, 1};
  CHECK_THROWS_AS(kernel->forward_training(x.data(), nullptr, nullptr, y.data(), mean.data(),
                                           var.data(), rm.data(), rv.data()),
                  nas::InternalError);
  kernel->forward_inference(x.data(), nullptr, nullptr, rm.data(), rv.data(), y.data());
  CHECK(y[0] == Approx(1.0 / std::sqrt(1 + 1e-5)));
  CHECK_THROWS_AS(
      kernel->forward_inference(x.data(), nullptr, nullptr, nullptr, rv.data(), y.data()),
      nas::InternalError);

  // Affine kernels need scale and shift.
  BatchNormParams affine = make_bn(2, 2, 1, 1, true);
  std::vector<float> x4 = {1, 2, 3, 4}, y4(4);
  CHECK_THROWS_AS(
      nas::batchnorm_kernel(affine)->forward_training(x4.data(), nullptr, nullptr, y4.data(),
                                                      mean.data(), var.data(), nullptr, nullptr),
      nas::InternalError);
}

// --- Linear --------------------------------------------------------------------------------

namespace {

LinearParams make_linear(int64_t n, int64_t in, int64_t out, bool bias) {
  LinearParams p;
  p.n = n, p.in = in, p.out = out, p.bias = bias;
  return p;
}

void check_linear_against_reference(const LinearParams& p, uint32_t seed) {
  INFO(p.key());
  std::mt19937 rng(seed);
  auto x = random_floats(p.input_size(), rng);
  auto w = random_floats(p.weight_size(), rng);
  auto b = random_floats(p.bias_size(), rng);
  auto dy = random_floats(p.output_size(), rng);
  auto kernel = nas::linear_kernel(p);
  const float nan = std::nanf("");
  std::vector<float> y(p.output_size(), nan), dx(p.input_size(), nan), dw(p.weight_size(), nan),
      db(p.bias_size(), nan);
  kernel->forward(x.data(), w.data(), b.data(), y.data());
  kernel->backward_data(dy.data(), w.data(), dx.data());
  kernel->backward_weights(x.data(), dy.data(), dw.data(), db.data());
  check_close(y, nas::reference::linear_forward(p, widen(x), widen(w), widen(b)), 1e-4, "forward");
  check_close(dx, nas::reference::linear_backward_data(p, widen(dy), widen(w)), 1e-4,
              "backward data");
  check_close(dw, nas::reference::linear_backward_weights(p, widen(x), widen(dy)), 1e-4,
              "backward weights");
  if (p.bias) check_close(db, nas::reference::linear_backward_bias(p, widen(dy)), 1e-4, "bias");
}

}  // namespace

TEST_CASE("linear matches the float64 reference on chosen signatures", "[cpu][linear]") {
  std::vector<LinearParams> cases = {
      make_linear(1, 1, 1, true),    make_linear(4, 16, 10, true),
      make_linear(8, 33, 7, false),  make_linear(1, 512, 1000, true),
      make_linear(32, 3, 64, false), make_linear(3, 1280, 10, true),
  };
  uint32_t seed = 1;
  for (const LinearParams& p : cases) check_linear_against_reference(p, seed++);
}

TEST_CASE("linear matches the float64 reference on random signatures", "[cpu][linear]") {
  std::mt19937 rng(20240614);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (uint32_t i = 0; i < 30; ++i)
    check_linear_against_reference(make_linear(pick(1, 9), pick(1, 70), pick(1, 40), pick(0, 1)),
                                   400 + i);
}

TEST_CASE("linear reference gradients match central finite differences", "[cpu][linear]") {
  LinearParams p = make_linear(3, 5, 4, true);
  std::mt19937 rng(29);
  auto x = widen(random_floats(p.input_size(), rng));
  auto w = widen(random_floats(p.weight_size(), rng));
  auto b = widen(random_floats(p.bias_size(), rng));
  auto r = widen(random_floats(p.output_size(), rng));
  std::function<double()> loss = [&] {
    auto y = nas::reference::linear_forward(p, x, w, b);
    double sum = 0;
    for (size_t i = 0; i < y.size(); ++i) sum += y[i] * r[i];
    return sum;
  };
  check_fd(x, nas::reference::linear_backward_data(p, r, w), loss, 1e-4, 1e-8, 1e-7, "dx");
  check_fd(w, nas::reference::linear_backward_weights(p, x, r), loss, 1e-4, 1e-8, 1e-7, "dw");
  check_fd(b, nas::reference::linear_backward_bias(p, r), loss, 1e-4, 1e-8, 1e-7, "db");
}

TEST_CASE("linear oneDNN gradients match finite differences of its own forward", "[cpu][linear]") {
  LinearParams p = make_linear(3, 6, 5, true);
  std::mt19937 rng(31);
  auto x = random_floats(p.input_size(), rng);
  auto w = random_floats(p.weight_size(), rng);
  auto b = random_floats(p.bias_size(), rng);
  auto r = random_floats(p.output_size(), rng);
  auto kernel = nas::linear_kernel(p);
  std::vector<float> y(p.output_size());
  std::function<double()> loss = [&] {
    kernel->forward(x.data(), w.data(), b.data(), y.data());
    double sum = 0;
    for (size_t i = 0; i < y.size(); ++i) sum += static_cast<double>(y[i]) * r[i];
    return sum;
  };
  std::vector<float> dx(p.input_size()), dw(p.weight_size()), db(p.bias_size());
  kernel->backward_data(r.data(), w.data(), dx.data());
  kernel->backward_weights(x.data(), r.data(), dw.data(), db.data());
  check_fd(x, dx, loss, 1e-2f, 1e-2, 1e-2, "dx");
  check_fd(w, dw, loss, 1e-2f, 1e-2, 1e-2, "dw");
  check_fd(b, db, loss, 1e-2f, 1e-2, 1e-2, "db");
}

TEST_CASE("linear primitives are created once per signature", "[cpu][linear]") {
  LinearParams a = make_linear(7, 123, 45, false);
  LinearParams b = a;
  b.bias = true;
  size_t before = nas::linear_kernels_created();
  auto first = nas::linear_kernel(a);
  CHECK(first == nas::linear_kernel(a));
  CHECK(nas::linear_kernels_created() == before + 1);
  std::vector<std::shared_ptr<const nas::LinearKernel>> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] { got[i] = nas::linear_kernel(b); });
  for (std::thread& t : threads) t.join();
  CHECK(nas::linear_kernels_created() == before + 2);
  for (const auto& k : got) CHECK(k == got[0]);
  CHECK(got[0] != first);
  CHECK(got[0]->params().bias);
}

TEST_CASE("linear rejects inconsistent signatures and arguments", "[cpu][linear]") {
  CHECK_THROWS_AS(nas::linear_kernel(make_linear(0, 4, 4, true)), nas::InternalError);
  CHECK_THROWS_AS(nas::linear_kernel(make_linear(2, 0, 4, true)), nas::InternalError);
  CHECK_THROWS_AS(nas::linear_kernel(make_linear(2, 4, -1, false)), nas::InternalError);
  auto kernel = nas::linear_kernel(make_linear(2, 3, 2, true));
  std::vector<float> x(6), w(6), y(4), dy(4), dw(6);
  CHECK_THROWS_AS(kernel->forward(x.data(), w.data(), nullptr, y.data()), nas::InternalError);
  CHECK_THROWS_AS(kernel->backward_weights(x.data(), dy.data(), dw.data(), nullptr),
                  nas::InternalError);
}

TEST_CASE("the generic elementwise kernel evaluates an activation's formula",
          "[cpu][eltwise][generic]") {
  // silu has no oneDNN kernel here: the backend runs its formula from the table.
  CHECK_FALSE(nas::eltwise_kind_of("silu").has_value());
  CHECK(nas::eltwise_kind_of("hard_swish") == EltwiseKind::hard_swish);
  const nas::ElementwiseFn* silu = nas::find_elementwise("silu");
  REQUIRE(silu != nullptr);
  std::mt19937 rng(3);
  auto x = random_floats(1000, rng, -6.0f, 6.0f);
  auto dy = random_floats(1000, rng);
  std::vector<float> y(x.size(), NAN), dx(x.size(), NAN);
  nas::plain::elementwise_forward(1000, silu->value, 0, x.data(), y.data());
  nas::plain::elementwise_backward(1000, silu->derivative, 0, x.data(), dy.data(), dx.data());
  std::vector<double> want_y, want_dx;
  for (size_t i = 0; i < x.size(); ++i) {
    double v = x[i], s = 1 / (1 + std::exp(-v));
    want_y.push_back(v * s);
    want_dx.push_back(dy[i] * (s + v * s * (1 - s)));
  }
  check_close(y, want_y, 1e-6, "silu forward");
  check_close(dx, want_dx, 1e-6, "silu backward");
  // In place, as the backend may plan it.
  std::vector<float> inplace = x;
  nas::plain::elementwise_forward(1000, silu->value, 0, inplace.data(), inplace.data());
  CHECK(inplace == y);
  CHECK_THROWS_AS(nas::plain::elementwise_forward(0, silu->value, 0, x.data(), y.data()),
                  nas::InternalError);
}

TEST_CASE("mul by a per-channel or same-shaped factor", "[cpu][plain][mul]") {
  std::mt19937 rng(5);
  const int64_t n = 2, c = 3, hw = 20;
  auto x = random_floats(n * c * hw, rng);
  auto per_channel = random_floats(n * c, rng);
  std::vector<float> y(x.size(), NAN);
  nas::plain::mul_forward({n * c, hw, 0.5}, x.data(), per_channel.data(), y.data());
  std::vector<double> want;
  for (int64_t i = 0; i < n * c * hw; ++i) want.push_back(0.5 * x[i] * per_channel[i / hw]);
  check_close(y, want, 1e-6, "per channel");
  auto same = random_floats(n * c * hw, rng);
  nas::plain::mul_forward({n * c * hw, 1, -2.0}, x.data(), same.data(), y.data());
  want.clear();
  for (size_t i = 0; i < x.size(); ++i) want.push_back(-2.0 * x[i] * same[i]);
  check_close(y, want, 1e-6, "same shape");
  CHECK_THROWS_AS(nas::plain::mul_forward({0, hw, 1.0}, x.data(), same.data(), y.data()),
                  nas::InternalError);
  CHECK_THROWS_AS(nas::plain::mul_forward({n * c, hw, NAN}, x.data(), same.data(), y.data()),
                  nas::InternalError);
}
