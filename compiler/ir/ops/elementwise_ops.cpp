// Elementwise ops: the activations (their scalar formulas live in support/elementwise_ops.h),
// dropout, mul (by a constant, by a same-shaped tensor, or by a per-channel vector) and add.
#include <cmath>

#include "compiler/ir/ops/op_families.h"
#include "compiler/ir/ops/op_helpers.h"

namespace nas::ops {
namespace {

// An activation: shape-preserving, lowered to one Activation step (a oneDNN algorithm on
// the CPU where there is one, else the generic kernel over `fn`), its gradient read from
// the forward's input x (oneDNN's backward from the source). Whether it maps 0 to 0 and its
// reference come from the formula.
OpDef activation(OpDef op) {
  const ElementwiseFn* fn = find_elementwise(op.name);
  NAS_CHECK(fn != nullptr, "activation `" + op.name + "` has no entry in support/elementwise_ops");
  op.elementwise = fn;
  op.step = StepKind::Activation;
  op.grad = [](GradContext& c) { unary_grad_from_input(c, "activation_grad"); };
  double default_param = 0;
  if (fn->param != nullptr) {
    const AttrSpec* spec = op.find_attr(fn->param);
    NAS_CHECK(spec != nullptr && spec->default_value,
              "activation `" + op.name + "` lacks the attribute its formula reads");
    default_param = std::get<double>(*spec->default_value);
  }
  op.zero_preserving = fn->value(0.0, default_param) == 0.0;
  op.example = OpExample{{{2, 3, 3}}, {}};
  op.reference = [fn](const ReferenceArgs& r) {
    double a = fn->param != nullptr ? float_attr(r.attrs, fn->param) : 0.0;
    std::vector<double> y(r.in[0].size());
    for (size_t i = 0; i < y.size(); ++i) y[i] = fn->value(r.in[0][i], a);
    return y;
  };
  return op;
}

OpDef dropout() {
  OpDef op = unary_checked(
      "dropout", "zeroes each element with probability p during training",
      float_spec("p", 0.5, "drop probability, in [0, 1)"), [](double p) { return p >= 0 && p < 1; },
      "in [0, 1)");
  op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "dropout_grad"); };
  op.step = StepKind::Dropout;
  op.view = ViewKind::Inference;
  op.saved_state = SavedState::Training;  // the drop mask
  op.zero_preserving = true;
  op.cse_mergeable = false;  // random: two dropouts of one tensor draw different masks
  // The latency tables time inference, where dropout is a view.
  op.free_latency = true;
  op.example = OpExample{{{4, 3, 3}}, {{"p", 0.25}}};
  op.reference = reference_identity;
  return op;
}

// y = scale * x, or scale * x * s for a second input s shaped like x or [C] for x [C,H,W]
// (broadcast over H and W: a squeeze-and-excitation gate).
bool infer_mul(InferContext& ctx, Shape& out) {
  double scale = ctx.f("scale");
  if (!std::isfinite(scale))
    return ctx.fail(fmt::format("mul attribute `scale` must be finite, got {}", attr_str(scale)));
  const Shape& x = ctx.in[0];
  if (ctx.in.size() == 2) {
    const Shape& s = ctx.in[1];
    bool per_channel = x.size() == 3 && s == Shape{x[0]};
    if (s != x && !per_channel)
      return ctx.fail(fmt::format(
          "mul needs its second input shaped like the first, or [C] for a [C,H,W] first input "
          "(one factor per channel): input 0 is {} but input 1 is {}",
          ctx.describe(0), ctx.describe(1)));
  }
  out = x;
  return true;
}

