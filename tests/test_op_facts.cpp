// The OpDef facts that replaced the op-name checks in passes and backends: the training
// loss (autodiff and lowering), a sum's zero inputs (zero pruning), a pool's reduction (the
// CPU kernel reads the step's `max`), and a node's drawing label and style (DOT). Each
// test checks what the fact drives, so that a pass or backend that stops reading it fails.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "compiler/dot/graph_dot.h"
#include "compiler/ir/op_registry.h"
#include "compiler/passes/autodiff.h"
#include "compiler/pipeline/pipeline.h"
#include "tests/ir_test_util.h"

using namespace nas;

namespace {

const char* kLayers = R"(
network facts(x: tensor[4, 8, 8]) {
  let a = conv(x, 8, kernel=3, stride=2, pad=2, dilation=2, groups=2);
  let b = dwconv(a, kernel=5, stride=2, pad=2);
  let c = relu(batchnorm(b));
  let d = max_pool(c, 3, stride=1, pad=1);
  let e = avg_pool(d, 2);
  return linear(flatten(e), 5);
}
)";

// The DOT line of the node whose label starts with `label`.
std::string dot_line(const std::string& dot, const std::string& label) {
  size_t at = dot.find("[label=\"" + label);
  INFO(label << " in\n" << dot);
  REQUIRE(at != std::string::npos);
  size_t begin = dot.rfind('\n', at) + 1;
  return dot.substr(begin, dot.find('\n', at) - begin);
}

}  // namespace

TEST_CASE(
    "op facts: one op is the training loss, autodiff appends it and lowering ends the "
    "forward pass before it",
    "[op_facts]") {
  REQUIRE(std::count_if(all_ops().begin(), all_ops().end(),
                        [](const OpDef* op) { return op->loss; }) == 1);
  const OpDef& loss = training_loss_op();
  CHECK(loss.loss);
  CHECK(loss.name == "cross_entropy");
  CHECK(loss.internal);
  CHECK(loss.grad != nullptr);

  Graph net = test::compile_source(kLayers);
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  CompiledPlan train = compile_plan_keeping_graph(net, o);
  const ExecPlan& p = train.plan;
  auto loss_step = std::find_if(p.steps.begin(), p.steps.end(),
                                [&](const Step& s) { return s.op == loss.name; });
  REQUIRE(loss_step != p.steps.end());
  CHECK(p.output == loss_step->node);
  CHECK(p.forward_nodes == loss_step->node);
  CHECK(p.logits == loss_step->inputs[0]);
  CHECK(p.classes == 5);
  // The backward pass starts at the loss's gradient rule: its gradient reads the logits.
  auto grad = std::find_if(p.steps.begin(), p.steps.end(),
                           [](const Step& s) { return s.kind == StepKind::CrossEntropyGrad; });
  REQUIRE(grad != p.steps.end());
  CHECK(grad->inputs == std::vector<int>{p.logits});
  CHECK(p.steps[p.forward_nodes - 1].kind != StepKind::CrossEntropy);

  // Autodiff's loss_node finds it by the fact too; a forward plan has no loss.
  CHECK(loss_node(build_training_graph(train.exec, {})) == loss_step->node);
  PlanOptions forward;
  forward.loss = false;
  ExecPlan f = compile_plan(net, forward);
  CHECK(f.logits == f.output);
  CHECK(f.forward_nodes == static_cast<int>(f.steps.size()));
}

