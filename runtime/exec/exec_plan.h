// An execution plan: what the executor runs, independent of the front end and of any
// backend. The compiler's lowering (compiler/lowering) produces it from an IR graph and
// its memory plan: one step per node, in order, each naming the values it reads and
// writes, the attributes and shapes its kernel needs, and the parameters it uses.
//
// Values are per IR node: value v is node v's output. Its storage is an offset in the
// arena, the caller's input or output buffer, a view of another value (an alias), or
// nothing (an effect step, which only writes parameter or architecture gradients).
// Every size and shape here includes the batch dimension first.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/exec/value_type.h"
#include "support/errors.h"

namespace nas {

enum class StepKind : uint8_t {
  Input,  // nothing to do: the caller's buffer
  View,   // nothing to do: an alias of another value (identity, flatten, unflatten)
  Copy,   // an alias op that is the plan's output: copy its input
  Conv,
  ConvGradInput,
  ConvGradWeight,
  Linear,
  LinearGradInput,
  LinearGradWeight,
  BatchNorm,
  BatchNormGrad,
  Activation,
  ActivationGrad,
  Pool,
  PoolGrad,
  GlobalAvgPool,
  GlobalAvgPoolGrad,
  Add,
  Concat,
  ConcatGrad,
  Scale,
  Crop,
  CropGrad,
  ChannelSlice,  // channels [start, start + count) of each sample
  ChannelSliceGrad,
  ChannelShuffle,  // ShuffleNet's channel shuffle (its gradient is the inverse shuffle)
  Zero,
  Dropout,
  DropoutGrad,
  DropPath,  // whole samples kept or zeroed (drop_path; p from the op or the run)
  DropPathGrad,
  Choice,
  ChoiceGradInput,
  ChoiceGradArch,
  CrossEntropy,
  CrossEntropyGrad,
  // aux_loss: its input passed on, and weight * cross-entropy of auxiliary logits added to
  // the run's loss; the gradient step writes d(that)/d(logits).
  AuxLoss,
  AuxLossGrad,
  // The IR's `recompute` op (compiler/passes/remat.h). Lowering gives its step the forward
  // node's kind, so no backend ever sees this one.
  Recompute,
  // A fused region (compiler/passes/fusion.h): ElementwiseRegion, at the region's last
  // node, computes every node of the region in one pass (Step::region); the region's other
  // nodes are Fused steps, which do nothing and whose values are never stored.
  ElementwiseRegion,
  Fused,
};

// Elements of a shape (1 for []), and its text "[64,16,32,32]" for messages.
inline int64_t shape_elements(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}
inline std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

enum class ValueStorage : uint8_t { Arena, Input, Output, Alias, None };

struct ValueSlot {
  ValueStorage storage = ValueStorage::Arena;
  int64_t offset = 0;    // bytes from the arena start (Arena)
  int64_t elements = 0;  // batch included
  int root = -1;         // the value owning the storage (itself unless Alias)
  DType dtype = DType::F32;
  Layout layout = Layout::NCHW;
};

enum class ParamInit : uint8_t {
  KaimingUniform,  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for conv/linear
  Ones,
  Zeros,
};

struct ParamSpec {
  std::string name;  // "<node name>.weight", unique in the plan
  std::vector<int64_t> shape;
  bool trainable = true;  // false: running statistics (state saved with the weights)
  ParamInit init = ParamInit::KaimingUniform;
  int64_t fan_in = 1;
};

struct ArchSpec {
  std::string key;
  std::vector<std::string> candidates;
  int k = 1;
};

// One operation of an elementwise region's program, over the elements of the region's
// output (every operand has as many): `kind` says what it computes from its operands,
//   Activation      f(a)            (the formula of op `op`, support/elementwise_ops.h)
//   ActivationGrad  a * f'(b)       (dy and the forward input)
//   Scale           scale * a [* b]
//   Add             a + b + ...     (the operands computed in this run)
//   Choice          sum of w_i * a_i (the weights of arch group `group`; a zero weight
//                                    skips the operand)
//   Dropout         keep ? a * scale : 0, scale = 1 / (1 - p), p = `param`, keep drawn per
//                   element from forward dropout node `fwd_node`'s stream (support/rng.h,
//                   dropout_keeps); in training plans only (inference: a view)
//   DropoutGrad     the same with the same draws, on dy: the gradient recomputes the mask
//   Crop            a: the operations before it run at its window of their inputs, and
//   CropGrad        a: its input k, placed at the window, zeros on the borders
//                   (both read through runtime/exec/region_read_map.h's maps; images only)
// An operand k >= 0 is the region step's input k; k < 0 is the result of operation -k-1.
//
// A Conv step with a non-empty Step::region is a conv epilogue (compiler/passes/fusion.h):
// region[0] is the convolution itself (kind Conv, operand: input 0), then operations each
// applied to the result of the one before (a batchnorm only right after the convolution):
//   BatchNorm       (a - running_mean) / sqrt(running_var + eps) * weight + bias, per
//                   channel (inference), with the batchnorm layer's parameters below
//   Activation      f(a)
//   Add             a + b (b: the step's input 1)
//
// The other region steps (compiler/passes/fusion.h) keep their own kind:
//   BatchNorm (training): region[0] the batch norm (`node`: its output, stored or not),
//                   then Activations of it;
//   BatchNormGrad:  region[0] computes its incoming gradient, ActivationGrad a * f'(b) or
//                   ChoiceGradInput w * a (w: weight `index` of arch group `group`; a zero
//                   weight means the candidate's gradient does not run, and the step writes
//                   nothing), region[1] the gradient itself, then, when the region takes a mixed
//                   op's d/dw (fusion.h), region[2] ChoiceGradArch: adds sum(a * b) (a: the share's
//                   operand, b: the batch norm's output) to weight gradient `index` of arch group
//                   `group`, in runs that compute architecture gradients;
//   ChoiceGradArch: no operations of its own; region lists the candidates whose product
//                   such a batch norm gradient takes instead (kind BatchNormGrad, `node`
//                   that region's step, `index` the candidate), which the step skips;
//   GlobalAvgPool:  Activations, then the pool.
struct RegionOp {
  StepKind kind = StepKind::Add;
  std::string op;  // the (forward) op whose formula it applies
  int node = -1;   // the IR node it computes
  std::vector<int> operands;
  double scale = 1.0;  // Scale
  double param = 0.0;  // the formula's attribute (leaky_relu's slope); BatchNorm: eps
  int group = -1;      // Choice, ChoiceGradInput, ChoiceGradArch
  int index = -1;      // ChoiceGradInput, ChoiceGradArch: the candidate
  int fwd_node = -1;   // the forward node: `node`, or the one a gradient operation differentiates
  int64_t top = 0, left = 0;  // Crop, CropGrad: the window's offset in the larger image
  // BatchNorm: indices into ExecPlan::params (weight and bias -1 without affine).
  int weight = -1, bias = -1, running_mean = -1, running_var = -1;
};

// A region operation that draws dropout's mask, or that reads through a crop's window.
inline bool is_dropout_op(const RegionOp& op) {
  return op.kind == StepKind::Dropout || op.kind == StepKind::DropoutGrad;
}
inline bool is_crop_op(const RegionOp& op) {
  return op.kind == StepKind::Crop || op.kind == StepKind::CropGrad;
}

struct Step {
  StepKind kind = StepKind::Input;
  std::string op;    // the IR op name
  std::string name;  // the IR node name (messages, profiles)
  int node = -1;     // this step's node (= its output value)
  int guard = -1;    // the forward node whose liveness gates this step
  std::vector<int> inputs;
  std::vector<std::vector<int64_t>> input_shapes;
  std::vector<int64_t> output_shape;  // [] for effect steps
  // The forward op's attributes (a gradient step carries its forward node's) and, for
  // gradient steps, the forward node's input/output shapes.
  std::string fwd_op;
  std::map<std::string, int64_t> ints;
  std::map<std::string, double> floats;
  std::vector<int64_t> fwd_in_shape, fwd_out_shape;
  int index = -1;     // concat/choice gradient: which input
  int fwd_node = -1;  // the forward node: `node`, or the one a gradient step differentiates
  // Parameters of the (forward) layer, indices into ExecPlan::params; -1 when absent.
  int weight = -1, bias = -1, running_mean = -1, running_var = -1;
  int state =
      -1;  // saved forward state (batch-norm statistics, pool argmax, drop path's kept samples)
  int group = -1;  // choice: index into ExecPlan::arch
  // ElementwiseRegion: the operations in order; the last one is this step's output.
  // Conv: the convolution and its epilogue (RegionOp), empty for a plain convolution.
  // Fused: `index` is the step of the region that computes this node.
  std::vector<RegionOp> region;

