#include "compiler/passes/dce.h"

#include "compiler/passes/live_mask.h"

namespace nas {

Graph compact(const Graph& g, const std::vector<char>& keep) {
  Graph out;
  out.name = g.name;
  out.params = g.params;
  std::vector<int> remap(g.nodes.size(), -1);
  for (const Node& n : g.nodes) {
    if (!keep[n.id]) continue;
    Node copy = n;
    copy.id = static_cast<int>(out.nodes.size());
    copy.inputs.clear();
    for (int in : n.inputs) {
      if (remap[in] < 0) {
        // Only a Zero may lose its input: it cuts the graph there.
        NAS_CHECK(is_zero(n), "kept node " + n.name + " has a dropped input");
        continue;
      }
      copy.inputs.push_back(remap[in]);
    }
    if (is_zero(n) && copy.inputs.empty())
      copy.attrs["shape"] = n.shape;  // shape no longer derivable
    remap[n.id] = copy.id;
    out.nodes.push_back(std::move(copy));
  }
  for (int id : g.inputs)
    if (remap[id] >= 0) out.inputs.push_back(remap[id]);
  out.output = g.output >= 0 ? remap[g.output] : -1;
  for (const ArchGroup& group : g.arch) {
    ArchGroup copy = group;
    copy.nodes.clear();
    for (int id : group.nodes)
      if (remap[id] >= 0) copy.nodes.push_back(remap[id]);
    if (!copy.nodes.empty()) out.arch.push_back(std::move(copy));
  }
  return out;
}

Graph eliminate_dead_code(const Graph& g) {
  // Reachability in the supernet: every candidate of a choice counts as used.
  std::vector<char> keep = supernet_mask(g);
  // A kept Zero keeps its input only if something else needs it; supernet_mask already
  // stops at Zero, so the input is kept exactly when another live node uses it.
  return compact(g, keep);
}

}  // namespace nas
