#include "compiler/passes/autodiff.h"

#include <fmt/format.h>

#include "compiler/ir/op_registry.h"

namespace nas {
namespace {

class GradBuilder {
 public:
  GradBuilder(const Graph& forward, const AutodiffOptions& options)
      : g_(forward), options_(options), forward_count_(static_cast<int>(forward.nodes.size())) {}

  Graph build(bool backward) {
    // The user's network, not a pass, decides what it returns.
    if (g_.output < 0 || g_.nodes[g_.output].shape.size() != 1)
      throw UserError(
          node_place(g_, g_.output),
          fmt::format("training needs the network to return 1-D logits [classes], but `{}` "
                      "returns {}",
                      g_.name, g_.output < 0 ? "nothing" : shape_str(g_.nodes[g_.output].shape)));
    check_auxiliary_losses();
    mark_requires_grad();
    int logits = g_.output;
    int loss = emit(training_loss_op().name, {logits}, {}, -1);
    g_.output = loss;
    if (!backward) return std::move(g_);
    contributions_.assign(forward_count_, {});
    differentiate_node(loss, -1);  // the loss's rule starts the backward pass, with no dy
    for (int id = forward_count_ - 1; id >= 0; --id) differentiate(id);
    return std::move(g_);
  }

 private:
  // An auxiliary head is scored against the same labels as the network's logits.
  void check_auxiliary_losses() const {
    const Shape& classes = g_.nodes[g_.output].shape;
    for (const Node& n : g_.nodes) {
      if (!n.op->auxiliary_loss) continue;
      const Node& head = g_.nodes[n.inputs[1]];
      if (head.shape != classes)
        throw UserError(node_place(g_, n.id),
                        fmt::format("`{}` scores {} auxiliary logits against the labels, but the "
                                    "network returns {} logits: the head must predict the same "
                                    "classes",
                                    n.name, shape_str(head.shape), shape_str(classes)));
    }
  }

  // requires_grad_[id]: some parameter (or arch parameter) influences node id's value.
  void mark_requires_grad() {
    requires_grad_.assign(forward_count_, 0);
    for (const Node& n : g_.nodes) {
      bool has_params = (options_.weight_grads && !node_params(g_, n).empty()) ||
                        (options_.arch_grads && is_choice(n));
      bool r = has_params;
      for (int in : n.inputs) r = r || requires_grad_[in];
      if (is_zero(n)) r = false;  // zeros whatever its input: no gradient flows through
      requires_grad_[n.id] = r;
    }
  }

  void differentiate(int id) {
    std::vector<int>& parts = contributions_[id];
    if (parts.empty()) return;
    if (!g_.nodes[id].op->grad) return;  // input, zero: no gradient flows further
    differentiate_node(id, parts.size() == 1 ? parts[0] : emit("add", parts, {}, id));
  }

  // Runs node id's gradient rule with `dy` the gradient of its output, and hands what it
  // emits for each input to that input's contributions.
  void differentiate_node(int id, int dy) {
    const Node fwd = g_.nodes[id];  // a copy: emit() grows g_.nodes
    GradContext ctx{fwd, {}, dy, {}, options_.arch_grads, options_.weight_grads, {}, {}};
    for (int in : fwd.inputs) {
      ctx.input_shapes.push_back(g_.nodes[in].shape);
      ctx.needs_input_grad.push_back(requires_grad_[in]);
    }
    ctx.input_grads.assign(fwd.inputs.size(), -1);
    ctx.emit = [this, id](const std::string& op, std::vector<int> inputs, Attrs attrs) {
      return emit(op, std::move(inputs), std::move(attrs), id);
    };
    fwd.op->grad(ctx);
    for (size_t i = 0; i < fwd.inputs.size(); ++i)
      if (ctx.input_grads[i] >= 0) contributions_[fwd.inputs[i]].push_back(ctx.input_grads[i]);
  }

  // Appends a node; `owner` is the forward node it differentiates (-1 for the loss), whose
  // name and location it takes so that messages and profiles point at the user's layer.
  int emit(const std::string& op_name, std::vector<int> inputs, Attrs attrs, int owner) {
    const OpDef* op = find_op(op_name);
    NAS_CHECK(op != nullptr, "autodiff: unknown op " + op_name);
    Node n;
    n.id = static_cast<int>(g_.nodes.size());
    n.op = op;
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    std::string err = complete_attrs(*op, n.attrs);
    NAS_CHECK(err.empty(), "autodiff: " + err);
    std::vector<Shape> in;
    for (int i : n.inputs) in.push_back(g_.nodes[i].shape);
    Shape out;
    NAS_CHECK(infer_shape(*op, in, n.attrs, nullptr, out, err),
              "autodiff: " + op_name + ": " + err);
    n.shape = out;
    const Node* source = owner >= 0 ? &g_.nodes[owner] : &g_.nodes[g_.output];
    n.name = (owner >= 0 ? source->name + "/grad" : std::string("loss"));
    n.loc = source->loc;
    g_.nodes.push_back(std::move(n));
    return g_.nodes.back().id;
  }

  Graph g_;
  AutodiffOptions options_;
  int forward_count_;
  std::vector<char> requires_grad_;
  std::vector<std::vector<int>> contributions_;
};

}  // namespace

Graph build_training_graph(const Graph& forward, const AutodiffOptions& options) {
  return GradBuilder(forward, options).build(true);
}

Graph with_loss(const Graph& forward) {
  return GradBuilder(forward, {}).build(false);
}

int loss_node(const Graph& training) {
  for (const Node& n : training.nodes)
    if (n.op->loss) return n.id;
  NAS_CHECK(false, "not a training graph: no loss node");
  return -1;
}

}  // namespace nas
