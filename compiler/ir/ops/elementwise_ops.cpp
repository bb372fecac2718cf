// Elementwise ops: the activations (their scalar formulas live in support/elementwise_ops.h),
// dropout, drop_path, mul (by a constant, by a same-shaped tensor, or by one factor per
// channel) and add.
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
  op.rematerializable = true;
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

OpDef with_onnx(OpDef op, OnnxEmitter emit) {
  op.onnx = std::move(emit);
  return op;
}

// relu6 is Clip to [0, 6]; ONNX takes the bounds as scalar inputs.
void relu6_onnx(const Node&, const std::vector<Shape>&, OnnxBuilder& b) {
  b.add("Clip", {b.input(0), b.floats("min", {}, {0.0f}), b.floats("max", {}, {6.0f})},
        {b.output()});
}

// silu(x) = x * sigmoid(x): ONNX 17 has no operator of its own for it.
void silu_onnx(const Node&, const std::vector<Shape>&, OnnxBuilder& b) {
  const std::string gate = b.temp("sigmoid");
  b.add("Sigmoid", {b.input(0)}, {gate});
  b.add("Mul", {b.input(0), gate}, {b.output()});
}

void leaky_relu_onnx(const Node& n, const std::vector<Shape>&, OnnxBuilder& b) {
  b.add("LeakyRelu", {b.input(0)}, {b.output()}, {{"alpha", n.float_attr("slope")}});
}

OpDef dropout() {
  OpDef op = unary_checked(
      "dropout", "zeroes each element with probability p during training",
      float_spec("p", 0.5, "drop probability, in [0, 1)"), [](double p) { return p >= 0 && p < 1; },
      "in [0, 1)");
  op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "dropout_grad"); };
  op.step = StepKind::Dropout;
  op.view = ViewKind::Inference;
  // No saved mask: the backward pass draws it again (support/rng.h, dropout_keeps).
  op.zero_preserving = true;
  op.cse_mergeable = false;  // random: two dropouts of one tensor draw different masks
  // The latency tables time inference, where dropout is a view.
  op.free_latency = true;
  op.example = OpExample{{{4, 3, 3}}, {{"p", 0.25}}};
  op.reference = reference_identity;
  op.onnx = onnx_unary("Identity");  // inference
  return op;
}

// DARTS' drop path: each sample of the batch is kept whole with probability 1 - p (and
// scaled by 1 / (1 - p)) or zeroed whole, during training; the identity at inference. p is
// the attribute, or with the default -1 the run's scheduled probability
// (RunState::drop_path_prob: nasc train's drop_path_prob schedule, 0 everywhere else), so
// one cell serves a search, where it does nothing, and an evaluation network.
OpDef drop_path() {
  OpDef op = unary_checked(
      "drop_path", "zeroes whole samples with probability p during training (DARTS' drop path)",
      float_spec("p", -1.0,
                 "drop probability in [0, 1), or -1: the run's (train config drop_path_prob)"),
      [](double p) { return p == -1.0 || (p >= 0 && p < 1); }, "in [0, 1), or -1 (the run's)");
  op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "drop_path_grad"); };
  op.step = StepKind::DropPath;
  op.view = ViewKind::Inference;
  op.saved_state = SavedState::Training;  // which samples were kept
  op.zero_preserving = true;
  op.cse_mergeable = false;  // random: two drop paths of one tensor draw different samples
  op.free_latency = true;    // a view at inference, which the latency tables time
  op.example = OpExample{{{4, 3, 3}}, {{"p", 0.4}}};
  op.variants = {OpExample{{{2, 3, 3}}, {}}};  // the run's probability (0 in the test)
  op.reference = reference_identity;
  op.onnx = onnx_unary("Identity");  // inference
  return op;
}

// One factor per channel of a [C,H,W] tensor x: s is [C] or [C,1,1] (broadcast over H
// and W: a squeeze-and-excitation gate).
bool per_channel_factor(const Shape& x, const Shape& s) {
  return x.size() == 3 && s != x && (s == Shape{x[0]} || s == Shape{x[0], 1, 1});
}

