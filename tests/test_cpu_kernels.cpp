// The oneDNN CPU kernels against naive float64 references (forward and gradients), the
// references against central finite differences, and the once-per-signature primitive cache.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/cpu/conv2d.h"
#include "runtime/cpu/depthwise.h"
#include "runtime/cpu/pointwise.h"
#include "runtime/cpu/pool2d.h"
#include "runtime/cpu/reference_conv.h"
#include "runtime/cpu/reference_pool.h"
#include "runtime/cpu/threads.h"
#include "support/errors.h"
#include "tests/cpu_test_util.h"

namespace {

using nas::test::check_close;
using nas::test::random_floats;
using nas::test::widen;

using nas::Conv2dParams;

std::string describe(const Conv2dParams& p) {
  return p.key();
}

// The three passes of a convolution, into y, dx, dw and db.
using ConvPasses = std::function<void(const std::vector<float>& x, const std::vector<float>& w,
                                      const std::vector<float>& b, const std::vector<float>& dy,
                                      std::vector<float>& y, std::vector<float>& dx,
                                      std::vector<float>& dw, std::vector<float>& db)>;

// Runs `passes` on random values and checks every output against the float64 reference.
void check_passes_against_reference(const Conv2dParams& p, uint32_t seed,
                                    const ConvPasses& passes) {
  std::mt19937 rng(seed);
  auto x = random_floats(p.input_size(), rng);
  auto w = random_floats(p.weight_size(), rng);
  auto b = random_floats(p.bias_size(), rng);
  auto dy = random_floats(p.output_size(), rng);
  // Pre-filled with NaN so that any element the kernel fails to write is caught.
  const float nan = std::nanf("");
  std::vector<float> y(p.output_size(), nan), dx(p.input_size(), nan), dw(p.weight_size(), nan),
      db(p.bias_size(), nan);
  passes(x, w, b, dy, y, dx, dw, db);
  check_close(y, nas::reference::conv2d_forward(p, widen(x), widen(w), widen(b)), 1e-4, "forward");
  check_close(dx, nas::reference::conv2d_backward_data(p, widen(dy), widen(w)), 1e-4,
              "backward data");
  check_close(dw, nas::reference::conv2d_backward_weights(p, widen(x), widen(dy)), 1e-4,
              "backward weights");
  if (p.bias) check_close(db, nas::reference::conv2d_backward_bias(p, widen(dy)), 1e-4, "bias");
}

// Runs forward, backward-data and backward-weights through oneDNN and the float64 reference.
void check_conv_against_reference(const Conv2dParams& p, uint32_t seed) {
  INFO(describe(p));
  auto kernel = nas::conv2d_kernel(p);
  check_passes_against_reference(p, seed,
                                 [&](const auto& x, const auto& w, const auto& b, const auto& dy,
                                     auto& y, auto& dx, auto& dw, auto& db) {
                                   kernel->forward(x.data(), w.data(), b.data(), y.data());
                                   kernel->backward_data(dy.data(), w.data(), dx.data());
                                   kernel->backward_weights(x.data(), dy.data(), dw.data(),
                                                            db.data());
                                 });
}

Conv2dParams make(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t kernel,
                  int64_t stride, int64_t pad, int64_t dilation, int64_t groups, bool bias) {
  Conv2dParams p;
  p.n = n, p.c_in = c_in, p.h = h, p.w = w, p.c_out = c_out, p.kernel = kernel;
  p.stride = stride, p.pad = pad, p.dilation = dilation, p.groups = groups, p.bias = bias;
  return p;
}

// A random valid signature; groups are drawn among the divisors so grouped and depthwise
// cases come up, and sizes are kept small because the reference is naive.
Conv2dParams random_params(std::mt19937& rng) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (;;) {
    Conv2dParams p;
    p.n = pick(1, 3);
    int64_t groups = pick(1, 4);
    p.c_in = groups * pick(1, 4);
    p.c_out = groups * pick(1, 3);
    p.groups = groups;
    p.kernel = std::vector<int64_t>{1, 3, 5}[pick(0, 2)];
    p.stride = pick(1, 3);
    p.dilation = pick(1, 3);
    p.pad = pick(0, p.kernel / 2 * p.dilation);
    p.h = pick(3, 13);
    p.w = pick(3, 13);
    p.bias = pick(0, 1) == 1;
    try {
      p.validate();
      return p;
    } catch (const nas::InternalError&) {
      // kernel larger than the padded input: draw again
    }
  }
}

}  // namespace

