// libnasc's write_graph: DOT text to a file, drawn by Graphviz when the extension asks for
// a picture (`nasc graph -o`).
#include <filesystem>
#include <fstream>

#include "compiler/dot/graph_dot.h"
#include "driver/api_internal.h"

namespace nasc {
namespace {

bool write_text(const std::string& path, const std::string& text, nas::Diagnostics& diags) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) {
    diags.error({}, "cannot write \"" + path + "\"");
    return false;
  }
  return true;
}

}  // namespace

GraphFile write_graph(const std::string& dot, const std::string& path) {
  return detail::translate_errors([&] {
    nas::Diagnostics diags;
    GraphFile out;
    out.path = path;
    const std::string ext = std::filesystem::path(path).extension().string();
    const std::string format = ext.empty() ? "" : ext.substr(1);
    if (ext == ".dot" || ext == ".gv") {
      if (!write_text(path, dot, diags)) detail::throw_diagnostics(diags);
      return out;
    }
    if (format != "svg" && format != "png" && format != "pdf") {
      diags.error(
          {}, "cannot tell the output format from \"" + path + "\"; use .dot, .svg, .png or .pdf");
      detail::throw_diagnostics(diags);
    }
    nas::RenderResult rendered = nas::render_with_graphviz(dot, format, path);
    if (rendered.status == nas::RenderResult::GraphvizMissing) {
      // Still useful without Graphviz: the DOT text next to the requested file.
      out.path = std::filesystem::path(path).replace_extension(".dot").string();
      if (!write_text(out.path, dot, diags)) detail::throw_diagnostics(diags);
      diags.warning({}, rendered.message + "; wrote DOT to " + out.path + " instead");
      out.warnings = detail::to_public(diags);
      return out;
    }
    if (rendered.status == nas::RenderResult::Failed) {
      diags.error({}, rendered.message);
      detail::throw_diagnostics(diags);
    }
    out.rendered = true;
    return out;
  });
}

}  // namespace nasc
