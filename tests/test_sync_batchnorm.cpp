// Synchronised batch norm (runtime/cpu/sync_batchnorm.h): ranks on threads
// (tests/thread_collectives.h), each holding its share of a global batch, against one
// process's float64 batch norm over the whole batch and against finite differences of
// the global loss. The thread collectives are checked first.
//
// The loss: every rank's upstream gradient is the rows of one global tensor r (the same
// function of the global sample index as in the one-process setup), i.e. rank k's local
// loss has dL_k/dy = r on its rows and the global loss is L = (1/N) sum_k L_k =
// (1/N) sum_i r_i y_i. Then each rank's dx must equal one process's dx over all samples
// with upstream r (N times dL/dx), and the average over the ranks of dscale/dshift must be
// dL/dscale and dL/dshift (one process's values with upstream r, divided by N).
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/cpu/batchnorm.h"
#include "runtime/cpu/reference_ops.h"
#include "runtime/cpu/sync_batchnorm.h"
#include "runtime/exec/backend.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/exec_plan.h"
#include "support/errors.h"
#include "tests/cpu_test_util.h"
#include "tests/thread_collectives.h"

using nas::BatchNormParams;
using nas::test::check_close;
using nas::test::check_fd;
using nas::test::random_floats;
using nas::test::run_ranks;
using nas::test::ThreadCollectives;
using nas::test::widen;
namespace reference = nas::reference;

namespace {

BatchNormParams make_bn(int64_t n, int64_t c, int64_t h, int64_t w, bool affine) {
  BatchNormParams p;
  p.n = n, p.c = c, p.h = h, p.w = w, p.affine = affine, p.eps = 1e-5, p.momentum = 0.1;
  return p;
}

// A global batch split over ranks (split[k] samples on rank k, in order), its parameters
// and the upstream gradient r.
struct GlobalBatch {
  BatchNormParams p;  // the whole batch
  std::vector<int64_t> split;
  std::vector<float> x, scale, shift, r, running_mean, running_var;

