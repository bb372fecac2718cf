// The fusion pass (the pipeline's `fusion` stage): groups chains of elementwise nodes into
// fused regions that a backend runs as one step, traversing memory once, and whose
// intermediate values are never stored (the memory planner gives them no buffer).
//
// Which nodes are elementwise comes from the op registry: an op whose step computes each
// output element from the same element of each input (OpDef::step is Activation with a
// scalar formula, ActivationGrad of one, Scale by a constant or a same-shaped tensor, Add,
// Choice, the weighted sum of candidates, Dropout and DropoutGrad, whose mask each element
// draws on its own, support/rng.h) and whose inputs are all shaped like its output. At
// inference dropout is a view of its input and joins no region. Crop and CropGrad (images)
// are elementwise through a window (runtime/exec/region_read_map.h): the nodes before a
// crop in its region run at the crop's window of their inputs, and a crop_grad reads the
// gradient it pads, from outside the region, through the window (zeros on the borders).
// A region holds at most one crop; DARTS' FactorizedReduce's gradient, the padded
// gradient of its shifted branch plus the other branch's, then the ReLU's, is one region.
//
// A node p joins the region of its consumer c when both are elementwise, c is p's only
// consumer in the whole graph (forward and backward), both are on one side of the loss
// (forward or backward), c is not a choice, and p runs right before the region (only
// nodes without storage, views and effects, between): a region runs at its root's step,
// so its members' inputs stay live until then, and holding them across other nodes'
// buffers would raise the memory peak (DARTS' choices, computed one edge after another,
// would keep every candidate of a node's edges live until the node's sum). So every
// region is a tree whose root (its last node) is the only member read from outside, and:
//   - the members' liveness is the root's: a member's only consumer is in the region, and
//     a choice's candidates (whose liveness differs from the choice's) stay outside;
//   - what the executor skips still skips: a backward region runs when its root would
//     have (a gradient sum adds the contributions that ran, anything else needs all of
//     its inputs), decided once per run by the backend.
// Single nodes are not regions. The graph itself is unchanged.
//
// Convolution epilogues (inference graphs only: no backward, so batch norm reads its
// running statistics and is a per-channel affine map). A conv (OpDef::step Conv) and the
// chain after it, each node the only consumer of the one before and next to it in the same
// way as above, form one region when the chain is, in order:
//   - at most one batchnorm, right after the conv: folded into the conv's weights and bias;
//   - activations with a scalar formula and adds of one other same-shaped tensor (at most
//     one add): applied to the conv's output in its own pass (oneDNN post-ops on the CPU).
// MobileNetV2's conv-bn-relu6 and conv-bn-add, ResNet's conv-bn-add-relu are such chains.
// These regions are found first; the elementwise ones are formed from what is left.
//
// Batch norm in training graphs (its batch statistics, then y = x * a + b per channel),
// found after the conv epilogues and before the elementwise regions:
//   - BatchNorm: a batchnorm, then the activation (scalar formula) right after it that is
//     its only reader in the forward pass (so the region's liveness, the activation's, is
//     the batch norm's), then activations each the only consumer of the one before. The batch
//     norm's statistics pass runs as before, and its apply pass writes y and, row by row
//     while y is in cache, the activations' result: the ReLU never reads y back from
//     memory. The batch norm's own output stays stored (FusedRegion::stored): its gradient
//     and the activation's read it in the backward pass. DARTS' sep_conv has two
//     (batchnorm, relu) pairs per candidate.
//   - BatchNormGrad: an activation_grad (scalar formula) or a choice_grad_input whose only
//     consumer is a batchnorm_grad, as its incoming gradient, right before it:
//     dy = g * f'(x), or w_i * g for candidate i of a mixed op (DARTS' candidates end in a
//     batch norm), is computed row by row inside the batch norm's backward reductions and
//     apply pass, never stored.
//   - A mixed op's d/dw (DARTS' full mode): dL/dw_i = sum(dy * y_i) for candidate i. When
//     a BatchNormGrad region's incoming gradient is candidate i's share of a choice, the
//     choice's input i is the batch norm's output y, and the batch norm's gradient reads y
//     (from_output: no scale or shift, as in DARTS' search), the region also takes that
//     product (FusedRegion::arch_grad) in its reduction pass, which already reads dy and y;
//     the choice_grad_arch node then skips candidate i. Its node and the values it reads
//     are unchanged (y stays stored for the gradient anyway).
//
// Global average pooling (any graph), after the elementwise regions: a global_avg_pool and
// the activations (scalar formula) before it, each the only consumer of the next and next
// to it, as ResNet's final relu: each row is activated into scratch and averaged, the
// activations' values never stored (their gradients read their inputs).
#pragma once

