// Registry-driven op conformance, after ggml's test-backend-ops: every op of the registry
// (all_ops()), on every registered backend, with no list of ops in this file. For each op
// with an example (OpDef::example, and each of OpDef::variants) the test builds a small
// network around it:
//   - one input x shaped like the example's largest input of the highest rank;
//   - each example input produced from x by a layer with parameters (a 1x1 conv for an
//     image, a conv as large as x for [C,1,1], a linear layer for a vector), so that
//     gradients flow into every input of the op and the parameter gradients check them;
//   - the op, flattened into the logits.
// It runs the inference plan and compares the op's output with a float64 evaluation of
// the same network from the registry's references (OpDef::reference), then checks every
// parameter (and alpha) gradient of the training plan against central finite
// differences of the loss. An op callable from .nas without an example fails, naming it;
// an internal op (a gradient op, the loss) must appear in some plan the test ran. An
// elementwise op (is_fusable_elementwise) is checked a second time followed by mul and
// sigmoid, so that it runs inside a fused region of both plans.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "compiler/ir/op_registry.h"
#include "compiler/passes/fusion.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "tests/backend_test_util.h"
#include "tests/cpu_test_util.h"
#include "tests/gradient_check_util.h"

using namespace nas;

namespace {

constexpr int64_t kBatch = 3;

// Appends a node with complete attributes and its inferred shape; a failure names the op.
int add_node(Graph& g, const std::string& op_name, std::vector<int> inputs, Attrs attrs,
             const std::string& name) {
  const OpDef* op = find_op(op_name);
  REQUIRE(op != nullptr);
  std::string error = complete_attrs(*op, attrs);
  INFO(op_name << ": " << error);
  REQUIRE(error.empty());
  std::vector<Shape> in;
  for (int id : inputs) in.push_back(g.nodes[id].shape);
  Node n;
  n.id = static_cast<int>(g.nodes.size());
  n.op = op;
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  n.name = name;
  REQUIRE(infer_shape(*op, in, n.attrs, nullptr, n.shape, error));
  g.nodes.push_back(std::move(n));
  return g.nodes.back().id;
}

// The layer that makes example input `i` (shape `want`) from the network input x. Returns
// -1, with `why`, for a shape the harness cannot make.
int producer(Graph& g, int x, const Shape& want, size_t i, std::string& why) {
  const Shape& xs = g.nodes[x].shape;
  const std::string name = "in" + std::to_string(i);
  if (want.size() == 1) {
    int flat = xs.size() == 1 ? x : add_node(g, "flatten", {x}, {}, name + "/flatten");
    return add_node(g, "linear", {flat}, {{"out", want[0]}}, name);
  }
  if (want.size() == 3 && xs.size() == 3 && want[1] == xs[1] && want[2] == xs[2])
    return add_node(g, "conv", {x}, {{"out", want[0]}, {"kernel", int64_t{1}}}, name);
  if (want.size() == 3 && xs.size() == 3 && want[1] == 1 && want[2] == 1 && xs[1] == xs[2])
    return add_node(g, "conv", {x}, {{"out", want[0]}, {"kernel", xs[1]}}, name);
  why = "example input " + std::to_string(i) + " " + shape_str(want) +
        " is neither 1-D, nor an image of x's height and width, nor [C,1,1] from a square x";
  return -1;
}

struct OpNetwork {
  Graph graph;
  int op_node = -1;
};

// What follows the op before the logits.
enum class Tail {
  None,
  // mul -> sigmoid: the fusion pass puts an elementwise op in a region (forward and
  // backward) with them, and the plans run it there.
  Fused,
  // A 1x1 conv (a linear for 1-D values), whose weight gradient reads the op's output: the
  // remat pass then recomputes a rematerializable op in the backward pass.
  Recomputed,
};

// input -> producers -> the op [-> tail] -> flatten (when not 1-D) = the logits.
bool build_network(const OpDef& op, const OpExample& ex, OpNetwork& net, std::string& why,
                   Tail tail = Tail::None) {
  Graph& g = net.graph;
  g.name = "conformance_" + op.name;
  const Shape* widest = &ex.inputs[0];
  for (const Shape& s : ex.inputs)
    if (s.size() > widest->size() ||
        (s.size() == widest->size() && shape_numel(s) > shape_numel(*widest)))
      widest = &s;
  int x = add_node(g, "input", {}, {{"shape", IntList(*widest)}}, "x");
  g.inputs = {x};
  std::vector<int> ins;
  for (size_t i = 0; i < ex.inputs.size(); ++i) {
    int p = producer(g, x, ex.inputs[i], i, why);
    if (p < 0) return false;
    ins.push_back(p);
  }
  net.op_node = add_node(g, op.name, ins, ex.attrs, op.name);
  const Node& n = g.nodes[net.op_node];
  if (is_choice(n)) {
    ArchGroup group;
    group.key = n.string_attr("key");
    group.candidates = n.strings_attr("candidates");
    group.k = static_cast<int>(n.int_attr("k"));
    group.nodes = {n.id};
    g.arch.push_back(group);
  }
  int last = net.op_node;
  if (tail == Tail::Fused) {
    last = add_node(g, "mul", {last}, {{"scale", 0.75}}, "tail_mul");
    last = add_node(g, "sigmoid", {last}, {}, "tail_sigmoid");
  }
  if (tail == Tail::Recomputed) {
    const Shape& shape = g.nodes[last].shape;
    last = shape.size() == 1 ? add_node(g, "linear", {last}, {{"out", int64_t{3}}}, "tail_linear")
                             : add_node(g, "conv", {last},
                                        {{"out", int64_t{2}}, {"kernel", int64_t{1}}}, "tail_conv");
  }
  g.output = g.nodes[last].shape.size() == 1 ? last : add_node(g, "flatten", {last}, {}, "out");
  return true;
}

// Whether op `op` runs inside a fused region of the training plan and, unless it is a view
// at inference (dropout), of the inference plan.
bool runs_fused(const Graph& network, const std::string& op) {
  for (bool training : {false, true}) {
    if (!training && find_op(op)->view == ViewKind::Inference) continue;
    PlanOptions o;
    o.batch = kBatch;
    o.training = training;
    o.arch_grads = training && !network.arch.empty();
    bool found = false;
    for (const Step& s : compile_plan(network, o).steps)
      for (const RegionOp& r : s.region) found = found || r.op == op;
    if (!found) return false;
  }
  return true;
}

std::vector<float> random_input(const ExecPlan& plan, uint32_t seed) {
  std::mt19937 rng(seed);
  return test::random_floats(kBatch * shape_numel(plan.input_shape), rng);
}

// Every parameter of the store set to a random value: weights in [-0.5, 0.5], state
// (running statistics) in [0.5, 1.5] so that a variance stays positive.
void randomise_params(ParamStore& store, uint32_t seed) {
  std::mt19937 rng(seed);
  for (StoredParam& p : store.params()) {
    bool state = !p.spec.trainable;
    store.write(p.value, test::random_floats(static_cast<int64_t>(shape_elements(p.spec.shape)),
                                             rng, state ? 0.5f : -0.5f, state ? 1.5f : 0.5f));
  }
  for (StoredArch& a : store.arch())
    store.write(a.alpha, test::random_floats(static_cast<int64_t>(a.spec.candidates.size()), rng));
}

// The network in float64, node by node, from the registry's references; the parameters
// are the store's. Returns false, with `why`, when some op has no reference.
bool evaluate_reference(const Graph& g, const ParamStore& store, const std::vector<float>& x,
                        std::vector<double>& out, std::string& why) {
  std::vector<std::vector<double>> values(g.nodes.size());
  for (const Node& n : g.nodes) {
    if (is_input(n)) {
      values[n.id] = test::widen(x);
      continue;
    }
    if (!n.op->reference) {
      why = "op `" + n.op->name + "` has no float64 reference (OpDef::reference)";
      return false;
    }
    ReferenceArgs r{kBatch, {}, {}, n.shape, n.attrs, {}};
    for (int in : n.inputs) {
      r.in_shapes.push_back(g.nodes[in].shape);
      r.in.push_back(values[in]);
    }
    for (const ParamDecl& d : node_params(g, n)) {
      // Lowering's names: "<node>.<role>", or "<node>#<id>.<role>" for a repeated name.
      int index = store.find(n.name + "." + d.role);
      int renamed = store.find(n.name + "#" + std::to_string(n.id) + "." + d.role);
      if (renamed >= 0) index = renamed;
      INFO(n.name << "." << d.role);
      REQUIRE(index >= 0);
      r.params.push_back(test::widen(store.read(store.params()[index].value)));
    }
    values[n.id] = n.op->reference(r);
    INFO(n.op->name);
    REQUIRE(values[n.id].size() == static_cast<size_t>(kBatch * shape_numel(n.shape)));
  }
  out = values[g.output];
  return true;
}

void check_forward(const OpNetwork& net, const BackendInfo& backend) {
  PlanOptions o;
  o.batch = kBatch;
  ParamStore store(backend.make());
  Executor ex(compile_plan(net.graph, o), store, 5);
  randomise_params(store, 17);
  std::vector<float> x = random_input(ex.plan(), 23);
  std::vector<float> logits(static_cast<size_t>(kBatch * ex.plan().classes), std::nanf(""));
  ex.run(x.data(), nullptr, kBatch, logits.data());
  std::vector<double> want;
  std::string why;
  bool evaluated = evaluate_reference(net.graph, store, x, want, why);
  INFO(why);
  REQUIRE(evaluated);
  test::check_close(logits, want, 1e-4, "forward against the float64 reference");
}

// d(mean loss)/d(every trainable parameter entry, up to 6 of each) and d/d(alpha) against
// central differences of the loss the same plan computes (float32 summed in double: eps
// 1e-3 keeps truncation small and rounding near 1e-4). Returns the plan's step ops.
std::set<std::string> check_gradients(const OpNetwork& net, const BackendInfo& backend) {
  PlanOptions o;
  o.batch = kBatch;
  o.training = true;
  o.arch_grads = !net.graph.arch.empty();
  ParamStore store(backend.make());
  Executor ex(compile_plan(net.graph, o), store, 5);
  randomise_params(store, 29);
  std::set<std::string> ops;
  for (const Step& s : ex.plan().steps) ops.insert(s.op);

  std::vector<float> x = random_input(ex.plan(), 31);
  std::mt19937 rng(37);
  std::uniform_int_distribution<int> label(0, static_cast<int>(ex.plan().classes) - 1);
  std::vector<int32_t> labels;
  for (int64_t i = 0; i < kBatch; ++i) labels.push_back(label(rng));
  auto loss = [&] { return ex.run(x.data(), labels.data(), kBatch).loss_sum / kBatch; };
  test::check_store_gradients(store, loss, rng, 6);
  return ops;
}

}  // namespace

