#include "compiler/passes/fusion.h"

#include <algorithm>

#include "compiler/ir/op_registry.h"
#include "support/errors.h"

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
  // A crop and its gradient read their image input through a window (fusion.h).
  if (n.op->step == StepKind::Crop || n.op->step == StepKind::CropGrad)
    return n.inputs.size() == 1 && n.shape.size() == 3 &&
           (n.op->step == StepKind::Crop || has_fwd(n));
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
    case StepKind::Dropout:  // in a training graph (at inference a view: see plan_fusion)
      return n.inputs.size() == 1;
    case StepKind::DropoutGrad:
      return has_fwd(n) && n.inputs.size() == 1;
    default:
      return false;
  }
}

bool FusionPlan::internal(int id) const {
  const int r = region_of[id];
  if (r < 0 || regions[r].root() == id) return false;
  const std::vector<int>& stored = regions[r].stored;
  return std::find(stored.begin(), stored.end(), id) == stored.end();
}

FusionPlan no_fusion(const Graph& g) {
  FusionPlan plan;
  plan.region_of.assign(g.nodes.size(), -1);
  return plan;
}

bool is_inference_graph(const Graph& g) {
  for (const Node& n : g.nodes)
    if (has_fwd(n)) return false;
  return true;
}

namespace {

// Which nodes may join regions: consumers, and whether a node takes memory of its own.
struct FusionContext {
  const Graph& g;
  std::vector<int> consumer;  // the only consumer, -1 for none, -2 for several (or an output)
  std::vector<char> storage_free;
  std::vector<int> forward_readers;  // how many forward nodes read each node

  explicit FusionContext(const Graph& graph) : g(graph) {
    const int n = static_cast<int>(g.nodes.size());
    const int boundary = loss_boundary(g);
    consumer.assign(n, -1);
    forward_readers.assign(n, 0);
    for (const Node& c : g.nodes)
      for (size_t i = 0; i < c.inputs.size(); ++i) {
        const int in = c.inputs[i];
        consumer[in] = consumer[in] == -1 || consumer[in] == c.id ? c.id : -2;
        const bool repeated =
            std::find(c.inputs.begin(), c.inputs.begin() + i, in) != c.inputs.begin() + i;
        if (c.id < boundary && !repeated) ++forward_readers[in];
      }
    if (g.output >= 0) consumer[g.output] = -2;
    for (int in : g.inputs) consumer[in] = -2;
    storage_free.assign(n, 0);
    for (const Node& node : g.nodes)
      storage_free[node.id] = node.op->effect || node.op->view == ViewKind::Always;
  }