#include <string>
#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/ir/ir_printer.h"

namespace nas {

enum class RegionKind {
  Elementwise,    // elementwise nodes, run as one loop over the elements
  ConvEpilogue,   // a conv and what its output goes through (see above)
  BatchNorm,      // a training batchnorm and the activations after it (see above)
  BatchNormGrad,  // an activation_grad or choice_grad_input inside the batchnorm_grad it feeds
  GlobalAvgPool,  // activations computed inside the global_avg_pool after them
};

struct FusedRegion {
  RegionKind kind = RegionKind::Elementwise;
  // In id order; the last is the root (ConvEpilogue: the first is the conv).
  std::vector<int> nodes;
  std::vector<int> reads;  // values read from outside the region, in first-use order
  // Members other than the root that are read from outside the region: the region's step
  // writes them too (a BatchNorm region's batchnorm). Empty for the other kinds.
  std::vector<int> stored;
  // BatchNormGrad: the choice_grad_arch node whose product for this region's candidate the
  // region takes (see above), or -1.
  int arch_grad = -1;
  int root() const { return nodes.back(); }
};

struct FusionPlan {
  std::vector<FusedRegion> regions;
  std::vector<int> region_of;  // per node: its region, or -1

  // Whether node `id` is computed inside a region and never stored (a member, neither its
  // root nor one of its stored members).
  bool internal(int id) const;
  // The node whose step computes `id`: its region's root, else itself.
  int step_of(int id) const { return region_of[id] >= 0 ? regions[region_of[id]].root() : id; }
};

// Whether node `n` computes elementwise (see above), from its op's facts and its shapes.
bool is_fusable_elementwise(const Graph& g, const Node& n);

// Whether `g` has no backward nodes: batch norm then reads its running statistics.
bool is_inference_graph(const Graph& g);

// Which kinds of region to form.
struct FusionOptions {
  bool elementwise = true;
  // Latency tables turn the elementwise regions off: a choice inside one would make the
  // region's cost depend on how many candidates are active, which a table entry cannot
  // say. Conv epilogues never contain a choice.
  bool conv_epilogues = true;
  // Batch norm regions (training graphs only, so latency tables never see them).
  bool batchnorm = true;
};

// Precondition: g is topologically ordered and shape-checked.
FusionPlan plan_fusion(const Graph& g, const FusionOptions& options = {});

// An empty plan for `g`: every node its own step (fusion turned off).
FusionPlan no_fusion(const Graph& g);

// The graph's text, then one line per region:
//   fused #0 %64 add <- %35 choice, %63 choice  reads [%8,%10,...]
//   fused #1 %12 relu6 <- %10 conv, %11 batchnorm  reads [%9]  conv epilogue
//   fused #2 %46 relu <- %45 batchnorm  reads [%44]  batchnorm epilogue, stores [%45]
//   fused #3 %90 batchnorm_grad <- %89 activation_grad  reads [%88,%45]  batchnorm prologue
//   fused #4 %97 batchnorm_grad <- %93 choice_grad_input  reads [%92,%45]  batchnorm
//       prologue, d/dw for %94 candidate 2          (one line)
//   fused #5 %60 global_avg_pool <- %59 relu  reads [%58]  pooled activations
// and a summary line: `fused: R regions, N nodes, M values not stored`.
std::string print_fusion(const Graph& g, const FusionPlan& plan, const PrintOptions& print = {});

}  // namespace nas
