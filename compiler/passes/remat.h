// Rematerialisation: the backward pass recomputes cheap forward values instead of keeping
// them alive from the forward pass to their gradient step. A training graph's memory peak
// is at the end of the forward pass, where everything the backward reads is alive at
// once; a value that is recomputed just before its first backward reader is alive only
// for a few steps of the backward pass instead.
//
// Which values. A forward node v is recomputed when
//   - its op allows it (OpDef::rematerializable: activations and depthwise convolutions,
//     whose forward costs little beside the memory they hold), and
//   - a backward node reads it, and
//   - every input of v is kept for the backward pass anyway (a backward node reads it) or
//     is itself recomputed. Recomputing v must not keep alive a value that would
//     otherwise die in the forward pass: that would trade one buffer for another.
// In a DARTS separable convolution, relu -> dwconv -> conv -> bn -> relu -> dwconv -> conv
// -> bn, the two depthwise outputs (read by the pointwise convolutions' weight gradients)
// and the middle relu's output (read by the second depthwise convolution's weight
// gradient) are recomputed from the batch norm output and the first relu's output, which
// the backward pass keeps anyway (batchnorm_grad reads the output of a batch norm without
// scale and shift, and the first depthwise convolution's weight gradient reads its input).
//
// How. Each recomputed value gets a `recompute` node (a gradient-like op: `fwd` names the
// forward node, whose op, attributes and parameters it runs again) placed right before the
// first backward node that reads the value; every backward reader then reads it, and its
// inputs are the forward inputs or their own recompute nodes. Forward node ids do not
// change; backward nodes are renumbered after the inserted ones. Lowering gives a
// recompute step the forward node's step kind, so the backends run it as that op; it is
// guarded by its forward node like any gradient step, so a skipped candidate (a sampled
// sub-network) skips its recomputation too.
//
// Precondition: g is topologically ordered and shape-checked. A graph without a loss (an
// inference graph) or without backward readers of rematerializable values is returned
// unchanged.
#pragma once

#include <vector>

#include "compiler/ir/ir.h"

namespace nas {

Graph rematerialize(const Graph& training);

// The forward nodes rematerialize would recompute, ascending (for tests and `nasc ir`'s
// summary).
std::vector<int> rematerialized_values(const Graph& training);

}  // namespace nas
