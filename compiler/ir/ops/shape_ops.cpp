// Ops that move elements without arithmetic: concat, flatten (a view), crop, and the channel
// slice and shuffle of PC-DARTS' partial channel connections.
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
  op.onnx = [](const Node& n, const std::vector<Shape>&, OnnxBuilder& b) {
    std::vector<std::string> inputs;
    for (size_t i = 0; i < n.inputs.size(); ++i) inputs.push_back(b.input(i));
    b.add("Concat", inputs, {b.output()}, {{"axis", n.int_attr("axis") + 1}});  // batch first
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
  op.onnx = onnx_unary("Flatten", {{"axis", int64_t{1}}});  // keeps the batch axis
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
  op.onnx = [](const Node& n, const std::vector<Shape>& in, OnnxBuilder& b) {
    const int64_t top = n.int_attr("top"), left = n.int_attr("left");
    const int64_t bottom = in[0][1] - n.int_attr("bottom"), right = in[0][2] - n.int_attr("right");
    b.add("Slice",
          {b.input(0), b.ints("starts", {2}, {top, left}), b.ints("ends", {2}, {bottom, right}),
           b.ints("axes", {2}, {2, 3})},
          {b.output()});
  };
  return op;
}

// The channels [start, start + count) of each sample: PC-DARTS sends 1/K of an edge's
// channels through its candidates and the rest around them.
OpDef channel_slice() {
  OpDef op;
  op.name = "channel_slice";
  op.doc = "channels [start, start + count) of the input (axis 0)";
  op.attrs = {int_spec("start", 0, "the first channel kept, from 0"),
              required_spec("count", AttrType::Int, "how many channels are kept")};
  op.infer = [](InferContext& ctx, Shape& out) {
    if (ctx.in[0].empty())
      return ctx.fail("channel_slice needs a tensor with a channel axis, got " + ctx.describe(0));
    if (!check_ints(ctx, "channel_slice", {{"start", 0}, {"count", 1}})) return false;
    const int64_t channels = ctx.in[0][0];
    if (ctx.i("start") + ctx.i("count") > channels)
      return ctx.fail(fmt::format(
          "channel_slice needs start + count <= the input's channels: start {} + count {} > {} "
          "channels of {}",
          ctx.i("start"), ctx.i("count"), channels, ctx.describe(0)));
    out = ctx.in[0];
    out[0] = ctx.i("count");
    return true;
  };
  op.grad = [](GradContext& c) { c.input_grads[0] = emit_input_grad(c, "channel_slice_grad"); };
  op.step = StepKind::ChannelSlice;
  op.zero_preserving = true;
  // On 1/k of the channels: the same share of them.
  op.narrow_channels = [](Attrs& a, const std::vector<Shape>&, int64_t k) -> std::string {
    const int64_t start = int_attr(a, "start"), count = int_attr(a, "count");
    if (start % k != 0 || count % k != 0)
      return fmt::format("its start={} and count={} are not multiples of {}", start, count, k);
    a["start"] = start / k;
    a["count"] = count / k;
    return "";
  };
  op.example = OpExample{{{5, 3, 2}}, {{"start", int64_t{1}}, {"count", int64_t{3}}}};
  op.reference = [](const ReferenceArgs& r) {
    const Shape& in = r.in_shapes[0];
    int64_t inner = 1;
    for (size_t d = 1; d < in.size(); ++d) inner *= in[d];
    const int64_t start = int_attr(r.attrs, "start"), count = int_attr(r.attrs, "count");
    std::vector<double> y;
    for (int64_t b = 0; b < r.batch; ++b) {
      auto first = r.in[0].begin() + (b * in[0] + start) * inner;
      y.insert(y.end(), first, first + count * inner);
    }
    return y;
  };
  op.onnx = [](const Node& n, const std::vector<Shape>&, OnnxBuilder& b) {
    const int64_t start = n.int_attr("start");
    b.add("Slice",
          {b.input(0), b.ints("starts", {1}, {start}),
           b.ints("ends", {1}, {start + n.int_attr("count")}), b.ints("axes", {1}, {1})},
          {b.output()});
  };
  return op;
}

