// The remat pass (compiler/passes/remat.h): which values the backward pass recomputes, and
// training plans that recompute them against plans that keep every value, on every
// backend, in DARTS' full mode and on sampled paths under live masks. The IR in and out is
// checked in tests/filecheck/remat.ir; the op-by-op gradient checks of recomputed values
// are in the conformance test.
#include <catch2/catch.hpp>

#include "compiler/ir/op_registry.h"
#include "compiler/passes/autodiff.h"
#include "compiler/passes/live_mask.h"
#include "compiler/passes/remat.h"
#include "tests/plan_compare_util.h"

using namespace nas;
using namespace nas::test;

namespace {

Graph compile_net(const std::string& text) {
  Diagnostics diags;
  Compilation c = compile_text("space.nas", text, {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  return *c.supernet;
}

// The ops of the forward nodes rematerialize would recompute, in node order.
std::vector<std::string> recomputed_ops(const Graph& net, const AutodiffOptions& ad) {
  Graph training = build_training_graph(net, ad);
  std::vector<std::string> ops;
  for (int id : rematerialized_values(training)) ops.push_back(training.nodes[id].op->name);
  return ops;
}

size_t recompute_steps(const ExecPlan& plan) {
  size_t n = 0;
  for (const Step& s : plan.steps) n += s.op == "recompute";
  return n;
}

PlanOptions training_options(bool arch_grads, bool weight_grads, bool remat) {
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  o.arch_grads = arch_grads;
  o.weight_grads = weight_grads;
  o.rematerialize = remat;
  return o;
}

}  // namespace

TEST_CASE("remat: a value is recomputed only when its inputs are kept anyway", "[remat]") {
  // d's weight gradient keeps a alive, so d is recomputed from it; without weight
  // gradients (DARTS' alpha step) nothing in the backward pass reads a, and recomputing d
  // would keep a alive instead of d: d is kept. The candidates relu(d) and sigmoid(d),
  // read by the architecture gradient, are recomputed from d either way.
  Graph net = compile_net(R"(
network n(x: tensor[2, 4, 4]) {
  let a = conv(x, 4, kernel=1);
  let d = dwconv(a, kernel=3, pad=1);
  let s = choice "c" { one: relu(d), two: sigmoid(d) };
  return linear(flatten(d * s), 3);
}
)");
  AutodiffOptions full;
  full.arch_grads = true;
  CHECK(recomputed_ops(net, full) == std::vector<std::string>{"dwconv", "relu", "sigmoid"});
  AutodiffOptions alpha_only = full;
  alpha_only.weight_grads = false;
  CHECK(recomputed_ops(net, alpha_only) == std::vector<std::string>{"relu", "sigmoid"});
  // An inference graph has nothing to recompute and passes through unchanged.
  CHECK(rematerialized_values(net).empty());
  CHECK(rematerialize(net).nodes.size() == net.nodes.size());
}

TEST_CASE("remat: DARTS training plans equal the plans that keep every value", "[remat][exec]") {
  Graph net = compile_net(kSmallDartsCell);
  struct Mode {
    const char* name;
    bool arch_grads, weight_grads;
  };
  for (const Mode& mode : {Mode{"full mode", true, true}, Mode{"weight step", false, true},
                           Mode{"alpha step", true, false}})
    for (const char* backend : {"cpu", "jit"}) {
      INFO(mode.name << " on " << backend);
      Pair p(backend);
      PlanOptions remat = training_options(mode.arch_grads, mode.weight_grads, true);
      PlanOptions kept = training_options(mode.arch_grads, mode.weight_grads, false);
      make_pair(p, net, remat, kept);
      CHECK(recompute_steps(p.plain->plan()) == 0);
      if (mode.weight_grads) {
        // The alpha step keeps nothing for weight gradients, and what the architecture
        // gradients read (the candidates' batch norm outputs) is not recomputed: its plan
        // has nothing to recompute in this cell.
        CHECK(recompute_steps(p.fused->plan()) > 0);
        CHECK(p.fused->plan().arena_bytes < p.plain->plan().arena_bytes);
      }
      check_same(p, 5);
      check_same(p, 6);  // a second run: nothing left over from the first
    }
}

TEST_CASE("remat: sampled paths under live masks equal the plans that keep every value",
          "[remat][exec]") {
  // PNAS trains one sampled path at a time on the supernet's plan: a recompute step is
  // guarded by its forward node, so a candidate that does not run is not recomputed.
  Graph net = compile_net(kSmallDartsCell);
  PlanOptions remat = training_options(false, true, true);
  PlanOptions kept = training_options(false, true, false);
  CompiledPlan compiled = compile_plan_keeping_graph(net, remat);
  for (const char* backend : {"cpu", "jit"}) {
    INFO(backend);
    Pair p(backend);
    make_pair(p, net, remat, kept);
    std::mt19937 rng(5);
    for (int round = 0; round < 6; ++round) {
      Selection sel = random_selection(compiled.exec.arch, round > 0 ? &rng : nullptr);
      for (Executor* ex : {p.fused.get(), p.plain.get()}) {
        ex->use_selection(sel.chosen);
        ex->set_live_mask(live_mask(compiled.exec, sel));
      }
      INFO("round " << round);
      check_same(p, 40 + round);
    }
  }
}