TEST_CASE("conv2d matches the float64 reference on chosen signatures", "[cpu][conv]") {
  // (n, c_in, h, w, c_out, kernel, stride, pad, dilation, groups, bias)
  std::vector<Conv2dParams> cases = {
      make(2, 3, 8, 8, 4, 3, 1, 1, 1, 1, true),     // dense 3x3 "same"
      make(1, 4, 7, 9, 6, 3, 2, 1, 1, 1, false),    // strided, non-square image
      make(2, 8, 6, 6, 8, 1, 1, 0, 1, 1, true),     // 1x1
      make(1, 6, 10, 10, 6, 3, 1, 1, 1, 6, false),  // depthwise (groups == c_in)
      make(2, 4, 9, 9, 8, 5, 1, 2, 1, 4, true),     // depthwise, multiplier 2
      make(1, 6, 11, 11, 9, 3, 1, 2, 2, 3, true),   // grouped + dilated
      make(2, 3, 12, 10, 5, 3, 2, 2, 3, 1, false),  // dilated + strided + padded
      make(1, 2, 6, 6, 3, 1, 2, 0, 1, 1, true),     // floor mode drops the last column
      make(1, 3, 8, 7, 2, 3, 3, 0, 1, 1, false),    // floor mode with a 3x3 window
      make(3, 1, 5, 5, 1, 5, 1, 0, 1, 1, true),     // kernel covers the whole image
      // Dilated depthwise: the plain backward loops (DARTS' dil_conv), stride 1 and 2.
      make(2, 5, 9, 8, 5, 3, 1, 2, 2, 5, false),
      make(2, 4, 11, 11, 4, 5, 2, 4, 2, 4, true),
      make(1, 3, 7, 7, 3, 3, 2, 1, 3, 3, false),
  };
  uint32_t seed = 1;
  for (const Conv2dParams& p : cases) check_conv_against_reference(p, seed++);
}

TEST_CASE("conv2d matches the float64 reference on random signatures", "[cpu][conv]") {
  std::mt19937 rng(20240611);
  for (uint32_t i = 0; i < 40; ++i) check_conv_against_reference(random_params(rng), 100 + i);
}

namespace {

// Runs nasc's depthwise loops, compiled for `isa`, against the float64 reference.
void check_depthwise_loops(const Conv2dParams& p, nas::DepthwiseIsa isa, uint32_t seed) {
  INFO(describe(p) << " on the " << nas::depthwise_isa_name(isa) << " loops");
  check_passes_against_reference(
      p, seed,
      [&](const auto& x, const auto& w, const auto& b, const auto& dy, auto& y, auto& dx, auto& dw,
          auto& db) {
        nas::depthwise_forward(p, x.data(), w.data(), b.data(), y.data(), isa);
        nas::depthwise_backward_data(p, dy.data(), w.data(), dx.data(), isa);
        nas::depthwise_backward_weights(p, x.data(), dy.data(), dw.data(), db.data(), isa);
      });
}

Conv2dParams depthwise(int64_t n, int64_t c, int64_t h, int64_t w, int64_t kernel, int64_t stride,
                       int64_t pad, int64_t dilation, bool bias) {
  return make(n, c, h, w, c, kernel, stride, pad, dilation, c, bias);
}

}  // namespace

