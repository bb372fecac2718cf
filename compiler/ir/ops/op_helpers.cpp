#include "compiler/ir/ops/op_helpers.h"

#include <cmath>

namespace nas::ops {
namespace {
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
}  // namespace

// Non-negative sizes only. Saturating at INT64_MAX keeps an oversized result oversized, so it
// is reported by the element cap instead of wrapping into a plausible-looking number.
int64_t sat_mul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kInt64Max / b ? kInt64Max : a * b;
}
int64_t sat_add(int64_t a, int64_t b) {
  return a > kInt64Max - b ? kInt64Max : a + b;
}

// --- Labels --------------------------------------------------------------------------------

std::string window_label(const Node& n, std::initializer_list<const char*> shown) {
  const int64_t k = n.int_attr("kernel");
  std::string label = fmt::format("{} {}x{}", n.op->name, k, k);
  for (std::string_view attr : shown) {
    const int64_t v = n.int_attr(std::string(attr));
    if (v == 1) continue;
    const char* mark = attr == "stride" ? " /" : attr == "dilation" ? " d" : " g";
    label += fmt::format("{}{}", mark, v);
  }
  return label;
}

// --- Attribute specs ----------------------------------------------------------------------

AttrSpec int_spec(std::string name, std::optional<int64_t> def, std::string doc) {
  std::optional<AttrValue> value;
  if (def) value = *def;
  return {std::move(name), AttrType::Int, value, std::move(doc)};
}
AttrSpec float_spec(std::string name, std::optional<double> def, std::string doc) {
  std::optional<AttrValue> value;
  if (def) value = *def;
  return {std::move(name), AttrType::Float, value, std::move(doc)};
}
AttrSpec bool_spec(std::string name, bool def, std::string doc) {
  return {std::move(name), AttrType::Bool, AttrValue(def), std::move(doc)};
}
AttrSpec required_spec(std::string name, AttrType type, std::string doc) {
  return {std::move(name), type, std::nullopt, std::move(doc)};
}

// --- Checks shared by the rules -------------------------------------------------------------
// Messages state the rule first, then the offending values.

bool check_int(InferContext& ctx, const std::string& op, const char* key, int64_t min,
               int64_t max) {
  int64_t v = ctx.i(key);
  if (v < min)
    return ctx.fail(fmt::format("{} attribute `{}` must be >= {}, got {}", op, key, min, v));
  if (v > max)
    return ctx.fail(fmt::format("{} attribute `{}` must be at most {}, got {}", op, key, max, v));
  return true;
}

bool check_ints(InferContext& ctx, const std::string& op, std::initializer_list<IntRule> rules) {
  for (const IntRule& r : rules)
    if (!check_int(ctx, op, r.key, r.min)) return false;
  return true;
}

bool expect_rank(InferContext& ctx, const std::string& op, size_t rank, const char* layout,
                 const char* hint) {
  if (ctx.in[0].size() == rank) return true;
  return ctx.fail(
      fmt::format("{} expects a {}-D input {}, got {}{}", op, rank, layout, ctx.describe(0), hint));
}
bool expect_image(InferContext& ctx, const std::string& op) {
  return expect_rank(ctx, op, 3, "[C,H,W]");
}

// Output length along one axis in floor mode, as PyTorch computes it; -1 when the window
// does not fit in the padded axis. Operands are capped at kMaxElements (see above).
int64_t window_out(int64_t in, const Window& w) {
  int64_t padded = in + 2 * w.pad;
  int64_t span = sat_add(sat_mul(w.dilation, w.kernel - 1), 1);
  if (span > padded) return -1;
  return (padded - span) / w.stride + 1;
}

// Sets out = [channels, H', W'] for a window sliding over input 0.
bool slide(InferContext& ctx, const std::string& op, const Window& w, int64_t channels,
           Shape& out) {
  const Shape& in = ctx.in[0];
  int64_t h = window_out(in[1], w), wd = window_out(in[2], w);
  if (h < 0 || wd < 0) {
    std::string kernel = std::to_string(w.kernel);
    if (w.dilation != 1) kernel += fmt::format(" with dilation {}", w.dilation);
    return ctx.fail(fmt::format(
        "{} kernel {} must fit in the padded input (H+2*pad = {}, W+2*pad = {}), got {}", op,
        kernel, in[1] + 2 * w.pad, in[2] + 2 * w.pad, ctx.describe(0)));
  }
  out = {channels, h, wd};
  return true;
}

bool same_shapes(InferContext& ctx, const std::string& op) {
  for (size_t i = 1; i < ctx.in.size(); ++i)
    if (ctx.in[i] != ctx.in[0])
      return ctx.fail(
          fmt::format("{} needs all inputs to have the same shape: input 0 is {} but "
                      "input {} is {}",
                      op, ctx.describe(0), i, ctx.describe(i)));
  return true;
}

// --- Op skeletons ---------------------------------------------------------------------------