TEST_CASE(
    "op facts: an op that sums its inputs computes their sum, and zero pruning drops its "
    "zero inputs",
    "[op_facts]") {
  int summing = 0;
  for (const OpDef* op : all_ops()) {
    if (!op->sums_inputs) continue;
    ++summing;
    INFO("op " << op->name);
    REQUIRE(op->example);
    REQUIRE(op->reference);
    CHECK(op->zero_preserving);
    // Its float64 reference on its example is the elementwise sum of the inputs.
    Attrs attrs = op->example->attrs;
    REQUIRE(complete_attrs(*op, attrs).empty());
    ReferenceArgs r{1, op->example->inputs, {}, op->example->inputs[0], attrs, {}};
    std::mt19937 rng(5);
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> sum(static_cast<size_t>(shape_numel(r.out_shape)), 0.0);
    for (const Shape& s : r.in_shapes) {
      std::vector<double> v(static_cast<size_t>(shape_numel(s)));
      for (double& x : v) x = u(rng);
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += v[i];
      r.in.push_back(std::move(v));
    }
    std::vector<double> y = op->reference(r);
    REQUIRE(y.size() == sum.size());
    for (size_t i = 0; i < y.size(); ++i) CHECK(y[i] == Approx(sum[i]));
  }
  CHECK(summing >= 1);

  // A sum of a zero and one live input is that input; the zero's producer is dead.
  Graph g = test::parse_ir_text(R"(network sums() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]
  %1 = relu(%0) : [2,4,4]
  %2 = zero(%0) {shape=[], stride=1} : [2,4,4]
  %3 = add(%1, %2) : [2,4,4]
  %4 = flatten(%3) : [32]
  return %4
}
)");
  Graph pruned = specialise(g, Selection{});
  CHECK(test::print_bare(pruned).find("add") == std::string::npos);
  CHECK(test::print_bare(pruned).find("flatten(%1)") != std::string::npos);
}

TEST_CASE("op facts: a pool's step says whether its kernel takes the maximum", "[op_facts]") {
  Graph net = test::compile_source(kLayers);
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  ExecPlan p = compile_plan(net, o);
  int max_steps = 0, avg_steps = 0;
  for (const Step& s : p.steps) {
    if (s.kind != StepKind::Pool && s.kind != StepKind::PoolGrad) continue;
    INFO(s.name << " (" << s.op << ", forward " << s.fwd_op << ")");
    // The forward and the gradient step read the forward op's attribute.
    const bool max = s.fwd_op == "max_pool";
    CHECK(s.int_attr("max") == (max ? 1 : 0));
    ++(max ? max_steps : avg_steps);
  }
  CHECK(max_steps == 2);
  CHECK(avg_steps == 2);
}

TEST_CASE(
    "op facts: a drawing labels a node by its op's label and styles it by its step and "
    "parameters",
    "[op_facts][dot]") {
  std::string dot = graph_to_dot(test::compile_source(kLayers));
  // Labels: the window, then the stride, dilation and groups that are not 1.
  dot_line(dot, "conv 3x3 /2 d2 g2\\n[8,4,4]");
  dot_line(dot, "dwconv 5x5 /2\\n[8,2,2]");
  dot_line(dot, "max_pool 3x3\\n[8,2,2]");
  dot_line(dot, "avg_pool 2x2\\n[8,1,1]");
  dot_line(dot, "input x\\n[4,8,8]");
  dot_line(dot, "relu\\n");  // no label: the op's name
  // Styles: weights are blue, running statistics green, the rest plain.
  CHECK(dot_line(dot, "conv 3x3").find("#cfe3ff") != std::string::npos);
  CHECK(dot_line(dot, "dwconv").find("#cfe3ff") != std::string::npos);
  CHECK(dot_line(dot, "linear").find("#cfe3ff") != std::string::npos);
  CHECK(dot_line(dot, "batchnorm").find("#e3f5d8") != std::string::npos);
  CHECK(dot_line(dot, "relu").find("style=rounded]") != std::string::npos);
  CHECK(dot_line(dot, "input x").find("shape=oval") != std::string::npos);

  // A join's label says how many it keeps.
  std::string join = graph_to_dot(test::compile_source(R"(
network j(x: tensor[2, 4, 4]) {
  let h = join "pick"(k = 2) { a: relu(x), b: sigmoid(x), c: identity(x) };
  return flatten(h);
}
)"));
  dot_line(join, "join pick (k=2)");
  CHECK(dot_line(join, "join pick").find("shape=diamond") != std::string::npos);
}
