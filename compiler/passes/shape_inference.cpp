#include "compiler/passes/shape_inference.h"

#include "compiler/ir/op_registry.h"

namespace nas {

bool infer_shapes(Graph& g, Diagnostics& diags) {
  bool ok = true;
  std::vector<char> bad(g.nodes.size(), 0);
  for (Node& n : g.nodes) {
    std::vector<Shape> in;
    bool input_bad = false;
    for (int i : n.inputs) {
      NAS_CHECK(i >= 0 && i < n.id, "graph is not topologically ordered at " + n.name);
      in.push_back(g.nodes[i].shape);
      input_bad = input_bad || bad[i];
    }
    if (input_bad) {  // already reported upstream
      bad[n.id] = 1;
      continue;
    }
    std::string err;
    Shape out;
    auto describe = [&](size_t i) {
      const Node& src = g.nodes[n.inputs[i]];
      return shape_str(src.shape) + " from `" + src.name + "` at " + src.loc.str();
    };
    if (!infer_shape(*n.op, in, n.attrs, describe, out, err)) {
      diags.error(n.loc, err, n.name);
      bad[n.id] = 1;
      ok = false;
      continue;
    }
    n.shape = std::move(out);
  }
  return ok;
}

}  // namespace nas