// One input, output shaped like it: activations, identity, dropout, scaling.
OpDef unary(std::string name, std::string doc, std::vector<AttrSpec> attrs) {
  OpDef op;
  op.name = std::move(name);
  op.doc = std::move(doc);
  op.attrs = std::move(attrs);
  op.infer = [](InferContext& ctx, Shape& out) {
    out = ctx.in[0];
    return true;
  };
  return op;
}

// A unary op whose float attribute `key` must satisfy `ok`; `rule` is the text of the rule.
OpDef unary_checked(std::string name, std::string doc, AttrSpec attr, bool (*ok)(double),
                    const char* rule) {
  std::string key = attr.name;
  OpDef op = unary(name, std::move(doc), {std::move(attr)});
  op.infer = [name, key, ok, rule](InferContext& ctx, Shape& out) {
    double v = ctx.f(key);
    if (!ok(v))
      return ctx.fail(
          fmt::format("{} attribute `{}` must be {}, got {}", name, key, rule, attr_str(v)));
    out = ctx.in[0];
    return true;
  };
  return op;
}

// --- Gradient rules and gradient ops --------------------------------------------------------
// Every gradient node names its forward node in `fwd` (kernels read the forward attributes
// and parameters from there) and carries its output shape in `shape` ([] for effect ops),
// so the backward graph prints, parses and shape-checks like any other IR.

Attrs grad_attrs(const GradContext& c, const Shape& shape) {
  return {{"fwd", int64_t{c.fwd.id}}, {"shape", IntList(shape.begin(), shape.end())}};
}

// The gradient of input `i` through an op whose gradient op reads only dy.
int emit_input_grad(GradContext& c, const std::string& op, size_t i) {
  return c.emit(op, {c.dy}, grad_attrs(c, c.input_shapes[i]));
}

// d(loss)/d(input 0) = grad_op(dy, x): activations, batch norm.
void unary_grad_from_input(GradContext& c, const std::string& op) {
  c.input_grads[0] = c.emit(op, {c.dy, c.fwd.inputs[0]}, grad_attrs(c, c.input_shapes[0]));
}

// Layers with weights: the weight gradient always (an effect node reading dy and x), the
// input gradient when the input needs one.
void weighted_layer_grad(GradContext& c, const std::string& prefix) {
  if (c.weight_grads) c.emit(prefix + "_grad_weight", {c.dy, c.fwd.inputs[0]}, grad_attrs(c, {}));
  if (c.needs_input_grad[0]) c.input_grads[0] = emit_input_grad(c, prefix + "_grad_input");
}

// Sums and pass-throughs: every input gets dy itself.
void pass_through_grad(GradContext& c) {
  for (size_t i = 0; i < c.input_grads.size(); ++i)
    if (c.needs_input_grad[i]) c.input_grads[i] = c.dy;
}

// A gradient op: inputs as given, output shape from the `shape` attribute.
OpDef grad_op(std::string name, std::string doc, StepKind step, int min_inputs, int max_inputs,
              std::vector<AttrSpec> extra, bool effect) {
  OpDef op;
  op.step = step;
  op.cse_mergeable = false;
  op.name = std::move(name);
  op.doc = std::move(doc);
  op.internal = true;
  op.effect = effect;
  op.min_inputs = min_inputs;
  op.max_inputs = max_inputs;
  op.attrs = {required_spec("fwd", AttrType::Int, "the forward node this gradient belongs to"),
              AttrSpec{"shape", AttrType::IntList, AttrValue(IntList{}),
                       "output shape ([] for an effect op)"}};
  for (AttrSpec& a : extra) op.attrs.push_back(std::move(a));
  std::string op_name = op.name;
  op.infer = [op_name, effect](InferContext& ctx, Shape& out) {
    if (ctx.i("fwd") < 0) return ctx.fail(op_name + " attribute `fwd` must be a node id");
    const IntList& shape = attr_of<IntList>(ctx.attrs, "shape");
    if (effect != shape.empty())
      return ctx.fail(fmt::format("{} attribute `shape` must be {}, got {}", op_name,
                                  effect ? "[] (it produces no tensor)" : "the gradient's shape",
                                  shape_str(shape)));
    for (int64_t d : shape)
      if (d < 1)
        return ctx.fail(
            fmt::format("{} shape must be positive, got {}", op_name, shape_str(shape)));
    out = shape;
    return true;
  };
  return op;
}

std::vector<double> reference_identity(const ReferenceArgs& r) {
  return r.in[0];
}

OnnxEmitter onnx_unary(std::string op_type, std::vector<OnnxAttr> attrs) {
  return [op_type = std::move(op_type), attrs = std::move(attrs)](
             const Node&, const std::vector<Shape>&, OnnxBuilder& b) {
    b.add(op_type, {b.input(0)}, {b.output()}, attrs);
  };
}

std::vector<int64_t> onnx_pads(int64_t pad) {
  return {pad, pad, pad, pad};
}

}  // namespace nas::ops
