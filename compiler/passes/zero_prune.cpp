#include "compiler/passes/zero_prune.h"

#include <algorithm>

#include "compiler/ir/op_registry.h"
#include "compiler/passes/dce.h"
#include "compiler/passes/live_mask.h"

namespace nas {
namespace {

// OpDef::zero_preserving: f(zeros) == zeros, so that zero inputs make a zero output.
// Batch norm is not: with an affine shift its output is not zero.
bool preserves_zero(const Node& n) {
  return n.op->zero_preserving;
}

}  // namespace

Graph zero_prune(const Graph& g, const Selection& sel) {
  NAS_CHECK(sel.chosen.size() == g.arch.size(), "selection does not match the graph's choices");
  std::vector<char> live = live_mask(g, sel);

  // Rewrite in place on a copy: `alias[id]` is the node that now stands for id.
  Graph work = g;
  std::vector<int> alias(g.nodes.size());
  for (size_t i = 0; i < alias.size(); ++i) alias[i] = static_cast<int>(i);
  std::vector<char> zero(g.nodes.size(), 0);
  const OpDef* zero_op = find_op("zero");
  const OpDef* add_op = find_op("add");

  auto make_zero = [&](Node& n) {
    // n becomes a zero constant of its own shape; its inputs are cut.
    n.op = zero_op;
    n.inputs.clear();
    n.attrs = {{"stride", int64_t(1)}, {"shape", n.shape}};
    zero[n.id] = 1;
  };

  std::map<std::string, int> group_index;
  for (size_t i = 0; i < g.arch.size(); ++i) group_index[g.arch[i].key] = static_cast<int>(i);

  for (Node& n : work.nodes) {
    if (!live[n.id]) continue;
    for (int& in : n.inputs) in = alias[in];
    if (is_zero(n)) {
      make_zero(n);
      continue;
    }
    if (is_choice(n)) {
      // In candidate order, so that the order of the names in an arch file does not
      // change the network (the order of a sum's inputs).
      std::vector<int> chosen = sel.chosen[group_index.at(n.string_attr("key"))];
      std::sort(chosen.begin(), chosen.end());
      std::vector<int> picked;
      for (int c : chosen)
        if (!zero[n.inputs[c]]) picked.push_back(n.inputs[c]);
      if (picked.empty()) {
        make_zero(n);
      } else if (picked.size() == 1) {
        alias[n.id] = picked[0];
      } else {  // a join of several inputs sums them
        n.op = add_op;
        n.inputs = picked;
        n.attrs.clear();
      }
      continue;
    }
    if (n.op->sums_inputs) {
      std::vector<int> nonzero;
      for (int in : n.inputs)
        if (!zero[in]) nonzero.push_back(in);
      if (nonzero.empty())
        make_zero(n);
      else if (nonzero.size() == 1)
        alias[n.id] = nonzero[0];
      else
        n.inputs = nonzero;
      continue;
    }
    bool all_zero = !n.inputs.empty();
    for (int in : n.inputs) all_zero = all_zero && zero[in];
    if (all_zero && preserves_zero(n)) make_zero(n);
  }

  // Keep what the (re-aliased) output needs. Choice and zero nodes are resolved, so
  // plain reachability is the liveness now.
  work.output = alias[work.output];
  work.arch.clear();
  std::vector<char> keep(work.nodes.size(), 0);
  keep[work.output] = 1;
  for (int id : work.inputs) keep[id] = 1;
  for (int id = static_cast<int>(work.nodes.size()) - 1; id >= 0; --id)
    if (keep[id])
      for (int in : work.nodes[id].inputs) keep[in] = 1;
  return compact(work, keep);
}

}  // namespace nas
