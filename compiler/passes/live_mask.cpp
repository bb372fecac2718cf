#include "compiler/passes/live_mask.h"

namespace nas {

Selection first_candidates(const Graph& g) {
  Selection sel;
  for (const auto& group : g.arch) {
    std::vector<int> picks;
    for (int i = 0; i < group.k; ++i) picks.push_back(i);
    sel.chosen.push_back(std::move(picks));
  }
  return sel;
}

namespace {

// Group index of each choice node, looked up by key once per call.
int group_of(const Graph& g, const Node& n) {
  const std::string& key = n.string_attr("key");
  for (size_t i = 0; i < g.arch.size(); ++i)
    if (g.arch[i].key == key) return static_cast<int>(i);
  NAS_CHECK(false, "choice node without arch group: " + key);
}

}  // namespace

void live_mask_into(const Graph& g, const Selection& sel, std::vector<char>& mask) {
  NAS_CHECK(sel.chosen.size() == g.arch.size(), "selection does not match the graph's choices");
  mask.assign(g.nodes.size(), 0);
  if (g.output >= 0) mask[g.output] = 1;
  for (int id : g.inputs) mask[id] = 1;
  // Walk backwards: consumers come after producers, so one reverse pass suffices.
  for (int id = static_cast<int>(g.nodes.size()) - 1; id >= 0; --id) {
    if (!mask[id]) continue;
    const Node& n = g.nodes[id];
    if (is_zero(n)) continue;
    if (is_choice(n)) {
      for (int c : sel.chosen[group_of(g, n)]) mask[n.inputs[c]] = 1;
      continue;
    }
    for (int in : n.inputs) mask[in] = 1;
  }
}

std::vector<char> live_mask(const Graph& g, const Selection& sel) {
  std::vector<char> mask;
  live_mask_into(g, sel, mask);
  return mask;
}

std::vector<char> supernet_mask(const Graph& g) {
  std::vector<char> mask(g.nodes.size(), 0);
  if (g.output >= 0) mask[g.output] = 1;
  for (int id : g.inputs) mask[id] = 1;
  for (int id = static_cast<int>(g.nodes.size()) - 1; id >= 0; --id)
    if (mask[id] && !is_zero(g.nodes[id]))
      for (int in : g.nodes[id].inputs) mask[in] = 1;
  return mask;
}

}  // namespace nas
