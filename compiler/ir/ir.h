// The typed graph IR: a DAG of nodes in topological order, each producing one tensor
// with a static per-sample shape (the batch dimension is implicit). Choice nodes select
// among candidate inputs; architecture parameters are grouped by key so that choices
// sharing a key share one parameter. Source locations travel from the AST.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "compiler/ir/diagnostics.h"

namespace nas {

using Shape = std::vector<int64_t>;     // per-sample dims, e.g. {C, H, W} or {F}
std::string shape_str(const Shape& s);  // "[16,32,32]"
int64_t shape_numel(const Shape& s);

using IntList = std::vector<int64_t>;
using StringList = std::vector<std::string>;
using AttrValue = std::variant<int64_t, double, bool, std::string, IntList, StringList>;
using Attrs = std::map<std::string, AttrValue>;  // ordered: printing is stable
std::string attr_str(const AttrValue& v);

struct OpDef;

struct Node {
  int id = -1;                // index in Graph::nodes
  const OpDef* op = nullptr;  // from the op registry
  std::vector<int> inputs;    // node ids
  Attrs attrs;
  Shape shape;       // output shape
  std::string name;  // module instance path, e.g. "cell_2/node_0/edge_1/conv"
  SourceLoc loc;

  int64_t int_attr(const std::string& key) const;
  double float_attr(const std::string& key) const;
  bool bool_attr(const std::string& key) const;
  const std::string& string_attr(const std::string& key) const;
  const StringList& strings_attr(const std::string& key) const;
  bool has_attr(const std::string& key) const { return attrs.count(key) > 0; }
};

// One architecture parameter: the choices that share `key` share one vector of
// `candidates.size()` logits. A join (k > 1) picks k of the candidates.
struct ArchGroup {
  std::string key;
  StringList candidates;
  int k = 1;
  std::vector<int> nodes;  // choice node ids using this group
  SourceLoc loc;           // first declaration
};

struct Graph {
  std::string name;                                         // the network's name
  std::vector<std::pair<std::string, std::string>> params;  // network parameters as resolved
  std::vector<Node> nodes;
  std::vector<int> inputs;  // ids of `input` nodes
  int output = -1;          // id of the output node
  std::vector<ArchGroup> arch;

  const ArchGroup* find_group(const std::string& key) const;
  ArchGroup* find_group(const std::string& key);
  std::vector<std::vector<int>> consumers() const;  // node id -> consumer ids
};

// Where node `id` comes from, for user errors found after the front end (a network that
// cannot train, a tensor too large to plan): its file:line:col, or "network `name`" when
// it has none (a graph parsed from textual IR).
std::string node_place(const Graph& g, int id);

// The ops with a special meaning to the passes.
bool is_choice(const Node& n);
bool is_zero(const Node& n);
bool is_input(const Node& n);

}  // namespace nas