  int ranks() const { return static_cast<int>(split.size()); }
  BatchNormParams local(int rank) const {
    BatchNormParams q = p;
    q.n = split[rank];
    return q;
  }
  // Where rank `rank`'s samples start in the global buffers.
  int64_t offset(int rank) const {
    return std::accumulate(split.begin(), split.begin() + rank, int64_t{0}) * p.c * p.h * p.w;
  }
  const float* scale_or_null() const { return p.affine ? scale.data() : nullptr; }
  const float* shift_or_null() const { return p.affine ? shift.data() : nullptr; }
};

GlobalBatch make_batch(std::vector<int64_t> split, int64_t c, int64_t h, int64_t w, bool affine,
                       uint32_t seed) {
  GlobalBatch g;
  g.split = std::move(split);
  g.p = make_bn(std::accumulate(g.split.begin(), g.split.end(), int64_t{0}), c, h, w, affine);
  std::mt19937 rng(seed);
  g.x = random_floats(g.p.size(), rng);
  // A per-channel offset and spread so that normalisation has something to remove.
  auto offsets = random_floats(c, rng, -3.0f, 3.0f), spreads = random_floats(c, rng, 0.5f, 4.0f);
  for (int64_t b = 0; b < g.p.n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < h * w; ++i) {
        float& v = g.x[(b * c + ch) * h * w + i];
        v = v * spreads[ch] + offsets[ch];
      }
  g.r = random_floats(g.p.size(), rng);
  if (affine) g.scale = random_floats(c, rng, 0.5f, 2.0f), g.shift = random_floats(c, rng);
  g.running_mean = random_floats(c, rng);
  g.running_var = random_floats(c, rng, 0.5f, 2.0f);
  return g;
}

// One rank's outputs. dx_from_output only without affine.
struct RankResult {
  std::vector<float> y, mean, var, running_mean, running_var, dx, dscale, dshift, dx_from_output;
  int reductions = 0;
};

// Forward, backward and (without affine) backward from the output on every rank.
std::vector<RankResult> run_sync(const GlobalBatch& g) {
  std::vector<RankResult> results(g.ranks());
  run_ranks(g.ranks(), [&](ThreadCollectives& collectives, int rank) {
    const BatchNormParams p = g.local(rank);
    const float* x = g.x.data() + g.offset(rank);
    const float* r = g.r.data() + g.offset(rank);
    const float nan = std::nanf("");
    RankResult& out = results[rank];
    out.y.assign(p.size(), nan), out.dx.assign(p.size(), nan);
    out.mean.assign(p.c, nan), out.var.assign(p.c, nan);
    out.dscale.assign(p.c, nan), out.dshift.assign(p.c, nan);
    out.running_mean = g.running_mean, out.running_var = g.running_var;
    nas::sync_batchnorm_forward_training(p, collectives, x, g.scale_or_null(), g.shift_or_null(),
                                         out.y.data(), out.mean.data(), out.var.data(),
                                         out.running_mean.data(), out.running_var.data());
    nas::sync_batchnorm_backward(p, collectives, x, r, out.mean.data(), out.var.data(),
                                 g.scale_or_null(), out.dx.data(), out.dscale.data(),
                                 out.dshift.data());
    if (!p.affine) {
      out.dx_from_output.assign(p.size(), nan);
      nas::sync_batchnorm_backward_from_output(p, collectives, out.y.data(), r, out.var.data(),
                                               out.dx_from_output.data());
    }
    out.reductions = collectives.reductions();
  });
  return results;
}

// Rank `rank`'s rows of a global float64 buffer.
std::vector<double> rows(const GlobalBatch& g, const std::vector<double>& all, int rank) {
  auto first = all.begin() + g.offset(rank);
  return {first, first + g.local(rank).size()};
}

// The ranks' buffers, one after another: a global buffer.
std::vector<float> concat(const std::vector<RankResult>& results,
                          std::vector<float> RankResult::*field) {
  std::vector<float> all;
  for (const RankResult& res : results)
    all.insert(all.end(), (res.*field).begin(), (res.*field).end());
  return all;
}

// The average over the ranks of a per-channel buffer.
std::vector<float> rank_average(const std::vector<RankResult>& results,
                                std::vector<float> RankResult::*field) {
  std::vector<float> avg((results[0].*field).size(), 0.0f);
  for (const RankResult& res : results)
    for (size_t i = 0; i < avg.size(); ++i) avg[i] += (res.*field)[i] / results.size();
  return avg;
}

// The split cases: even (4 + 4), uneven (3 + 5: the counts travel with the sums), one
// value per channel on each rank (trainable only together), and three ranks.
std::vector<GlobalBatch> cases(bool affine) {
  return {make_batch({4, 4}, 3, 2, 3, affine, affine ? 11 : 12),
          make_batch({3, 5}, 2, 3, 2, affine, affine ? 13 : 14),
          make_batch({1, 1}, 5, 1, 1, affine, affine ? 15 : 16),
          make_batch({2, 3, 3}, 2, 2, 2, affine, affine ? 17 : 18)};
}

std::string describe(const GlobalBatch& g) {
  std::string s = g.p.key() + " split";
  for (int64_t n : g.split) s += " " + std::to_string(n);
  return s;
}

}  // namespace

