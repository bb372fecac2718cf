#include "compiler/ir/op_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <type_traits>
#include <unordered_set>
#include <variant>

#include "support/did_you_mean.h"

namespace nas {
namespace {

// Users can write any 64-bit number in a .nas file. Every shape is capped at 2^40 elements
// per sample (far beyond any real network) and every size-like attribute at the same value,
// so that the arithmetic in the rules below (H + 2*pad, ceil divisions, sums of a few sizes)
// cannot overflow int64. Products that can exceed the cap use the saturating helpers.
constexpr int64_t kMaxElements = kMaxElementsPerSample;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// Non-negative sizes only. Saturating at INT64_MAX keeps an oversized result oversized, so it
// is reported by the element cap instead of wrapping into a plausible-looking number.
int64_t sat_mul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kInt64Max / b ? kInt64Max : a * b;
}
int64_t sat_add(int64_t a, int64_t b) {
  return a > kInt64Max - b ? kInt64Max : a + b;
}

// AttrType lists the alternatives of AttrValue in the same order, so a value's type is its
// variant index.
static_assert(std::is_same_v<
              std::variant_alternative_t<static_cast<size_t>(AttrType::Int), AttrValue>, int64_t>);
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<size_t>(AttrType::StringList), AttrValue>,
                   StringList>);
AttrType type_of(const AttrValue& v) {
  return static_cast<AttrType>(v.index());
}

template <typename T>
const T& attr_of(const Attrs& attrs, const std::string& key) {
  auto it = attrs.find(key);
  NAS_CHECK(it != attrs.end(), "attribute `" + key + "` is missing (complete_attrs not run?)");
  const T* v = std::get_if<T>(&it->second);
  NAS_CHECK(v != nullptr, "attribute `" + key + "` has the wrong type");
  return *v;
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
               int64_t max = kMaxElements) {
  int64_t v = ctx.i(key);
  if (v < min)
    return ctx.fail(fmt::format("{} attribute `{}` must be >= {}, got {}", op, key, min, v));
  if (v > max)
    return ctx.fail(fmt::format("{} attribute `{}` must be at most {}, got {}", op, key, max, v));
  return true;
}

struct IntRule {
  const char* key;
  int64_t min;
};
bool check_ints(InferContext& ctx, const std::string& op, std::initializer_list<IntRule> rules) {
  for (const IntRule& r : rules)
    if (!check_int(ctx, op, r.key, r.min)) return false;
  return true;
}

bool expect_rank(InferContext& ctx, const std::string& op, size_t rank, const char* layout,
                 const char* hint = "") {
  if (ctx.in[0].size() == rank) return true;
  return ctx.fail(
      fmt::format("{} expects a {}-D input {}, got {}{}", op, rank, layout, ctx.describe(0), hint));
}
bool expect_image(InferContext& ctx, const std::string& op) {
  return expect_rank(ctx, op, 3, "[C,H,W]");
}

// A square sliding window (convolution or pooling) over the H and W axes of an image.
struct Window {
  int64_t kernel, stride, pad, dilation;
};

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

// Weights [out, in/groups, k, k] applied at every output position.
OpCost conv_cost(int64_t in_channels, const Shape& out, int64_t groups, int64_t kernel, bool bias) {
  int64_t weights = sat_mul(sat_mul(out[0], in_channels / groups), sat_mul(kernel, kernel));
  return {sat_add(weights, bias ? out[0] : 0), sat_mul(weights, sat_mul(out[1], out[2]))};
}

// --- Op skeletons ---------------------------------------------------------------------------