TEST_CASE("conformance: every registered op on every registered backend", "[conformance]") {
  std::vector<BackendInfo> backends = test::usable_backends();
  REQUIRE_FALSE(backends.empty());
  std::set<std::string> ran;  // ops of every plan the test ran
  for (const OpDef* op : all_ops()) {
    if (!op->example) continue;
    std::vector<OpExample> examples{*op->example};
    examples.insert(examples.end(), op->variants.begin(), op->variants.end());
    for (const OpExample& example : examples)
      for (const BackendInfo& backend : backends) {
        std::string inputs;
        for (const Shape& s : example.inputs) inputs += (inputs.empty() ? "" : ", ") + shape_str(s);
        INFO("op " << op->name << " (" << inputs << ") on backend " << backend.name);
        OpNetwork net;
        std::string why;
        bool built = build_network(*op, example, net, why);
        INFO(why);
        REQUIRE(built);
        if (!op->internal) check_forward(net, backend);
        std::set<std::string> ops = check_gradients(net, backend);
        ran.insert(ops.begin(), ops.end());
        if (op->rematerializable) {
          // The op recomputed in the backward pass (compiler/passes/remat.h): the
          // gradients through the recomputed value against finite differences.
          OpNetwork recomputed;
          REQUIRE(build_network(*op, example, recomputed, why, Tail::Recomputed));
          std::set<std::string> remat_ops = check_gradients(recomputed, backend);
          CHECK(remat_ops.count("recompute") == 1);
          ran.insert(remat_ops.begin(), remat_ops.end());
        }
        if (!is_fusable_elementwise(net.graph, net.graph.nodes[net.op_node])) continue;
        // The same op inside a fused region (compiler/passes/fusion.h).
        OpNetwork fused;
        REQUIRE(build_network(*op, example, fused, why, Tail::Fused));
        CHECK(runs_fused(fused.graph, op->name));
        if (!op->internal) check_forward(fused, backend);
        check_gradients(fused, backend);
      }
  }
  // Coverage: nothing in the registry escapes. An op a user can call needs an example; an
  // internal one must have run (the gradient ops through the gradient checks).
  for (const OpDef* op : all_ops()) {
    if (!op->internal && !op->example)
      FAIL_CHECK("op `" << op->name
                        << "` has no example (OpDef::example), so the conformance "
                           "test cannot cover it");
    if (op->internal && !op->example && ran.count(op->name) == 0)
      FAIL_CHECK("internal op `" << op->name << "` ran in no conformance plan");
  }
}

