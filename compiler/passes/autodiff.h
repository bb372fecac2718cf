// Reverse-mode autodiff on the IR: appends to a forward graph the training loss and the
// backward graph, built from each op's gradient rule in the op registry. The result is an
// IR graph like any other (`nasc ir --stage grad` prints it) that the memory planner and
// the lowering consume unchanged.
//
//   - The forward nodes keep their ids 0..F-1; node F is `cross_entropy(logits)`, the
//     per-sample loss against the labels the executor gets with each batch, and becomes
//     the graph's output. Gradient nodes follow, each naming its forward node in `fwd`.
//   - A node needs a gradient when it or an ancestor has trainable parameters (or, with
//     `arch_grads`, is a choice). Only those get gradient nodes, so nothing flows back into
//     the input or into parameter-free stems.
//   - A tensor read by several consumers gets the sum (`add`) of their gradients, emitted
//     when its last consumer has been differentiated. (In a sampled sub-network some of
//     those contributions are never computed; the executor sums the ones that were.)
//   - Parameter gradients are written by effect nodes (shape []): conv_grad_weight,
//     linear_grad_weight, batchnorm_grad, and choice_grad_arch for architecture parameters.
//   - What backward needs from the forward pass is explicit: a gradient node lists the
//     forward tensors it reads as inputs, so liveness keeps exactly those alive.
//
// Preconditions: g is shape-checked and topologically ordered, its output is a 1-D vector
// of logits. A network that does not return logits is a UserError at its return.
#pragma once

#include "compiler/ir/ir.h"

namespace nas {

struct AutodiffOptions {
  bool arch_grads = false;  // emit choice_grad_arch for every choice (DARTS' full mode)
  // Emit parameter gradients. Off for DARTS' alpha step: then only what lies downstream of
  // a choice is differentiated, and the activations kept for weight gradients are not.
  bool weight_grads = true;
};

Graph build_training_graph(const Graph& forward, const AutodiffOptions& options = {});

// The forward graph with the loss appended (node F, the new output) and no backward: what
// evaluation runs to get the loss and accuracy on held-out data.
Graph with_loss(const Graph& forward);

// Id of the loss node (the first node after the forward graph).
int loss_node(const Graph& training);

// Number of forward nodes of a training graph (the loss node's id).
inline int forward_node_count(const Graph& training) {
  return loss_node(training);
}

}  // namespace nas
