// The op registry: every builtin op is declared once, in its OpDef, with every fact the
// compiler knows about it: arity, attributes (types, defaults, validation), shape rule, cost
// model, gradient rule, parameters (shapes, initialisation, trainable or state), how it
// lowers to a plan step, its pass flags (view, zero-preserving, CSE-mergeable, free for
// latency), the scalar formula of an elementwise op, a float64 reference, how it is written
// as ONNX operators (the exporter, driver/onnx_export.h), and a small example the
// conformance test (tests/test_conformance.cpp) builds a network around. The
// passes, lowering and cost model read these facts and keep no tables of op names.
// Adding an op is its OpDef (compiler/ir/ops/, one file per op family) plus a kernel for
// each backend that cannot run it generically; see docs/architecture.md.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "compiler/ir/ir.h"
#include "runtime/exec/exec_plan.h"  // StepKind, ParamInit: what lowering produces
#include "support/elementwise_ops.h"

namespace nas {

enum class AttrType { Int, Float, Bool, String, IntList, StringList };
const char* attr_type_name(AttrType t);

struct AttrSpec {
  std::string name;
  AttrType type;
  std::optional<AttrValue> default_value;  // nullopt: required
  std::string doc;
};

// What shape inference sees. `describe(i)` renders input i for messages, e.g.
// "[16,32,32] from `cell_1/sep_conv` at darts.nas:41:7".
struct InferContext {
  const std::vector<Shape>& in;
  const Attrs& attrs;  // complete: defaults already filled in
  std::function<std::string(size_t)> describe;
  std::string error;

  int64_t i(const std::string& key) const;
  double f(const std::string& key) const;
  bool b(const std::string& key) const;
  const std::string& s(const std::string& key) const;
  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }
};

struct OpCost {
  int64_t params = 0;  // trainable weights only (no running stats, no arch params)
  int64_t macs = 0;    // multiply-accumulates per sample
};

// Which of a plan step's parameter slots (Step::weight, bias, running_mean, running_var) a
// parameter fills: the backends' kernels read them by slot.
enum class StepParamSlot : uint8_t { Weight, Bias, RunningMean, RunningVar };

// One parameter tensor of a node, as lowering registers it ("<node>.<role>") and as the
// cost model counts it (OpCost::params is the sum of the trainable ones' elements).
struct ParamDecl {
  std::string role;  // "weight", "bias", "scale", "shift", "running_mean", "running_var"
  StepParamSlot slot = StepParamSlot::Weight;
  Shape shape;
  ParamInit init = ParamInit::KaimingUniform;
  bool trainable = true;  // false: state saved with the weights (running statistics)
  int64_t fan_in = 1;     // for KaimingUniform
};

// When a node's output is a view of its first input (no buffer, no work).
enum class ViewKind : uint8_t {
  None,
  Always,     // identity, flatten, unflatten
  Inference,  // dropout: the identity unless the graph trains
};

// When a step needs a saved-state slot (Step::state) that its backward step reads.
enum class SavedState : uint8_t {
  None,
  Always,    // max pooling writes its argmax workspace even at inference
  Training,  // batch statistics, drop path's kept samples
};

// A small instance of an op for the conformance test: per-sample input shapes and
// attributes (defaults are filled in). The network input is shaped like the largest input
// of the highest rank; each input is 1-D, an image of its height and width, or [C,1,1]
// when it is square.
struct OpExample {
  std::vector<Shape> inputs;
  Attrs attrs;
};

// What a float64 reference sees: `batch` samples of each input laid out one after
// another (NCHW), the node's complete attributes, and its parameters in the order of
// OpDef::params. It returns the output, batch first. Inference semantics: batch norm uses
// its running statistics and dropout is the identity.
struct ReferenceArgs {
  int64_t batch = 1;
  std::vector<Shape> in_shapes;  // per sample
  std::vector<std::vector<double>> in;
  Shape out_shape;
  const Attrs& attrs;
  std::vector<std::vector<double>> params;
};

