#include "compiler/passes/partial_channels.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "compiler/ir/op_registry.h"
#include "compiler/passes/genotype.h"

namespace nas {
namespace {

// How the channels that skip the candidates match the candidates' resolution.
enum class Bypass { Same, Pool2, Pool3 };

// A choice whose candidates will see 1/k of the channels.
struct Narrowing {
  int edge_input = -1;   // x, the tensor every candidate reads
  std::set<int> region;  // the candidates' own nodes
  Bypass bypass = Bypass::Same;
};

// The nodes only candidate output `out` of `choice` needs, and the nodes outside them that
// they read (the frontier). Walking down from `out` in descending id order: a node
// belongs when every consumer belongs or is the choice. Consumers have larger ids, so each
// node's consumers are decided before it.
void candidate_region(const Graph& g, const std::vector<std::vector<int>>& consumers, int choice,
                      int out, std::set<int>& region, std::set<int>& frontier) {
  std::set<int, std::greater<int>> pending{out};
  while (!pending.empty()) {
    const int id = *pending.begin();
    pending.erase(pending.begin());
    bool own = true;
    for (int c : consumers[id]) own = own && (c == choice || region.count(c) > 0);
    if (!own || is_input(g.nodes[id])) {
      frontier.insert(id);
      continue;
    }
    region.insert(id);
    for (int in : g.nodes[id].inputs) pending.insert(in);
  }
}

// Whether choice `ch` qualifies (see the header); otherwise says why in `why`.
std::optional<Narrowing> plan_narrowing(const Graph& g,
                                        const std::vector<std::vector<int>>& consumers,
                                        const Node& ch, int64_t k, std::string& why) {
  Narrowing plan;
  std::set<int> frontier;
  for (int out : ch.inputs) {  // each candidate on its own: a node two of them read is x
    std::set<int> own;
    candidate_region(g, consumers, ch.id, out, own, frontier);
    plan.region.insert(own.begin(), own.end());
  }
  if (frontier.size() != 1) {
    std::string read;
    for (int id : frontier) read += (read.empty() ? "`" : ", `") + g.nodes[id].name + "`";
    why = fmt::format("its candidates read {} tensors from outside the choice ({}), not one",
                      frontier.size(), read);
    return std::nullopt;
  }
  plan.edge_input = *frontier.begin();
  for (int id : plan.region)
    if (is_choice(g.nodes[id])) {
      why = "a candidate holds another choice (`" + g.nodes[id].string_attr("key") + "`)";
      return std::nullopt;
    }
  const Shape& in = g.nodes[plan.edge_input].shape;
  const Shape& out = ch.shape;
  if (in.size() != 3 || out.size() != 3) {
    why = "its input " + shape_str(in) + " or output " + shape_str(out) + " is not [C,H,W]";
    return std::nullopt;
  }
  if (in[0] != out[0]) {
    why = fmt::format("its candidates change the channels ({} to {})", in[0], out[0]);
    return std::nullopt;
  }
  if (in[0] % k != 0) {
    why = fmt::format("its {} channels are not a multiple of {}", in[0], k);
    return std::nullopt;
  }
  auto pooled = [&](int64_t kernel, int64_t pad) {
    return (in[1] + 2 * pad - kernel) / 2 + 1 == out[1] &&
           (in[2] + 2 * pad - kernel) / 2 + 1 == out[2];
  };
  if (in[1] == out[1] && in[2] == out[2]) {
    plan.bypass = Bypass::Same;
  } else if (pooled(2, 0)) {
    plan.bypass = Bypass::Pool2;
  } else if (pooled(3, 1)) {
    plan.bypass = Bypass::Pool3;
  } else {
    why =
        "no stride-2 pooling takes its input " + shape_str(in) + " to its output " + shape_str(out);
    return std::nullopt;
  }
  return plan;
}

// Builds the transformed graph node by node, inferring each new node's shape as it goes.
// Every step returns false after reporting a shape that does not check.
class Rewriter {
 public:
  Rewriter(const Graph& g, const PartialChannelsOptions& options,
           const std::map<int, Narrowing>& narrowed, Diagnostics& diags)
      : g_(g),
        k_(options.k),
        edge_normalization_(options.edge_normalization),
        narrowed_(narrowed),
        diags_(diags),
        group_of_(group_of_nodes(g)) {
    out_.name = g.name;
    out_.params = g.params;
    remap_.assign(g.nodes.size(), -1);
    new_choice_.assign(g.nodes.size(), -1);
    owner_.assign(g.nodes.size(), -1);
    edge_input_.assign(g.nodes.size(), 0);
    for (const auto& [choice, plan] : narrowed) {
      for (int id : plan.region) owner_[id] = choice;
      edge_input_[plan.edge_input] = 1;
    }
  }

