// The compiler pipeline in one place: the order of the stages and passes from .nas text
// to a shape-checked supernet graph, and from a supernet plus a selection to a fixed
// network. `nasc`, the tests and (later) the runtime all go through these functions.
//
//   load (parse + imports) -> elaborate (build IR, check shapes as built)
//     -> infer_shapes (re-check the whole graph) -> eliminate_dead_code   = supernet
//   supernet + selection -> zero_prune -> infer_shapes                    = fixed network
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/frontend/elaborate.h"
#include "compiler/frontend/loader.h"
#include "compiler/ir/ir.h"
#include "compiler/passes/selection.h"

namespace nas {

struct CompileOptions {
  std::vector<std::string> include_paths;  // -I folders, searched before the stdlib
  ElaborateOptions elaborate;
};

struct Compilation {
  std::unique_ptr<Program> program;  // the AST, kept for `nasc ir --stage ast`
  std::optional<Graph> supernet;     // set when elaboration and checks succeeded
};

// Runs the front end on a file (or on given text, for tests and fuzzing), on a thread
// with a large stack. Never throws for bad input: every problem is a diagnostic. Stops after the
// parse stage when `parse_only` is set.
Compilation compile_file(const std::string& path, const CompileOptions& options, Diagnostics& diags,
                         bool parse_only = false);
Compilation compile_text(const std::string& path, std::string text, const CompileOptions& options,
                         Diagnostics& diags, bool parse_only = false);

// Fixed network for a selection (zero-pruned, shapes re-checked).
Graph specialise(const Graph& supernet, const Selection& sel);

// Runs fn on a thread with a large stack: the parser and the evaluator recurse, and a
// legitimate but deeply nested file must not depend on the caller's stack size.
void run_with_large_stack(const std::function<void()>& fn);

}  // namespace nas
