#include "compiler/passes/genotype.h"

#include <algorithm>
#include <numeric>

#include "compiler/ir/op_registry.h"

namespace nas {
std::vector<int> group_of_nodes(const Graph& g) {
  std::vector<int> group(g.nodes.size(), -1);
  for (size_t i = 0; i < g.arch.size(); ++i)
    for (int id : g.arch[i].nodes) group[id] = static_cast<int>(i);
  return group;
}

std::vector<int> darts_node_edges(const Graph& g, const Node& n,
                                  const std::vector<int>& group_of_node) {
  if (n.op->name != "add" || n.inputs.size() < 2) return {};
  std::vector<int> edges;
  for (int in : n.inputs) {
    const int gi = group_of_node[in];
    if (gi < 0 || g.arch[gi].k != 1) return {};
    edges.push_back(gi);
  }
  std::vector<int> sorted = edges;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return {};
  return edges;
}

std::string edge_weights_key(const std::vector<std::string>& edge_keys) {
  std::string key = "edges:";
  for (size_t i = 0; i < edge_keys.size(); ++i) key += (i ? "," : "") + edge_keys[i];
  return key;
}

namespace {

// The best non-zero candidate of group `gi` and its probability (Zero only when alone).
std::pair<int, double> best_nonzero(const std::vector<double>& p, int zero) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(p.size()); ++i)
    if (i != zero && (best < 0 || p[i] > p[best])) best = i;
  if (best < 0) return {zero, p[zero]};
  return {best, p[best]};
}

}  // namespace

int zero_candidate(const Graph& g, int group) {
  const ArchGroup& a = g.arch.at(group);
  int found = -1;
  for (size_t c = 0; c < a.candidates.size(); ++c) {
    bool all_zero = !a.nodes.empty();
    for (int id : a.nodes) all_zero = all_zero && is_zero(g.nodes[g.nodes[id].inputs[c]]);
    if (all_zero) {
      found = static_cast<int>(c);
      break;
    }
  }
  return found;
}

Selection derive_genotype(const Graph& g, const std::vector<std::vector<double>>& probs,
                          const GenotypeOptions& options) {
  // The searcher's probabilities come from the same space's plan.
  NAS_CHECK(probs.size() == g.arch.size(),
            "genotype: probabilities for " + std::to_string(probs.size()) +
                " choices, the space has " + std::to_string(g.arch.size()));
  for (size_t i = 0; i < g.arch.size(); ++i)
    NAS_CHECK(probs[i].size() == g.arch[i].candidates.size(),
              "genotype: choice `" + g.arch[i].key + "` has " +
                  std::to_string(g.arch[i].candidates.size()) + " candidates, got " +
                  std::to_string(probs[i].size()) + " probabilities");
  const std::vector<int> group = group_of_nodes(g);
  std::vector<int> zero(g.arch.size());
  for (size_t i = 0; i < g.arch.size(); ++i) zero[i] = zero_candidate(g, static_cast<int>(i));
  Selection sel;
  sel.chosen.assign(g.arch.size(), {});

  // DARTS nodes: top-k edges by their strongest non-zero candidate.
  for (const Node& n : g.nodes) {
    const std::vector<int> edges = darts_node_edges(g, n, group);
    if (edges.empty()) continue;
    bool decided = false;
    for (int gi : edges) decided = decided || !sel.chosen[gi].empty();
    if (decided) continue;  // a shared key: its first node decided it
    std::vector<double> strength(edges.size());
    for (size_t e = 0; e < edges.size(); ++e)
      strength[e] = best_nonzero(probs[edges[e]], zero[edges[e]]).second;
    std::vector<std::string> keys;
    for (int gi : edges) keys.push_back(g.arch[gi].key);
    auto weights = options.edge_weights.find(edge_weights_key(keys));
    if (weights != options.edge_weights.end()) {
      NAS_CHECK(weights->second.size() == edges.size(),
                "genotype: " + weights->first + " has " + std::to_string(weights->second.size()) +
                    " edge weights for " + std::to_string(edges.size()) + " edges");
      for (size_t e = 0; e < edges.size(); ++e) strength[e] *= weights->second[e];
    }
    std::vector<size_t> order(edges.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return strength[a] > strength[b]; });
    for (size_t r = 0; r < order.size(); ++r) {
      int gi = edges[order[r]];
      bool keep = static_cast<int>(r) < options.edges_per_node || zero[gi] < 0;
      sel.chosen[gi] = {keep ? best_nonzero(probs[gi], zero[gi]).first : zero[gi]};
    }
  }
  // The rest: argmax non-zero, or the k most probable for a join.
  for (size_t gi = 0; gi < g.arch.size(); ++gi) {
    if (!sel.chosen[gi].empty()) continue;
    const ArchGroup& a = g.arch[gi];
    if (a.k == 1) {
      sel.chosen[gi] = {best_nonzero(probs[gi], zero[gi]).first};
      continue;
    }
    std::vector<int> order(a.candidates.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int x, int y) { return probs[gi][x] > probs[gi][y]; });
    order.resize(a.k);
    std::sort(order.begin(), order.end());
    sel.chosen[gi] = order;
  }
  return sel;
}

}  // namespace nas
