#include "compiler/estimate/latency_units.h"

#include <map>

#include "compiler/ir/op_registry.h"

namespace nas {
namespace {

// Zero-cost steps as the runtime counts them (runtime/estimate/signature.h): inputs and
// the alias ops the memory planner turns into views (OpDef::free_latency).
bool free_node(const Node& n) {
  return n.op->free_latency;
}

}  // namespace

std::vector<int> latency_units(const Graph& g, size_t steps) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<int> parent{-1}, depth{0};  // context 0: the root
  std::map<std::pair<int, int>, int> edge_context;
  std::vector<int> ctx(n, 0);
  std::vector<std::vector<std::pair<int, int>>> readers(n);  // (consumer, slot)
  for (const Node& node : g.nodes) {
    if (is_zero(node)) continue;
    for (size_t j = 0; j < node.inputs.size(); ++j)
      readers[node.inputs[j]].push_back({node.id, static_cast<int>(j)});
  }
  auto lca = [&](int a, int b) {
    while (depth[a] > depth[b]) a = parent[a];
    while (depth[b] > depth[a]) b = parent[b];
    while (a != b) a = parent[a], b = parent[b];
    return a;
  };
  for (int id = n - 1; id >= 0; --id) {
    if (id == g.output || readers[id].empty()) {
      ctx[id] = 0;
      continue;
    }
    int c = -1;
    for (auto [m, slot] : readers[id]) {
      int e = ctx[m];
      if (is_choice(g.nodes[m])) {
        auto [it, fresh] = edge_context.emplace(std::make_pair(m, slot), (int)parent.size());
        if (fresh) {
          parent.push_back(ctx[m]);
          depth.push_back(depth[ctx[m]] + 1);
        }
        e = it->second;
      }
      c = c < 0 ? e : lca(c, e);
    }
    ctx[id] = c;
  }
  // Runs of consecutive steps in one context; choices and inputs end a run.
  std::vector<int> run(steps, -1), costed;
  int current = -1, key = -2;
  for (size_t i = 0; i < steps; ++i) {
    const bool in_graph = i < static_cast<size_t>(n);
    if (in_graph && (is_choice(g.nodes[i]) || is_input(g.nodes[i]))) {
      key = -2;
      continue;
    }
    int k = in_graph ? ctx[i] : 0;
    if (k != key) {
      key = k;
      current = static_cast<int>(costed.size());
      costed.push_back(0);
    }
    run[i] = current;
    if (!in_graph || !free_node(g.nodes[i])) ++costed[current];
  }
  std::vector<int> number(costed.size(), -1);
  int units = 0;
  for (size_t r = 0; r < costed.size(); ++r)
    if (costed[r] >= 1) number[r] = units++;
  for (int& r : run)
    if (r >= 0) r = number[r];
  return run;
}

}  // namespace nas
