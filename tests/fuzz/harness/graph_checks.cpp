#include "tests/fuzz/harness/graph_checks.h"

#include <string>

#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

void check_graph(const nas::Graph& g, const char* which) {
  const int n = static_cast<int>(g.nodes.size());
  auto node = [&](int id) { return id >= 0 && id < n; };
  if (!node(g.output))
    bug("graph output is not a node", std::string(which) + ": output " + std::to_string(g.output) +
                                          " of " + std::to_string(n) + " nodes");
  for (int id : g.inputs)
    if (!node(id)) bug("graph input is not a node", which);
  for (int i = 0; i < n; ++i) {
    const nas::Node& nd = g.nodes[i];
    if (nd.id != i) bug("node id differs from its position", which);
    if (!nd.op) bug("node without an op", which);
    for (int in : nd.inputs)
      if (!(in >= 0 && in < i))
        bug("edge not from an earlier node",
            std::string(which) + ": %" + std::to_string(in) + " -> %" + std::to_string(i));
  }
  for (const auto& group : g.arch) {
    if (group.k < 1 || group.k > static_cast<int>(group.candidates.size()))
      bug("group k out of range", group.key);
    for (int id : group.nodes)
      if (!node(id)) bug("group node is not a node", group.key);
  }
}

}  // namespace nas_fuzz
