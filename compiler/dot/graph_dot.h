// Graphviz rendering of an IR graph (`nasc graph`). Candidates are grouped visually:
// one dashed cluster per choice, one cluster per candidate inside it, found from the
// module instance paths. A fixed (pruned) network has no choices and draws plainly.
#pragma once

#include <string>

#include "compiler/ir/ir.h"

namespace nas {

std::string graph_to_dot(const Graph& g);

// Runs graphviz's `dot` to turn DOT text into `format` (svg, png, pdf) at out_path.
struct RenderResult {
  enum Status { Ok, GraphvizMissing, Failed } status = Ok;
  std::string message;  // what went wrong, when status != Ok
};
RenderResult render_with_graphviz(const std::string& dot_text, const std::string& format,
                                  const std::string& out_path);

}  // namespace nas
