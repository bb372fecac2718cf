// The losses and the gradient ops autodiff emits: the training loss and the gradient ops are
// internal (not callable from .nas); aux_loss, which a network places itself, is not. The
// forward ops' gradient rules (OpDef::grad, beside each op) say which they emit.
#include <cmath>

#include "compiler/ir/ops/op_families.h"
#include "compiler/ir/ops/op_helpers.h"

namespace nas::ops {
namespace {

// The training loss: per-sample softmax cross-entropy of the logits against the labels
// the executor is given with each batch.
OpDef cross_entropy() {
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
  op.step = StepKind::CrossEntropy;
  op.loss = true;
  // The backward pass starts here, with no dy: (softmax - onehot) / batch from the logits.
  op.grad = [](GradContext& c) {
    if (c.needs_input_grad[0])
      c.input_grads[0] =
          c.emit("cross_entropy_grad", {c.fwd.inputs[0]}, grad_attrs(c, c.input_shapes[0]));
  };
  return op;
}

// An auxiliary head's loss (DARTS' auxiliary tower): aux_loss(x, logits, weight) is x, and in
// a training run it adds weight * cross-entropy(logits, labels) to the run's loss, so the
// head's gradient is weight * (softmax - target) / batch and x's is its consumers'. At
// inference it is a view of x and adds nothing; the head's nodes keep their ids (live masks
// index them) and still run there.
OpDef aux_loss() {
  OpDef op;
  op.name = "aux_loss";
  op.doc = "x, plus (in training) weight * cross-entropy of auxiliary logits [K] added to the loss";
  op.min_inputs = op.max_inputs = 2;
  op.attrs = {float_spec("weight", 0.4, "the auxiliary loss's weight (DARTS: 0.4), >= 0")};
  op.infer = [](InferContext& ctx, Shape& out) {
    const double w = ctx.f("weight");
    if (!(w >= 0 && std::isfinite(w)))
      return ctx.fail(
          fmt::format("aux_loss attribute `weight` must be finite and >= 0, got {}", attr_str(w)));
    if (ctx.in[1].size() != 1)
      return ctx.fail("aux_loss expects 1-D auxiliary logits [classes] as its second input, got " +
                      ctx.describe(1));
    out = ctx.in[0];
    return true;
  };
  op.step = StepKind::AuxLoss;
  op.auxiliary_loss = true;
  op.view = ViewKind::Inference;
  op.cse_mergeable = false;  // each adds its own loss
  op.free_latency = true;    // a view at inference
  op.grad = [](GradContext& c) {
    if (c.needs_input_grad[0]) c.input_grads[0] = c.dy;
    if (c.needs_input_grad[1])
      c.input_grads[1] =
          c.emit("aux_loss_grad", {c.fwd.inputs[1]}, grad_attrs(c, c.input_shapes[1]));
  };
  // The head's logits have the network's classes (6: the flattened output of the op).
  op.example = OpExample{{{6}, {6}}, {{"weight", 0.4}}};
  op.reference = reference_identity;
  // Inference: x itself; the auxiliary head is then dead, and the exporter drops it.
  op.onnx = [](const Node&, const std::vector<Shape>&, OnnxBuilder& b) {
    b.add("Identity", {b.input(0)}, {b.output()});
  };
  return op;
}

}  // namespace

std::vector<OpDef> gradient_ops() {
  using K = StepKind;
  std::vector<OpDef> ops;
  ops.push_back(cross_entropy());
  ops.push_back(aux_loss());
  ops.push_back(grad_op("aux_loss_grad",
                        "weight * (softmax(logits) - target) / batch: an auxiliary loss's gradient",
                        K::AuxLossGrad, 1, 1));
  ops.push_back(grad_op("cross_entropy_grad",
                        "(softmax(logits) - onehot(label)) / batch: the mean loss's gradient",
                        K::CrossEntropyGrad, 1, 1));
  ops.push_back(grad_op("conv_grad_input", "convolution backward-data (conv and dwconv)",
                        K::ConvGradInput, 1, 1));
  ops.push_back(grad_op("conv_grad_weight", "convolution backward-weights: writes dW (and db)",
                        K::ConvGradWeight, 2, 2, {}, true));
  ops.push_back(
      grad_op("linear_grad_input", "inner product backward-data", K::LinearGradInput, 1, 1));
  ops.push_back(grad_op("linear_grad_weight", "inner product backward-weights: writes dW, db",
                        K::LinearGradWeight, 2, 2, {}, true));
  // A batch norm without scale and shift outputs x_hat itself, so its gradient can read the
  // output instead of the input: the input then need not be kept for the backward pass
  // (the convolution before it in a DARTS candidate), while the output is kept anyway (by
  // the ReLU after it, or for the architecture gradient).
  ops.push_back(grad_op(
      "batchnorm_grad",
      "batch norm backward from dy and x (or, from_output, from y = x_hat when not affine): "
      "dx, and dscale/dshift when affine",
      K::BatchNormGrad, 2, 2,
      {bool_spec("from_output", false, "input 1 is the forward's output y, not its input x")}));
  ops.push_back(grad_op("activation_grad", "dy * f'(x) for the activation of node `fwd`",
                        K::ActivationGrad, 2, 2));
  ops.push_back(grad_op("pool_grad",
                        "max/avg pooling backward (max reads the forward's argmax workspace)",
                        K::PoolGrad, 1, 1));
  ops.push_back(grad_op("global_avg_pool_grad", "dy / (H*W) spread over the window",
                        K::GlobalAvgPoolGrad, 1, 1));
  {
    OpDef op =
        grad_op("unflatten", "dy reshaped back to the flattened input (a view)", K::View, 1, 1);
    op.view = ViewKind::Always;
    op.free_latency = true;
    ops.push_back(std::move(op));
  }
  ops.push_back(grad_op("crop_grad", "dy placed back in the window, zeros on the borders",
                        K::CropGrad, 1, 1));
  ops.push_back(grad_op("channel_slice_grad",
                        "dy placed back at channels [start, start + count), zeros elsewhere",
                        K::ChannelSliceGrad, 1, 1));
  ops.push_back(grad_op("dropout_grad", "dy through the forward's drop mask, drawn again",
                        K::DropoutGrad, 1, 1));
  ops.push_back(
      grad_op("drop_path_grad", "dy through the forward's kept samples", K::DropPathGrad, 1, 1));
  ops.push_back(grad_op("concat_grad", "the slice of dy that input `index` went to", K::ConcatGrad,
                        1, 1, {int_spec("index", {}, "which input")}));
  // compiler/passes/remat.h: lowering runs it as its forward node's step.
  ops.push_back(grad_op("recompute",
                        "forward node `fwd` computed again from its inputs in the backward pass "
                        "(its op, attributes and parameters)",
                        K::Recompute, 1, -1));
  ops.push_back(grad_op("choice_grad_input",
                        "dy times candidate `index`'s mixing weight (1 when sampled)",
                        K::ChoiceGradInput, 1, 1, {int_spec("index", {}, "which candidate")}));
  ops.push_back(grad_op("choice_grad_arch",
                        "d(loss)/d(alpha) of a full-mode choice from dy and its candidates",
                        K::ChoiceGradArch, 2, -1, {}, true));
  return ops;
}

}  // namespace nas::ops