// ShuffleNet's channel shuffle (Zhang et al. 2018): the channels seen as [groups, C/groups]
// and transposed, so that y[j*groups + i] = x[i*(C/groups) + j]. PC-DARTS shuffles an
// edge's output so that every channel passes through the candidates over the steps.
OpDef channel_shuffle() {
  OpDef op;
  op.name = "channel_shuffle";
  op.doc = "the channels as [groups, C/groups], transposed (ShuffleNet)";
  op.attrs = {required_spec("groups", AttrType::Int, "the groups interleaved; divides C")};
  op.infer = [](InferContext& ctx, Shape& out) {
    if (ctx.in[0].empty())
      return ctx.fail("channel_shuffle needs a tensor with a channel axis, got " + ctx.describe(0));
    if (!check_ints(ctx, "channel_shuffle", {{"groups", 1}})) return false;
    if (ctx.in[0][0] % ctx.i("groups") != 0)
      return ctx.fail(
          fmt::format("channel_shuffle needs groups to divide the channels: {} "
                      "groups, {} channels in {}",
                      ctx.i("groups"), ctx.in[0][0], ctx.describe(0)));
    out = ctx.in[0];
    return true;
  };
  // A permutation: its gradient is the inverse permutation, the shuffle with C/groups groups.
  op.grad = [](GradContext& c) {
    const int64_t groups = int_attr(c.fwd.attrs, "groups");
    c.input_grads[0] =
        c.emit("channel_shuffle", {c.dy}, {{"groups", c.input_shapes[0][0] / groups}});
  };
  op.step = StepKind::ChannelShuffle;
  op.zero_preserving = true;
  op.example = OpExample{{{6, 2, 3}}, {{"groups", int64_t{2}}}};
  op.reference = [](const ReferenceArgs& r) {
    const Shape& in = r.in_shapes[0];
    int64_t inner = 1;
    for (size_t d = 1; d < in.size(); ++d) inner *= in[d];
    const int64_t groups = int_attr(r.attrs, "groups"), per_group = in[0] / groups;
    std::vector<double> y(r.in[0].size());
    for (int64_t b = 0; b < r.batch; ++b)
      for (int64_t c = 0; c < in[0]; ++c) {
        const int64_t i = c / per_group, j = c % per_group;  // input channel c = i*m + j
        for (int64_t e = 0; e < inner; ++e)
          y[(b * in[0] + j * groups + i) * inner + e] = r.in[0][(b * in[0] + c) * inner + e];
      }
    return y;
  };
  // [N, C, rest...] as [N, groups, C/groups, rest...], axes 1 and 2 swapped, and back
  // (Reshape's 0 keeps the batch, which may be symbolic).
  op.onnx = [](const Node& n, const std::vector<Shape>& in, OnnxBuilder& b) {
    const int64_t groups = n.int_attr("groups");
    std::vector<int64_t> split{0, groups, in[0][0] / groups}, merged{0}, perm{0, 2, 1};
    for (size_t d = 0; d < in[0].size(); ++d) {
      if (d > 0) split.push_back(in[0][d]);
      merged.push_back(in[0][d]);
      if (d > 0) perm.push_back(static_cast<int64_t>(d) + 2);
    }
    const std::string grouped = b.temp("grouped"), swapped = b.temp("swapped");
    b.add("Reshape", {b.input(0), b.ints("split", {static_cast<int64_t>(split.size())}, split)},
          {grouped});
    b.add("Transpose", {grouped}, {swapped}, {{"perm", perm}});
    b.add("Reshape", {swapped, b.ints("merged", {static_cast<int64_t>(merged.size())}, merged)},
          {b.output()});
  };
  return op;
}

}  // namespace

std::vector<OpDef> shape_ops() {
  return {concat(), flatten(), crop(), channel_slice(), channel_shuffle()};
}

}  // namespace nas::ops
