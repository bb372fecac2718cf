#include "compiler/passes/memory_plan.h"

#include <algorithm>

#include "compiler/ir/op_registry.h"

namespace nas {
namespace {

// OpDef::view: views always, or only at inference (dropout, which in a training graph, one
// with gradient nodes, applies a mask and gets its own buffer).
bool is_alias_op(const Node& n, bool training) {
  return n.op->view == ViewKind::Always || (n.op->view == ViewKind::Inference && !training);
}

// A graph with gradient nodes (they all name their forward node in `fwd`).
bool is_training_graph(const Graph& g) {
  for (const Node& n : g.nodes)
    if (n.op->find_attr("fwd") != nullptr) return true;
  return false;
}

int64_t align_up(int64_t v) {
  return (v + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

// The storage of every node, and each arena buffer's lifetime, from the graph alone.
// Shared by plan_memory and check_plan.
void assign_storage(const Graph& g, MemoryPlan& plan, const FusionPlan* fusion) {
  const int n = static_cast<int>(g.nodes.size());
  plan.nodes.assign(n, NodeStorage{});
  plan.buffers.clear();
  const bool training = is_training_graph(g);
  for (int id = 0; id < n; ++id) {
    const Node& node = g.nodes[id];
    NodeStorage& s = plan.nodes[id];
    s.root = id;
    if (fusion && fusion->internal(id)) {
      s.kind = StorageKind::Fused;
      s.root = fusion->step_of(id);
    } else if (is_input(node)) {
      s.kind = StorageKind::Input;
    } else if (id == g.output) {
      s.kind = StorageKind::Output;
    } else if (node.op->effect) {
      s.kind = StorageKind::None;
    } else if (is_alias_op(node, training)) {
      // A view of its first input (aux_loss at inference also reads the head's logits).
      NAS_CHECK(!node.inputs.empty() && node.inputs[0] < id, "alias op with bad inputs");
      const NodeStorage& in = plan.nodes[node.inputs[0]];
      s.kind = StorageKind::Alias;
      s.root = in.root;
      s.buffer = in.buffer;
    } else {
      int64_t numel = shape_numel(node.shape), bytes = 0;
      if (numel <= 0 || __builtin_mul_overflow(numel, plan.batch, &bytes) ||
          __builtin_mul_overflow(bytes, plan.bytes_per_element, &bytes) ||
          bytes > INT64_MAX - kArenaAlignment)
        throw UserError(node_place(g, id), "the output of `" + node.name + "` (" +
                                               shape_str(node.shape) + " at batch " +
                                               std::to_string(plan.batch) +
                                               ") is too large to allocate");
      s.kind = StorageKind::Arena;
      s.buffer = static_cast<int>(plan.buffers.size());
      PlannedBuffer b;
      b.node = id;
      b.bytes = bytes;
      b.first = b.last = id;
      plan.buffers.push_back(b);
    }
  }
  // A read of node `id` at step `c` keeps the storage `id` views alive until `c` (until
  // the root's step for a read inside a fused region).
  for (int c = 0; c < n; ++c)
    for (int in : g.nodes[c].inputs) {
      NAS_CHECK(in >= 0 && in < c, "memory plan needs a topologically ordered graph");
      int b = plan.nodes[in].buffer;
      const int step = fusion ? fusion->step_of(c) : c;
      if (b >= 0) plan.buffers[b].last = std::max(plan.buffers[b].last, step);
    }
}

bool lifetimes_overlap(const PlannedBuffer& a, const PlannedBuffer& b) {
  return a.first <= b.last && b.first <= a.last;
}

}  // namespace

MemoryPlan plan_memory(const Graph& g, int64_t batch, int64_t bytes_per_element,
                       const FusionPlan* fusion) {
  // Batch sizes come from checked configs and flags.
  NAS_CHECK(batch >= 1, "memory plan: batch must be at least 1, got " + std::to_string(batch));
  NAS_CHECK(bytes_per_element >= 1, "memory plan: bytes per element must be at least 1, got " +
                                        std::to_string(bytes_per_element));
  NAS_CHECK(g.output >= 0 && g.output < static_cast<int>(g.nodes.size()), "graph has no output");

  MemoryPlan plan;
  plan.batch = batch;
  plan.bytes_per_element = bytes_per_element;
  NAS_CHECK(!fusion || fusion->region_of.size() == g.nodes.size(), "fusion plan of another graph");
  assign_storage(g, plan, fusion);

  // Greedy by size, best-fit gap among the placed buffers whose lifetimes overlap.
  std::vector<int> order(plan.buffers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const PlannedBuffer &x = plan.buffers[a], &y = plan.buffers[b];
    int64_t sx = align_up(x.bytes), sy = align_up(y.bytes);
    if (sx != sy) return sx > sy;
    if (x.first != y.first) return x.first < y.first;
    return x.node < y.node;
  });
  std::vector<int> placed;
  std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) of overlapping placed ones
  for (int i : order) {
    PlannedBuffer& b = plan.buffers[i];
    const int64_t size = align_up(b.bytes);
    busy.clear();
    for (int p : placed)
      if (lifetimes_overlap(b, plan.buffers[p]))
        busy.emplace_back(plan.buffers[p].offset,
                          plan.buffers[p].offset + align_up(plan.buffers[p].bytes));
    std::sort(busy.begin(), busy.end());
    int64_t best = -1, best_gap = INT64_MAX, cursor = 0;
    for (const auto& [start, end] : busy) {
      int64_t gap = start - cursor;
      if (gap >= size && gap < best_gap) {
        best = cursor;
        best_gap = gap;
      }
      cursor = std::max(cursor, end);
    }
    b.offset = best >= 0 ? best : cursor;
    placed.push_back(i);
  }