// Which input of a two-input mul is the factor s: input 1 for x * s and for two inputs of
// one shape, input 0 for s * x; -1 when the shapes do not fit.
int mul_factor_input(const Shape& in0, const Shape& in1) {
  if (in0 == in1 || per_channel_factor(in0, in1)) return 1;
  if (per_channel_factor(in1, in0)) return 0;
  return -1;
}

// y = scale * x, or scale * x * s for a second tensor s shaped like x or one factor per
// channel, in either order.
bool infer_mul(InferContext& ctx, Shape& out) {
  double scale = ctx.f("scale");
  if (!std::isfinite(scale))
    return ctx.fail(fmt::format("mul attribute `scale` must be finite, got {}", attr_str(scale)));
  if (ctx.in.size() == 1) {
    out = ctx.in[0];
    return true;
  }
  int factor = mul_factor_input(ctx.in[0], ctx.in[1]);
  if (factor < 0)
    return ctx.fail(fmt::format(
        "mul multiplies two tensors of the same shape, or a [C,H,W] tensor by one factor per "
        "channel ([C] or [C,1,1], in either order): input 0 is {} but input 1 is {}",
        ctx.describe(0), ctx.describe(1)));
  out = ctx.in[1 - factor];
  return true;
}

// With x the tensor and s the factor (mul_factor_input): dx = scale * dy * s (a mul
// again); ds = scale * dy * x, summed over H and W when s is per channel (global_avg_pool
// times H*W, reshaped to [C,1,1] when s is): forward ops reused, so mul needs no gradient
// kernel.
void mul_grad(GradContext& c) {
  const AttrValue scale = c.fwd.attrs.at("scale");
  if (c.fwd.inputs.size() == 1) {
    c.input_grads[0] = c.emit("mul", {c.dy}, {{"scale", scale}});
    return;
  }
  const size_t si = static_cast<size_t>(mul_factor_input(c.input_shapes[0], c.input_shapes[1]));
  const size_t xi = 1 - si;
  const int x = c.fwd.inputs[xi], s = c.fwd.inputs[si];
  const Shape& xs = c.input_shapes[xi];
  const Shape& ss = c.input_shapes[si];
  if (c.needs_input_grad[xi]) c.input_grads[xi] = c.emit("mul", {c.dy, s}, {{"scale", scale}});
  if (!c.needs_input_grad[si]) return;
  if (ss == xs) {
    c.input_grads[si] = c.emit("mul", {c.dy, x}, {{"scale", scale}});
    return;
  }
  int product = c.emit("mul", {c.dy, x}, {{"scale", 1.0}});
  int mean = c.emit("global_avg_pool", {product}, {});
  double area = static_cast<double>(xs[1] * xs[2]);
  int ds = c.emit("mul", {mean}, {{"scale", std::get<double>(scale) * area}});
  if (ss.size() == 3) ds = c.emit("unflatten", {ds}, grad_attrs(c, ss));  // [C] -> [C,1,1]
  c.input_grads[si] = ds;
}

// ONNX's Mul broadcasts from the last axis, so a per-channel factor [N,C] of an image
// [N,C,H,W] is made [N,C,1,1] first; the constant scale is a further Mul unless it is 1.
void mul_onnx(const Node& n, const std::vector<Shape>& in, OnnxBuilder& b) {
  const float scale = static_cast<float>(n.float_attr("scale"));
  std::string product = b.input(0);
  if (in.size() == 2) {
    const size_t si = static_cast<size_t>(mul_factor_input(in[0], in[1]));
    std::string factor = b.input(si);
    if (in[si].size() == 1 && in[1 - si].size() == 3) {
      const std::string unsqueezed = b.temp("factor");
      b.add("Unsqueeze", {factor, b.ints("axes", {2}, {2, 3})}, {unsqueezed});
      factor = unsqueezed;
    }
    product = scale == 1.0f ? b.output() : b.temp("product");
    b.add("Mul", {b.input(1 - si), factor}, {product});
    if (scale == 1.0f) return;
  }
  b.add("Mul", {product, b.floats("scale", {}, {scale})}, {b.output()});
}