TEST_CASE("depthwise loops match the float64 reference on every instruction set this CPU runs",
          "[cpu][conv][depthwise]") {
  // (n, c, h, w, kernel, stride, pad, dilation, bias)
  const std::vector<Conv2dParams> chosen = {
      depthwise(2, 3, 8, 8, 3, 1, 1, 1, false),    // DARTS' sep_conv_3x3
      depthwise(2, 3, 8, 8, 5, 1, 2, 1, true),     // sep_conv_5x5
      depthwise(2, 3, 8, 8, 3, 1, 2, 2, false),    // dil_conv_3x3
      depthwise(2, 3, 8, 8, 5, 1, 4, 2, true),     // dil_conv_5x5: the window is the image
      depthwise(2, 3, 9, 7, 3, 2, 1, 1, false),    // reduction cell, odd and non-square
      depthwise(1, 2, 11, 10, 5, 2, 4, 2, false),  // dilated, strided
      depthwise(1, 2, 10, 11, 3, 3, 0, 1, true),   // stride 3, no padding, floor mode
      depthwise(1, 2, 7, 7, 3, 1, 0, 1, false),    // "valid": the backward data pads by 2
      depthwise(1, 2, 6, 6, 3, 1, 3, 1, false),    // pad beyond the window: scatter path
      depthwise(3, 1, 5, 5, 1, 1, 0, 1, true),     // 1x1
      depthwise(1, 4, 1, 9, 3, 1, 1, 1, false),    // one row
  };
  std::mt19937 rng(424242);
  std::vector<Conv2dParams> drawn;
  while (drawn.size() < 30) {
    Conv2dParams p = random_params(rng);
    if (p.groups == 1) continue;
    p.c_out = p.c_in = p.groups;
    drawn.push_back(p);
  }
  const std::vector<nas::DepthwiseIsa> isas = nas::depthwise_isas_runnable();
  REQUIRE(isas.front() == nas::DepthwiseIsa::Baseline);
  if (isas.size() == 1)
    WARN(
        "this CPU is not x86-64-v3 (AVX2, FMA, ...): only the baseline depthwise loops are "
        "checked");
  for (nas::DepthwiseIsa isa : isas) {
    uint32_t seed = 500;
    for (const Conv2dParams& p : chosen) check_depthwise_loops(p, isa, seed++);
    for (const Conv2dParams& p : drawn) check_depthwise_loops(p, isa, seed++);
  }
}

TEST_CASE("depthwise kernels agree whichever code runs each pass", "[cpu][conv][depthwise]") {
  // The three choices of Conv2dKernel on DARTS' signatures at a small batch; Fastest mixes
  // oneDNN's JIT kernels and the loops pass by pass.
  using Code = nas::Conv2dKernel::Code;
  for (const Conv2dParams& p :
       {depthwise(2, 16, 16, 16, 3, 1, 1, 1, false), depthwise(2, 16, 16, 16, 5, 1, 4, 2, false),
        depthwise(2, 16, 16, 16, 5, 2, 2, 1, false), depthwise(1, 4, 32, 32, 3, 1, 1, 1, false)}) {
    INFO(describe(p));
    std::mt19937 rng(9);
    auto x = random_floats(p.input_size(), rng);
    auto w = random_floats(p.weight_size(), rng);
    auto dy = random_floats(p.output_size(), rng);
    const auto want_y = nas::reference::conv2d_forward(p, widen(x), widen(w), {});
    const auto want_dx = nas::reference::conv2d_backward_data(p, widen(dy), widen(w));
    const auto want_dw = nas::reference::conv2d_backward_weights(p, widen(x), widen(dy));
    for (Code code : {Code::Fastest, Code::Nasc, Code::OneDnn}) {
      const nas::Conv2dKernel kernel(p, code);
      if (code == Code::Nasc)
        CHECK((kernel.nasc_forward() && kernel.nasc_backward_data() &&
               kernel.nasc_backward_weights()));
      if (code == Code::OneDnn)
        CHECK_FALSE((kernel.nasc_forward() || kernel.nasc_backward_data() ||
                     kernel.nasc_backward_weights()));
      if (code == Code::Fastest && p.h == 32)  // the loops beat oneDNN on 32x32 planes
        CHECK((kernel.nasc_forward() && kernel.nasc_backward_data()));
      std::vector<float> y(p.output_size()), dx(p.input_size()), dw(p.weight_size());
      kernel.forward(x.data(), w.data(), nullptr, y.data());
      kernel.backward_data(dy.data(), w.data(), dx.data());
      kernel.backward_weights(x.data(), dy.data(), dw.data(), nullptr);
      check_close(y, want_y, 1e-4, "forward");
      check_close(dx, want_dx, 1e-4, "backward data");
      check_close(dw, want_dw, 1e-3, "backward weights");
    }
  }
  // A dense convolution other than 1x1 has no code of nasc's own.
  const nas::Conv2dKernel dense(make(1, 4, 6, 6, 4, 3, 1, 1, 1, 1, false), Code::Nasc);
  CHECK_FALSE(
      (dense.nasc_forward() || dense.nasc_backward_data() || dense.nasc_backward_weights()));
}