  for (const PlannedBuffer& b : plan.buffers) {
    plan.peak_bytes = std::max(plan.peak_bytes, b.offset + b.bytes);
    plan.naive_bytes += b.bytes;
  }
  std::vector<int64_t> live(g.nodes.size(), 0);
  for (const PlannedBuffer& b : plan.buffers)
    for (int s = b.first; s <= b.last; ++s) live[s] += b.bytes;
  for (int64_t v : live) plan.live_bytes_max = std::max(plan.live_bytes_max, v);

  std::string problem = check_plan(g, plan, fusion);
  NAS_CHECK(problem.empty(), "invalid memory plan: " + problem);
  return plan;
}

std::string check_plan(const Graph& g, const MemoryPlan& plan, const FusionPlan* fusion) {
  if (plan.batch < 1 || plan.bytes_per_element < 1) return "bad batch or element size";
  MemoryPlan expected;
  expected.batch = plan.batch;
  expected.bytes_per_element = plan.bytes_per_element;
  try {
    assign_storage(g, expected, fusion);
  } catch (const UserError& e) {  // too large: a plan claiming otherwise is wrong
    return e.what();
  }
  if (plan.nodes.size() != expected.nodes.size()) return "wrong number of nodes";
  if (plan.buffers.size() != expected.buffers.size()) return "wrong number of buffers";
  for (size_t id = 0; id < plan.nodes.size(); ++id) {
    const NodeStorage &s = plan.nodes[id], &e = expected.nodes[id];
    if (s.kind != e.kind || s.buffer != e.buffer || s.root != e.root)
      return "wrong storage for %" + std::to_string(id);
  }
  int64_t peak = 0, naive = 0;
  for (size_t i = 0; i < plan.buffers.size(); ++i) {
    const PlannedBuffer &b = plan.buffers[i], &e = expected.buffers[i];
    std::string name = "buffer of %" + std::to_string(b.node);
    if (b.node != e.node || b.bytes != e.bytes) return name + ": wrong node or size";
    if (b.first != e.first || b.last != e.last)
      return name + ": lifetime " + std::to_string(b.first) + ".." + std::to_string(b.last) +
             ", expected " + std::to_string(e.first) + ".." + std::to_string(e.last);
    if (b.offset < 0 || b.offset % kArenaAlignment != 0) return name + ": misaligned offset";
    if (b.offset > INT64_MAX - b.bytes) return name + ": offset overflows";
    peak = std::max(peak, b.offset + b.bytes);
    naive += b.bytes;
  }
  if (peak != plan.peak_bytes) return "wrong peak " + std::to_string(plan.peak_bytes);
  if (naive != plan.naive_bytes) return "wrong naive total";
  // Pairwise, sorted by offset: each buffer against the later-starting ones it could reach.
  std::vector<int> by_offset(plan.buffers.size());
  for (size_t i = 0; i < by_offset.size(); ++i) by_offset[i] = static_cast<int>(i);
  std::sort(by_offset.begin(), by_offset.end(), [&](int a, int b) {
    if (plan.buffers[a].offset != plan.buffers[b].offset)
      return plan.buffers[a].offset < plan.buffers[b].offset;
    return a < b;
  });
  for (size_t i = 0; i < by_offset.size(); ++i) {
    const PlannedBuffer& a = plan.buffers[by_offset[i]];
    for (size_t j = i + 1; j < by_offset.size(); ++j) {
      const PlannedBuffer& b = plan.buffers[by_offset[j]];
      if (b.offset >= a.offset + a.bytes) break;
      if (lifetimes_overlap(a, b))
        return "buffers of %" + std::to_string(a.node) + " and %" + std::to_string(b.node) +
               " are live at the same step and overlap in memory";
    }
  }
  return "";
}

std::string print_plan(const Graph& g, const MemoryPlan& plan) {
  std::string out;
  auto place = [&](const PlannedBuffer& b) {
    return "[offset " + std::to_string(b.offset) + ", " + std::to_string(b.bytes) + " B]";
  };
  for (size_t id = 0; id < g.nodes.size() && id < plan.nodes.size(); ++id) {
    const Node& node = g.nodes[id];
    const NodeStorage& s = plan.nodes[id];
    out += "%" + std::to_string(id) + " " + node.op->name + " -> ";
    int64_t bytes = shape_numel(node.shape) * plan.batch * plan.bytes_per_element;
    switch (s.kind) {
      case StorageKind::Input:
        out += "caller input, " + std::to_string(bytes) + " B";
        break;
      case StorageKind::None:
        out += "no tensor (writes gradients)";
        break;
      case StorageKind::Fused:
        out += "fused into %" + std::to_string(s.root);
        break;
      case StorageKind::Output:
        out += "caller output, " + std::to_string(bytes) + " B";
        break;
      case StorageKind::Alias:
        out += "alias of %" + std::to_string(s.root) + " ";
        if (s.buffer >= 0)
          out += place(plan.buffers[s.buffer]);
        else
          out +=
              plan.nodes[s.root].kind == StorageKind::Input ? "(caller input)" : "(caller output)";
        break;
      case StorageKind::Arena: {
        const PlannedBuffer& b = plan.buffers[s.buffer];
        out += place(b) + " live " + std::to_string(b.first) + ".." + std::to_string(b.last);
        break;
      }
    }
    out += "\n";
  }
  out += "arena peak: " + std::to_string(plan.peak_bytes) +
         " bytes (naive: " + std::to_string(plan.naive_bytes) + " bytes, batch " +
         std::to_string(plan.batch) + ")\n";
  return out;
}

}  // namespace nas
