// What the op families (compiler/ir/ops/*_ops.cpp) share: overflow-safe size arithmetic,
// attribute specs, the checks their shape rules make (messages state the rule, then the
// offending values), op skeletons (a shape-preserving unary op, a gradient op), the
// gradient-rule building blocks, and small helpers for the float64 references.
#pragma once

#include <fmt/format.h>

#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "compiler/ir/op_registry.h"

namespace nas::ops {

// Users can write any 64-bit number in a .nas file. Every shape is capped at 2^40 elements
// per sample (far beyond any real network) and every size-like attribute at the same value,
// so that the arithmetic in the rules (H + 2*pad, ceil divisions, sums of a few sizes)
// cannot overflow int64. Products that can exceed the cap use the saturating helpers.
constexpr int64_t kMaxElements = kMaxElementsPerSample;

// Non-negative sizes only. Saturating at INT64_MAX keeps an oversized result oversized, so it
// is reported by the element cap instead of wrapping into a plausible-looking number.
int64_t sat_mul(int64_t a, int64_t b);
int64_t sat_add(int64_t a, int64_t b);

template <typename T>
const T& attr_of(const Attrs& attrs, const std::string& key) {
  auto it = attrs.find(key);
  NAS_CHECK(it != attrs.end(), "attribute `" + key + "` is missing (complete_attrs not run?)");
  const T* v = std::get_if<T>(&it->second);
  NAS_CHECK(v != nullptr, "attribute `" + key + "` has the wrong type");
  return *v;
}
inline int64_t int_attr(const Attrs& a, const std::string& key) {
  return attr_of<int64_t>(a, key);
}
inline bool bool_attr(const Attrs& a, const std::string& key) {
  return attr_of<bool>(a, key);
}
inline double float_attr(const Attrs& a, const std::string& key) {
  return attr_of<double>(a, key);
}

// --- Attribute specs ----------------------------------------------------------------------

AttrSpec int_spec(std::string name, std::optional<int64_t> def, std::string doc);
AttrSpec float_spec(std::string name, std::optional<double> def, std::string doc);
AttrSpec bool_spec(std::string name, bool def, std::string doc);
AttrSpec required_spec(std::string name, AttrType type, std::string doc);

// --- Checks shared by the rules -------------------------------------------------------------

bool check_int(InferContext& ctx, const std::string& op, const char* key, int64_t min,
               int64_t max = kMaxElements);
struct IntRule {
  const char* key;
  int64_t min;
};
bool check_ints(InferContext& ctx, const std::string& op, std::initializer_list<IntRule> rules);
bool expect_rank(InferContext& ctx, const std::string& op, size_t rank, const char* layout,
                 const char* hint = "");
bool expect_image(InferContext& ctx, const std::string& op);

// A square sliding window (convolution or pooling) over the H and W axes of an image.
struct Window {
  int64_t kernel, stride, pad, dilation;
};
// Output length along one axis in floor mode, as PyTorch computes it; -1 when the window
// does not fit in the padded axis.
int64_t window_out(int64_t in, const Window& w);
// Sets out = [channels, H', W'] for a window sliding over input 0.
bool slide(InferContext& ctx, const std::string& op, const Window& w, int64_t channels, Shape& out);
bool same_shapes(InferContext& ctx, const std::string& op);

// --- Op skeletons ---------------------------------------------------------------------------

// One input, output shaped like it: activations, identity, dropout, scaling.
OpDef unary(std::string name, std::string doc, std::vector<AttrSpec> attrs = {});
// A unary op whose float attribute `attr` must satisfy `ok`; `rule` is the text of the rule.
OpDef unary_checked(std::string name, std::string doc, AttrSpec attr, bool (*ok)(double),
                    const char* rule);
// A gradient op: inputs as given, output shape from the `shape` attribute, the forward node
// in `fwd`. Gradient ops are internal, never merged by CSE, and lower to `step`.
OpDef grad_op(std::string name, std::string doc, StepKind step, int min_inputs, int max_inputs,
              std::vector<AttrSpec> extra = {}, bool effect = false);

// --- Gradient rules -------------------------------------------------------------------------
// Every gradient node names its forward node in `fwd` (kernels read the forward attributes
// and parameters from there) and carries its output shape in `shape` ([] for effect ops),
// so the backward graph prints, parses and shape-checks like any other IR.

Attrs grad_attrs(const GradContext& c, const Shape& shape);
// The gradient of input `i` through an op whose gradient op reads only dy.
int emit_input_grad(GradContext& c, const std::string& op, size_t i = 0);
// d(loss)/d(input 0) = grad_op(dy, x): activations, batch norm.
void unary_grad_from_input(GradContext& c, const std::string& op);
// Layers with weights: the weight gradient always (an effect node reading dy and x), the
// input gradient when the input needs one.
void weighted_layer_grad(GradContext& c, const std::string& prefix);
// Sums and pass-throughs: every input gets dy itself.
void pass_through_grad(GradContext& c);

// --- Labels --------------------------------------------------------------------------------

// OpDef::label of a windowed op: "<op> KxK", then " /S", " dD", " gG" for those of stride,
// dilation and groups that are listed in `shown` and are not 1.
std::string window_label(const Node& n, std::initializer_list<const char*> shown);

// --- ONNX ----------------------------------------------------------------------------------

// OpDef::onnx of an op that is one ONNX operator of its input (and `attrs`): Relu, Identity.
OnnxEmitter onnx_unary(std::string op_type, std::vector<OnnxAttr> attrs = {});
// ONNX's pads of a square window: `pad` at the start and the end of H and W.
std::vector<int64_t> onnx_pads(int64_t pad);

// --- References -----------------------------------------------------------------------------

// The reference of an op whose output is its first input (identity, views, dropout at
// inference).
std::vector<double> reference_identity(const ReferenceArgs& r);

}  // namespace nas::ops
