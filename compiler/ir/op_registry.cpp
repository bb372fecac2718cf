#include "compiler/ir/op_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <type_traits>
#include <variant>

#include "compiler/ir/ops/op_families.h"
#include "compiler/ir/ops/op_helpers.h"
#include "support/did_you_mean.h"

namespace nas {
namespace {

using ops::attr_of;
using ops::kMaxElements;

// AttrType lists the alternatives of AttrValue in the same order, so a value's type is its
// variant index.
static_assert(std::is_same_v<
              std::variant_alternative_t<static_cast<size_t>(AttrType::Int), AttrValue>, int64_t>);
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<size_t>(AttrType::StringList), AttrValue>,
                   StringList>);
AttrType type_of(const AttrValue& v) {
  return static_cast<AttrType>(v.index());
}

// The facts of one op that must agree with each other; a disagreement is a bug in its
// OpDef, reported when the registry is first used.
void check_facts(const OpDef& op) {
  auto fail = [&op](const std::string& why) {
    internal_error(__FILE__, __LINE__, "op `" + op.name + "`: " + why);
  };
  if (!op.infer) fail("no shape rule");
  if (op.params && op.cse_mergeable) fail("an op with parameters cannot be CSE-mergeable");
  // An op that is a view at inference only (dropout) lowers to its training kernel.
  if (op.view == ViewKind::Always && op.step != StepKind::View)
    fail("a view op must lower to a View step");
  if (op.elementwise != nullptr && op.step != StepKind::Activation)
    fail("an elementwise formula needs an Activation step");
  if (op.example && !op.internal && !op.reference) fail("an example without a reference");
  if (!op.variants.empty() && !op.example) fail("variants without an example");
  if (op.loss && !op.grad) fail("the loss needs a gradient rule to start the backward pass");
}

std::vector<Shape> input_shapes(const Graph& g, const Node& n) {
  std::vector<Shape> in;
  for (int id : n.inputs) {
    NAS_CHECK(id >= 0 && static_cast<size_t>(id) < g.nodes.size(), "bad input id");
    in.push_back(g.nodes[id].shape);
  }
  return in;
}

const std::vector<OpDef>& registry() {
  static const std::vector<OpDef> ops = [] {
    std::vector<OpDef> built;
    for (auto family : {ops::graph_ops, ops::layer_ops, ops::elementwise_ops, ops::window_ops,
                        ops::shape_ops, ops::gradient_ops})
      for (OpDef& op : family()) built.push_back(std::move(op));
    for (size_t i = 0; i < built.size(); ++i) {
      for (size_t j = 0; j < i; ++j)
        NAS_CHECK(built[i].name != built[j].name, "op `" + built[i].name + "` registered twice");
      check_facts(built[i]);
    }
    NAS_CHECK(
        std::count_if(built.begin(), built.end(), [](const OpDef& op) { return op.loss; }) == 1,
        "exactly one op must be the training loss");
    return built;
  }();
  return ops;
}

std::string unknown_attr_message(const OpDef& op, const std::string& key) {
  if (op.attrs.empty()) return fmt::format("{} has no attribute `{}`; it takes none", op.name, key);
  std::vector<std::string> names;
  std::string listed;
  for (const AttrSpec& a : op.attrs) {
    names.push_back(a.name);
    listed += (listed.empty() ? "" : ", ") + a.name;
  }
  std::string msg =
      fmt::format("{} has no attribute `{}`; its attributes are {}", op.name, key, listed);
  std::string closest = closest_name(key, names);  // suggest only near misses
  if (!closest.empty()) msg += fmt::format(" (did you mean `{}`?)", closest);
  return msg;
}

// Converts `v` to `type` where that loses nothing a user would care about: an int where a
// float is expected, and an empty list (whose element type the front end cannot know).
bool coerce(AttrType type, AttrValue& v) {
  if (type_of(v) == type) return true;
  if (type == AttrType::Float && type_of(v) == AttrType::Int) {
    v = static_cast<double>(std::get<int64_t>(v));
    return true;
  }
  bool empty_list = (type_of(v) == AttrType::IntList && std::get<IntList>(v).empty()) ||
                    (type_of(v) == AttrType::StringList && std::get<StringList>(v).empty());
  if (empty_list && type == AttrType::IntList) return v = IntList{}, true;
  if (empty_list && type == AttrType::StringList) return v = StringList{}, true;
  return false;
}

std::string arity_message(const OpDef& op, size_t got) {
  if (op.max_inputs < 0)
    return fmt::format("{} expects at least {} input{}, got {}", op.name, op.min_inputs,
                       op.min_inputs == 1 ? "" : "s", got);
  if (op.min_inputs == op.max_inputs)
    return fmt::format("{} expects {} input{}, got {}", op.name, op.min_inputs,
                       op.min_inputs == 1 ? "" : "s", got);
  return fmt::format("{} expects between {} and {} inputs, got {}", op.name, op.min_inputs,
                     op.max_inputs, got);
}

}  // namespace

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int:
      return "int";
    case AttrType::Float:
      return "float";
    case AttrType::Bool:
      return "bool";
    case AttrType::String:
      return "string";
    case AttrType::IntList:
      return "int list";
    case AttrType::StringList:
      return "string list";
  }
  return "?";
}

