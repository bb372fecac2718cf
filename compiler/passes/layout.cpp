#include "compiler/passes/layout.h"

#include <numeric>

#include "compiler/ir/op_registry.h"

namespace nas {
namespace {

enum class LayoutRole { Fixed, Agnostic, ConvEpilogue };

// Whether node `n` crops or pads: its window is rows and columns of NCHW planes.
bool windowed(const Node& n) {
  return n.op->step == StepKind::Crop || n.op->step == StepKind::CropGrad;
}

// The role of the step that computes node `id` (a region's root, or a node of its own).
LayoutRole step_role(const Graph& g, const FusionPlan& fusion, int id) {
  const int r = fusion.region_of[id];
  if (r >= 0) switch (fusion.regions[r].kind) {
      case RegionKind::ConvEpilogue:
        return LayoutRole::ConvEpilogue;
      case RegionKind::Elementwise:
        for (int member : fusion.regions[r].nodes)
          if (windowed(g.nodes[member])) return LayoutRole::Fixed;
        return LayoutRole::Agnostic;
      default:  // batch norm and pooling kernels index channels of NCHW rows
        return LayoutRole::Fixed;
    }
  const Node& n = g.nodes[id];
  const bool alias =
      n.op->view != ViewKind::None && n.inputs.size() == 1 && g.nodes[n.inputs[0]].shape == n.shape;
  if (alias || n.op->step == StepKind::Zero || (is_fusable_elementwise(g, n) && !windowed(n)))
    return LayoutRole::Agnostic;
  return LayoutRole::Fixed;
}

struct Groups {
  std::vector<int> parent;
  explicit Groups(int n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int find(int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void join(int a, int b) { parent[find(a)] = find(b); }
};

}  // namespace

std::vector<Layout> assign_layouts(const Graph& g, const FusionPlan& fusion) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<Layout> layout(n, Layout::NCHW);
  if (!is_inference_graph(g)) return layout;
  Groups groups(n);
  // fixed[v]: v must be NCHW (an NCHW step writes or reads it, or it is not an image, or
  // the caller's); written_by_conv[v]: a conv epilogue writes it.
  std::vector<char> fixed(n, 0), written_by_conv(n, 0);
  for (const Node& node : g.nodes) {
    if (node.op->effect || fusion.internal(node.id)) continue;
    const LayoutRole role = step_role(g, fusion, node.id);
    fixed[node.id] = role == LayoutRole::Fixed || node.shape.size() != 3;
    written_by_conv[node.id] = role == LayoutRole::ConvEpilogue;
  }
  for (int in : g.inputs) fixed[in] = 1;
  if (g.output >= 0) fixed[g.output] = 1;
  for (const Node& c : g.nodes) {
    // c's inputs are read by its region's root step (c's own step when it is in none).
    const int step = fusion.step_of(c.id);
    const int region = fusion.region_of[c.id];
    const LayoutRole role = step_role(g, fusion, step);
    for (int in : c.inputs) {
      if (region >= 0 && fusion.region_of[in] == region) continue;  // inside: never stored
      if (role == LayoutRole::Fixed) fixed[in] = 1;
      if (role == LayoutRole::Agnostic) groups.join(in, step);
    }
  }
  std::vector<char> group_fixed(n, 0), group_written(n, 0);
  for (int id = 0; id < n; ++id) {
    const int root = groups.find(id);
    group_fixed[root] = group_fixed[root] || fixed[id];
    group_written[root] = group_written[root] || written_by_conv[id];
  }
  for (const Node& node : g.nodes) {
    if (node.op->effect || fusion.internal(node.id)) continue;
    const int root = groups.find(node.id);
    if (group_written[root] && !group_fixed[root]) layout[node.id] = Layout::NHWC;
  }
  return layout;
}

}  // namespace nas