TEST_CASE("depthwise loops reject a signature that is not depthwise", "[cpu][conv][depthwise]") {
  const Conv2dParams dense = make(1, 4, 6, 6, 4, 3, 1, 1, 1, 1, false);
  std::vector<float> x(dense.input_size()), w(dense.weight_size()), y(dense.output_size());
  CHECK_THROWS_AS(nas::depthwise_forward(dense, x.data(), w.data(), nullptr, y.data()),
                  nas::InternalError);
}

TEST_CASE("pointwise convolutions match the float64 reference and oneDNN",
          "[cpu][conv][pointwise]") {
  using Code = nas::Conv2dKernel::Code;
  // (n, c_in, h, w, c_out, ...): a DARTS preprocessing shape, a non-square image with bias, a
  // batch of 5 (the weight gradient's sample groups of 4 leave one over), one channel in,
  // three times as many channels in as out on a 32x32 plane (where Fastest runs nasc's
  // weight gradient too), and strides 2 and 3 (FactorizedReduce; an odd size whose last row
  // and column no window visits, and a non-square image).
  uint32_t seed = 40;
  for (const Conv2dParams& p :
       {make(3, 48, 8, 8, 16, 1, 1, 0, 1, 1, false), make(2, 6, 5, 9, 10, 1, 1, 0, 1, 1, true),
        make(5, 7, 4, 4, 3, 1, 1, 0, 1, 1, true), make(2, 1, 6, 6, 4, 1, 1, 0, 2, 1, false),
        make(2, 24, 32, 32, 8, 1, 1, 0, 1, 1, true), make(3, 8, 8, 8, 4, 1, 2, 0, 1, 1, false),
        make(2, 6, 7, 7, 5, 1, 2, 0, 1, 1, true), make(5, 4, 10, 7, 6, 1, 3, 0, 1, 1, true)}) {
    INFO(describe(p));
    REQUIRE(nas::is_pointwise(p));
    for (Code code : {Code::Fastest, Code::Nasc, Code::OneDnn}) {
      const nas::Conv2dKernel kernel(p, code);
      CHECK(kernel.nasc_forward() == (code != Code::OneDnn));
      CHECK(kernel.nasc_backward_data() == (code != Code::OneDnn));
      const bool weights_by_nasc = p.c_in >= 3 * p.c_out && p.h * p.w >= 32 * 32;
      if (code != Code::Fastest)
        CHECK(kernel.nasc_backward_weights() == (code == Code::Nasc));
      else
        CHECK(kernel.nasc_backward_weights() == weights_by_nasc);
      check_passes_against_reference(p, seed++,
                                     [&](const auto& x, const auto& w, const auto& b,
                                         const auto& dy, auto& y, auto& dx, auto& dw, auto& db) {
                                       kernel.forward(x.data(), w.data(), b.data(), y.data());
                                       kernel.backward_data(dy.data(), w.data(), dx.data());
                                       kernel.backward_weights(x.data(), dy.data(), dw.data(),
                                                               db.data());
                                     });
    }
  }
  // Padding, groups and larger windows are not matrix products of the planes.
  for (const Conv2dParams& p :
       {make(1, 4, 6, 6, 4, 1, 1, 1, 1, 1, false), make(1, 4, 6, 6, 4, 1, 1, 0, 1, 2, false),
        make(1, 4, 6, 6, 4, 3, 1, 1, 1, 1, false), make(1, 4, 6, 6, 4, 3, 2, 0, 1, 1, false)}) {
    INFO(describe(p));
    CHECK_FALSE(nas::is_pointwise(p));
    std::vector<float> x(p.input_size()), w(p.weight_size()), y(p.output_size());
    CHECK_THROWS_AS(nas::pointwise_forward(p, x.data(), w.data(), nullptr, y.data()),
                    nas::InternalError);
  }
}