const AttrSpec* OpDef::find_attr(std::string_view attr) const {
  for (const AttrSpec& a : attrs)
    if (a.name == attr) return &a;
  return nullptr;
}

int64_t InferContext::i(const std::string& key) const {
  return attr_of<int64_t>(attrs, key);
}
double InferContext::f(const std::string& key) const {
  return attr_of<double>(attrs, key);
}
bool InferContext::b(const std::string& key) const {
  return attr_of<bool>(attrs, key);
}
const std::string& InferContext::s(const std::string& key) const {
  return attr_of<std::string>(attrs, key);
}

const OpDef* find_op(std::string_view name) {
  for (const OpDef& op : registry())
    if (op.name == name) return &op;
  return nullptr;
}

const std::vector<const OpDef*>& all_ops() {
  static const std::vector<const OpDef*> ptrs = [] {
    std::vector<const OpDef*> out;
    for (const OpDef& op : registry()) out.push_back(&op);
    return out;
  }();
  return ptrs;
}

const OpDef& training_loss_op() {
  static const OpDef* loss = [] {
    for (const OpDef& op : registry())
      if (op.loss) return &op;
    return static_cast<const OpDef*>(nullptr);  // registry() checked that there is one
  }();
  return *loss;
}

std::string node_label(const Node& n) {
  NAS_CHECK(n.op != nullptr, "node `" + n.name + "` has no op");
  return n.op->label ? n.op->label(n) : n.op->name;
}

std::string complete_attrs(const OpDef& op, Attrs& attrs) {
  for (auto& [key, value] : attrs) {
    const AttrSpec* spec = op.find_attr(key);
    if (spec == nullptr) return unknown_attr_message(op, key);
    if (!coerce(spec->type, value))
      return fmt::format("{} attribute `{}` must be {}, got {}", op.name, key,
                         attr_type_name(spec->type), attr_type_name(type_of(value)));
  }
  for (const AttrSpec& spec : op.attrs) {
    if (attrs.count(spec.name)) continue;
    if (!spec.default_value) return fmt::format("{} requires attribute `{}`", op.name, spec.name);
    attrs.emplace(spec.name, *spec.default_value);
  }
  if (op.resolve_attrs) op.resolve_attrs(attrs);
  return {};
}

bool infer_shape(const OpDef& op, const std::vector<Shape>& in, const Attrs& attrs,
                 const std::function<std::string(size_t)>& describe, Shape& out,
                 std::string& error) {
  error.clear();
  size_t n = in.size();
  if (n < static_cast<size_t>(op.min_inputs) ||
      (op.max_inputs >= 0 && n > static_cast<size_t>(op.max_inputs))) {
    error = arity_message(op, n);
    return false;
  }
  // Every shape reaching an op came out of this function, so the rules may rely on it.
  for (const Shape& s : in)
    NAS_CHECK(!s.empty() && shape_numel(s) >= 1 && shape_numel(s) <= kMaxElements,
              op.name + " got the unchecked input shape " + shape_str(s));
  NAS_CHECK(op.infer != nullptr, "op `" + op.name + "` has no shape rule");
  InferContext ctx{in, attrs, describe, {}};
  if (!ctx.describe) ctx.describe = [&in](size_t i) { return shape_str(in[i]); };
  Shape result;
  if (!op.infer(ctx, result)) {
    NAS_CHECK(!ctx.error.empty(), "op `" + op.name + "` failed without a message");
    error = std::move(ctx.error);
    return false;
  }
  for (int64_t d : result) NAS_CHECK(d >= 1, "op `" + op.name + "` inferred " + shape_str(result));
  if (shape_numel(result) > kMaxElements) {
    error = fmt::format("tensors are limited to 2^40 elements per sample, but {} would produce {}",
                        op.name, shape_str(result));
    return false;
  }
  out = std::move(result);
  return true;
}

OpCost op_cost(const OpDef& op, const std::vector<Shape>& in, const Shape& out, const Attrs& a) {
  OpCost cost = op.cost ? op.cost(in, out, a) : OpCost{};
  cost.params = 0;
  if (op.params)
    for (const ParamDecl& p : op.params(in, out, a)) {
      if (!p.trainable) continue;
      int64_t elements = 1;
      for (int64_t d : p.shape) elements = ops::sat_mul(elements, d);
      cost.params = ops::sat_add(cost.params, elements);
    }
  return cost;
}

OpCost node_cost(const Graph& g, const Node& n) {
  NAS_CHECK(n.op != nullptr, "node `" + n.name + "` has no op");
  return op_cost(*n.op, input_shapes(g, n), n.shape, n.attrs);
}

std::vector<ParamDecl> node_params(const Graph& g, const Node& n) {
  NAS_CHECK(n.op != nullptr, "node `" + n.name + "` has no op");
  if (!n.op->params) return {};
  return n.op->params(input_shapes(g, n), n.shape, n.attrs);
}

}  // namespace nas
