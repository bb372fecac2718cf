#include "compiler/passes/cse.h"

#include <map>
#include <string>
#include <tuple>

#include "compiler/ir/op_registry.h"
#include "compiler/passes/dce.h"

namespace nas {
namespace {

// OpDef::cse_mergeable: false for ops with parameters, state or randomness, and gradients.
bool mergeable(const Node& n) {
  return n.op->cse_mergeable;
}

}  // namespace

Graph eliminate_common_subexpressions(const Graph& g) {
  Graph out = g;
  std::vector<int> canonical(g.nodes.size());
  std::map<std::tuple<std::string, std::vector<int>, std::string>, int> seen;
  bool merged = false;
  for (Node& n : out.nodes) {
    for (int& in : n.inputs) in = canonical[in];
    canonical[n.id] = n.id;
    if (!mergeable(n)) continue;
    std::string attrs;
    for (const auto& [k, v] : n.attrs) attrs += k + "=" + attr_str(v) + ";";
    auto key = std::make_tuple(n.op->name, n.inputs, attrs);
    auto [it, inserted] = seen.emplace(key, n.id);
    if (!inserted) {
      canonical[n.id] = it->second;
      merged = true;
    }
  }
  if (!merged) return out;
  out.output = canonical[out.output];
  return eliminate_dead_code(out);
}

}  // namespace nas