TEST_CASE("thread collectives: every operation, and a failed rank stops the others",
          "[cpu][syncbn]") {
  struct Seen {
    std::vector<float> sum_f;
    std::vector<double> sum_d, max_d;
    int64_t broadcast = 0;
  };
  std::vector<Seen> seen(3);
  run_ranks(3, [&](ThreadCollectives& collectives, int rank) {
    Seen& out = seen[rank];
    out.sum_f = {1.0f * rank, 1.0f};
    collectives.sum(out.sum_f.data(), 2, "float sum");
    out.sum_d = {0.5 * rank};
    collectives.sum(out.sum_d.data(), 1, "double sum");
    out.max_d = {-1.0 * rank, 1.0 * rank};
    collectives.max(out.max_d.data(), 2, "max");
    out.broadcast = rank == 1 ? 42 : -1;
    collectives.broadcast(&out.broadcast, sizeof out.broadcast, 1, "broadcast");
    collectives.barrier("barrier");
    std::vector<float> pending = {2.0f};
    nas::PendingReduction handle = collectives.start_sum(pending.data(), 1, "non-blocking sum");
    collectives.progress();
    collectives.wait(handle);
    out.sum_f.push_back(pending[0]);
  });
  for (const Seen& s : seen) {
    CHECK(s.sum_f == std::vector<float>{3.0f, 3.0f, 6.0f});
    CHECK(s.sum_d == std::vector<double>{1.5});
    CHECK(s.max_d == std::vector<double>{0.0, 2.0});
    CHECK(s.broadcast == 42);
  }
  // The failing rank's own error comes back, not the others' aborted waits, and at once.
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(run_ranks(2,
                              [](ThreadCollectives& collectives, int rank) {
                                if (rank == 1) throw std::runtime_error("rank 1 failed");
                                collectives.barrier("waiting for rank 1");
                              }),
                    "rank 1 failed");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("sync batchnorm forward equals one process over the global batch", "[cpu][syncbn]") {
  for (bool affine : {true, false})
    for (const GlobalBatch& g : cases(affine)) {
      INFO(describe(g));
      std::vector<RankResult> results = run_sync(g);
      auto xd = widen(g.x);
      auto stats = reference::batch_stats(g.p, xd);
      auto y = reference::batchnorm_forward_training(g.p, xd, widen(g.scale), widen(g.shift));
      auto want_rm = widen(g.running_mean), want_rv = widen(g.running_var);
      reference::batchnorm_update_running(g.p, stats, want_rm, want_rv);
      for (int rank = 0; rank < g.ranks(); ++rank) {
        INFO("rank " << rank);
        const RankResult& res = results[rank];
        check_close(res.y, rows(g, y, rank), 1e-5, "y");
        check_close(res.mean, stats.mean, 1e-5, "saved mean");
        check_close(res.var, stats.var, 1e-5, "saved variance (biased)");
        check_close(res.running_mean, want_rm, 1e-5, "running mean");
        check_close(res.running_var, want_rv, 1e-5, "running variance (global unbiased)");
        // The same bits on every rank: the running statistics must not drift apart.
        CHECK(res.mean == results[0].mean);
        CHECK(res.var == results[0].var);
        CHECK(res.running_mean == results[0].running_mean);
        CHECK(res.running_var == results[0].running_var);
        // One reduction per call: forward, backward and (without affine) from the output.
        CHECK(res.reductions == (affine ? 2 : 3));
      }
    }
}

TEST_CASE("sync batchnorm on layers large enough for the threaded loops", "[cpu][syncbn]") {
  for (bool affine : {true, false}) {
    GlobalBatch g = make_batch({4, 4}, 8, 48, 48, affine, affine ? 51 : 52);
    REQUIRE(g.local(0).size() > 32768);  // sync_batchnorm.cpp's threshold for OpenMP
    INFO(describe(g));
    std::vector<RankResult> results = run_sync(g);
    auto xd = widen(g.x), scale = widen(g.scale);
    auto y = reference::batchnorm_forward_training(g.p, xd, scale, widen(g.shift));
    auto grads = reference::batchnorm_backward(g.p, xd, widen(g.r), scale);
    for (int rank = 0; rank < 2; ++rank) {
      INFO("rank " << rank);
      check_close(results[rank].y, rows(g, y, rank), 1e-5, "y");
      check_close(results[rank].dx, rows(g, grads.dx, rank), 1e-5, "dx");
      if (!affine)
        check_close(results[rank].dx_from_output, rows(g, grads.dx, rank), 1e-5,
                    "dx from the output");
    }
  }
}

TEST_CASE("sync batchnorm statistics survive a mean far from zero", "[cpu][syncbn]") {
  // A mean of ~3000 standard deviations: a float sum of squares would lose the variance
  // entirely. (y is not compared: the saved mean is a float, as in the unsynchronised path,
  // and its rounding at 3000 is ~1e-4.)
  GlobalBatch g = make_batch({3, 5}, 3, 2, 2, true, 19);
  for (float& v : g.x) v += 3000.0f;
  std::vector<RankResult> results = run_sync(g);
  auto stats = reference::batch_stats(g.p, widen(g.x));
  auto want_rm = widen(g.running_mean), want_rv = widen(g.running_var);
  reference::batchnorm_update_running(g.p, stats, want_rm, want_rv);
  for (const RankResult& res : results) {
    check_close(res.mean, stats.mean, 1e-7, "saved mean");
    check_close(res.var, stats.var, 1e-6, "saved variance");
    check_close(res.running_var, want_rv, 1e-6, "running variance");
  }
}

TEST_CASE("sync batchnorm backward equals one process and finite differences of the global loss",
          "[cpu][syncbn]") {
  for (bool affine : {true, false})
    for (const GlobalBatch& g : cases(affine)) {
      INFO(describe(g));
      std::vector<RankResult> results = run_sync(g);
      auto xd = widen(g.x), scale = widen(g.scale), shift = widen(g.shift), r = widen(g.r);
      auto one_process = reference::batchnorm_backward(g.p, xd, r, scale);
      for (int rank = 0; rank < g.ranks(); ++rank) {
        INFO("rank " << rank);
        check_close(results[rank].dx, rows(g, one_process.dx, rank), 1e-5, "dx");
      }
      const double ranks = g.ranks();
      // dL/d(everything) of the global loss L = (1/N) sum_i r_i y_i, in float64.
      std::function<double()> loss = [&] {
        auto y = reference::batchnorm_forward_training(g.p, xd, scale, shift);
        double sum = 0;
        for (size_t i = 0; i < y.size(); ++i) sum += r[i] * y[i];
        return sum / ranks;
      };
      std::vector<double> dx = widen(concat(results, &RankResult::dx));
      for (double& v : dx) v /= ranks;  // each rank's dx is N times its share
      check_fd(xd, dx, loss, 1e-5, 1e-5, 1e-4, "dL/dx");
      if (!affine) continue;
      auto dscale = rank_average(results, &RankResult::dscale);
      auto dshift = rank_average(results, &RankResult::dshift);
      std::vector<double> want_dscale = one_process.dscale, want_dshift = one_process.dshift;
      for (double& v : want_dscale) v /= ranks;
      for (double& v : want_dshift) v /= ranks;
      check_close(dscale, want_dscale, 1e-5, "dscale averaged over the ranks");
      check_close(dshift, want_dshift, 1e-5, "dshift averaged over the ranks");
      check_fd(scale, dscale, loss, 1e-5, 1e-5, 1e-4, "dL/dscale");
      check_fd(shift, dshift, loss, 1e-5, 1e-5, 1e-4, "dL/dshift");
    }
}

TEST_CASE("sync batchnorm backward from the output equals the backward from the input",
          "[cpu][syncbn]") {
  for (const GlobalBatch& g : cases(false)) {
    INFO(describe(g));
    std::vector<RankResult> results = run_sync(g);
    auto xd = widen(g.x), r = widen(g.r);
    auto one_process = reference::batchnorm_backward(g.p, xd, r, {});
    for (int rank = 0; rank < g.ranks(); ++rank) {
      INFO("rank " << rank);
      check_close(results[rank].dx_from_output, rows(g, one_process.dx, rank), 1e-5,
                  "dx from the output");
    }
    const double ranks = g.ranks();
    std::function<double()> loss = [&] {
      auto y = reference::batchnorm_forward_training(g.p, xd, {}, {});
      double sum = 0;
      for (size_t i = 0; i < y.size(); ++i) sum += r[i] * y[i];
      return sum / ranks;
    };
    std::vector<double> dx = widen(concat(results, &RankResult::dx_from_output));
    for (double& v : dx) v /= ranks;
    check_fd(xd, dx, loss, 1e-5, 1e-5, 1e-4, "dL/dx from the output");
  }
}

TEST_CASE("sync batchnorm over one rank equals the unsynchronised kernel", "[cpu][syncbn]") {
  for (bool affine : {true, false}) {
    GlobalBatch g = make_batch({6}, 4, 3, 5, affine, affine ? 21 : 22);
    INFO(describe(g));
    RankResult sync = run_sync(g)[0];
    auto kernel = nas::batchnorm_kernel(g.p);
    RankResult plain;
    plain.y.resize(g.p.size()), plain.dx.resize(g.p.size());
    plain.mean.resize(g.p.c), plain.var.resize(g.p.c);
    plain.dscale.resize(g.p.c), plain.dshift.resize(g.p.c);
    plain.running_mean = g.running_mean, plain.running_var = g.running_var;
    kernel->forward_training(g.x.data(), g.scale_or_null(), g.shift_or_null(), plain.y.data(),
                             plain.mean.data(), plain.var.data(), plain.running_mean.data(),
                             plain.running_var.data());
    kernel->backward(g.x.data(), g.r.data(), plain.mean.data(), plain.var.data(), g.scale_or_null(),
                     plain.dx.data(), plain.dscale.data(), plain.dshift.data());
    check_close(sync.y, widen(plain.y), 1e-5, "y");
    check_close(sync.mean, widen(plain.mean), 1e-5, "mean");
    check_close(sync.var, widen(plain.var), 1e-5, "var");
    check_close(sync.running_mean, widen(plain.running_mean), 1e-5, "running mean");
    check_close(sync.running_var, widen(plain.running_var), 1e-5, "running var");
    check_close(sync.dx, widen(plain.dx), 1e-5, "dx");
    if (affine) {
      check_close(sync.dscale, widen(plain.dscale), 1e-5, "dscale");
      check_close(sync.dshift, widen(plain.dshift), 1e-5, "dshift");
    } else {
      std::vector<float> dx(g.p.size());
      kernel->backward_from_output(plain.y.data(), g.r.data(), plain.var.data(), dx.data());
      check_close(sync.dx_from_output, widen(dx), 1e-5, "dx from the output");
    }
  }
}

TEST_CASE("sync batchnorm needs two values per channel over all ranks", "[cpu][syncbn]") {
  GlobalBatch g = make_batch({1}, 2, 1, 1, false, 31);
  CHECK_THROWS_AS(run_sync(g), nas::InternalError);
  // A missing output is a bug, caught before any rank waits for the others.
  nas::test::ThreadGroup group(1);
  ThreadCollectives collectives(group, 0);
  std::vector<float> x = {1, 2}, y(2);
  CHECK_THROWS_AS(nas::sync_batchnorm_forward_training(make_bn(2, 1, 1, 1, false), collectives,
                                                       x.data(), nullptr, nullptr, y.data(),
                                                       nullptr, nullptr, nullptr, nullptr),
                  nas::InternalError);
  CHECK(collectives.reductions() == 0);
}

namespace {

// A training plan of one batch norm and its gradient on a rank's share [n, c, h, w]:
// values 0 = x, 1 = y, 2 = dy, 3 = dx; parameters scale, shift (affine only), running
// mean and variance. Without affine the gradient reads y (from_output), as lowering makes it.
nas::ExecPlan batchnorm_plan(const BatchNormParams& p) {
  nas::ExecPlan plan;
  plan.batch = p.n;
  plan.training = true;
  plan.num_states = 1;
  plan.values.resize(4);
  const std::vector<int64_t> shape = {p.n, p.c, p.h, p.w};
  auto param = [&](const char* name, bool trainable) {
    nas::ParamSpec spec;
    spec.name = name, spec.shape = {p.c}, spec.trainable = trainable;
    plan.params.push_back(spec);
    return static_cast<int>(plan.params.size()) - 1;
  };
  nas::Step fwd;
  fwd.kind = nas::StepKind::BatchNorm;
  fwd.op = fwd.fwd_op = "batchnorm";
  fwd.name = "bn";
  fwd.node = 1;
  fwd.inputs = {0};
  fwd.output_shape = fwd.fwd_in_shape = fwd.fwd_out_shape = shape;
  fwd.ints = {{"affine", p.affine ? 1 : 0}};
  fwd.floats = {{"eps", p.eps}, {"momentum", p.momentum}};
  if (p.affine) fwd.weight = param("bn.weight", true), fwd.bias = param("bn.bias", true);
  fwd.running_mean = param("bn.running_mean", false);
  fwd.running_var = param("bn.running_var", false);
  fwd.state = 0;
  nas::Step grad = fwd;
  grad.kind = nas::StepKind::BatchNormGrad;
  grad.op = "batchnorm_grad";
  grad.node = 3;
  grad.inputs = {2, p.affine ? 0 : 1};
  if (!p.affine) grad.ints["from_output"] = 1;
  plan.steps = {fwd, grad};
  return plan;
}

// One rank's run of batchnorm_plan: forward then gradient, from the rank's rows of g.
RankResult run_plan_steps(const GlobalBatch& g, int rank, nas::PreparedPlan& prepared,
                          nas::Collectives& collectives, bool sync) {
  const BatchNormParams p = g.local(rank);
  RankResult out;
  std::vector<float> x(g.x.begin() + g.offset(rank), g.x.begin() + g.offset(rank) + p.size());
  std::vector<float> dy(g.r.begin() + g.offset(rank), g.r.begin() + g.offset(rank) + p.size());
  std::vector<float> scale = g.scale, shift = g.shift;
  out.y.resize(p.size()), out.dx.resize(p.size());
  out.running_mean = g.running_mean, out.running_var = g.running_var;
  out.dscale.assign(p.c, 0.0f), out.dshift.assign(p.c, 0.0f);
  nas::RunState st;
  st.values = {x.data(), out.y.data(), dy.data(), out.dx.data()};
  st.computed.assign(4, 1);
  if (p.affine) {
    st.param = {scale.data(), shift.data(), out.running_mean.data(), out.running_var.data()};
    st.grad = {out.dscale.data(), out.dshift.data(), nullptr, nullptr};
  } else {
    st.param = {out.running_mean.data(), out.running_var.data()};
    st.grad = {nullptr, nullptr};
  }
  st.param_generation.assign(st.param.size(), 0);
  st.collectives = &collectives;
  st.sync_batchnorm = sync;
  // No Catch assertions on the ranks' threads (Catch is not thread-safe).
  if (!prepared.run(0, st) || !prepared.run(1, st))
    throw std::runtime_error("a batch-norm step wrote nothing");
  return out;
}

}  // namespace

// On the JIT, the steps run unsynchronised are its generated code
// (runtime/jit/batchnorm_codegen.h) and the synchronised ones the library's.
TEST_CASE("sync batchnorm through the backends' steps, chosen per run", "[cpu][jit][syncbn]") {
  for (const char* backend_name : {"cpu", "jit"})
    for (bool affine : {true, false}) {
      GlobalBatch g = make_batch({4, 4}, 3, 2, 3, affine, affine ? 41 : 42);
      INFO(describe(g) << ", backend " << backend_name);
      std::vector<RankResult> kernels = run_sync(g);
      std::vector<nas::ExecPlan> plans = {batchnorm_plan(g.local(0)), batchnorm_plan(g.local(1))};
      auto backend = nas::make_backend(backend_name);
      std::vector<std::unique_ptr<nas::PreparedPlan>> prepared;
      for (const nas::ExecPlan& plan : plans) prepared.push_back(backend->prepare(plan));
      std::vector<RankResult> synced(2), unsynced(2);
      run_ranks(2, [&](ThreadCollectives& collectives, int rank) {
        synced[rank] = run_plan_steps(g, rank, *prepared[rank], collectives, true);
        synced[rank].reductions = collectives.reductions();
      });
      // The same prepared plans again, with collectives but sync_batchnorm off: the switch is
      // read from the run state. One rank at a time: this is oneDNN's path, and its primitives
      // share a scratchpad that concurrent executions in one process would clobber.
      nas::test::ThreadGroup group(2);
      for (int rank = 0; rank < 2; ++rank) {
        ThreadCollectives collectives(group, rank);
        unsynced[rank] = run_plan_steps(g, rank, *prepared[rank], collectives, false);
        CHECK(collectives.reductions() == 0);
      }
      for (int rank = 0; rank < 2; ++rank) {
        INFO("rank " << rank);
        // Synchronised: the kernel functions' results, to the bit.
        const RankResult &want = kernels[rank], &got = synced[rank];
        CHECK(got.reductions == 2);  // one in the forward, one in the gradient
        CHECK(got.y == want.y);
        CHECK(got.running_mean == want.running_mean);
        CHECK(got.running_var == want.running_var);
        CHECK(got.dx == (affine ? want.dx : want.dx_from_output));
        if (affine) {
          CHECK(got.dscale == want.dscale);
          CHECK(got.dshift == want.dshift);
        }
        // Unsynchronised: the rank's own batch norm, as without collectives.
        const BatchNormParams own = g.local(rank);
        auto xd = rows(g, widen(g.x), rank);
        check_close(unsynced[rank].y,
                    reference::batchnorm_forward_training(own, xd, widen(g.scale), widen(g.shift)),
                    1e-5, "y of the rank's own batch");
        auto r = rows(g, widen(g.r), rank);
        check_close(unsynced[rank].dx, reference::batchnorm_backward(own, xd, r, widen(g.scale)).dx,
                    1e-5, "dx of the rank's own batch");
      }
    }
}

namespace {

// batchnorm_plan with a ReLU in its regions (compiler/passes/fusion.h): the forward step
// also writes value 4 = relu(y), and the gradient's incoming gradient is the ReLU's,
// computed from g (value 2) and y.
nas::ExecPlan batchnorm_relu_plan(const BatchNormParams& p) {
  nas::ExecPlan plan = batchnorm_plan(p);
  plan.values.resize(5);
  auto op = [](nas::StepKind kind, const char* name, int node, std::vector<int> operands) {
    nas::RegionOp r;
    r.kind = kind, r.op = name, r.node = node, r.operands = std::move(operands);
    return r;
  };
  nas::Step& fwd = plan.steps[0];
  fwd.node = 4;
  fwd.region = {op(nas::StepKind::BatchNorm, "batchnorm", 1, {0}),
                op(nas::StepKind::Activation, "relu", 4, {-1})};
  nas::Step& grad = plan.steps[1];
  grad.inputs = p.affine ? std::vector<int>{2, 1, 0} : std::vector<int>{2, 1};
  grad.region = {op(nas::StepKind::ActivationGrad, "relu", -1, {0, 1}),
                 op(nas::StepKind::BatchNormGrad, "batchnorm", 3, {-1, p.affine ? 2 : 1})};
  return plan;
}

// One rank's forward and gradient with a ReLU between: through batchnorm_relu_plan's fused
// steps, or through batchnorm_plan's with the ReLU and its gradient computed here. `mean`
// holds relu(y).
RankResult run_relu_steps(const GlobalBatch& g, int rank, nas::PreparedPlan& prepared,
                          nas::Collectives& collectives, bool fused) {
  const BatchNormParams p = g.local(rank);
  RankResult out;
  std::vector<float> x(g.x.begin() + g.offset(rank), g.x.begin() + g.offset(rank) + p.size());
  std::vector<float> r(g.r.begin() + g.offset(rank), g.r.begin() + g.offset(rank) + p.size());
  std::vector<float> dy = r, scale = g.scale, shift = g.shift;
  out.y.resize(p.size()), out.dx.resize(p.size()), out.mean.resize(p.size());
  out.running_mean = g.running_mean, out.running_var = g.running_var;
  out.dscale.assign(p.c, 0.0f), out.dshift.assign(p.c, 0.0f);
  nas::RunState st;
  st.values = {x.data(), out.y.data(), dy.data(), out.dx.data(), out.mean.data()};
  st.computed.assign(5, 0);
  st.computed[0] = st.computed[2] = 1;
  if (p.affine) {
    st.param = {scale.data(), shift.data(), out.running_mean.data(), out.running_var.data()};
    st.grad = {out.dscale.data(), out.dshift.data(), nullptr, nullptr};
  } else {
    st.param = {out.running_mean.data(), out.running_var.data()};
    st.grad = {nullptr, nullptr};
  }
  st.param_generation.assign(st.param.size(), 0);
  st.collectives = &collectives;
  st.sync_batchnorm = true;
  if (!prepared.run(0, st)) throw std::runtime_error("the forward step wrote nothing");
  if (fused && !st.computed[1]) throw std::runtime_error("the fused step left y uncomputed");
  if (!fused)
    for (int64_t i = 0; i < p.size(); ++i) {
      out.mean[i] = out.y[i] > 0 ? out.y[i] : 0.0f;
      dy[i] = out.y[i] > 0 ? r[i] : 0.0f;
    }
  if (!prepared.run(1, st)) throw std::runtime_error("the gradient step wrote nothing");
  return out;
}

}  // namespace

TEST_CASE("sync batchnorm regions with a ReLU equal the steps run apart",
          "[cpu][jit][syncbn][fusion]") {
  for (const char* backend_name : {"cpu", "jit"})
    for (bool affine : {true, false}) {
      GlobalBatch g = make_batch({3, 5}, 3, 2, 3, affine, affine ? 43 : 44);
      INFO(describe(g) << ", backend " << backend_name);
      auto backend = nas::make_backend(backend_name);
      std::vector<RankResult> fused(2), apart(2);
      for (bool with_region : {true, false}) {
        std::vector<std::unique_ptr<nas::PreparedPlan>> prepared;
        for (int rank = 0; rank < 2; ++rank)
          prepared.push_back(backend->prepare(with_region ? batchnorm_relu_plan(g.local(rank))
                                                          : batchnorm_plan(g.local(rank))));
        run_ranks(2, [&](ThreadCollectives& collectives, int rank) {
          (with_region ? fused : apart)[rank] =
              run_relu_steps(g, rank, *prepared[rank], collectives, with_region);
        });
      }
      for (int rank = 0; rank < 2; ++rank) {
        INFO("rank " << rank);
        CHECK(fused[rank].y == apart[rank].y);
        CHECK(fused[rank].mean == apart[rank].mean);  // relu(y)
        CHECK(fused[rank].running_mean == apart[rank].running_mean);
        CHECK(fused[rank].running_var == apart[rank].running_var);
        CHECK(fused[rank].dx == apart[rank].dx);
        CHECK(fused[rank].dscale == apart[rank].dscale);
        CHECK(fused[rank].dshift == apart[rank].dshift);
      }
    }
}
