#include "compiler/passes/fusion.h"

#include <algorithm>

#include "compiler/ir/op_registry.h"

namespace nas {
namespace {

bool has_fwd(const Node& n) {
  return n.op->find_attr("fwd") != nullptr;
}

// The id of the first loss node: nodes before it are the forward pass.
int loss_boundary(const Graph& g) {
  for (const Node& n : g.nodes)
    if (n.op->loss) return n.id;
  return static_cast<int>(g.nodes.size());
}

}  // namespace

bool is_fusable_elementwise(const Graph& g, const Node& n) {
  if (n.op->effect || n.inputs.empty()) return false;
  for (int in : n.inputs)
    if (g.nodes[in].shape != n.shape) return false;  // no broadcast (mul per channel)
  switch (n.op->step) {
    case StepKind::Activation:
      return n.op->elementwise != nullptr && n.inputs.size() == 1;
    case StepKind::ActivationGrad:
      return has_fwd(n) && g.nodes[n.int_attr("fwd")].op->elementwise != nullptr &&
             n.inputs.size() == 2;
    case StepKind::Scale:
    case StepKind::Add:
    case StepKind::Choice:
      return !has_fwd(n);
    default:
      return false;
  }
}

FusionPlan no_fusion(const Graph& g) {
  FusionPlan plan;
  plan.region_of.assign(g.nodes.size(), -1);
  return plan;
}

FusionPlan plan_fusion(const Graph& g) {
  const int n = static_cast<int>(g.nodes.size());
  const int boundary = loss_boundary(g);
  // consumer[p]: p's only consumer, -1 for none, -2 for several (or the graph's output).
  std::vector<int> consumer(n, -1);
  for (const Node& c : g.nodes)
    for (int in : c.inputs) consumer[in] = consumer[in] == -1 || consumer[in] == c.id ? c.id : -2;
  if (g.output >= 0) consumer[g.output] = -2;
  for (int in : g.inputs) consumer[in] = -2;

  std::vector<char> fusable(n, 0), storage_free(n, 0);
  for (const Node& node : g.nodes) {
    fusable[node.id] = is_fusable_elementwise(g, node) ? 1 : 0;
    storage_free[node.id] = node.op->effect || node.op->view == ViewKind::Always;
  }
  // root[id]: the root of id's region (itself when alone); lowest[r]: the region's lowest
  // member. Descending ids: a node's consumer is decided before the node.
  std::vector<int> root(n, -1), lowest(n, -1);
  for (int p = n - 1; p >= 0; --p) {
    root[p] = lowest[p] = p;
    const int c = consumer[p];
    if (!fusable[p] || c < 0 || !fusable[c]) continue;
    if (g.nodes[c].op->step == StepKind::Choice) continue;  // candidates' liveness differs
    if ((p < boundary) != (c < boundary)) continue;
    // Only next to the region (nodes between that take no memory aside): a member's inputs
    // stay live until the root runs, which must not hold them across other buffers.
    const int r = root[c];
    bool adjacent = true;
    for (int between = p + 1; between < lowest[r] && adjacent; ++between)
      adjacent = storage_free[between] != 0;
    if (!adjacent) continue;
    root[p] = r;
    lowest[r] = p;
  }
  std::vector<int> size(n, 0);
  for (int id = 0; id < n; ++id) ++size[root[id]];

  FusionPlan plan = no_fusion(g);
  std::vector<int> region_of_root(n, -1);
  for (int id = 0; id < n; ++id) {
    const int r = root[id];
    if (size[r] < 2) continue;
    if (region_of_root[r] < 0) {
      region_of_root[r] = static_cast<int>(plan.regions.size());
      plan.regions.emplace_back();
    }
    plan.region_of[id] = region_of_root[r];
    plan.regions[region_of_root[r]].nodes.push_back(id);
  }
  for (FusedRegion& region : plan.regions)
    for (int id : region.nodes)
      for (int in : g.nodes[id].inputs)
        if (root[in] != region.root() || size[root[in]] < 2 || in == region.root())
          if (std::find(region.reads.begin(), region.reads.end(), in) == region.reads.end())
            region.reads.push_back(in);
  return plan;
}

std::string print_fusion(const Graph& g, const FusionPlan& plan, const PrintOptions& print) {
  std::string out = print_graph(g, print);
  int members = 0, internal = 0;
  for (size_t r = 0; r < plan.regions.size(); ++r) {
    const FusedRegion& region = plan.regions[r];
    const Node& root = g.nodes[region.root()];
    out += "fused #" + std::to_string(r) + " %" + std::to_string(root.id) + " " + root.op->name +
           " <-";
    for (size_t i = 0; i + 1 < region.nodes.size(); ++i) {
      const Node& m = g.nodes[region.nodes[i]];
      out += std::string(i ? ", " : " ") + "%" + std::to_string(m.id) + " " + m.op->name;
    }
    out += "  reads [";
    for (size_t i = 0; i < region.reads.size(); ++i)
      out += (i ? ",%" : "%") + std::to_string(region.reads[i]);
    out += "]\n";
    members += static_cast<int>(region.nodes.size());
    internal += static_cast<int>(region.nodes.size()) - 1;
  }
  out += "fused: " + std::to_string(plan.regions.size()) + " regions, " + std::to_string(members) +
         " nodes, " + std::to_string(internal) + " values not stored\n";
  return out;
}

}  // namespace nas
