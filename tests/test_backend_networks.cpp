// Whole plans on each backend that is not the CPU interpreter (the JIT; the GPU, where one
// is present) against the interpreter, their reference: a DARTS supernet's training step
// in full mode with each gradient subset, sampled paths under live masks, forward-only
// runs. A backend that cannot run here is skipped with a WARN line.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "tests/backend_test_util.h"
#include "tests/ir_test_util.h"
#include "tests/plan_compare_util.h"

using namespace nas;
using namespace nas::test;

namespace {

const char* kDartsCells = R"(import "darts_ops.nas";
network small(x: tensor[1, 8, 8]) {
  let stem = batchnorm(conv(x, 12, kernel=3, pad=1, bias=false));
  let a = darts_cell(stem, stem, 4, false, false, steps=2, multiplier=2);
  let b = darts_cell(stem, a, 8, true, false, steps=2, multiplier=2);
  return linear(global_avg_pool(b), 3);
}
)";

Graph darts_supernet() {
  Diagnostics diags;
  Compilation c = compile_text("space.nas", kDartsCells, {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  return *c.supernet;
}

// The supernet's training plan at batch 2, on the backend under test and on the interpreter.
PlanOptions darts_options() {
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  return o;
}

// Every usable backend but the interpreter itself.
std::vector<std::string> subject_backends() {
  std::vector<std::string> names;
  for (const BackendInfo& info : usable_backends())
    if (info.name != "cpu") names.push_back(info.name);
  return names;
}

// DARTS' full mode with every gradient subset: the weight and alpha steps together, the
// weight step alone and the alpha step alone skip the same gradients.
void check_darts_full_mode(const std::string& backend) {
  Graph net = darts_supernet();
  PlanOptions o = darts_options();
  o.arch_grads = true;
  Pair p(backend);
  make_pair(p, net, o);
  p.fused->use_full_choices();
  p.plain->use_full_choices();
  CHECK(fused_steps(p.fused->plan()) >= 4);
  check_same(p, 9);
  // The weight step alone and the alpha step alone skip the same gradients.
  p.fused->set_gradients(true, false);
  p.plain->set_gradients(true, false);
  check_same(p, 10);
  p.fused->set_gradients(false, true);
  p.plain->set_gradients(false, true);
  check_same(p, 11);
}

// Sampled paths (PNAS, random search) under live masks, each a different selection, and a
// forward-only run (PNAS' reward) that stops after the loss.
void check_sampled_paths(const std::string& backend) {
  Graph net = darts_supernet();
  const PlanOptions o = darts_options();
  CompiledPlan compiled = compile_plan_keeping_graph(net, o);
  Pair p(backend);
  make_pair(p, net, o, /*ref_fusion=*/true);  // the same steps, to count them
  std::mt19937 rng(5);
  for (int round = 0; round < 6; ++round) {
    Selection sel;
    for (const ArchGroup& a : compiled.exec.arch) {
      std::vector<int> all(a.candidates.size());
      for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
      if (round > 0) std::shuffle(all.begin(), all.end(), rng);
      sel.chosen.push_back({all.begin(), all.begin() + a.k});
    }
    for (Executor* ex : {p.fused.get(), p.plain.get()}) {
      ex->use_selection(sel.chosen);
      ex->set_live_mask(live_mask(compiled.exec, sel));
    }
    INFO("round " << round);
    check_same(p, 40 + round);
    CHECK(p.fused->steps_run() == p.plain->steps_run());
  }
  // Forward only (PNAS' reward runs) stops after the loss, as the interpreter does.
  p.fused->set_forward_only(true);
  p.plain->set_forward_only(true);
  Outcome f = run_once(*p.fused, p.store, 60);
  Outcome u = run_once(*p.plain, p.ref_store, 60);
  CHECK(f.loss == Approx(u.loss).epsilon(1e-5));
  CHECK(p.fused->steps_run() == p.plain->steps_run());
}

}  // namespace

TEST_CASE("backends: the DARTS supernet in full mode equals the interpreter", "[jit][exec][gpu]") {
  for (const std::string& backend : subject_backends()) {
    DYNAMIC_SECTION(backend) {
      check_darts_full_mode(backend);
    }
  }
}

TEST_CASE("backends: sampled paths under live masks equal the interpreter", "[jit][exec][gpu]") {
  for (const std::string& backend : subject_backends()) {
    DYNAMIC_SECTION(backend) {
      check_sampled_paths(backend);
    }
  }
}
