// The stable textual form of the IR, printed by `nasc ir --stage ir|pruned` and used by
// the pass tests (ir_parser.h reads it back). One node per line:
//
//   %3 = conv(%2) {bias=false, dilation=1, groups=1, kernel=3, out=16, pad=1, stride=1} :
//   [16,32,32]  # stem/conv @darts.nas:12:9
//
// Attributes print in name order; locations print as file:line:col (the file name only,
// so that output does not depend on the working directory).
#pragma once

#include <string>

#include "compiler/ir/ir.h"

namespace nas {

struct PrintOptions {
  bool names = true;      // the `# instance/path` comment
  bool locations = true;  // the `@file:line:col` part of the comment
};

std::string print_graph(const Graph& g, const PrintOptions& options = {});

}  // namespace nas