  // Whether only nodes without storage lie strictly between `a` and `b` (a < b).
  bool adjacent(int a, int b) const {
    for (int between = a + 1; between < b; ++between)
      if (!storage_free[between]) return false;
    return true;
  }
};

// The conv epilogue that starts at conv node `conv` (fusion.h): the conv, then the chain its
// output flows through. A lone conv comes back alone.
std::vector<int> conv_epilogue(const FusionContext& fc, int conv) {
  const Graph& g = fc.g;
  const Shape& shape = g.nodes[conv].shape;
  std::vector<int> chain{conv};
  bool add_seen = false;
  for (int cur = conv;;) {
    const int next = fc.consumer[cur];
    if (next < 0 || !fc.adjacent(cur, next)) break;
    const Node& n = g.nodes[next];
    if (n.shape != shape || n.op->effect) break;
    const bool batchnorm = n.op->step == StepKind::BatchNorm && cur == conv;
    const bool activation =
        n.op->step == StepKind::Activation && n.op->elementwise != nullptr && n.inputs.size() == 1;
    const bool add = n.op->step == StepKind::Add && !add_seen && n.inputs.size() == 2 &&
                     g.nodes[n.inputs[0]].shape == g.nodes[n.inputs[1]].shape &&
                     n.inputs[0] != n.inputs[1];
    if (!batchnorm && !activation && !add) break;
    add_seen = add_seen || add;
    chain.push_back(next);
    cur = next;
  }
  return chain;
}

bool scalar_activation(const Node& n) {
  return n.op->step == StepKind::Activation && n.op->elementwise != nullptr && n.inputs.size() == 1;
}

// The BatchNorm region of training batchnorm `bn` (fusion.h): bn, the activation right after
// it that is its only forward reader, and the activations after that, each the only consumer of the
// one before. Only bn alone when no activation follows it.
std::vector<int> batchnorm_epilogue(const FusionContext& fc, const std::vector<char>& taken,
                                    int bn) {
  const Graph& g = fc.g;
  std::vector<int> chain{bn};
  if (bn == g.output) return chain;
  const int size = static_cast<int>(g.nodes.size());
  int next = bn + 1;
  while (next < size && fc.storage_free[next]) ++next;  // views and effects between
  if (next >= size || taken[next]) return chain;
  const Node& first = g.nodes[next];
  // The activation must be bn's only forward reader: the region runs under the
  // activation's liveness, which is then bn's (a live mask may not skip a batch norm that
  // another candidate reads).
  if (!scalar_activation(first) || first.inputs[0] != bn || first.shape != g.nodes[bn].shape ||
      fc.forward_readers[bn] != 1)
    return chain;
  chain.push_back(next);
  for (int cur = next;;) {
    const int c = fc.consumer[cur];
    if (c < 0 || taken[c] || !fc.adjacent(cur, c) || !scalar_activation(g.nodes[c])) break;
    chain.push_back(c);
    cur = c;
  }
  return chain;
}

// The BatchNormGrad region ending at batchnorm_grad `grad` (fusion.h): the activation_grad
// or choice_grad_input computing its incoming gradient, or only `grad` alone.
std::vector<int> batchnorm_prologue(const FusionContext& fc, const std::vector<char>& taken,
                                    int grad) {
  const Graph& g = fc.g;
  const int dy = g.nodes[grad].inputs[0];
  const Node& d = g.nodes[dy];
  const bool weighted = d.op->step == StepKind::ChoiceGradInput && d.inputs.size() == 1 &&
                        g.nodes[d.inputs[0]].shape == d.shape;
  const bool computes_dy =
      weighted || (d.op->step == StepKind::ActivationGrad && is_fusable_elementwise(g, d));
  // A choice_grad_input need not be next to its batch norm (autodiff emits a choice's seven
  // together): the one input it keeps live until the region runs is as large as the buffer
  // it no longer needs over the same steps, and the node's gradient it reads stays live
  // across the edge's candidates anyway.
  const bool fits = !taken[dy] && computes_dy && fc.consumer[dy] == grad &&
                    g.nodes[grad].inputs[1] != dy && (weighted || fc.adjacent(dy, grad));
  return fits ? std::vector<int>{dy, grad} : std::vector<int>{grad};
}

// The GlobalAvgPool region ending at global_avg_pool `pool` (fusion.h): the activations
// before it, each the only consumer of the one before and next to it, or `pool` alone.
std::vector<int> pooled_activations(const FusionContext& fc, const std::vector<char>& taken,
                                    int pool) {
  const Graph& g = fc.g;
  std::vector<int> chain{pool};
  for (int cur = pool;;) {
    const int in = g.nodes[cur].inputs[0];
    const Node& a = g.nodes[in];
    if (taken[in] || fc.consumer[in] != cur || !fc.adjacent(in, cur) || !scalar_activation(a) ||
        a.shape != g.nodes[a.inputs[0]].shape)
      break;
    chain.insert(chain.begin(), in);
    cur = in;
  }
  return chain;
}

// Whether a member of region `r` (its root r and the nodes after p whose root is r) reads
// node p's input.
bool read_in_region(const Graph& g, const std::vector<int>& root, int r, int p) {
  const int input = g.nodes[p].inputs[0];
  for (int id = p + 1; id <= r; ++id) {
    if (root[id] != r) continue;
    const std::vector<int>& inputs = g.nodes[id].inputs;
    if (std::find(inputs.begin(), inputs.end(), input) != inputs.end()) return true;
  }
  return false;
}

// root[id] for the elementwise regions, over the nodes no conv epilogue took: the root of
// id's region (itself when alone).
std::vector<int> elementwise_roots(const FusionContext& fc, const std::vector<char>& taken) {
  const Graph& g = fc.g;
  const int n = static_cast<int>(g.nodes.size());
  const int boundary = loss_boundary(g);
  // Dropout is a view of its input at inference (memory_plan.cpp): nothing to compute.
  const bool inference = is_inference_graph(g);
  std::vector<char> fusable(n, 0);
  for (const Node& node : g.nodes)
    fusable[node.id] = !taken[node.id] && is_fusable_elementwise(g, node) &&
                       !(inference && node.op->view == ViewKind::Inference);
  // lowest[r]: the region's lowest member. Descending ids: a node's consumer is decided
  // before the node.
  std::vector<int> root(n, -1), lowest(n, -1);
  std::vector<char> has_crop(n, 0);  // per region root: a crop is in the region
  for (int p = n - 1; p >= 0; --p) {
    root[p] = lowest[p] = p;
    const bool crop = g.nodes[p].op->step == StepKind::Crop;
    has_crop[p] = crop;
    const int c = fc.consumer[p];
    if (!fusable[p] || c < 0 || !fusable[c]) continue;
    if (g.nodes[c].op->step == StepKind::Choice) continue;  // candidates' liveness differs
    // A crop_grad reads the gradient it pads from outside its region.
    if (g.nodes[c].op->step == StepKind::CropGrad) continue;
    if ((p < boundary) != (c < boundary)) continue;
    // Only next to the region (nodes between that take no memory aside): a member's inputs
    // stay live until the root runs, which must not hold them across other buffers. A
    // crop_grad may join from farther: its input, smaller than the output it no longer
    // stores, is what stays live instead (FactorizedReduce's other branch's gradient runs
    // between it and the sum).
    const int r = root[c];
    const bool pads = g.nodes[p].op->step == StepKind::CropGrad;
    if (!pads && !fc.adjacent(p, lowest[r])) continue;
    if (crop && has_crop[r]) continue;  // one crop's window per region
    // A crop_grad reads its input through its window, so no other member may read it.
    if (pads && read_in_region(g, root, r, p)) continue;
    root[p] = r;
    // Nodes joining later must be next to the contiguous part, which a distant crop_grad
    // does not extend.
    if (fc.adjacent(p, lowest[r])) lowest[r] = p;
    has_crop[r] = has_crop[r] || crop;
  }
  return root;
}

// Marks the BatchNormGrad regions that take a mixed op's d/dw product (fusion.h): those
// whose incoming gradient is candidate i's share of a choice with a choice_grad_arch node,
// whose choice reads the batch norm's output as input i, and whose batch norm gradient
// reads that output (from_output).
void take_arch_products(const Graph& g, FusionPlan& plan) {
  std::vector<int> arch_of(g.nodes.size(), -1);  // per choice node: its choice_grad_arch
  for (const Node& n : g.nodes)
    if (n.op->step == StepKind::ChoiceGradArch) arch_of[n.int_attr("fwd")] = n.id;
  for (FusedRegion& region : plan.regions) {
    if (region.kind != RegionKind::BatchNormGrad) continue;
    const Node& share = g.nodes[region.nodes.front()];
    const Node& grad = g.nodes[region.root()];
    if (share.op->step != StepKind::ChoiceGradInput || !grad.bool_attr("from_output")) continue;
    const int choice = static_cast<int>(share.int_attr("fwd"));
    const int bn = static_cast<int>(grad.int_attr("fwd"));
    const int64_t index = share.int_attr("index");
    if (arch_of[choice] >= 0 && grad.inputs[1] == bn && g.nodes[choice].inputs[index] == bn)
      region.arch_grad = arch_of[choice];
  }
}

void add_region(FusionPlan& plan, RegionKind kind, std::vector<int> nodes) {
  std::sort(nodes.begin(), nodes.end());
  const int index = static_cast<int>(plan.regions.size());
  for (int id : nodes) plan.region_of[id] = index;
  plan.regions.push_back({kind, std::move(nodes), {}, {}, -1});
}

}  // namespace

