// Ops that move elements without arithmetic: concat, flatten (a view) and crop.
#include "compiler/ir/ops/op_families.h"
#include "compiler/ir/ops/op_helpers.h"

namespace nas::ops {
namespace {

OpDef concat() {
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
  op.step = StepKind::Concat;
  op.zero_preserving = true;
  op.example = OpExample{{{2, 3, 3}, {3, 3, 3}}, {}};
  // Each input's slab per sample, one after another along the axis.
  op.reference = [](const ReferenceArgs& r) {
    size_t axis = static_cast<size_t>(int_attr(r.attrs, "axis"));
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < axis; ++d) outer *= r.out_shape[d];
    for (size_t d = axis + 1; d < r.out_shape.size(); ++d) inner *= r.out_shape[d];
    std::vector<double> y;
    for (int64_t o = 0; o < r.batch * outer; ++o)
      for (size_t k = 0; k < r.in.size(); ++k) {
        int64_t slab = r.in_shapes[k][axis] * inner;
        y.insert(y.end(), r.in[k].begin() + o * slab, r.in[k].begin() + (o + 1) * slab);
      }
    return y;
  };
  return op;
}

OpDef flatten() {
  OpDef op;
  op.name = "flatten";
  op.doc = "all axes into one: [C,H,W] -> [C*H*W]";
  op.infer = [](InferContext& ctx, Shape& out) {
    out = {shape_numel(ctx.in[0])};
    return true;
  };
  op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "unflatten"); };
  op.step = StepKind::View;
  op.view = ViewKind::Always;
  op.zero_preserving = true;
  op.free_latency = true;
  op.example = OpExample{{{2, 3, 4}}, {}};
  op.reference = reference_identity;
  return op;
}

OpDef crop() {
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
  op.step = StepKind::Crop;
  op.zero_preserving = true;
  op.example =
      OpExample{{{2, 5, 6}}, {{"top", int64_t{1}}, {"left", int64_t{2}}, {"bottom", int64_t{1}}}};
  op.reference = [](const ReferenceArgs& r) {
    const Shape& in = r.in_shapes[0];
    int64_t h = in[1], w = in[2], oh = r.out_shape[1], ow = r.out_shape[2];
    int64_t top = int_attr(r.attrs, "top"), left = int_attr(r.attrs, "left");
    std::vector<double> y;
    for (int64_t nc = 0; nc < r.batch * in[0]; ++nc)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) y.push_back(r.in[0][(nc * h + top + i) * w + left + j]);
    return y;
  };
  return op;
}

}  // namespace

std::vector<OpDef> shape_ops() {
  return {concat(), flatten(), crop()};
}

}  // namespace nas::ops
