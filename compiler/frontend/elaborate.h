// Elaboration: runs the compile-time part of a .nas program (module calls, let/if/for,
// arithmetic, choices) starting from a `network`, and builds the IR graph with static
// shapes. Shape rules are checked as each node is created, so every shape error is
// reported at the call that made it, with the module instance path.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/frontend/loader.h"
#include "compiler/ir/ir.h"

namespace nas {

struct ElaborateOptions {
  std::string network;  // empty: the only network of the main file
  std::vector<std::pair<std::string, std::string>> overrides;  // --set name=value
  // Limits that turn runaway programs into errors instead of hangs.
  int64_t max_steps = 20'000'000;  // loop iterations + calls + list elements built
  int64_t max_list_size = 1'000'000;
  int max_call_depth = 128;
  int64_t max_nodes = 2'000'000;
};

// Returns the graph, or nullopt with the errors in diags.
std::optional<Graph> elaborate(const Program& program, const ElaborateOptions& options,
                               Diagnostics& diags);

// Names of the networks in the main file, in source order.
std::vector<std::string> network_names(const Program& program);

}  // namespace nas