// One input, output shaped like it: activations, identity, dropout, scaling.
OpDef unary(std::string name, std::string doc, std::vector<AttrSpec> attrs = {}) {
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

OpDef pool(std::string name, std::string doc, std::vector<AttrSpec> extra_attrs = {}) {
  OpDef op;
  op.name = name;
  op.doc = std::move(doc);
  op.attrs = {int_spec("kernel", {}, "window size"),
              int_spec("stride", 0, "step; 0 means equal to the kernel (PyTorch's default)"),
              int_spec("pad", 0, "implicit padding on each side, at most kernel/2")};
  for (AttrSpec& a : extra_attrs) op.attrs.push_back(std::move(a));
  op.resolve_attrs = [](Attrs& attrs) {
    int64_t& stride = std::get<int64_t>(attrs.at("stride"));
    if (stride == 0) stride = std::get<int64_t>(attrs.at("kernel"));
  };
  op.infer = [name](InferContext& ctx, Shape& out) {
    if (!expect_image(ctx, name) ||
        !check_ints(ctx, name, {{"kernel", 1}, {"stride", 0}, {"pad", 0}}))
      return false;
    Window w{ctx.i("kernel"), ctx.i("stride"), ctx.i("pad"), 1};
    if (w.stride == 0) w.stride = w.kernel;
    if (w.pad > w.kernel / 2)
      return ctx.fail(
          fmt::format("{} attribute `pad` must be at most kernel/2 = {} (as in "
                      "PyTorch), got {}",
                      name, w.kernel / 2, w.pad));
    return slide(ctx, name, w, ctx.in[0][0], out);
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
int emit_input_grad(GradContext& c, const std::string& op, size_t i = 0) {
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
OpDef grad_op(std::string name, std::string doc, int min_inputs, int max_inputs,
              std::vector<AttrSpec> extra = {}, bool effect = false) {
  OpDef op;
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

std::vector<OpDef> gradient_ops() {
  std::vector<OpDef> ops;
  {
    // The training loss: per-sample softmax cross-entropy of the logits against the labels
    // the executor is given with each batch.
    OpDef op;
    op.name = "cross_entropy";
    op.doc = "per-sample softmax cross-entropy of logits [K] against the batch labels";
    op.internal = true;
    op.infer = [](InferContext& ctx, Shape& out) {
      if (ctx.in[0].size() != 1)
        return ctx.fail("cross_entropy expects 1-D logits [classes], got " + ctx.describe(0));
      out = {1};
      return true;
    };
    ops.push_back(std::move(op));
  }
  ops.push_back(grad_op("cross_entropy_grad",
                        "(softmax(logits) - onehot(label)) / batch: the mean loss's gradient", 1,
                        1));
  ops.push_back(grad_op("conv_grad_input", "convolution backward-data (conv and dwconv)", 1, 1));
  ops.push_back(grad_op("conv_grad_weight", "convolution backward-weights: writes dW (and db)", 2,
                        2, {}, true));
  ops.push_back(grad_op("linear_grad_input", "inner product backward-data", 1, 1));
  ops.push_back(grad_op("linear_grad_weight", "inner product backward-weights: writes dW, db", 2, 2,
                        {}, true));
  ops.push_back(grad_op("batchnorm_grad",
                        "batch norm backward from dy and x: dx, and dscale/dshift when affine", 2,
                        2));
  ops.push_back(grad_op("activation_grad", "dy * f'(x) for the activation of node `fwd`", 2, 2));
  ops.push_back(grad_op("pool_grad",
                        "max/avg pooling backward (max reads the forward's "
                        "argmax workspace)",
                        1, 1));
  ops.push_back(grad_op("global_avg_pool_grad", "dy / (H*W) spread over the window", 1, 1));
  {
    OpDef op = grad_op("unflatten", "dy reshaped back to the flattened input (a view)", 1, 1);
    op.alias = true;
    ops.push_back(std::move(op));
  }
  ops.push_back(grad_op("crop_grad", "dy placed back in the window, zeros on the borders", 1, 1));
  ops.push_back(grad_op("dropout_grad", "dy through the forward's drop mask", 1, 1));
  ops.push_back(grad_op("concat_grad", "the slice of dy that input `index` went to", 1, 1,
                        {int_spec("index", {}, "which input")}));
  ops.push_back(grad_op("choice_grad_input",
                        "dy times candidate `index`'s mixing weight (1 when sampled)", 1, 1,
                        {int_spec("index", {}, "which candidate")}));
  ops.push_back(grad_op("choice_grad_arch",
                        "d(loss)/d(alpha) of a full-mode choice from dy and its candidates", 2, -1,
                        {}, true));
  return ops;
}

// The builtin ops, each declared once. Later stages add the gradient rule and per-backend
// kernels to these same blocks (as new OpDef fields), so an op stays defined in one place.
std::vector<OpDef> builtin_ops() {
  std::vector<OpDef> ops;

  // --- Graph structure ----------------------------------------------------------------------
  {
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
    ops.push_back(std::move(op));
  }
  {
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
    ops.push_back(std::move(op));
  }
  {
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
            return ctx.fail(fmt::format("zero shape dimensions must be >= 1, got {}",
                                        shape_str(explicit_shape)));
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
    ops.push_back(std::move(op));
  }
  {
    OpDef op = unary("identity", "the input unchanged");
    op.grad = pass_through_grad;
    ops.push_back(std::move(op));
  }

  // --- Convolution and linear layers ------------------------------------------------------
  {
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
      if (!expect_image(ctx, "conv") || !check_ints(ctx, "conv",
                                                    {{"out", 1},
                                                     {"kernel", 1},
                                                     {"stride", 1},
                                                     {"pad", 0},
                                                     {"dilation", 1},
                                                     {"groups", 1}}))
        return false;
      int64_t channels = ctx.in[0][0], outc = ctx.i("out"), groups = ctx.i("groups");
      if (channels % groups != 0)
        return ctx.fail(fmt::format("conv groups={} must divide the {} input channels of {}",
                                    groups, channels, ctx.describe(0)));
      if (outc % groups != 0)
        return ctx.fail(fmt::format("conv groups={} must divide the output channels, got out={}",
                                    groups, outc));
      Window w{ctx.i("kernel"), ctx.i("stride"), ctx.i("pad"), ctx.i("dilation")};
      return slide(ctx, "conv", w, outc, out);
    };
    op.cost = [](const std::vector<Shape>& in, const Shape& out, const Attrs& a) {
      return conv_cost(in[0][0], out, attr_of<int64_t>(a, "groups"), attr_of<int64_t>(a, "kernel"),
                       attr_of<bool>(a, "bias"));
    };
    op.grad = [](GradContext& c) { weighted_layer_grad(c, "conv"); };
    ops.push_back(std::move(op));
  }
  {
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
          !check_ints(
              ctx, "dwconv",
              {{"kernel", 1}, {"stride", 1}, {"pad", 0}, {"dilation", 1}, {"multiplier", 1}}))
        return false;
      Window w{ctx.i("kernel"), ctx.i("stride"), ctx.i("pad"), ctx.i("dilation")};
      return slide(ctx, "dwconv", w, sat_mul(ctx.in[0][0], ctx.i("multiplier")), out);
    };
    op.cost = [](const std::vector<Shape>& in, const Shape& out, const Attrs& a) {
      return conv_cost(in[0][0], out, in[0][0], attr_of<int64_t>(a, "kernel"),
                       attr_of<bool>(a, "bias"));
    };
    op.grad = [](GradContext& c) { weighted_layer_grad(c, "conv"); };
    ops.push_back(std::move(op));
  }
  {
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
    op.cost = [](const std::vector<Shape>& in, const Shape& out, const Attrs& a) {
      int64_t weights = sat_mul(in[0][0], out[0]);
      return OpCost{sat_add(weights, attr_of<bool>(a, "bias") ? out[0] : 0), weights};
    };
    op.grad = [](GradContext& c) { weighted_layer_grad(c, "linear"); };
    ops.push_back(std::move(op));
  }

  // --- Normalisation -------------------------------------------------------------------------
  {
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
        return ctx.fail(
            fmt::format("batchnorm attribute `eps` must be > 0, got {}", attr_str(eps)));
      if (!(momentum >= 0 && momentum <= 1))
        return ctx.fail(fmt::format("batchnorm attribute `momentum` must be in [0, 1], got {}",
                                    attr_str(momentum)));
      out = ctx.in[0];
      return true;
    };
    // Running mean and variance are state, not trainable weights.
    op.cost = [](const std::vector<Shape>& in, const Shape&, const Attrs& a) {
      return OpCost{attr_of<bool>(a, "affine") ? 2 * in[0][0] : 0, 0};
    };
    op.grad = [](GradContext& c) { unary_grad_from_input(c, "batchnorm_grad"); };
    ops.push_back(std::move(op));
  }

  // --- Activations ---------------------------------------------------------------------------
  // Their gradient reads the forward's input x (oneDNN's backward from the source).
  auto activation = [](OpDef op) {
    op.grad = [](GradContext& c) { unary_grad_from_input(c, "activation_grad"); };
    return op;
  };
  ops.push_back(activation(unary("relu", "max(x, 0)")));
  ops.push_back(activation(unary("relu6", "min(max(x, 0), 6)")));
  ops.push_back(activation(unary("sigmoid", "1 / (1 + exp(-x))")));
  ops.push_back(activation(unary("hard_swish", "x * relu6(x + 3) / 6")));
  ops.push_back(activation(unary("hard_sigmoid", "relu6(x + 3) / 6")));
  ops.push_back(activation(unary_checked(
      "leaky_relu", "x if x > 0 else slope * x",
      float_spec("slope", 0.01, "slope for negative inputs"),
      [](double v) { return std::isfinite(v); }, "finite")));

  // --- Pooling -------------------------------------------------------------------------------
  auto pooling = [](OpDef op) {
    op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "pool_grad"); };
    return op;
  };
  ops.push_back(pooling(pool("max_pool", "maximum over a square window (floor mode)")));
  ops.push_back(
      pooling(pool("avg_pool", "mean over a square window (floor mode)",
                   {bool_spec("count_include_pad", true, "padding counts in the divisor")})));
  {
    OpDef op;
    op.name = "global_avg_pool";
    op.doc = "mean over H and W: [C,H,W] -> [C]";
    op.infer = [](InferContext& ctx, Shape& out) {
      if (!expect_image(ctx, "global_avg_pool")) return false;
      out = {ctx.in[0][0]};
      return true;
    };
    op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "global_avg_pool_grad"); };
    ops.push_back(std::move(op));
  }

  // --- Combining -----------------------------------------------------------------------------
  {
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
    ops.push_back(std::move(op));
  }
  {
    OpDef op;
    op.name = "concat";
    op.doc = "joins inputs along an axis (0 = channels)";
    op.max_inputs = -1;
    op.attrs = {int_spec("axis", 0, "axis to join along, counted from 0")};
    op.infer = [](InferContext& ctx, Shape& out) {
      const Shape& first = ctx.in[0];
      int64_t rank = static_cast<int64_t>(first.size());
      if (ctx.i("axis") < 0 || ctx.i("axis") >= rank)
        return ctx.fail(
            fmt::format("concat attribute `axis` must be in [0, {}) for {}-D inputs, "
                        "got {}",
                        rank, rank, ctx.i("axis")));
      size_t axis = static_cast<size_t>(ctx.i("axis"));
      out = first;
      for (size_t i = 1; i < ctx.in.size(); ++i) {
        const Shape& in = ctx.in[i];
        if (in.size() != first.size())
          return ctx.fail(
              fmt::format("concat needs inputs of the same rank: input 0 is {} but "
                          "input {} is {}",
                          ctx.describe(0), i, ctx.describe(i)));
        for (size_t d = 0; d < in.size(); ++d)
          if (d != axis && in[d] != first[d])
            return ctx.fail(
                fmt::format("concat along axis {} needs equal sizes on the other "
                            "axes: input 0 is {} but input {} is {}",
                            axis, ctx.describe(0), i, ctx.describe(i)));
        out[axis] = sat_add(out[axis], in[axis]);
      }
      return true;
    };
    op.grad = [](GradContext& c) {
      for (size_t i = 0; i < c.input_grads.size(); ++i)
        if (c.needs_input_grad[i]) {
          Attrs a = grad_attrs(c, c.input_shapes[i]);
          a["index"] = static_cast<int64_t>(i);
          c.input_grads[i] = c.emit("concat_grad", {c.dy}, a);
        }
    };
    ops.push_back(std::move(op));
  }

  // --- Reshaping -----------------------------------------------------------------------------
  {
    OpDef op;
    op.name = "flatten";
    op.doc = "all axes into one: [C,H,W] -> [C*H*W]";
    op.infer = [](InferContext& ctx, Shape& out) {
      out = {shape_numel(ctx.in[0])};
      return true;
    };
    op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "unflatten"); };
    ops.push_back(std::move(op));
  }
  {
    // DARTS' FactorizedReduce reads x[:,:,1:,1:], i.e. crop(top=1, left=1).
    OpDef op;
    op.name = "crop";
    op.doc = "removes rows and columns from the borders of an image";
    op.attrs = {int_spec("top", 0, "rows removed at the top"),
                int_spec("left", 0, "columns removed on the left"),
                int_spec("bottom", 0, "rows removed at the bottom"),
                int_spec("right", 0, "columns removed on the right")};
    op.infer = [](InferContext& ctx, Shape& out) {
      if (!expect_image(ctx, "crop") ||
          !check_ints(ctx, "crop", {{"top", 0}, {"left", 0}, {"bottom", 0}, {"right", 0}}))
        return false;
      const Shape& in = ctx.in[0];
      int64_t h = in[1] - ctx.i("top") - ctx.i("bottom");
      int64_t w = in[2] - ctx.i("left") - ctx.i("right");
      if (h < 1 || w < 1)
        return ctx.fail(
            fmt::format("crop must leave at least 1 row and 1 column: top {} + bottom "
                        "{} of {} rows, left {} + right {} of {} columns, from {}",
                        ctx.i("top"), ctx.i("bottom"), in[1], ctx.i("left"), ctx.i("right"), in[2],
                        ctx.describe(0)));
      out = {in[0], h, w};
      return true;
    };
    op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "crop_grad"); };
    ops.push_back(std::move(op));
  }

  // --- Elementwise with a constant -----------------------------------------------------------
  {
    OpDef op = unary_checked(
        "dropout", "zeroes each element with probability p during training",
        float_spec("p", 0.5, "drop probability, in [0, 1)"),
        [](double p) { return p >= 0 && p < 1; }, "in [0, 1)");
    op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "dropout_grad"); };
    ops.push_back(std::move(op));
  }
  {
    // The gradient of a scaling is the same scaling of dy: a forward op reused.
    OpDef op = unary_checked(
        "mul", "multiplies by a constant", float_spec("scale", std::nullopt, "the constant"),
        [](double v) { return std::isfinite(v); }, "finite");
    op.grad = [](GradContext& c) {
      c.input_grads[0] = c.emit("mul", {c.dy}, {{"scale", c.fwd.attrs.at("scale")}});
    };
    ops.push_back(std::move(op));
  }

  for (OpDef& op : gradient_ops()) ops.push_back(std::move(op));
  return ops;
}

