// The pipeline object (compiler/pipeline): the stage list and its order, a run that stops
// after any stage and keeps each stage's result, the dumps it prints as it goes, the
// common cuts (their results agree with a whole run), runs from a graph and in a user's
// order, and how failures end a run.
#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "compiler/ir/ir_printer.h"
#include "compiler/pipeline/pipeline.h"
#include "tests/ir_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const char* kSpace = R"(network space(x: tensor[2, 4, 4]) {
  let a = relu(x);
  let b = relu(x);
  let h = choice "op" {
    pool: max_pool(a, 3, stride=1, pad=1),
    id: identity(b),
  };
  return linear(global_avg_pool(h), 3);
}
)";

PipelineResults run_to(Stage stop, PipelineOptions options = {}) {
  options.stop_after = stop;
  Diagnostics diags;
  PipelineResults r = run_pipeline_on_text("space.nas", kSpace, options, diags);
  INFO(diags.render());
  REQUIRE(r.ok);
  return r;
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("pipeline: the stages in order, found by name", "[pipeline]") {
  const std::vector<std::string> expected = {
      "load", "elaborate", "shapes", "dce",    "partial-channels", "zero-prune",
      "cse",  "autodiff",  "remat",  "fusion", "memory-plan",      "lower"};
  CHECK(stage_names() == expected);
  for (size_t i = 0; i < expected.size(); ++i) {
    REQUIRE(find_stage(expected[i]).has_value());
    CHECK(static_cast<size_t>(*find_stage(expected[i])) == i);
    CHECK(stage_info(*find_stage(expected[i])).name == expected[i]);
  }
  CHECK_FALSE(find_stage("plan").has_value());
  CHECK(count(describe_pipeline(), "\n") == kStageCount);
}

TEST_CASE("pipeline: a run stops after the stage asked for and keeps each result", "[pipeline]") {
  PipelineResults load = run_to(Stage::Load);
  CHECK(load.last == Stage::Load);
  CHECK(load.program != nullptr);
  CHECK(load.current_graph() == nullptr);

  PipelineResults front = run_to(Stage::Dce);
  CHECK(front.last == Stage::Dce);
  // Shapes took elaborate's graph over; dce made a new one; nothing later ran.
  CHECK_FALSE(front.graphs[static_cast<int>(Stage::Elaborate)].has_value());
  CHECK(front.graphs[static_cast<int>(Stage::Shapes)].has_value());
  REQUIRE(front.graphs[static_cast<int>(Stage::Dce)].has_value());
  CHECK_FALSE(front.memory.has_value());
  CHECK(front.graph_after(Stage::Lower) == front.current_graph());

  PipelineResults all = run_to(Stage::Lower);
  CHECK(all.last == Stage::Lower);
  // No selection: zero-prune is skipped; the default plan is an evaluation plan (loss).
  CHECK_FALSE(all.graphs[static_cast<int>(Stage::ZeroPrune)].has_value());
  const Graph& supernet = *all.graphs[static_cast<int>(Stage::Dce)];
  const Graph& exec = *all.graphs[static_cast<int>(Stage::Cse)];
  CHECK(exec.nodes.size() + 1 == supernet.nodes.size());  // the two relu(x) merged
  CHECK(all.graph_after(Stage::ZeroPrune) == &supernet);
  REQUIRE(all.plan.has_value());
  CHECK(all.plan->forward_nodes == static_cast<int>(exec.nodes.size()));
  CHECK(all.plan->output == all.plan->forward_nodes);  // the loss
  CHECK(all.memory->peak_bytes == all.plan->arena_bytes);
}

TEST_CASE("pipeline: partial-channels runs when asked, and is skipped otherwise",
          "[pipeline][partial_channels]") {
  std::ostringstream dumps;
  PipelineOptions plain;
  plain.plan.dumps.after = {Stage::PartialChannels};
  plain.plan.dumps.out = &dumps;
  PipelineResults whole = run_to(Stage::Lower, plain);
  CHECK_FALSE(whole.graphs[static_cast<int>(Stage::PartialChannels)].has_value());
  CHECK_THAT(dumps.str(), StartsWith("// ----- after partial-channels [skipped: not asked] -----"));

  PipelineOptions o;
  o.partial_channels = {2, false};
  PipelineResults pc = run_to(Stage::Lower, o);
  REQUIRE(pc.graphs[static_cast<int>(Stage::PartialChannels)].has_value());
  const Graph& g = *pc.graphs[static_cast<int>(Stage::PartialChannels)];
  CHECK(pc.graph_after(Stage::ZeroPrune) == &g);
  // The choice's candidates read 1 of the 2 channels; the other bypasses them.
  CHECK(count(print_graph(g), "= channel_slice(") == 2);
  CHECK(count(print_graph(g), "= channel_shuffle(") == 1);
  REQUIRE(pc.plan.has_value());
  CHECK(pc.plan->forward_nodes > whole.plan->forward_nodes);
}

TEST_CASE("pipeline: the common cuts agree with a whole run", "[pipeline]") {
  PipelineOptions training;
  training.plan.batch = 4;
  training.plan.training = true;
  training.plan.arch_grads = true;
  PipelineResults run = run_to(Stage::Lower, training);
  const Graph& supernet = *run.graphs[static_cast<int>(Stage::Dce)];
  CHECK(print_graph(execution_graph(supernet)) ==
        print_graph(*run.graphs[static_cast<int>(Stage::Cse)]));
  CompiledPlan cut = compile_plan_keeping_graph(supernet, training.plan);
  CHECK(print_graph(cut.exec) == print_graph(*run.graphs[static_cast<int>(Stage::Cse)]));
  CHECK(cut.plan.steps.size() == run.plan->steps.size());
  CHECK(cut.plan.arena_bytes == run.plan->arena_bytes);
  // A second plan continuing from the execution graph is the plan compiled from scratch.
  PlanOptions eval;
  eval.batch = 4;
  ExecPlan continued = compile_plan_from_execution_graph(cut.exec, eval);
  ExecPlan fresh = compile_plan(supernet, eval);
  CHECK(continued.steps.size() == fresh.steps.size());
  CHECK(continued.arena_bytes == fresh.arena_bytes);
  // zero-prune with a selection.
  PipelineOptions pick;
  pick.selection = first_candidates(supernet);
  PipelineResults pruned = run_to(Stage::ZeroPrune, pick);
  CHECK(print_graph(*pruned.current_graph()) ==
        print_graph(specialise(supernet, first_candidates(supernet))));
  CHECK(pruned.current_graph()->arch.empty());
}

TEST_CASE("pipeline: dumps after the named stages, in order, skipped ones say why", "[pipeline]") {
  std::ostringstream out;
  PipelineOptions o;
  o.compile.dumps.after = {Stage::Dce};
  o.compile.dumps.out = &out;
  o.compile.dumps.print.locations = false;
  o.plan.dumps = o.compile.dumps;
  o.plan.dumps.after = {Stage::Fusion, Stage::ZeroPrune, Stage::Lower};
  o.plan.dumps.label = "eval plan";
  o.plan.loss = false;
  run_to(Stage::Lower, o);
  const std::string text = out.str();
  INFO(text);
  CHECK_THAT(text, StartsWith("// ----- after dce -----\nnetwork space() {"));
  size_t prune = text.find("// ----- after zero-prune (eval plan) [skipped: no selection] -----");
  size_t fusion = text.find("// ----- after fusion (eval plan) -----\nnetwork space() {");
  size_t lower = text.find("// ----- after lower (eval plan) -----\nplan batch=1 mode=inference");
  CHECK(prune != std::string::npos);
  CHECK(fusion > prune);
  CHECK(lower > fusion);
  CHECK(lower != std::string::npos);
  CHECK(count(text, "// -----") == 4);
}

TEST_CASE("pipeline: passes in a user's order on textual IR", "[pipeline]") {
  Graph g = test::parse_ir_text(R"(network chain() {
  %0 = input() {shape=[4]} : [4]
  %1 = relu(%0) : [4]
  %2 = relu(%0) : [4]
  %3 = add(%1, %2) : [4]
  %4 = sigmoid(%0) : [4]
  return %3
}
)");
  PipelineOptions o;
  o.plan.batch = 2;
  Diagnostics diags;
  // cse before dce: the dead sigmoid survives cse, then dce drops it; a later graph pass
  // drops the memory plan of the graph before it.
  PipelineResults r = run_passes(g, {Stage::Cse, Stage::MemoryPlan, Stage::Dce}, o, diags);
  REQUIRE(r.ok);
  CHECK(r.last == Stage::Dce);
  CHECK_FALSE(r.memory.has_value());
  CHECK(test::print_bare(*r.current_graph()) == R"(network chain() {
  %0 = input() {shape=[4]} : [4]
  %1 = relu(%0) : [4]
  %2 = add(%1, %1) : [4]
  return %2
}
)");
  PipelineResults plan = run_passes(g, {Stage::Dce, Stage::MemoryPlan, Stage::Lower}, o, diags);
  REQUIRE(plan.plan.has_value());
  CHECK(plan.plan->batch == 2);
  CHECK_THAT(dump_stage(plan, Stage::MemoryPlan, {}), Contains("batch 2)"));
}

TEST_CASE("pipeline: a failing stage ends the run", "[pipeline]") {
  Diagnostics diags;
  PipelineResults bad = run_pipeline_on_text(
      "bad.nas", "network bad(x: tensor[2, 4, 4]) {\n  return linear(x, 3, kernel=2);\n}\n", {},
      diags);
  CHECK_FALSE(bad.ok);
  CHECK(bad.last == Stage::Load);  // elaborate failed; the AST is kept
  CHECK(bad.program != nullptr);
  CHECK(diags.has_errors());
  CHECK_THAT(diags.render(), Contains("bad.nas:2:"));

  // The back half refuses with a UserError at the network's source.
  Graph two = test::parse_ir_text(R"(network two() {
  %0 = input() {shape=[4]} : [4]
  %1 = input() {shape=[4]} : [4]
  %2 = add(%0, %1) : [4]
  return %2
}
)");
  PlanOptions forward;
  forward.loss = false;
  CHECK_THROWS_AS(compile_plan(two, forward), UserError);
  CHECK_THROWS_WITH(compile_plan(two, forward),
                    Contains("has 2 inputs; the executor runs networks with exactly one"));
}
