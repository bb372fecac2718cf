// Pooling: max and average over square windows, and the global average over H and W.
#include <algorithm>
#include <limits>

#include "compiler/ir/ops/op_families.h"
#include "compiler/ir/ops/op_helpers.h"

namespace nas::ops {
namespace {

// `max`: the maximum over the window, else the average.
OpDef pool(std::string name, bool max, std::string doc, std::vector<AttrSpec> extra_attrs = {}) {
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
  op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "pool_grad"); };
  op.step = StepKind::Pool;
  op.label = [](const Node& n) { return window_label(n, {}); };
  op.zero_preserving = true;
  op.example =
      OpExample{{{2, 7, 7}}, {{"kernel", int64_t{3}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}}};
  // The kernel reads which reduction it runs from the step's `max` attribute.
  op.kernel_attrs = [max](const std::vector<Shape>&, const Attrs&,
                          std::map<std::string, int64_t>& ints) { ints["max"] = max ? 1 : 0; };
  // Max over the taps inside the image; the average divides by the window's size (padding
  // included) or by the taps inside.
  op.reference = [max](const ReferenceArgs& r) {
    const Shape& in = r.in_shapes[0];
    const int64_t c = in[0], h = in[1], w = in[2], oh = r.out_shape[1], ow = r.out_shape[2];
    const int64_t k = int_attr(r.attrs, "kernel"), stride = int_attr(r.attrs, "stride"),
                  pad = int_attr(r.attrs, "pad");
    const bool include_pad = !max && bool_attr(r.attrs, "count_include_pad");
    std::vector<double> y(static_cast<size_t>(r.batch * c * oh * ow));
    for (int64_t nc = 0; nc < r.batch * c; ++nc)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = max ? -std::numeric_limits<double>::infinity() : 0.0;
          int64_t taps = 0;
          for (int64_t hi = i * stride - pad; hi < i * stride - pad + k; ++hi)
            for (int64_t wj = j * stride - pad; wj < j * stride - pad + k; ++wj) {
              if (hi < 0 || hi >= h || wj < 0 || wj >= w) continue;
              double v = r.in[0][(nc * h + hi) * w + wj];
              acc = max ? std::max(acc, v) : acc + v;
              ++taps;
            }
          if (!max) {
            // PyTorch clips the padded window to the padded image before counting.
            int64_t h0 = i * stride - pad, w0 = j * stride - pad;
            int64_t padded = (std::min(h0 + k, h + pad) - h0) * (std::min(w0 + k, w + pad) - w0);
            acc /= static_cast<double>(include_pad ? padded : taps);
          }
          y[(nc * oh + i) * ow + j] = acc;
        }
    return y;
  };
  // Floor mode is ONNX's default (ceil_mode 0), and a floor-mode window never reaches past
  // the padded image, so ONNX's count_include_pad divisor is PyTorch's.
  op.onnx = [max](const Node& n, const std::vector<Shape>&, OnnxBuilder& b) {
    const int64_t kernel = n.int_attr("kernel"), stride = n.int_attr("stride");
    std::vector<OnnxAttr> attrs{{"kernel_shape", std::vector<int64_t>{kernel, kernel}},
                                {"strides", std::vector<int64_t>{stride, stride}},
                                {"pads", onnx_pads(n.int_attr("pad"))}};
    if (!max)
      attrs.push_back(
          {"count_include_pad", static_cast<int64_t>(n.bool_attr("count_include_pad"))});
    b.add(max ? "MaxPool" : "AveragePool", {b.input(0)}, {b.output()}, attrs);
  };
  return op;
}

OpDef global_avg_pool() {
  OpDef op;
  op.name = "global_avg_pool";
  op.doc = "mean over H and W: [C,H,W] -> [C]";
  op.infer = [](InferContext& ctx, Shape& out) {
    if (!expect_image(ctx, "global_avg_pool")) return false;
    out = {ctx.in[0][0]};
    return true;
  };
  op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "global_avg_pool_grad"); };
  op.step = StepKind::GlobalAvgPool;
  op.zero_preserving = true;
  op.example = OpExample{{{3, 4, 5}}, {}};
  op.reference = [](const ReferenceArgs& r) {
    int64_t area = r.in_shapes[0][1] * r.in_shapes[0][2];
    std::vector<double> y(r.in[0].size() / static_cast<size_t>(area), 0.0);
    for (size_t i = 0; i < r.in[0].size(); ++i) y[i / area] += r.in[0][i] / area;
    return y;
  };
  // [N,C,H,W] -> [N,C] in one operator (GlobalAveragePool would keep H and W as 1s).
  op.onnx =
      onnx_unary("ReduceMean", {{"axes", std::vector<int64_t>{2, 3}}, {"keepdims", int64_t{0}}});
  return op;
}

}  // namespace

std::vector<OpDef> window_ops() {
  std::vector<OpDef> ops;
  OpDef max_pool = pool("max_pool", true, "maximum over a square window (floor mode)");
  max_pool.saved_state = SavedState::Always;  // the argmax workspace
  ops.push_back(std::move(max_pool));
  ops.push_back(pool("avg_pool", false, "mean over a square window (floor mode)",
                     {bool_spec("count_include_pad", true, "padding counts in the divisor")}));
  ops.push_back(global_avg_pool());
  return ops;
}

}  // namespace nas::ops