const std::vector<OpDef>& registry() {
  static const std::vector<OpDef> ops = [] {
    std::vector<OpDef> built = builtin_ops();
    for (size_t i = 0; i < built.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        NAS_CHECK(built[i].name != built[j].name, "op `" + built[i].name + "` registered twice");
    return built;
  }();
  return ops;
}

std::string unknown_attr_message(const OpDef& op, const std::string& key) {
  if (op.attrs.empty()) return fmt::format("{} has no attribute `{}`; it takes none", op.name, key);
  std::vector<std::string> names;
  std::string listed;
  for (const AttrSpec& a : op.attrs) {
    names.push_back(a.name);
    listed += (listed.empty() ? "" : ", ") + a.name;
  }
  std::string msg =
      fmt::format("{} has no attribute `{}`; its attributes are {}", op.name, key, listed);
  std::string closest = closest_name(key, names);  // suggest only near misses
  if (!closest.empty()) msg += fmt::format(" (did you mean `{}`?)", closest);
  return msg;
}

// Converts `v` to `type` where that loses nothing a user would care about: an int where a
// float is expected, and an empty list (whose element type the front end cannot know).
bool coerce(AttrType type, AttrValue& v) {
  if (type_of(v) == type) return true;
  if (type == AttrType::Float && type_of(v) == AttrType::Int) {
    v = static_cast<double>(std::get<int64_t>(v));
    return true;
  }
  bool empty_list = (type_of(v) == AttrType::IntList && std::get<IntList>(v).empty()) ||
                    (type_of(v) == AttrType::StringList && std::get<StringList>(v).empty());
  if (empty_list && type == AttrType::IntList) return v = IntList{}, true;
  if (empty_list && type == AttrType::StringList) return v = StringList{}, true;
  return false;
}

std::string arity_message(const OpDef& op, size_t got) {
  if (op.max_inputs < 0)
    return fmt::format("{} expects at least {} input{}, got {}", op.name, op.min_inputs,
                       op.min_inputs == 1 ? "" : "s", got);
  if (op.min_inputs == op.max_inputs)
    return fmt::format("{} expects {} input{}, got {}", op.name, op.min_inputs,
                       op.min_inputs == 1 ? "" : "s", got);
  return fmt::format("{} expects between {} and {} inputs, got {}", op.name, op.min_inputs,
                     op.max_inputs, got);
}

}  // namespace

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int:
      return "int";
    case AttrType::Float:
      return "float";
    case AttrType::Bool:
      return "bool";
    case AttrType::String:
      return "string";
    case AttrType::IntList:
      return "int list";
    case AttrType::StringList:
      return "string list";
  }
  return "?";
}