TEST_CASE("the pointwise weight gradient does not depend on the thread count",
          "[cpu][conv][pointwise]") {
  const Conv2dParams p = make(13, 8, 6, 6, 12, 1, 1, 0, 1, 1, true);
  std::mt19937 rng(5);
  auto x = random_floats(p.input_size(), rng);
  auto dy = random_floats(p.output_size(), rng);
  std::vector<float> dw1(p.weight_size()), db1(p.c_out), dw2(p.weight_size()), db2(p.c_out);
  const int threads = nas::cpu_threads();
  nas::set_cpu_threads(1);
  nas::pointwise_backward_weights(p, x.data(), dy.data(), dw1.data(), db1.data());
  nas::set_cpu_threads(2);
  nas::pointwise_backward_weights(p, x.data(), dy.data(), dw2.data(), db2.data());
  nas::set_cpu_threads(threads);
  CHECK(dw1 == dw2);
  CHECK(db1 == db2);
}

TEST_CASE("conv2d reference gradients match central finite differences", "[cpu][conv]") {
  // Validates the oracle itself in float64, where the loss is linear in each input and the
  // central difference is exact up to rounding, so the tolerance can be tight.
  Conv2dParams p = make(2, 4, 5, 6, 4, 3, 2, 1, 2, 2, true);
  std::mt19937 rng(7);
  auto x = widen(random_floats(p.input_size(), rng));
  auto w = widen(random_floats(p.weight_size(), rng));
  auto b = widen(random_floats(p.bias_size(), rng));
  auto r = widen(random_floats(p.output_size(), rng));  // loss = sum(y * r), so dL/dy = r
  auto loss = [&] {
    auto y = nas::reference::conv2d_forward(p, x, w, b);
    double sum = 0;
    for (size_t i = 0; i < y.size(); ++i) sum += y[i] * r[i];
    return sum;
  };
  auto fd = [&](std::vector<double>& param, const std::vector<double>& grad, const char* what) {
    nas::test::check_fd(param, grad, loss, 1e-4, 1e-8, 1e-7, what);
  };

  fd(x, nas::reference::conv2d_backward_data(p, r, w), "dx");
  fd(w, nas::reference::conv2d_backward_weights(p, x, r), "dw");
  fd(b, nas::reference::conv2d_backward_bias(p, r), "db");
}

