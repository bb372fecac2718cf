// Layers with parameters: convolutions, linear, batch normalisation. Their parameter rules
// are the one source of the plan's parameter tensors (lowering) and of the cost model's
// parameter counts.
#include <cmath>

#include "compiler/ir/ops/op_families.h"
#include "compiler/ir/ops/op_helpers.h"

namespace nas::ops {
namespace {

// A convolution's geometry from the input shape and the (dwconv: normalised) attributes.
struct ConvGeometry {
  int64_t c_in, c_out, groups, kernel, stride, pad, dilation;
  bool bias;
};

ConvGeometry conv_geometry(const Shape& in, const Attrs& a, bool depthwise) {
  ConvGeometry g{};
  g.c_in = in[0];
  g.groups = depthwise ? in[0] : int_attr(a, "groups");
  g.c_out = depthwise ? sat_mul(in[0], int_attr(a, "multiplier")) : int_attr(a, "out");
  g.kernel = int_attr(a, "kernel");
  g.stride = int_attr(a, "stride");
  g.pad = int_attr(a, "pad");
  g.dilation = int_attr(a, "dilation");
  g.bias = bool_attr(a, "bias");
  return g;
}

// Weights [out, in/groups, k, k] (and a bias [out]), PyTorch's initialisation.
std::vector<ParamDecl> conv_params(const ConvGeometry& g) {
  int64_t fan_in = sat_mul(g.c_in / g.groups, sat_mul(g.kernel, g.kernel));
  std::vector<ParamDecl> p{{"weight",
                            StepParamSlot::Weight,
                            {g.c_out, g.c_in / g.groups, g.kernel, g.kernel},
                            ParamInit::KaimingUniform,
                            true,
                            fan_in}};
  if (g.bias)
    p.push_back({"bias", StepParamSlot::Bias, {g.c_out}, ParamInit::KaimingUniform, true, fan_in});
  return p;
}

// Weights applied at every output position.
OpCost conv_macs(const ConvGeometry& g, const Shape& out) {
  int64_t weights = sat_mul(sat_mul(g.c_out, g.c_in / g.groups), sat_mul(g.kernel, g.kernel));
  return {0, sat_mul(weights, sat_mul(out[1], out[2]))};
}

// Direct convolution from the definition, zero padding outside the image.
std::vector<double> conv_reference(const ReferenceArgs& r, const ConvGeometry& g) {
  const Shape& in = r.in_shapes[0];
  const int64_t h = in[1], w = in[2], oh = r.out_shape[1], ow = r.out_shape[2];
  const int64_t cin_g = g.c_in / g.groups, cout_g = g.c_out / g.groups;
  const std::vector<double>& x = r.in[0];
  const std::vector<double>& wt = r.params[0];
  std::vector<double> y(static_cast<size_t>(r.batch * g.c_out * oh * ow), 0.0);
  for (int64_t n = 0; n < r.batch; ++n)
    for (int64_t co = 0; co < g.c_out; ++co)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double sum = g.bias ? r.params[1][co] : 0.0;
          int64_t group = co / cout_g;
          for (int64_t ci = 0; ci < cin_g; ++ci)
            for (int64_t ki = 0; ki < g.kernel; ++ki)
              for (int64_t kj = 0; kj < g.kernel; ++kj) {
                int64_t hi = i * g.stride - g.pad + ki * g.dilation;
                int64_t wj = j * g.stride - g.pad + kj * g.dilation;
                if (hi < 0 || hi >= h || wj < 0 || wj >= w) continue;
                int64_t c = group * cin_g + ci;
                sum += x[((n * g.c_in + c) * h + hi) * w + wj] *
                       wt[((co * cin_g + ci) * g.kernel + ki) * g.kernel + kj];
              }
          y[((n * g.c_out + co) * oh + i) * ow + j] = sum;
        }
  return y;
}

// Conv with ONNX's explicit geometry; a depthwise conv is the grouped conv it is.
void conv_onnx(const ConvGeometry& g, OnnxBuilder& b) {
  std::vector<std::string> inputs{b.input(0), b.param("weight")};
  if (g.bias) inputs.push_back(b.param("bias"));
  b.add("Conv", inputs, {b.output()},
        {{"kernel_shape", std::vector<int64_t>{g.kernel, g.kernel}},
         {"strides", std::vector<int64_t>{g.stride, g.stride}},
         {"pads", onnx_pads(g.pad)},
         {"dilations", std::vector<int64_t>{g.dilation, g.dilation}},
         {"group", g.groups}});
}

OpDef conv() {
  OpDef op;
  op.name = "conv";
  op.doc = "2-D convolution with a square kernel";
  op.attrs = {int_spec("out", {}, "output channels"),
              int_spec("kernel", {}, "kernel size"),
              int_spec("stride", 1, "step"),
              int_spec("pad", 0, "zero padding on each side"),
              int_spec("dilation", 1, "spacing between kernel taps"),
              int_spec("groups", 1, "channel groups; must divide in and out channels"),
              bool_spec("bias", false, "add a learned bias per output channel")};
  op.infer = [](InferContext& ctx, Shape& out) {
    if (!expect_image(ctx, "conv") ||
        !check_ints(
            ctx, "conv",
            {{"out", 1}, {"kernel", 1}, {"stride", 1}, {"pad", 0}, {"dilation", 1}, {"groups", 1}}))
      return false;
    int64_t channels = ctx.in[0][0], outc = ctx.i("out"), groups = ctx.i("groups");
    if (channels % groups != 0)
      return ctx.fail(fmt::format("conv groups={} must divide the {} input channels of {}", groups,
                                  channels, ctx.describe(0)));
    if (outc % groups != 0)
      return ctx.fail(
          fmt::format("conv groups={} must divide the output channels, got out={}", groups, outc));
    Window w{ctx.i("kernel"), ctx.i("stride"), ctx.i("pad"), ctx.i("dilation")};
    return slide(ctx, "conv", w, outc, out);
  };
  op.cost = [](const std::vector<Shape>& in, const Shape& out, const Attrs& a) {
    return conv_macs(conv_geometry(in[0], a, false), out);
  };
  op.params = [](const std::vector<Shape>& in, const Shape&, const Attrs& a) {
    return conv_params(conv_geometry(in[0], a, false));
  };
  op.grad = [](GradContext& c) { weighted_layer_grad(c, "conv"); };
  op.step = StepKind::Conv;
  op.label = [](const Node& n) { return window_label(n, {"stride", "dilation", "groups"}); };
  // On 1/k of the channels: 1/k of the outputs; a depthwise conv (groups = in channels)
  // stays depthwise, other groupings keep their count.
  op.narrow_channels = [](Attrs& a, const std::vector<Shape>& in, int64_t k) -> std::string {
    const int64_t out = int_attr(a, "out"), groups = int_attr(a, "groups");
    if (out % k != 0) return fmt::format("its out={} is not a multiple of {}", out, k);
    a["out"] = out / k;
    if (groups > 1 && groups == in[0][0]) a["groups"] = groups / k;
    return "";
  };
  op.cse_mergeable = false;
  op.example = OpExample{{{4, 6, 6}},
                         {{"out", int64_t{6}},
                          {"kernel", int64_t{3}},
                          {"stride", int64_t{2}},
                          {"pad", int64_t{1}},
                          {"groups", int64_t{2}},
                          {"bias", true}}};
  op.reference = [](const ReferenceArgs& r) {
    return conv_reference(r, conv_geometry(r.in_shapes[0], r.attrs, false));
  };
  op.onnx = [](const Node& n, const std::vector<Shape>& in, OnnxBuilder& b) {
    conv_onnx(conv_geometry(in[0], n.attrs, false), b);
  };
  return op;
}

OpDef dwconv() {
  OpDef op;
  op.name = "dwconv";
  op.doc = "depthwise 2-D convolution: groups = input channels";
  op.attrs = {int_spec("kernel", {}, "kernel size"),
              int_spec("stride", 1, "step"),
              int_spec("pad", 0, "zero padding on each side"),
              int_spec("dilation", 1, "spacing between kernel taps"),
              int_spec("multiplier", 1, "output channels per input channel"),
              bool_spec("bias", false, "add a learned bias per output channel")};
  op.infer = [](InferContext& ctx, Shape& out) {
    if (!expect_image(ctx, "dwconv") ||
        !check_ints(ctx, "dwconv",
                    {{"kernel", 1}, {"stride", 1}, {"pad", 0}, {"dilation", 1}, {"multiplier", 1}}))
      return false;
    Window w{ctx.i("kernel"), ctx.i("stride"), ctx.i("pad"), ctx.i("dilation")};
    return slide(ctx, "dwconv", w, sat_mul(ctx.in[0][0], ctx.i("multiplier")), out);
  };
  op.cost = [](const std::vector<Shape>& in, const Shape& out, const Attrs& a) {
    return conv_macs(conv_geometry(in[0], a, true), out);
  };
  op.params = [](const std::vector<Shape>& in, const Shape&, const Attrs& a) {
    return conv_params(conv_geometry(in[0], a, true));
  };
  op.grad = [](GradContext& c) { weighted_layer_grad(c, "conv"); };
  // It runs as the grouped convolution it is.
  op.step = StepKind::Conv;
  // k*k multiply-adds per output value: recomputing it in the backward pass costs less than
  // keeping its output for the pointwise convolution's weight gradient.
  op.rematerializable = true;
  op.label = [](const Node& n) { return window_label(n, {"stride", "dilation"}); };
  op.kernel_attrs = [](const std::vector<Shape>& in, const Attrs& a,
                       std::map<std::string, int64_t>& ints) {
    ConvGeometry g = conv_geometry(in[0], a, true);
    ints["groups"] = g.groups;
    ints["out"] = g.c_out;
  };
  op.cse_mergeable = false;
  op.example = OpExample{{{3, 7, 7}},
                         {{"kernel", int64_t{3}},
                          {"pad", int64_t{2}},
                          {"dilation", int64_t{2}},
                          {"multiplier", int64_t{2}}}};
  op.reference = [](const ReferenceArgs& r) {
    return conv_reference(r, conv_geometry(r.in_shapes[0], r.attrs, true));
  };
  op.onnx = [](const Node& n, const std::vector<Shape>& in, OnnxBuilder& b) {
    conv_onnx(conv_geometry(in[0], n.attrs, true), b);
  };
  return op;
}

OpDef linear() {
  OpDef op;
  op.name = "linear";
  op.doc = "fully connected layer on a vector";
  op.attrs = {int_spec("out", {}, "output features"),
              bool_spec("bias", true, "add a learned bias per output feature")};
  op.infer = [](InferContext& ctx, Shape& out) {
    if (!expect_rank(ctx, "linear", 1, "[F]", "; use `flatten` or `global_avg_pool` first") ||
        !check_int(ctx, "linear", "out", 1))
      return false;
    out = {ctx.i("out")};
    return true;
  };
  op.cost = [](const std::vector<Shape>& in, const Shape& out, const Attrs&) {
    return OpCost{0, sat_mul(in[0][0], out[0])};
  };
  op.params = [](const std::vector<Shape>& in, const Shape& out, const Attrs& a) {
    int64_t features = shape_numel(in[0]);
    std::vector<ParamDecl> p{{"weight",
                              StepParamSlot::Weight,
                              {out[0], features},
                              ParamInit::KaimingUniform,
                              true,
                              features}};
    if (bool_attr(a, "bias"))
      p.push_back(
          {"bias", StepParamSlot::Bias, {out[0]}, ParamInit::KaimingUniform, true, features});
    return p;
  };
  op.grad = [](GradContext& c) { weighted_layer_grad(c, "linear"); };
  op.step = StepKind::Linear;
  op.cse_mergeable = false;
  op.example = OpExample{{{10}}, {{"out", int64_t{5}}}};
  op.reference = [](const ReferenceArgs& r) {
    int64_t in = r.in_shapes[0][0], out = r.out_shape[0];
    bool bias = bool_attr(r.attrs, "bias");
    std::vector<double> y(static_cast<size_t>(r.batch * out));
    for (int64_t n = 0; n < r.batch; ++n)
      for (int64_t o = 0; o < out; ++o) {
        double sum = bias ? r.params[1][o] : 0.0;
        for (int64_t i = 0; i < in; ++i) sum += r.in[0][n * in + i] * r.params[0][o * in + i];
        y[n * out + o] = sum;
      }
    return y;
  };
  // y = x W^T + b on [N, F] rows.
  op.onnx = [](const Node& n, const std::vector<Shape>&, OnnxBuilder& b) {
    std::vector<std::string> inputs{b.input(0), b.param("weight")};
    if (n.bool_attr("bias")) inputs.push_back(b.param("bias"));
    b.add("Gemm", inputs, {b.output()}, {{"transB", int64_t{1}}});
  };
  return op;
}

OpDef batchnorm() {
  OpDef op;
  op.name = "batchnorm";
  op.doc = "batch normalisation over the first (channel) axis";
  op.attrs = {bool_spec("affine", true, "learn a scale and shift per channel"),
              float_spec("eps", 1e-5, "added to the variance, > 0"),
              float_spec("momentum", 0.1, "running statistics update rate, in [0, 1]")};
  op.infer = [](InferContext& ctx, Shape& out) {
    if (ctx.in[0].empty())
      return ctx.fail(fmt::format(
          "batchnorm expects an input with at least 1 dimension (channels first), got {}",
          ctx.describe(0)));
    double eps = ctx.f("eps"), momentum = ctx.f("momentum");
    if (!(eps > 0) || !std::isfinite(eps))
      return ctx.fail(fmt::format("batchnorm attribute `eps` must be > 0, got {}", attr_str(eps)));
    if (!(momentum >= 0 && momentum <= 1))
      return ctx.fail(fmt::format("batchnorm attribute `momentum` must be in [0, 1], got {}",
                                  attr_str(momentum)));
    out = ctx.in[0];
    return true;
  };
  // Running mean and variance are state: saved with the weights, not trained.
  op.params = [](const std::vector<Shape>&, const Shape& out, const Attrs& a) {
    int64_t c = out[0];
    std::vector<ParamDecl> p;
    if (bool_attr(a, "affine")) {
      p.push_back({"scale", StepParamSlot::Weight, {c}, ParamInit::Ones, true, 1});
      p.push_back({"shift", StepParamSlot::Bias, {c}, ParamInit::Zeros, true, 1});
    }
    p.push_back({"running_mean", StepParamSlot::RunningMean, {c}, ParamInit::Zeros, false, 1});
    p.push_back({"running_var", StepParamSlot::RunningVar, {c}, ParamInit::Ones, false, 1});
    return p;
  };
  op.grad = [](GradContext& c) {
    if (bool_attr(c.fwd.attrs, "affine")) return unary_grad_from_input(c, "batchnorm_grad");
    Attrs attrs = grad_attrs(c, c.input_shapes[0]);
    attrs["from_output"] = true;
    c.input_grads[0] = c.emit("batchnorm_grad", {c.dy, c.fwd.id}, std::move(attrs));
  };
  op.step = StepKind::BatchNorm;
  op.saved_state = SavedState::Training;  // the batch statistics
  op.cse_mergeable = false;
  op.example = OpExample{{{3, 4, 4}}, {}};
  // Without scale and shift its gradient reads its output (batchnorm_grad's from_output).
  op.variants = {OpExample{{{3, 4, 4}}, {{"affine", false}}}};
  // Inference: (x - running_mean) / sqrt(running_var + eps), then scale and shift.
  op.reference = [](const ReferenceArgs& r) {
    const Shape& s = r.in_shapes[0];
    int64_t c = s[0], inner = shape_numel(s) / c;
    bool affine = bool_attr(r.attrs, "affine");
    double eps = float_attr(r.attrs, "eps");
    const std::vector<double>& mean = r.params[affine ? 2 : 0];
    const std::vector<double>& var = r.params[affine ? 3 : 1];
    std::vector<double> y(r.in[0].size());
    for (int64_t n = 0; n < r.batch; ++n)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < inner; ++i) {
          size_t at = static_cast<size_t>((n * c + ch) * inner + i);
          double v = (r.in[0][at] - mean[ch]) / std::sqrt(var[ch] + eps);
          y[at] = affine ? v * r.params[0][ch] + r.params[1][ch] : v;
        }
    return y;
  };
  // ONNX's BatchNormalization in inference mode reads the running statistics, as nasc's
  // evaluation does; without affine, a scale of ones and a shift of zeros. The exporter
  // folds it into a preceding Conv where it can.
  op.onnx = [](const Node& n, const std::vector<Shape>& in, OnnxBuilder& b) {
    std::string scale = b.param("scale"), shift = b.param("shift");
    if (!n.bool_attr("affine")) {
      const int64_t c = in[0][0];
      scale = b.floats("scale", {c}, std::vector<float>(static_cast<size_t>(c), 1.0f));
      shift = b.floats("shift", {c}, std::vector<float>(static_cast<size_t>(c), 0.0f));
    }
    b.add("BatchNormalization",
          {b.input(0), scale, shift, b.param("running_mean"), b.param("running_var")}, {b.output()},
          {{"epsilon", n.float_attr("eps")}});
  };
  return op;
}

}  // namespace

std::vector<OpDef> layer_ops() {
  std::vector<OpDef> ops;
  ops.push_back(conv());
  ops.push_back(dwconv());
  ops.push_back(linear());
  ops.push_back(batchnorm());
  return ops;
}

}  // namespace nas::ops