FusionPlan plan_fusion(const Graph& g, const FusionOptions& options) {
  const int n = static_cast<int>(g.nodes.size());
  const FusionContext fc(g);
  FusionPlan plan = no_fusion(g);
  std::vector<char> taken(n, 0);
  if (options.conv_epilogues && is_inference_graph(g))
    for (const Node& node : g.nodes) {
      if (node.op->step != StepKind::Conv || taken[node.id]) continue;
      std::vector<int> chain = conv_epilogue(fc, node.id);
      if (chain.size() < 2) continue;
      for (int id : chain) taken[id] = 1;
      add_region(plan, RegionKind::ConvEpilogue, std::move(chain));
    }

  if (options.batchnorm && !is_inference_graph(g))
    for (const Node& node : g.nodes) {
      if (taken[node.id]) continue;
      std::vector<int> nodes;
      RegionKind kind = RegionKind::BatchNorm;
      if (node.op->step == StepKind::BatchNorm) {
        nodes = batchnorm_epilogue(fc, taken, node.id);
      } else if (node.op->step == StepKind::BatchNormGrad) {
        nodes = batchnorm_prologue(fc, taken, node.id);
        kind = RegionKind::BatchNormGrad;
      }
      if (nodes.size() < 2) continue;
      for (int id : nodes) taken[id] = 1;
      add_region(plan, kind, std::move(nodes));
    }
  if (options.batchnorm) take_arch_products(g, plan);

  if (options.elementwise) {
    const std::vector<int> root = elementwise_roots(fc, taken);
    std::vector<std::vector<int>> members(n);
    for (int id = 0; id < n; ++id)
      if (!taken[id]) members[root[id]].push_back(id);
    for (int r = 0; r < n; ++r)
      if (members[r].size() >= 2) {
        for (int id : members[r]) taken[id] = 1;
        add_region(plan, RegionKind::Elementwise, std::move(members[r]));
      }
  }

  // Last: an elementwise region already saves the buffer a pool would (tiny.nas' relu of
  // a choice).
  for (const Node& node : g.nodes) {
    if (taken[node.id] || node.op->step != StepKind::GlobalAvgPool || node.inputs.size() != 1)
      continue;
    std::vector<int> nodes = pooled_activations(fc, taken, node.id);
    if (nodes.size() < 2) continue;
    for (int id : nodes) taken[id] = 1;
    add_region(plan, RegionKind::GlobalAvgPool, std::move(nodes));
  }

  // Regions in the order their roots run, whatever their kind.
  std::vector<size_t> order(plan.regions.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return plan.regions[a].root() < plan.regions[b].root(); });
  std::vector<FusedRegion> sorted;
  for (size_t i : order) {
    for (int id : plan.regions[i].nodes) plan.region_of[id] = static_cast<int>(sorted.size());
    sorted.push_back(std::move(plan.regions[i]));
  }
  plan.regions = std::move(sorted);

  // What each region reads: values from outside it, and its root (an add may read it).
  for (size_t r = 0; r < plan.regions.size(); ++r) {
    FusedRegion& region = plan.regions[r];
    for (int id : region.nodes)
      for (int in : g.nodes[id].inputs)
        if (plan.region_of[in] != static_cast<int>(r) || in == region.root())
          if (std::find(region.reads.begin(), region.reads.end(), in) == region.reads.end())
            region.reads.push_back(in);
  }
  // Members read from outside their region (or the graph's output) are stored: only a
  // BatchNorm region's batchnorm may be (the others' members have one consumer, inside).
  for (const Node& c : g.nodes)
    for (int in : c.inputs) {
      const int r = plan.region_of[in];
      if (r < 0 || r == plan.region_of[c.id] || plan.regions[r].root() == in) continue;
      std::vector<int>& stored = plan.regions[r].stored;
      NAS_CHECK(plan.regions[r].kind == RegionKind::BatchNorm && in == plan.regions[r].nodes[0],
                "fusion: region member %" + std::to_string(in) + " is read from outside");
      if (std::find(stored.begin(), stored.end(), in) == stored.end()) stored.push_back(in);
    }
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
    out += "]";
    if (region.kind == RegionKind::ConvEpilogue) out += "  conv epilogue";
    if (region.kind == RegionKind::BatchNorm) out += "  batchnorm epilogue";
    if (region.kind == RegionKind::BatchNormGrad) out += "  batchnorm prologue";
    if (region.kind == RegionKind::GlobalAvgPool) out += "  pooled activations";
    if (region.arch_grad >= 0)
      out += ", d/dw for %" + std::to_string(region.arch_grad) + " candidate " +
             std::to_string(g.nodes[region.nodes.front()].int_attr("index"));
    if (!region.stored.empty()) {
      out += ", stores [";
      for (size_t i = 0; i < region.stored.size(); ++i)
        out += (i ? ",%" : "%") + std::to_string(region.stored[i]);
      out += "]";
    }
    out += "\n";
    members += static_cast<int>(region.nodes.size());
    internal += static_cast<int>(region.nodes.size() - 1 - region.stored.size());
  }
  out += "fused: " + std::to_string(plan.regions.size()) + " regions, " + std::to_string(members) +
         " nodes, " + std::to_string(internal) + " values not stored\n";
  return out;
}

}  // namespace nas