TEST_CASE("conv2d gradients match finite differences of its own forward", "[cpu][conv]") {
  // End-to-end check that needs no reference: perturb float32 inputs by eps = 1e-2 and
  // accumulate the loss in float64; rounding of y limits agreement to about 1e-3. A grouped,
  // dilated, strided signature through oneDNN, and pointwise ones through nasc's products
  // at strides 1 and 2.
  using Code = nas::Conv2dKernel::Code;
  const std::pair<Conv2dParams, Code> cases[] = {
      {make(1, 4, 6, 5, 6, 3, 2, 1, 2, 2, true), Code::OneDnn},
      {make(2, 5, 4, 6, 3, 1, 1, 0, 1, 1, true), Code::Nasc},
      {make(2, 3, 7, 6, 4, 1, 2, 0, 1, 1, true), Code::Nasc},
  };
  for (const auto& [p, code] : cases) {
    INFO(describe(p));
    std::mt19937 rng(11);
    auto x = random_floats(p.input_size(), rng);
    auto w = random_floats(p.weight_size(), rng);
    auto b = random_floats(p.bias_size(), rng);
    auto r = random_floats(p.output_size(), rng);
    const nas::Conv2dKernel kernel(p, code);
    std::vector<float> y(p.output_size());
    auto loss = [&] {
      kernel.forward(x.data(), w.data(), b.data(), y.data());
      double sum = 0;
      for (size_t i = 0; i < y.size(); ++i) sum += static_cast<double>(y[i]) * r[i];
      return sum;
    };
    std::vector<float> dx(p.input_size()), dw(p.weight_size()), db(p.bias_size());
    kernel.backward_data(r.data(), w.data(), dx.data());
    kernel.backward_weights(x.data(), r.data(), dw.data(), db.data());

    // eps 1e-2 in float32; margin and relative tolerance 1e-2 (see above).
    auto fd = [&](std::vector<float>& param, const std::vector<float>& grad, const char* what) {
      nas::test::check_fd(param, grad, loss, 1e-2f, 1e-2, 1e-2, what);
    };
    fd(x, dx, "dx");
    fd(w, dw, "dw");
    fd(b, db, "db");
  }
}

TEST_CASE("conv2d primitives are created once per signature", "[cpu][conv]") {
  // Signatures no other test uses, so the counter moves only because of this test.
  Conv2dParams a = make(3, 5, 17, 13, 7, 3, 1, 1, 1, 1, false);
  Conv2dParams b = a;
  b.bias = true;

  size_t before = nas::conv2d_kernels_created();
  auto first = nas::conv2d_kernel(a);
  auto second = nas::conv2d_kernel(a);
  CHECK(first == second);
  CHECK(nas::conv2d_kernels_created() == before + 1);

  // Concurrent first requests for one new signature still build it exactly once.
  std::vector<std::shared_ptr<const nas::Conv2dKernel>> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] { got[i] = nas::conv2d_kernel(b); });
  for (std::thread& t : threads) t.join();
  CHECK(nas::conv2d_kernels_created() == before + 2);
  for (const auto& k : got) CHECK(k == got[0]);
  CHECK(got[0] != first);
  CHECK(got[0]->params().bias);
}

TEST_CASE("conv2d rejects inconsistent signatures", "[cpu][conv]") {
  CHECK_THROWS_AS(nas::conv2d_kernel(make(1, 3, 8, 8, 4, 3, 1, 1, 1, 2, false)),
                  nas::InternalError);  // groups does not divide c_in
  CHECK_THROWS_AS(nas::conv2d_kernel(make(1, 2, 4, 4, 2, 5, 1, 0, 1, 1, false)),
                  nas::InternalError);  // kernel larger than the input
  CHECK_THROWS_AS(nas::conv2d_kernel(make(1, 2, 8, 8, 2, 3, 0, 1, 1, 1, false)),
                  nas::InternalError);  // stride 0
  CHECK_THROWS_AS(nas::conv2d_kernel(make(1, 2, 8, 8, 2, 3, 1, 1, 0, 1, false)),
                  nas::InternalError);  // dilation 0 (user sense: 1 is dense)
}