// What a gradient rule sees and produces (reverse-mode autodiff, compiler/passes/autodiff).
// The rule reads the forward node and the id of the gradient of its output (`dy`), emits
// gradient nodes with `emit`, and sets `input_grads[i]` to the node holding d(loss)/d(input
// i), or leaves it -1 when that input needs no gradient (`needs_input_grad[i]` is false) or
// gets none (zero, integer-like paths). Parameter and architecture gradients are side
// effects of "effect" nodes (see OpDef::effect); they are emitted only when `fwd` has
// trainable parameters, or is a choice and `arch_grads` is set.
struct GradContext {
  const Node& fwd;
  std::vector<Shape> input_shapes;  // of fwd.inputs
  int dy = -1;
  std::vector<char> needs_input_grad;
  bool arch_grads = false;
  bool weight_grads = true;  // false: no parameter-gradient effect nodes (an alpha-only step)
  // Appends a node (op name, inputs, attributes; defaults completed, shape inferred) and
  // returns its id. Every gradient node records the forward node it belongs to in `fwd`.
  std::function<int(const std::string& op, std::vector<int> inputs, Attrs attrs)> emit;
  std::vector<int> input_grads;  // sized like fwd.inputs, -1 = none
};

// An ONNX attribute: an int, a float, a string or a list of ints.
struct OnnxAttr {
  std::string name;
  std::variant<int64_t, double, std::string, std::vector<int64_t>> value;
};

// What an op's ONNX emitter (OpDef::onnx) writes into: the ONNX model being built
// (driver/onnx_export.cpp). ONNX tensors carry the batch as axis 0, so a per-sample axis i
// of the IR is ONNX axis i + 1. The model stays free of protobuf here so that the op
// registry does not depend on it.
class OnnxBuilder {
 public:
  virtual ~OnnxBuilder() = default;
  // The ONNX value names of the node's input i and of its output.
  virtual const std::string& input(size_t i) const = 0;
  virtual const std::string& output() const = 0;
  // The initializer that holds the node's parameter `role` (ParamDecl::role: "weight",
  // "running_mean"); "" when the node has none of that role (a conv without bias).
  virtual std::string param(const std::string& role) = 0;
  // Initializers made by the emitter: an int64 or float tensor of `shape` (one value per
  // element; {} for a scalar); `suffix` makes their name readable.
  virtual std::string ints(const std::string& suffix, const std::vector<int64_t>& shape,
                           const std::vector<int64_t>& values) = 0;
  virtual std::string floats(const std::string& suffix, const std::vector<int64_t>& shape,
                             const std::vector<float>& values) = 0;
  // A fresh value name for an intermediate result of the node.
  virtual std::string temp(const std::string& suffix) = 0;
  // The batch size as an int64 tensor [1], read from the network input at run time (the
  // model's batch dimension may be symbolic).
  virtual std::string batch_size() = 0;
  // Appends an ONNX node of the default domain.
  virtual void add(const std::string& op_type, const std::vector<std::string>& inputs,
                   const std::vector<std::string>& outputs,
                   const std::vector<OnnxAttr>& attrs = {}) = 0;
};

// OpDef::onnx: appends to `b` the ONNX nodes that compute node `n` from b.input(i) into
// b.output(); `in` are the node's per-sample input shapes.
using OnnxEmitter =
    std::function<void(const Node& n, const std::vector<Shape>& in, OnnxBuilder& b)>;

