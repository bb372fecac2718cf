// The op registry: every builtin op is declared once, with its arity, attributes (types,
// defaults, validation), shape inference and cost model. Later issues add the gradient
// rule and per-backend kernels to the same OpDef, so adding an op touches one place.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir/ir.h"

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
  // Set on gradient ops: the output views its first input's storage (a reshape).
  bool alias = false;
  // Replaces attribute values that stand for another attribute's (a pool's stride 0 means
  // its kernel) by that value, so that the IR shows what runs. Run by complete_attrs.
  std::function<void(Attrs& attrs)> resolve_attrs;

  const AttrSpec* find_attr(std::string_view attr) const;
};

// Returns nullptr for unknown names.
const OpDef* find_op(std::string_view name);
const std::vector<const OpDef*>& all_ops();

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

OpCost node_cost(const Graph& g, const Node& n);

}  // namespace nas