namespace {

using nas::Pool2dParams;
using nas::PoolKind;

Pool2dParams make_pool(PoolKind kind, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kernel,
                       int64_t stride, int64_t pad, bool include_pad) {
  Pool2dParams p;
  p.kind = kind, p.n = n, p.c = c, p.h = h, p.w = w, p.kernel = kernel, p.stride = stride;
  p.pad = pad, p.count_include_pad = include_pad;
  return p;
}

// Distinct values 2/count apart (a shuffled ramp), so no max window has a tie: at
// a tie the max is not differentiable and any choice of winner is a valid subgradient.
std::vector<float> distinct_floats(int64_t count, std::mt19937& rng) {
  std::vector<float> v(static_cast<size_t>(count));
  for (size_t i = 0; i < v.size(); ++i) v[i] = -1.0f + 2.0f * static_cast<float>(i) / count;
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

void check_pool_against_reference(const Pool2dParams& p, uint32_t seed) {
  INFO(p.key());
  std::mt19937 rng(seed);
  auto x = distinct_floats(p.input_size(), rng);
  auto dy = random_floats(p.output_size(), rng);
  auto kernel = nas::pool2d_kernel(p);
  if (p.kind == PoolKind::max)
    CHECK(kernel->workspace_bytes() > 0);
  else
    CHECK(kernel->workspace_bytes() == 0);
  std::vector<unsigned char> workspace(kernel->workspace_bytes());
  const float nan = std::nanf("");
  std::vector<float> y(p.output_size(), nan), dx(p.input_size(), nan);
  kernel->forward(x.data(), y.data(), workspace.data());
  kernel->backward(dy.data(), workspace.data(), dx.data());
  check_close(y, nas::reference::pool2d_forward(p, widen(x)), 1e-5, "forward");
  check_close(dx, nas::reference::pool2d_backward(p, widen(x), widen(dy)), 1e-5, "backward");
}

}  // namespace

TEST_CASE("pool2d matches the float64 reference on chosen signatures", "[cpu][pool]") {
  // (kind, n, c, h, w, kernel, stride (0 = kernel), pad, count_include_pad)
  std::vector<Pool2dParams> cases;
  for (PoolKind kind : {PoolKind::max, PoolKind::avg})
    for (bool include : {true, false}) {
      cases.push_back(make_pool(kind, 2, 3, 8, 8, 2, 0, 0, include));    // stride = kernel
      cases.push_back(make_pool(kind, 1, 4, 7, 9, 3, 2, 1, include));    // padded, overlapping
      cases.push_back(make_pool(kind, 2, 2, 9, 9, 3, 1, 1, include));    // "same" 3x3
      cases.push_back(make_pool(kind, 1, 3, 7, 7, 2, 0, 1, include));    // floor drops a row
      cases.push_back(make_pool(kind, 1, 2, 10, 11, 5, 3, 2, include));  // wide pad = k/2
      cases.push_back(make_pool(kind, 3, 1, 4, 4, 4, 0, 0, include));    // global window
    }
  uint32_t seed = 300;
  for (const Pool2dParams& p : cases) check_pool_against_reference(p, seed++);
}

TEST_CASE("pool2d include and exclude padding differ only at the border", "[cpu][pool]") {
  // Guards against the flag being ignored: with padding, border windows must divide by
  // different counts, while the interior window (no padding touched) agrees.
  Pool2dParams inc = make_pool(PoolKind::avg, 1, 1, 3, 3, 3, 1, 1, true);
  Pool2dParams exc = inc;
  exc.count_include_pad = false;
  std::vector<float> x(9, 1.0f), y_inc(9), y_exc(9);
  nas::pool2d_kernel(inc)->forward(x.data(), y_inc.data(), nullptr);
  nas::pool2d_kernel(exc)->forward(x.data(), y_exc.data(), nullptr);
  CHECK(y_inc[0] == Approx(4.0 / 9));  // corner: 4 real cells of 9
  CHECK(y_inc[1] == Approx(6.0 / 9));  // edge: 6 of 9
  CHECK(y_inc[4] == Approx(1.0));
  for (float v : y_exc) CHECK(v == Approx(1.0));
}

TEST_CASE("pool2d matches the float64 reference on random signatures", "[cpu][pool]") {
  std::mt19937 rng(424242);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (uint32_t i = 0; i < 40; ++i) {
    int64_t kernel = pick(1, 5);
    Pool2dParams p = make_pool(pick(0, 1) ? PoolKind::max : PoolKind::avg, pick(1, 3), pick(1, 4),
                               pick(kernel, 12), pick(kernel, 12), kernel, pick(0, 3),
                               pick(0, kernel / 2), pick(0, 1) == 1);
    check_pool_against_reference(p, 500 + i);
  }
}

TEST_CASE("pool2d reference gradients match central finite differences", "[cpu][pool]") {
  // Inputs are at least 1e-3 apart and eps = 1e-5, so no perturbation changes a window's
  // winner: finite differences see the max on one linear piece, away from its kink.
  for (PoolKind kind : {PoolKind::max, PoolKind::avg})
    for (bool include : {true, false}) {
      Pool2dParams p = make_pool(kind, 2, 2, 7, 6, 3, 2, 1, include);
      INFO(p.key());
      std::mt19937 rng(13);
      auto x = widen(distinct_floats(p.input_size(), rng));
      auto r = widen(random_floats(p.output_size(), rng));
      auto loss = [&] {
        auto y = nas::reference::pool2d_forward(p, x);
        double sum = 0;
        for (size_t i = 0; i < y.size(); ++i) sum += y[i] * r[i];
        return sum;
      };
      auto grad = nas::reference::pool2d_backward(p, x, r);
      const double eps = 1e-5;
      for (size_t i = 0; i < x.size(); ++i) {
        double saved = x[i];
        x[i] = saved + eps;
        double up = loss();
        x[i] = saved - eps;
        double down = loss();
        x[i] = saved;
        INFO("dx[" << i << "]");
        CHECK((up - down) / (2 * eps) == Approx(grad[i]).margin(1e-8).epsilon(1e-6));
      }
    }
}

TEST_CASE("pool2d primitives are created once per signature", "[cpu][pool]") {
  Pool2dParams a = make_pool(PoolKind::max, 3, 5, 19, 17, 3, 2, 1, true);
  Pool2dParams same = a;
  same.count_include_pad = false;  // meaningless for max: must not make a new kernel
  Pool2dParams b = make_pool(PoolKind::avg, 3, 5, 19, 17, 2, 0, 0, true);
  Pool2dParams b_explicit = b;
  b_explicit.stride = 2;  // stride 0 means kernel, so this is the same signature

  size_t before = nas::pool2d_kernels_created();
  auto ka = nas::pool2d_kernel(a);
  CHECK(nas::pool2d_kernel(same) == ka);
  CHECK(nas::pool2d_kernels_created() == before + 1);
  auto kb = nas::pool2d_kernel(b);
  CHECK(nas::pool2d_kernel(b_explicit) == kb);
  CHECK(kb != ka);
  CHECK(nas::pool2d_kernels_created() == before + 2);
}

TEST_CASE("pool2d rejects inconsistent signatures", "[cpu][pool]") {
  CHECK_THROWS_AS(nas::pool2d_kernel(make_pool(PoolKind::max, 1, 1, 8, 8, 3, 1, 2, true)),
                  nas::InternalError);  // pad > kernel/2
  CHECK_THROWS_AS(nas::pool2d_kernel(make_pool(PoolKind::avg, 1, 1, 2, 2, 3, 1, 0, true)),
                  nas::InternalError);  // kernel larger than the input
  auto max_kernel = nas::pool2d_kernel(make_pool(PoolKind::max, 1, 1, 4, 4, 2, 0, 0, true));
  std::vector<float> x(16), y(4);
  CHECK_THROWS_AS(max_kernel->forward(x.data(), y.data(), nullptr), nas::InternalError);
}