// dx = scale * dy * s (a mul again); ds = scale * dy * x, summed over H and W when s is per
// channel (global_avg_pool times H*W): forward ops reused, so mul needs no gradient kernel.
void mul_grad(GradContext& c) {
  const AttrValue scale = c.fwd.attrs.at("scale");
  if (c.fwd.inputs.size() == 1) {
    c.input_grads[0] = c.emit("mul", {c.dy}, {{"scale", scale}});
    return;
  }
  int x = c.fwd.inputs[0], s = c.fwd.inputs[1];
  if (c.needs_input_grad[0]) c.input_grads[0] = c.emit("mul", {c.dy, s}, {{"scale", scale}});
  if (!c.needs_input_grad[1]) return;
  const Shape& xs = c.input_shapes[0];
  if (c.input_shapes[1] == xs) {
    c.input_grads[1] = c.emit("mul", {c.dy, x}, {{"scale", scale}});
    return;
  }
  int product = c.emit("mul", {c.dy, x}, {{"scale", 1.0}});
  int mean = c.emit("global_avg_pool", {product}, {});
  double area = static_cast<double>(xs[1] * xs[2]);
  c.input_grads[1] = c.emit("mul", {mean}, {{"scale", std::get<double>(scale) * area}});
}

OpDef mul() {
  OpDef op;
  op.name = "mul";
  op.doc = "multiplies by a constant, and by a second tensor of the same shape or per channel";
  op.max_inputs = 2;
  op.attrs = {float_spec("scale", 1.0, "a constant factor")};
  op.infer = infer_mul;
  op.grad = mul_grad;
  op.step = StepKind::Scale;
  op.zero_preserving = true;
  op.example = OpExample{{{3, 4, 4}, {3}}, {{"scale", 0.5}}};
  op.reference = [](const ReferenceArgs& r) {
    double scale = float_attr(r.attrs, "scale");
    std::vector<double> y = r.in[0];
    int64_t size = static_cast<int64_t>(y.size());
    // The factor index of element i: i itself, or its (sample, channel) for a [C] factor.
    int64_t inner = r.in.size() == 2 ? size / static_cast<int64_t>(r.in[1].size()) : 1;
    for (int64_t i = 0; i < size; ++i)
      y[i] *= scale * (r.in.size() == 2 ? r.in[1][i / inner] : 1.0);
    return y;
  };
  return op;
}

OpDef add() {
  OpDef op;
  op.name = "add";
  op.doc = "elementwise sum of inputs of one shape";
  op.max_inputs = -1;
  op.infer = [](InferContext& ctx, Shape& out) {
    if (!same_shapes(ctx, "add")) return false;
    out = ctx.in[0];
    return true;
  };
  op.grad = pass_through_grad;
  op.step = StepKind::Add;
  op.zero_preserving = true;
  op.sums_inputs = true;
  op.example = OpExample{{{2, 3, 3}, {2, 3, 3}, {2, 3, 3}}, {}};
  op.reference = [](const ReferenceArgs& r) {
    std::vector<double> y = r.in[0];
    for (size_t k = 1; k < r.in.size(); ++k)
      for (size_t i = 0; i < y.size(); ++i) y[i] += r.in[k][i];
    return y;
  };
  return op;
}

}  // namespace

std::vector<OpDef> elementwise_ops() {
  std::vector<OpDef> ops;
  ops.push_back(activation(unary("relu", "max(x, 0)")));
  ops.push_back(activation(unary("relu6", "min(max(x, 0), 6)")));
  ops.push_back(activation(unary("sigmoid", "1 / (1 + exp(-x))")));
  ops.push_back(activation(unary("hard_swish", "x * relu6(x + 3) / 6")));
  ops.push_back(activation(unary("hard_sigmoid", "relu6(x + 3) / 6")));
  ops.push_back(activation(unary_checked(
      "leaky_relu", "x if x > 0 else slope * x",
      float_spec("slope", 0.01, "slope for negative inputs"),
      [](double v) { return std::isfinite(v); }, "finite")));
  ops.push_back(activation(unary("silu", "x * sigmoid(x) (swish)")));
  ops.push_back(dropout());
  ops.push_back(mul());
  ops.push_back(add());
  return ops;
}

}  // namespace nas::ops