  // Checked reads of the forward op's attributes. Lowering copies every attribute the op
  // has, so a missing one is a bug (an InternalError naming the op, the node and the
  // attribute), never a silent 0 as ints["x"] would insert, nor a bare "map::at".
  int64_t int_attr(const char* attr) const { return find_attr(ints, attr, "int"); }
  double float_attr(const char* attr) const { return find_attr(floats, attr, "float"); }
  // Attributes only some ops of a step kind have: the value, or `fallback` without one.
  int64_t int_attr_or(const char* attr, int64_t fallback) const {
    auto it = ints.find(attr);
    return it == ints.end() ? fallback : it->second;
  }
  double float_attr_or(const char* attr, double fallback) const {
    auto it = floats.find(attr);
    return it == floats.end() ? fallback : it->second;
  }

 private:
  template <typename T>
  T find_attr(const std::map<std::string, T>& attrs, const char* attr, const char* kind) const {
    auto it = attrs.find(attr);
    NAS_CHECK(it != attrs.end(), "step `" + name + "` (op " + op +
                                     (fwd_op.empty() || fwd_op == op ? "" : ", forward " + fwd_op) +
                                     ") has no " + kind + " attribute `" + attr + "`");
    return it->second;
  }
};

// Consecutive steps under one guard: the unit the executor gates (one liveness test for
// all of them) and a JIT may compile into one kernel. Lowering emits one step per region
// today; a plan with no regions runs each step as its own.
struct Region {
  int first = 0;  // index of the region's first step
  int count = 1;  // steps first..first+count-1
  int guard = -1;
};

struct ExecPlan {
  int64_t batch = 1;
  bool training = false;  // a training graph: loss + backward; batch-norm uses batch stats
  std::vector<ValueSlot> values;
  std::vector<Step> steps;
  std::vector<Region> regions;  // empty: one region per step
  std::vector<ParamSpec> params;
  std::vector<ArchSpec> arch;
  int num_states = 0;  // distinct `state` indices
  int64_t arena_bytes = 0;
  int forward_nodes = 0;  // nodes 0..forward_nodes-1 are the forward graph
  int input = -1;         // the input value
  int logits = -1;        // the network's output value
  int output = -1;        // the plan's output value (the loss in training, else the logits)
  int64_t classes = 0;    // logits per sample
  std::vector<int64_t> input_shape;  // per sample
};

}  // namespace nas