struct OpDef {
  std::string name;
  std::string doc;
  int min_inputs = 1;
  int max_inputs = 1;           // -1: variadic
  std::vector<AttrSpec> attrs;  // positional order after the tensor inputs
  // Returns false and sets ctx.error when the inputs/attributes break the op's rule.
  std::function<bool(InferContext& ctx, Shape& out)> infer;
  std::function<OpCost(const std::vector<Shape>& in, const Shape& out, const Attrs& a)> cost;
  bool internal = false;  // not callable from .nas (input, choice, gradient ops)
  // Reverse-mode rule; null for ops that pass no gradient (input, zero).
  std::function<void(GradContext& ctx)> grad;
  // An effect op writes parameter or architecture gradients and produces no tensor: its
  // shape is [] and no node may read it.
  bool effect = false;
  // The plan step it lowers to; every op has one (a view op lowers to StepKind::View).
  StepKind step = StepKind::Input;
  // Its parameters from its input shapes, output shape and attributes; null: none.
  std::function<std::vector<ParamDecl>(const std::vector<Shape>& in, const Shape& out,
                                       const Attrs& a)>
      params;
  // Kernel attributes lowering adds to the step from the forward node (dwconv lowers as a
  // grouped conv: it adds `groups` and `out`), given the per-sample input shapes.
  std::function<void(const std::vector<Shape>& in, const Attrs& a,
                     std::map<std::string, int64_t>& ints)>
      kernel_attrs;
  SavedState saved_state = SavedState::None;
  ViewKind view = ViewKind::None;
  // f(zeros) == zeros for every input all-zero: zero pruning may replace it by a zero.
  bool zero_preserving = false;
  // Two nodes with this op, the same inputs and attributes compute the same tensor and may
  // merge (CSE). False for ops with parameters or randomness, and for gradient ops.
  bool cse_mergeable = true;
  // The backward pass may recompute its output from its inputs instead of keeping it
  // (compiler/passes/remat.h): deterministic, stateless ops whose forward costs little
  // beside the memory their output holds (activations, depthwise convolutions).
  bool rematerializable = false;
  // Costs nothing at run time (inputs and views): the latency units skip it.
  bool free_latency = false;
  // The training loss: autodiff appends it to the network's logits (its gradient rule
  // starts the backward pass, with no dy), and lowering ends the forward pass before it.
  // Exactly one op is the loss (training_loss_op()).
  bool loss = false;
  // An auxiliary loss (aux_loss): its second input is logits scored against the same
  // labels as the network's, so autodiff checks that they have as many classes.
  bool auxiliary_loss = false;
  // Its value is the sum of its inputs: zero pruning drops the zero ones, and a sum left
  // with one input is that input.
  bool sums_inputs = false;
  // The text a graph drawing shows for a node of this op (its name and the attributes a
  // reader looks for, e.g. "conv 3x3 /2"); null: the op's name.
  std::function<std::string(const Node& n)> label;
  // Elementwise ops: the scalar value and derivative (support/elementwise_ops.h).
  const ElementwiseFn* elementwise = nullptr;
  // A small instance for the conformance test; internal ops other than gradient ops, and
  // every op callable from .nas, must have one (the test fails naming the op otherwise).
  std::optional<OpExample> example;
  // Further instances for the other input forms the op accepts (mul's factor first, or
  // [C,1,1]); the conformance test covers each as it covers `example`.
  std::vector<OpExample> variants;
  // The op's value in float64 (see ReferenceArgs); null for internal ops.
  std::function<std::vector<double>(const ReferenceArgs& r)> reference;
  // Replaces attribute values that stand for another attribute's (a pool's stride 0 means
  // its kernel) by that value, so that the IR shows what runs. Run by complete_attrs.
  std::function<void(Attrs& attrs)> resolve_attrs;
  // PC-DARTS' partial channels (compiler/passes/partial_channels.h) rebuild a candidate to
  // run on 1/k of its input's channels: this rewrites the attributes that count channels
  // (conv's `out`) so that the op runs on 1/k of them; `in` are its input shapes before
  // narrowing. Returns "" or why the op cannot be narrowed by k. Null: no attribute
  // counts channels (shape inference derives them from the input).
  std::function<std::string(Attrs& attrs, const std::vector<Shape>& in, int64_t k)> narrow_channels;
  // How the op is written in an ONNX model (opset 17) at inference, with its inference
  // semantics (batch norm on running statistics, dropout the identity). Null for ops that
  // cannot be exported (the exporter then names the op and the node's place); every op an
  // inference graph can hold has one (tests/test_onnx_export.cpp).
  OnnxEmitter onnx;

  const AttrSpec* find_attr(std::string_view attr) const;
};

// Returns nullptr for unknown names.
const OpDef* find_op(std::string_view name);
const std::vector<const OpDef*>& all_ops();
// The one op with OpDef::loss.
const OpDef& training_loss_op();
// OpDef::label of the node's op, or the op's name.
std::string node_label(const Node& n);

// Fills defaults, checks types/required attributes and resolves derived values
// (OpDef::resolve_attrs). Returns an error message, or empty on success. Unknown
// attribute names are an error.
std::string complete_attrs(const OpDef& op, Attrs& attrs);

// Every tensor is capped at this many elements per sample, so that users' huge numbers are
// reported instead of overflowing int64 in the shape rules and cost models.
constexpr int64_t kMaxElementsPerSample = int64_t{1} << 40;

// Infers a node's shape from its inputs; used by elaboration and by the shape pass.
// `describe` renders input i for messages. Precondition (NAS_CHECKed): every input shape
// was itself produced by infer_shape, i.e. non-empty, dims >= 1, at most
// kMaxElementsPerSample elements; do not call it for a node whose inputs failed.
bool infer_shape(const OpDef& op, const std::vector<Shape>& in, const Attrs& attrs,
                 const std::function<std::string(size_t)>& describe, Shape& out,
                 std::string& error);

// The op's cost; `params` counts the trainable elements of OpDef::params.
OpCost op_cost(const OpDef& op, const std::vector<Shape>& in, const Shape& out, const Attrs& a);
OpCost node_cost(const Graph& g, const Node& n);

// The parameters of node `n` (OpDef::params; empty when it has none).
std::vector<ParamDecl> node_params(const Graph& g, const Node& n);

}  // namespace nas