  // Rewrites every node in order; the result's groups are the original ones, then beta's.
  bool run(PartialChannelsResult& result) {
    for (const Node& n : g_.nodes) {
      bool ok = true;
      std::vector<int> edges;
      if (owner_[n.id] >= 0)
        ok = copy_candidate_node(n);
      else if (narrowed_.count(n.id))
        ok = rebuild_choice(n, narrowed_.at(n.id));
      else if (edge_normalization_ && !(edges = darts_node_edges(g_, n, group_of_)).empty())
        ok = weigh_edges(n, edges);
      else
        ok = copy(n, {}, "") >= 0;
      if (!ok || !split_if_edge_input(n)) return false;
    }
    for (int id : g_.inputs) out_.inputs.push_back(remap_[id]);
    out_.output = remap_[g_.output];
    for (const ArchGroup& group : g_.arch) {
      ArchGroup copy = group;
      for (int& id : copy.nodes) id = new_choice_[id] >= 0 ? new_choice_[id] : remap_[id];
      out_.arch.push_back(std::move(copy));
    }
    for (ArchGroup& group : beta_groups_) {
      result.edge_weights.push_back(group.key);
      out_.arch.push_back(std::move(group));
    }
    result.narrowed = static_cast<int>(narrowed_.size());
    result.graph = std::move(out_);
    return true;
  }

 private:
  // Appends a node; returns its id, or -1 after reporting a shape that does not check.
  int emit(const OpDef* op, std::vector<int> inputs, Attrs attrs, std::string name, SourceLoc loc,
           const std::string& context) {
    NAS_CHECK(op != nullptr, "partial channels: an unknown op");
    Node n;
    n.id = static_cast<int>(out_.nodes.size());
    n.op = op;
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    const std::string attr_error = complete_attrs(*op, n.attrs);
    NAS_CHECK(attr_error.empty(), "partial channels: " + attr_error);
    std::vector<Shape> in;
    for (int i : n.inputs) in.push_back(out_.nodes[i].shape);
    auto describe = [&](size_t i) {
      const Node& src = out_.nodes[n.inputs[i]];
      return shape_str(src.shape) + " from `" + src.name + "`";
    };
    std::string err;
    if (!infer_shape(*op, in, n.attrs, describe, n.shape, err)) {
      diags_.error(loc, context.empty() ? err : context + ": " + err, name);
      return -1;
    }
    n.name = std::move(name);
    n.loc = std::move(loc);
    out_.nodes.push_back(std::move(n));
    return out_.nodes.back().id;
  }

  // A node of the original graph with its inputs remapped (`replace`: the edge input
  // read as its 1/k part) and, with a `context` (inside a candidate), its channel counts
  // narrowed. Returns its new id, or -1.
  int copy(const Node& n, const std::map<int, int>& replace, const std::string& context) {
    std::vector<int> inputs;
    std::vector<Shape> in_shapes;
    for (int in : n.inputs) {
      auto r = replace.find(in);
      inputs.push_back(r != replace.end() ? r->second : remap_[in]);
      in_shapes.push_back(g_.nodes[in].shape);
    }
    Attrs attrs = n.attrs;
    if (!context.empty() && n.op->narrow_channels) {
      const std::string why = n.op->narrow_channels(attrs, in_shapes, k_);
      if (!why.empty()) {
        diags_.error(n.loc,
                     fmt::format("{}: `{}` cannot run on 1/{} of its channels: {}", context,
                                 n.op->name, k_, why),
                     n.name);
        return -1;
      }
    }
    return remap_[n.id] = emit(n.op, inputs, attrs, n.name, n.loc, context);
  }

  std::string context_of(const Node& choice) const {
    return fmt::format("partial channels: choice `{}` rebuilt on {} of its {} channels",
                       choice.string_attr("key"), choice.shape[0] / k_, choice.shape[0]);
  }

  // A candidate's own node, on the 1/k part of the edge input.
  bool copy_candidate_node(const Node& n) {
    const Node& choice = g_.nodes[owner_[n.id]];
    const int x = narrowed_.at(choice.id).edge_input;
    return copy(n, {{x, parts_.at(x).first}}, context_of(choice)) >= 0;
  }

  // The choice over the narrowed candidates, the bypass, concat and shuffle.
  bool rebuild_choice(const Node& n, const Narrowing& plan) {
    const auto [part, rest] = parts_.at(plan.edge_input);
    const std::string context = context_of(n);
    const int mixed = copy(n, {{plan.edge_input, part}}, context);
    if (mixed < 0) return false;
    new_choice_[n.id] = mixed;
    int bypass = rest;
    if (plan.bypass != Bypass::Same) {
      const int64_t kernel = plan.bypass == Bypass::Pool2 ? 2 : 3;
      bypass = emit(find_op("max_pool"), {rest},
                    {{"kernel", kernel}, {"stride", int64_t{2}}, {"pad", kernel - 2}},
                    n.name + "/pc_bypass", n.loc, context);
      if (bypass < 0) return false;
    }
    const int joined =
        emit(find_op("concat"), {mixed, bypass}, {}, n.name + "/pc_concat", n.loc, context);
    if (joined < 0) return false;
    const int shuffled = emit(find_op("channel_shuffle"), {joined}, {{"groups", k_}},
                              n.name + "/pc_shuffle", n.loc, context);
    if (shuffled < 0) return false;
    NAS_CHECK(out_.nodes[shuffled].shape == n.shape,
              "partial channels: choice `" + n.name + "` changed shape");
    remap_[n.id] = shuffled;
    return true;
  }

