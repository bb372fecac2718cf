#include "compiler/passes/layout.h"

namespace nas {
namespace {

bool conv_epilogue_root(const FusionPlan& fusion, int id) {
  const int r = fusion.region_of[id];
  return r >= 0 && fusion.regions[r].kind == RegionKind::ConvEpilogue &&
         fusion.regions[r].root() == id;
}

}  // namespace

std::vector<Layout> assign_layouts(const Graph& g, const FusionPlan& fusion) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<Layout> layout(n, Layout::NCHW);
  if (!is_inference_graph(g)) return layout;
  // channels_last[v]: v is a conv epilogue's result that only conv epilogues read.
  std::vector<char> channels_last(n, 0), read(n, 0);
  for (int id = 0; id < n; ++id) channels_last[id] = conv_epilogue_root(fusion, id);
  for (int out : g.inputs) channels_last[out] = 0;
  if (g.output >= 0) channels_last[g.output] = 0;
  for (const Node& c : g.nodes) {
    // c's inputs are read by its region's root step (c's own step when it is in none).
    const int region = fusion.region_of[c.id];
    const bool by_epilogue = conv_epilogue_root(fusion, fusion.step_of(c.id));
    for (int in : c.inputs) {
      if (region >= 0 && fusion.region_of[in] == region) continue;  // inside: never stored
      read[in] = 1;
      if (!by_epilogue) channels_last[in] = 0;
    }
  }
  for (int id = 0; id < n; ++id)
    if (channels_last[id] && read[id]) layout[id] = Layout::NHWC;
  return layout;
}

}  // namespace nas