OpDef mul() {
  OpDef op;
  op.name = "mul";
  op.doc =
      "multiplies by a constant, and by a second tensor of the same shape or one factor per "
      "channel ([C] or [C,1,1] for [C,H,W], in either order)";
  op.max_inputs = 2;
  op.attrs = {float_spec("scale", 1.0, "a constant factor")};
  op.infer = infer_mul;
  op.grad = mul_grad;
  op.step = StepKind::Scale;
  op.zero_preserving = true;
  op.example = OpExample{{{3, 4, 4}, {3}}, {{"scale", 0.5}}};
  op.variants = {OpExample{{{3}, {3, 4, 4}}, {{"scale", 2.0}}},  // g * x
                 OpExample{{{3, 4, 4}, {3, 1, 1}}, {}},
                 OpExample{{{3, 1, 1}, {3, 4, 4}}, {{"scale", -1.5}}},
                 OpExample{{{2, 3, 3}, {2, 3, 3}}, {}}};
  op.reference = [](const ReferenceArgs& r) {
    double scale = float_attr(r.attrs, "scale");
    if (r.in.size() == 1) {
      std::vector<double> y = r.in[0];
      for (double& v : y) v *= scale;
      return y;
    }
    const size_t si = static_cast<size_t>(mul_factor_input(r.in_shapes[0], r.in_shapes[1]));
    const std::vector<double>& s = r.in[si];
    std::vector<double> y = r.in[1 - si];
    // The factor index of element i: i itself, or its (sample, channel) for a per-channel s.
    const size_t inner = y.size() / s.size();
    for (size_t i = 0; i < y.size(); ++i) y[i] *= scale * s[i / inner];
    return y;
  };
  op.onnx = mul_onnx;
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
  op.onnx = [](const Node& n, const std::vector<Shape>&, OnnxBuilder& b) {
    std::vector<std::string> inputs;
    for (size_t i = 0; i < n.inputs.size(); ++i) inputs.push_back(b.input(i));
    b.add(inputs.size() == 2 ? "Add" : "Sum", inputs, {b.output()});
  };
  return op;
}

}  // namespace

std::vector<OpDef> elementwise_ops() {
  std::vector<OpDef> ops;
  ops.push_back(with_onnx(activation(unary("relu", "max(x, 0)")), onnx_unary("Relu")));
  ops.push_back(with_onnx(activation(unary("relu6", "min(max(x, 0), 6)")), relu6_onnx));
  ops.push_back(
      with_onnx(activation(unary("sigmoid", "1 / (1 + exp(-x))")), onnx_unary("Sigmoid")));
  ops.push_back(
      with_onnx(activation(unary("hard_swish", "x * relu6(x + 3) / 6")), onnx_unary("HardSwish")));
  ops.push_back(with_onnx(activation(unary("hard_sigmoid", "relu6(x + 3) / 6")),
                          onnx_unary("HardSigmoid", {{"alpha", 1.0 / 6}, {"beta", 0.5}})));
  ops.push_back(with_onnx(activation(unary_checked(
                              "leaky_relu", "x if x > 0 else slope * x",
                              float_spec("slope", 0.01, "slope for negative inputs"),
                              [](double v) { return std::isfinite(v); }, "finite")),
                          leaky_relu_onnx));
  ops.push_back(with_onnx(activation(unary("silu", "x * sigmoid(x) (swish)")), silu_onnx));
  ops.push_back(dropout());
  ops.push_back(drop_path());
  ops.push_back(mul());
  ops.push_back(add());
  return ops;
}

}  // namespace nas::ops
