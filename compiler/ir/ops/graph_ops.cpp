// The ops that give a graph its structure: the input, choices (mixed ops and joins), zero
// (which cuts the graph) and identity.
#include <unordered_set>

#include "compiler/ir/ops/op_families.h"
#include "compiler/ir/ops/op_helpers.h"

namespace nas::ops {
namespace {

OpDef input() {
  OpDef op;
  op.name = "input";
  op.doc = "the network input, one sample of the given shape";
  op.internal = true;
  op.min_inputs = op.max_inputs = 0;
  op.attrs = {required_spec("shape", AttrType::IntList, "per-sample shape, e.g. [1,28,28]")};
  op.infer = [](InferContext& ctx, Shape& out) {
    const IntList& shape = attr_of<IntList>(ctx.attrs, "shape");
    if (shape.empty()) return ctx.fail("input shape must have at least one dimension, got []");
    for (int64_t d : shape)
      if (d < 1)
        return ctx.fail(fmt::format("input dimensions must be >= 1, got {}", shape_str(shape)));
    out = shape;
    return true;
  };
  op.step = StepKind::Input;
  op.label = [](const Node& n) { return "input " + n.name; };
  op.cse_mergeable = false;
  op.free_latency = true;
  return op;
}

OpDef choice() {
  // A mixed op (k = 1) or a join (k of n inputs). The candidates' names come from the
  // source so that messages and arch.json speak the user's words.
  OpDef op;
  op.name = "choice";
  op.doc = "selects k of its inputs, weighted by the architecture parameter `key`";
  op.internal = true;
  op.max_inputs = -1;
  op.attrs = {required_spec("key", AttrType::String, "architecture parameter shared by key"),
              required_spec("candidates", AttrType::StringList, "one name per input"),
              int_spec("k", 1, "how many inputs are chosen")};
  op.infer = [](InferContext& ctx, Shape& out) {
    const std::string& key = ctx.s("key");
    const StringList& names = attr_of<StringList>(ctx.attrs, "candidates");
    size_t n = ctx.in.size();
    if (names.size() != n)
      return ctx.fail(
          fmt::format("choice `{}` needs one candidate name per input: {} names "
                      "for {} inputs",
                      key, names.size(), n));
    std::unordered_set<std::string_view> seen;  // a set: generated choices can be large
    for (const std::string& name : names)
      if (!seen.insert(name).second)
        return ctx.fail(fmt::format(
            "choice `{}` candidate names must be distinct: `{}` appears twice", key, name));
    int64_t k = ctx.i("k");
    if (k < 1 || k > static_cast<int64_t>(n))
      return ctx.fail(
          fmt::format("choice `{}` attribute `k` must be between 1 and the number "
                      "of candidates ({}), got {}",
                      key, n, k));
    for (size_t i = 1; i < n; ++i)
      if (ctx.in[i] != ctx.in[0])
        return ctx.fail(
            fmt::format("choice `{}` candidates must produce the same shape: `{}` "
                        "gives {} but `{}` gives {}",
                        key, names[0], ctx.describe(0), names[i], ctx.describe(i)));
    out = ctx.in[0];
    return true;
  };
  // Full mode: y = sum_i w_i x_i with w = softmax(alpha); a sampled or fixed choice is the
  // same with one-hot (k-hot) weights. dx_i = w_i dy; alpha's gradient when asked for.
  op.grad = [](GradContext& c) {
    for (size_t i = 0; i < c.input_grads.size(); ++i)
      if (c.needs_input_grad[i]) {
        Attrs a = grad_attrs(c, c.input_shapes[i]);
        a["index"] = static_cast<int64_t>(i);
        c.input_grads[i] = c.emit("choice_grad_input", {c.dy}, a);
      }
    if (c.arch_grads) {
      std::vector<int> inputs{c.dy};
      inputs.insert(inputs.end(), c.fwd.inputs.begin(), c.fwd.inputs.end());
      c.emit("choice_grad_arch", inputs, grad_attrs(c, {}));
    }
  };
  op.step = StepKind::Choice;
  op.label = [](const Node& n) {
    const int64_t k = n.int_attr("k");
    if (k == 1) return "choice " + n.string_attr("key");
    return fmt::format("join {} (k={})", n.string_attr("key"), k);
  };
  op.cse_mergeable = false;
  // A mixed op of two candidates; the conformance test gives it its architecture group.
  op.example = OpExample{
      {{3, 4, 4}, {3, 4, 4}},
      {{"key", std::string("op")}, {"candidates", StringList{"a", "b"}}, {"k", int64_t{1}}}};
  return op;
}

OpDef zero() {
  // Zero cuts its input: a choice that selects it prunes everything only it consumed.
  // The stride keeps it shape-compatible with strided candidates (x[:,:,::s,::s] * 0).
  OpDef op;
  op.name = "zero";
  op.doc = "zeros shaped like the (strided) input; cuts the graph";
  // After pruning a Zero has no input left; it then carries its own `shape`.
  op.min_inputs = 0;
  op.attrs = {int_spec("stride", 1, "spatial step for [C,H,W] inputs"),
              AttrSpec{"shape", AttrType::IntList, AttrValue(IntList{}),
                       "explicit shape, for a Zero whose input was pruned away"}};
  op.infer = [](InferContext& ctx, Shape& out) {
    if (!check_int(ctx, "zero", "stride", 1)) return false;
    const IntList& explicit_shape = attr_of<IntList>(ctx.attrs, "shape");
    if (ctx.in.empty()) {
      if (explicit_shape.empty())
        return ctx.fail("zero expects a tensor input (or, after pruning, a `shape`)");
      for (int64_t d : explicit_shape)
        if (d < 1 || d > kMaxElementsPerSample)
          return ctx.fail(
              fmt::format("zero shape dimensions must be >= 1, got {}", shape_str(explicit_shape)));
      out = explicit_shape;
      return true;
    }
    const Shape& in = ctx.in[0];
    int64_t s = ctx.i("stride");
    if (in.size() == 3) {
      out = {in[0], (in[1] + s - 1) / s, (in[2] + s - 1) / s};
    } else if (s != 1) {
      return ctx.fail(fmt::format("zero with stride {} expects a 3-D input [C,H,W], got {}", s,
                                  ctx.describe(0)));
    } else {
      out = in;
    }
    if (!explicit_shape.empty() && explicit_shape != out)
      return ctx.fail(fmt::format("zero `shape` {} disagrees with its input: {}",
                                  shape_str(explicit_shape), ctx.describe(0)));
    return true;
  };
  op.step = StepKind::Zero;
  op.zero_preserving = true;
  op.example = OpExample{{{3, 5, 5}}, {{"stride", int64_t{2}}}};
  op.reference = [](const ReferenceArgs& r) {
    return std::vector<double>(static_cast<size_t>(r.batch * shape_numel(r.out_shape)), 0.0);
  };
  // Float zeros of shape [batch, out...]: ConstantOfShape's default value is a float 0.
  op.onnx = [](const Node& n, const std::vector<Shape>&, OnnxBuilder& b) {
    const std::string dims =
        b.ints("dims", {static_cast<int64_t>(n.shape.size())}, std::vector<int64_t>(n.shape));
    const std::string shape = b.temp("shape");
    b.add("Concat", {b.batch_size(), dims}, {shape}, {{"axis", int64_t{0}}});
    b.add("ConstantOfShape", {shape}, {b.output()});
  };
  return op;
}

OpDef identity() {
  OpDef op = unary("identity", "the input unchanged");
  op.grad = pass_through_grad;
  op.step = StepKind::View;
  op.view = ViewKind::Always;
  op.zero_preserving = true;
  op.free_latency = true;
  op.example = OpExample{{{6}}, {}};
  op.reference = reference_identity;
  op.onnx = onnx_unary("Identity");
  return op;
}

}  // namespace

std::vector<OpDef> graph_ops() {
  return {input(), choice(), zero(), identity()};
}

}  // namespace nas::ops
