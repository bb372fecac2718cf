#include "compiler/passes/remat.h"

#include "compiler/ir/op_registry.h"
#include "compiler/passes/autodiff.h"
#include "support/errors.h"

namespace nas {

std::vector<int> rematerialized_values(const Graph& g) {
  bool has_loss = false;
  for (const Node& n : g.nodes) has_loss = has_loss || n.op->loss;
  if (!has_loss) return {};
  const int forward = forward_node_count(g);
  // Which forward values a backward node reads (the loss, node `forward`, runs at the end
  // of the forward pass: its reads do not count).
  std::vector<char> read_by_backward(forward, 0);
  for (const Node& n : g.nodes)
    if (n.id > forward)
      for (int in : n.inputs)
        if (in < forward) read_by_backward[in] = 1;
  // Start from every candidate, then drop those with an input that would be kept alive
  // only for the recomputation, until none changes: the largest set that keeps nothing
  // alive longer than without it.
  std::vector<char> recompute(forward, 0);
  for (int id = 0; id < forward; ++id) {
    const Node& n = g.nodes[id];
    recompute[id] = n.op->rematerializable && read_by_backward[id] && id != g.output;
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (int id = 0; id < forward; ++id) {
      if (!recompute[id]) continue;
      for (int in : g.nodes[id].inputs) {
        const bool kept = read_by_backward[in] || is_input(g.nodes[in]);
        if (!kept && !recompute[in]) {
          recompute[id] = 0;
          changed = true;
          break;
        }
      }
    }
  }
  std::vector<int> ids;
  for (int id = 0; id < forward; ++id)
    if (recompute[id]) ids.push_back(id);
  return ids;
}

namespace {

class Rematerializer {
 public:
  Rematerializer(const Graph& g, const std::vector<int>& values)
      : in_(g), forward_(forward_node_count(g)) {
    recompute_.assign(forward_, 0);
    for (int id : values) recompute_[id] = 1;
    clone_.assign(forward_, -1);
  }

  Graph run() {
    Graph out = in_;
    out.nodes.clear();
    out_ = &out;
    std::vector<int> new_id(in_.nodes.size(), -1);
    for (const Node& old : in_.nodes) {
      Node n = old;
      if (old.id > forward_) {
        for (int& in : n.inputs) {
          if (in < forward_ && recompute_[in])
            in = clone_of(in);
          else
            in = new_id[in];
        }
      }
      n.id = static_cast<int>(out.nodes.size());
      new_id[old.id] = n.id;
      out.nodes.push_back(std::move(n));
    }
    // The output (the loss) and the graph's inputs are forward nodes: their ids stay.
    return out;
  }

 private:
  // The recompute node of forward value `id`, appended (after those of its own recomputed
  // inputs) the first time a backward node reads it.
  int clone_of(int id) {
    if (clone_[id] >= 0) return clone_[id];
    const Node& fwd = in_.nodes[id];
    std::vector<int> inputs;
    for (int in : fwd.inputs) inputs.push_back(recompute_[in] ? clone_of(in) : in);
    static const OpDef* op = find_op("recompute");
    NAS_CHECK(op != nullptr, "rematerialize: no `recompute` op in the registry");
    Node n;
    n.id = static_cast<int>(out_->nodes.size());
    n.op = op;
    n.inputs = std::move(inputs);
    n.attrs = {{"fwd", int64_t{id}}, {"shape", IntList(fwd.shape.begin(), fwd.shape.end())}};
    std::string err = complete_attrs(*op, n.attrs);
    NAS_CHECK(err.empty(), "rematerialize: " + err);
    n.shape = fwd.shape;
    n.name = fwd.name + "/recompute";
    n.loc = fwd.loc;
    out_->nodes.push_back(std::move(n));
    return clone_[id] = out_->nodes.back().id;
  }

  const Graph& in_;
  const int forward_;
  std::vector<char> recompute_;
  std::vector<int> clone_;  // forward id -> its recompute node in the output, -1 before
  Graph* out_ = nullptr;
};

}  // namespace

Graph rematerialize(const Graph& training) {
  const std::vector<int> values = rematerialized_values(training);
  if (values.empty()) return training;  // no loss, or nothing worth recomputing
  return Rematerializer(training, values).run();
}

}  // namespace nas