TEST_CASE("conformance: a MobileNetV3 network with silu and se against the float64 reference",
          "[conformance][examples]") {
  // Every op of a real network at once, at sizes where the kernels take their parallel
  // paths: the inference plan of a sub-network of examples/mobilenet_v3_fmnist.nas.
  Diagnostics diags;
  Compilation c =
      compile_file(std::string(NASC_SOURCE_DIR) + "/examples/mobilenet_v3_fmnist.nas", {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  Selection sel;
  for (const ArchGroup& group : c.supernet->arch) {
    auto se = std::find(group.candidates.begin(), group.candidates.end(), "k5_e3_se");
    REQUIRE(se != group.candidates.end());
    sel.chosen.push_back({static_cast<int>(se - group.candidates.begin())});
  }
  Graph net = specialise(*c.supernet, sel);
  PlanOptions o;
  o.batch = kBatch;
  for (const BackendInfo& backend : test::usable_backends()) {
    INFO("backend " << backend.name);
    CompiledPlan compiled = compile_plan_keeping_graph(net, o);
    ParamStore store(backend.make());
    Executor ex(compiled.plan, store, 5);
    randomise_params(store, 41);
    std::vector<float> x = random_input(ex.plan(), 43);
    std::vector<float> logits(static_cast<size_t>(kBatch * ex.plan().classes), std::nanf(""));
    ex.run(x.data(), nullptr, kBatch, logits.data());
    std::vector<double> want;
    std::string why;
    bool evaluated = evaluate_reference(compiled.exec, store, x, want, why);
    INFO(why);
    REQUIRE(evaluated);
    test::check_close(logits, want, 1e-4, "logits against the float64 reference");
  }
}

TEST_CASE("conformance: the elementwise formulas' derivatives match their values",
          "[conformance]") {
  // The generic CPU kernel and the JIT take f' from the table as written: check it against
  // central differences of f away from the kinks.
  for (const ElementwiseFn& fn : elementwise_fns()) {
    INFO(fn.name);
    for (double x : {-5.3, -2.2, -0.7, 0.4, 1.9, 4.1, 7.5}) {
      const double h = 1e-6, a = 0.2;
      double numeric = (fn.value(x + h, a) - fn.value(x - h, a)) / (2 * h);
      CHECK(fn.derivative(x, a) == Approx(numeric).margin(1e-6).epsilon(1e-5));
    }
    // Every formula has its text for the JIT.
    CHECK(std::string(fn.value_text).size() > 0);
    CHECK(std::string(fn.derivative_text).size() > 0);
  }
}
