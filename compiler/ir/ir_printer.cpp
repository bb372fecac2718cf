#include "compiler/ir/ir_printer.h"

#include <filesystem>
#include <sstream>

#include "compiler/ir/op_registry.h"

namespace nas {

std::string print_graph(const Graph& g, const PrintOptions& options) {
  std::ostringstream out;
  out << "network " << g.name << "(";
  for (size_t i = 0; i < g.params.size(); ++i)
    out << (i ? ", " : "") << g.params[i].first << "=" << g.params[i].second;
  out << ") {\n";
  for (const Node& n : g.nodes) {
    out << "  %" << n.id << " = " << n.op->name << "(";
    for (size_t i = 0; i < n.inputs.size(); ++i) out << (i ? ", " : "") << "%" << n.inputs[i];
    out << ")";
    if (!n.attrs.empty()) {
      out << " {";
      bool first = true;
      for (const auto& [key, value] : n.attrs) {
        out << (first ? "" : ", ") << key << "=" << attr_str(value);
        first = false;
      }
      out << "}";
    }
    out << " : " << shape_str(n.shape);
    if (options.names || (options.locations && n.loc.known())) {
      out << "  #";
      if (options.names) out << " " << n.name;
      if (options.locations && n.loc.known())
        out << " @" << std::filesystem::path(n.loc.file->path).filename().string() << ":"
            << n.loc.line << ":" << n.loc.col;
    }
    out << "\n";
  }
  out << "  return %" << g.output << "\n";
  out << "}\n";
  for (const ArchGroup& group : g.arch) {
    out << "arch " << attr_str(group.key) << " k=" << group.k
        << " candidates=" << attr_str(group.candidates) << " nodes=[";
    for (size_t i = 0; i < group.nodes.size(); ++i) out << (i ? "," : "") << "%" << group.nodes[i];
    out << "]\n";
  }
  return out.str();
}

}  // namespace nas