const AttrSpec* OpDef::find_attr(std::string_view attr) const {
  for (const AttrSpec& a : attrs)
    if (a.name == attr) return &a;
  return nullptr;
}

int64_t InferContext::i(const std::string& key) const {
  return attr_of<int64_t>(attrs, key);
}
double InferContext::f(const std::string& key) const {
  return attr_of<double>(attrs, key);
}
bool InferContext::b(const std::string& key) const {
  return attr_of<bool>(attrs, key);
}
const std::string& InferContext::s(const std::string& key) const {
  return attr_of<std::string>(attrs, key);
}

const OpDef* find_op(std::string_view name) {
  for (const OpDef& op : registry())
    if (op.name == name) return &op;
  return nullptr;
}

const std::vector<const OpDef*>& all_ops() {
  static const std::vector<const OpDef*> ptrs = [] {
    std::vector<const OpDef*> out;
    for (const OpDef& op : registry()) out.push_back(&op);
    return out;
  }();
  return ptrs;
}

std::string complete_attrs(const OpDef& op, Attrs& attrs) {
  for (auto& [key, value] : attrs) {
    const AttrSpec* spec = op.find_attr(key);
    if (spec == nullptr) return unknown_attr_message(op, key);
    if (!coerce(spec->type, value))
      return fmt::format("{} attribute `{}` must be {}, got {}", op.name, key,
                         attr_type_name(spec->type), attr_type_name(type_of(value)));
  }
  for (const AttrSpec& spec : op.attrs) {
    if (attrs.count(spec.name)) continue;
    if (!spec.default_value) return fmt::format("{} requires attribute `{}`", op.name, spec.name);
    attrs.emplace(spec.name, *spec.default_value);
  }
  if (op.resolve_attrs) op.resolve_attrs(attrs);
  return {};
}

