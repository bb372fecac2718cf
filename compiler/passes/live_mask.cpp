#include "compiler/passes/live_mask.h"

#include <string>
#include <unordered_map>

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

LiveMasker::LiveMasker(const Graph& g) : graph_(g), group_(g.nodes.size(), -1) {
  std::unordered_map<std::string, int> by_key;
  for (size_t i = 0; i < g.arch.size(); ++i) by_key[g.arch[i].key] = static_cast<int>(i);
  for (const Node& n : g.nodes) {
    if (!is_choice(n)) continue;
    auto it = by_key.find(n.string_attr("key"));
    NAS_CHECK(it != by_key.end(), "choice node without arch group: " + n.string_attr("key"));
    group_[n.id] = it->second;
  }
}

void LiveMasker::compute(const Selection& sel, std::vector<char>& mask) const {
  const Graph& g = graph_;
  NAS_CHECK(sel.chosen.size() == g.arch.size(), "selection does not match the graph's choices");
  mask.assign(g.nodes.size(), 0);
  if (g.output >= 0) mask[g.output] = 1;
  for (int id : g.inputs) mask[id] = 1;
  // Walk backwards: consumers come after producers, so one reverse pass suffices.
  for (int id = static_cast<int>(g.nodes.size()) - 1; id >= 0; --id) {
    if (!mask[id]) continue;
    const Node& n = g.nodes[id];
    if (is_zero(n)) continue;  // Zero cuts its input
    if (group_[id] >= 0) {
      for (int c : sel.chosen[group_[id]]) mask[n.inputs[c]] = 1;
      continue;
    }
    for (int in : n.inputs) mask[in] = 1;
  }
}

void live_mask_into(const Graph& g, const Selection& sel, std::vector<char>& mask) {
  LiveMasker(g).compute(sel, mask);
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
