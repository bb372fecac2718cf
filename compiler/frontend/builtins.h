// Compile-time builtin functions of the .nas language that do not create graph nodes:
// range, len, str, int, float, min, max, abs, enumerate, zip, append, and the graph
// generator watts_strogatz. (Ops that create nodes live in the op registry.)
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/frontend/value.h"
#include "compiler/ir/diagnostics.h"

namespace nas {

struct BuiltinContext {
  int64_t max_list_size;
  // Reports a located error and unwinds the current statement; never returns.
  std::function<void(const SourceLoc&, const std::string&)> fail;
  // Counts n units of work toward the elaborator's step limit (may not return): for
  // builtins whose work shows in no argument or result size, such as str() of a list
  // that shares sublists, or one whose text is too long.
  std::function<void(int64_t n, const SourceLoc& loc)> charge;
};

bool is_builtin_function(std::string_view name);
std::vector<std::string> builtin_function_names();

// Calls builtin `name` with evaluated positional arguments (none are poison).
Value call_builtin_function(const std::string& name, const std::vector<Value>& args,
                            const SourceLoc& loc, BuiltinContext& ctx);

// The Watts-Strogatz small-world graph on n nodes (each joined to its k nearest ring
// neighbours, each edge rewired with probability p), oriented from the lower to the
// higher index so that it is a DAG, as in randomly wired networks (Xie et al. 2019).
// Deterministic for a seed on every platform. Returns edges (u, v) with u < v, sorted.
std::vector<std::pair<int64_t, int64_t>> watts_strogatz(int64_t n, int64_t k, double p,
                                                        uint64_t seed);

}  // namespace nas