bool infer_shape(const OpDef& op, const std::vector<Shape>& in, const Attrs& attrs,
                 const std::function<std::string(size_t)>& describe, Shape& out,
                 std::string& error) {
  error.clear();
  size_t n = in.size();
  if (n < static_cast<size_t>(op.min_inputs) ||
      (op.max_inputs >= 0 && n > static_cast<size_t>(op.max_inputs))) {
    error = arity_message(op, n);
    return false;
  }
  // Every shape reaching an op came out of this function, so the rules may rely on it.
  for (const Shape& s : in)
    NAS_CHECK(!s.empty() && shape_numel(s) >= 1 && shape_numel(s) <= kMaxElements,
              op.name + " got the unchecked input shape " + shape_str(s));
  NAS_CHECK(op.infer != nullptr, "op `" + op.name + "` has no shape rule");
  InferContext ctx{in, attrs, describe, {}};
  if (!ctx.describe) ctx.describe = [&in](size_t i) { return shape_str(in[i]); };
  Shape result;
  if (!op.infer(ctx, result)) {
    NAS_CHECK(!ctx.error.empty(), "op `" + op.name + "` failed without a message");
    error = std::move(ctx.error);
    return false;
  }
  for (int64_t d : result) NAS_CHECK(d >= 1, "op `" + op.name + "` inferred " + shape_str(result));
  if (shape_numel(result) > kMaxElements) {
    error = fmt::format("tensors are limited to 2^40 elements per sample, but {} would produce {}",
                        op.name, shape_str(result));
    return false;
  }
  out = std::move(result);
  return true;
}

OpCost node_cost(const Graph& g, const Node& n) {
  NAS_CHECK(n.op != nullptr, "node `" + n.name + "` has no op");
  if (!n.op->cost) return {};
  std::vector<Shape> in;
  for (int id : n.inputs) {
    NAS_CHECK(id >= 0 && static_cast<size_t>(id) < g.nodes.size(), "bad input id");
    in.push_back(g.nodes[id].shape);
  }
  return n.op->cost(in, n.shape, n.attrs);
}

}  // namespace nas
