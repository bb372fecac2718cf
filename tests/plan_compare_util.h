// Running one network two ways and comparing the results: a fused plan against the unfused
// one (the fusion pass's tests), and a backend under test against the CPU interpreter (the
// JIT's). The subject executor runs on `store`, the reference on `ref_store`, which starts
// with the same weights and alphas (copied by name after both bound their plans).
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compiler/pipeline/pipeline.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "tests/cpu_test_util.h"

namespace nas::test {

struct Outcome {
  double loss = 0;
  std::vector<float> logits;
  std::vector<std::vector<float>> grads, alpha_grads;
};

struct Pair {
  explicit Pair(const std::string& subject_backend = "cpu")
      : store(make_backend(subject_backend)), ref_store(make_backend("cpu")) {}
  ParamStore store;                        // the subject's
  ParamStore ref_store;                    // the reference's: the CPU interpreter
  std::unique_ptr<Executor> fused, plain;  // subject (fusion on), reference (`ref_fusion`)
};

// Binds the subject (options `subject`, on p.store) and the reference (options
// `reference`, on the CPU interpreter) and gives both the same weights and random alphas.
inline void make_pair(Pair& p, const Graph& net, const PlanOptions& subject,
                      const PlanOptions& reference) {
  p.fused = std::make_unique<Executor>(compile_plan(net, subject), p.store, 3);
  p.plain = std::make_unique<Executor>(compile_plan(net, reference), p.ref_store, 3);
  std::mt19937 rng(11);
  for (StoredArch& a : p.ref_store.arch()) {
    std::vector<float> alpha(a.alpha.size());
    for (float& v : alpha) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    p.ref_store.write(a.alpha, alpha);
  }
  REQUIRE(p.store.params().size() == p.ref_store.params().size());
  REQUIRE(p.store.arch().size() == p.ref_store.arch().size());
  for (size_t i = 0; i < p.store.params().size(); ++i) {
    REQUIRE(p.store.params()[i].spec.name == p.ref_store.params()[i].spec.name);
    p.store.write(p.store.params()[i].value, p.ref_store.read(p.ref_store.params()[i].value));
  }
  for (size_t i = 0; i < p.store.arch().size(); ++i)
    p.store.write(p.store.arch()[i].alpha, p.ref_store.read(p.ref_store.arch()[i].alpha));
}

// A DARTS cell of two nodes on a 1x8x8 input: Zero, pooling, skip and conv candidates.
inline const char* kSmallDartsCell = R"(import "darts_ops.nas";
network small(x: tensor[1, 8, 8]) {
  let stem = batchnorm(conv(x, 12, kernel=3, pad=1, bias=false));
  let a = darts_cell(stem, stem, 4, false, false, steps=2, multiplier=2);
  return linear(global_avg_pool(a), 3);
}
)";

// k candidates of every group: drawn at random with `rng`, or the first k without one.
inline Selection random_selection(const std::vector<ArchGroup>& arch, std::mt19937* rng) {
  Selection sel;
  for (const ArchGroup& a : arch) {
    std::vector<int> all(a.candidates.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    if (rng) std::shuffle(all.begin(), all.end(), *rng);
    sel.chosen.push_back({all.begin(), all.begin() + a.k});
  }
  return sel;
}

// The subject with fusion on, the reference with fusion `ref_fusion`.
inline void make_pair(Pair& p, const Graph& net, PlanOptions o, bool ref_fusion = false) {
  PlanOptions reference = o;
  o.fusion = true;
  reference.fusion = ref_fusion;
  make_pair(p, net, o, reference);
}

inline Outcome run_once(Executor& ex, ParamStore& store, uint32_t seed) {
  const ExecPlan& plan = ex.plan();
  std::mt19937 rng(seed);
  int64_t per = 1;
  for (int64_t d : plan.input_shape) per *= d;
  std::vector<float> images = random_floats(plan.batch * per, rng);
  std::vector<int32_t> labels;
  for (int64_t i = 0; i < plan.batch; ++i)
    labels.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(plan.classes)));
  store.zero_grads();
  Outcome o;
  o.logits.resize(static_cast<size_t>(plan.batch * plan.classes));
  o.loss = ex.run(images.data(), labels.data(), plan.batch, o.logits.data()).loss_sum;
  for (const StoredParam& p : store.params())
    o.grads.push_back(p.grad.empty() ? std::vector<float>{} : store.read(p.grad));
  for (const StoredArch& a : store.arch()) o.alpha_grads.push_back(store.read(a.alpha_grad));
  return o;
}

inline void check_close(const std::vector<float>& got, const std::vector<float>& want,
                        const std::string& what) {
  REQUIRE(got.size() == want.size());
  float scale = 1e-3f;
  for (float v : want) scale = std::max(scale, std::abs(v));
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= 1e-4f * scale)) ++bad;
  INFO(what << ": " << bad << " of " << got.size() << " entries differ");
  CHECK(bad == 0);
}

inline void check_same(Pair& p, uint32_t seed) {
  Outcome f = run_once(*p.fused, p.store, seed);
  Outcome u = run_once(*p.plain, p.ref_store, seed);
  CHECK(f.loss == Approx(u.loss).epsilon(1e-5));
  check_close(f.logits, u.logits, "logits");
  for (size_t i = 0; i < f.grads.size(); ++i)
    check_close(f.grads[i], u.grads[i], "gradient of " + p.store.params()[i].spec.name);
  for (size_t i = 0; i < f.alpha_grads.size(); ++i)
    check_close(f.alpha_grads[i], u.alpha_grads[i], "alpha gradient " + std::to_string(i));
}

inline size_t fused_steps(const ExecPlan& plan) {
  size_t n = 0;
  for (const Step& s : plan.steps) n += s.kind == StepKind::ElementwiseRegion;
  return n;
}

// A random chain of elementwise ops between two convs, with a skip and a product.
inline std::string random_chain(std::mt19937& rng, int length) {
  const char* unary[] = {"relu(h)",
                         "sigmoid(h)",
                         "silu(h)",
                         "hard_swish(h)",
                         "relu6(h)",
                         "leaky_relu(h, slope=0.2)",
                         "mul(h, scale=-1.5)",
                         "hard_sigmoid(h)",
                         "h * s",
                         "h + s",
                         "h * h",
                         "dropout(h, p=0.3)"};
  std::string body = "  let s = conv(x, 4, kernel=3, pad=1);\n  let h = conv(x, 4, kernel=1);\n";
  for (int i = 0; i < length; ++i)
    body += std::string("  h = ") + unary[rng() % (sizeof unary / sizeof *unary)] + ";\n";
  return "network chain(x: tensor[3, 6, 6]) {\n" + body +
         "  return linear(flatten(conv(h, 2, kernel=1)), 5);\n}\n";
}

}  // namespace nas::test