  // A DARTS node: the softmax(beta)-weighted sum of its edges, a choice over all of them.
  bool weigh_edges(const Node& n, const std::vector<int>& edges) {
    StringList keys;
    for (int gi : edges) keys.push_back(g_.arch[gi].key);
    const std::string key = edge_weights_key(keys);
    if (g_.find_group(key) != nullptr) {
      diags_.error(n.loc,
                   "edge normalisation: this node's edge weights would be keyed `" + key +
                       "`, which a choice of the space already uses; rename that choice",
                   n.name);
      return false;
    }
    std::vector<int> inputs;
    for (int in : n.inputs) inputs.push_back(remap_[in]);
    const int id = emit(find_op("choice"), inputs,
                        {{"key", key}, {"candidates", keys}, {"k", int64_t(keys.size())}}, n.name,
                        n.loc, "edge normalisation");
    if (id < 0) return false;
    remap_[n.id] = id;
    auto [it, fresh] = beta_index_.emplace(key, beta_groups_.size());
    if (fresh) beta_groups_.push_back({key, keys, static_cast<int>(keys.size()), {}, n.loc});
    beta_groups_[it->second].nodes.push_back(id);
    return true;
  }

  // After an edge input: its first C/k channels (into the candidates) and the rest.
  bool split_if_edge_input(const Node& n) {
    if (!edge_input_[n.id]) return true;
    const int64_t c = n.shape[0];
    const int x = remap_[n.id];
    const int part = emit(find_op("channel_slice"), {x}, {{"start", int64_t{0}}, {"count", c / k_}},
                          n.name + "/pc_part", n.loc, "partial channels");
    const int rest = emit(find_op("channel_slice"), {x}, {{"start", c / k_}, {"count", c - c / k_}},
                          n.name + "/pc_rest", n.loc, "partial channels");
    NAS_CHECK(part >= 0 && rest >= 0, "partial channels: a channel slice does not check");
    parts_[n.id] = {part, rest};
    return true;
  }

  const Graph& g_;
  int64_t k_;
  bool edge_normalization_;
  const std::map<int, Narrowing>& narrowed_;  // choice id -> how it narrows
  Diagnostics& diags_;
  std::vector<int> group_of_;
  Graph out_;
  std::vector<int> remap_;        // old id -> the new node standing for it
  std::vector<int> new_choice_;   // narrowed choice id -> its new choice node
  std::vector<int> owner_;        // old id -> the narrowed choice whose candidate owns it
  std::vector<char> edge_input_;  // old id -> whether a narrowed choice's candidates read it
  std::map<int, std::pair<int, int>> parts_;  // edge input -> (its 1/k part, the rest)
  std::map<std::string, size_t> beta_index_;  // beta key -> index in beta_groups_
  std::vector<ArchGroup> beta_groups_;
};

}  // namespace

std::optional<PartialChannelsResult> partial_channels(const Graph& g,
                                                      const PartialChannelsOptions& options,
                                                      Diagnostics& diags) {
  NAS_CHECK(options.k >= 1, "partial channels: k must be at least 1");
  PartialChannelsResult result;
  std::map<int, Narrowing> narrowed;  // choice id -> plan
  if (options.k > 1) {
    const std::vector<std::vector<int>> consumers = g.consumers();
    std::vector<std::pair<const Node*, std::string>> whole;  // and why
    for (const Node& n : g.nodes) {
      if (!is_choice(n)) continue;
      std::string why;
      std::optional<Narrowing> plan = plan_narrowing(g, consumers, n, options.k, why);
      if (plan) {
        narrowed.emplace(n.id, std::move(*plan));
      } else {
        result.kept_whole.push_back(n.string_attr("key") + ": " + why);
        whole.emplace_back(&n, why);
      }
    }
    if (!narrowed.empty())
      for (const auto& [n, why] : whole)
        diags.warning(
            n->loc, "partial channels: choice `" + n->string_attr("key") + "` stays whole: " + why,
            n->name);
    if (narrowed.empty()) {
      diags.error(g.output >= 0 ? g.nodes[g.output].loc : SourceLoc{},
                  fmt::format("partial channels (1/{}): no choice of `{}` qualifies; PC-DARTS "
                              "needs choices whose candidates map one [C,H,W] tensor to C "
                              "channels, C a multiple of {}",
                              options.k, g.name, options.k));
      for (const std::string& why : result.kept_whole) diags.note({}, why);
      return std::nullopt;
    }
  }
  Rewriter rewriter(g, options, narrowed, diags);
  if (!rewriter.run(result)) return std::nullopt;
  return result;
}

}  // namespace nas
