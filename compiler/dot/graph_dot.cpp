#include "compiler/dot/graph_dot.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "compiler/ir/op_registry.h"

namespace nas {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// The short label of a node (OpDef::label: op and the attributes a reader looks for) and
// its shape.
std::string label(const Node& n) {
  // DOT label: escape the text first, then join the lines with DOT's own "\\n".
  return escape(node_label(n)) + "\\n" + shape_str(n.shape);
}

// The style follows what a node is: the input, a choice, a zero, a layer with weights, or
// one with running statistics (batch norm), from the op's step and parameters.
const char* style(const Graph& g, const Node& n) {
  const StepKind step = n.op->step;
  if (step == StepKind::Input) return "shape=oval, style=filled, fillcolor=\"#dddddd\"";
  if (step == StepKind::Choice) return "shape=diamond, style=filled, fillcolor=\"#ffe08a\"";
  if (step == StepKind::Zero)
    return "shape=box, style=\"rounded,dashed\", color=\"#999999\", fontcolor=\"#999999\"";
  const std::vector<ParamDecl> params = node_params(g, n);
  if (std::any_of(params.begin(), params.end(), [](const ParamDecl& p) { return !p.trainable; }))
    return "shape=box, style=\"rounded,filled\", fillcolor=\"#e3f5d8\"";
  if (!params.empty()) return "shape=box, style=\"rounded,filled\", fillcolor=\"#cfe3ff\"";
  return "shape=box, style=rounded";
}

// A tree of clusters keyed by path prefix: a choice node named P owns the prefix P, and
// each of its candidates c owns P/c.
struct Cluster {
  std::string title;
  bool is_choice = false;
  std::vector<int> nodes;
  std::map<std::string, Cluster> children;  // by prefix
};

}  // namespace

std::string graph_to_dot(const Graph& g) {
  // Prefixes of every choice and candidate.
  std::map<std::string, std::pair<std::string, bool>> prefixes;  // prefix -> (title, is_choice)
  for (const Node& n : g.nodes) {
    if (!is_choice(n)) continue;
    prefixes[n.name] = {(n.int_attr("k") > 1 ? "join " : "choice ") + n.string_attr("key"), true};
    for (const auto& c : n.strings_attr("candidates")) prefixes[n.name + "/" + c] = {c, false};
  }
  Cluster root;
  for (const Node& n : g.nodes) {
    // Walk from the root through every prefix of the node's path that is a cluster.
    Cluster* at = &root;
    size_t pos = 0;
    while ((pos = n.name.find('/', pos + 1)) != std::string::npos) {
      std::string prefix = n.name.substr(0, pos);
      auto it = prefixes.find(prefix);
      if (it == prefixes.end()) continue;
      Cluster& child = at->children[prefix];
      child.title = it->second.first;
      child.is_choice = it->second.second;
      at = &child;
    }
    at->nodes.push_back(n.id);
  }

  std::ostringstream out;
  out << "digraph \"" << escape(g.name) << "\" {\n"
      << "  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n"
      << "  edge [color=\"#555555\"];\n  compound=true;\n"
      << "  label=\"" << escape(g.name) << "\"; labelloc=t;\n";
  int cluster_id = 0;
  std::function<void(const Cluster&, int)> emit = [&](const Cluster& c, int depth) {
    std::string indent(depth * 2, ' ');
    for (int id : c.nodes) {
      const Node& n = g.nodes[id];
      out << indent << "n" << id << " [label=\"" << label(n) << "\", tooltip=\"" << escape(n.name)
          << "\", " << style(g, n) << "];\n";
    }
    for (const auto& [prefix, child] : c.children) {
      out << indent << "subgraph cluster_" << cluster_id++ << " {\n"
          << indent << "  label=\"" << escape(child.title) << "\";\n"
          << indent
          << (child.is_choice ? "  style=dashed; color=\"#c79a00\";\n"
                              : "  style=rounded; color=\"#8aa8d8\";\n");
      emit(child, depth + 1);
      out << indent << "}\n";
    }
  };
  emit(root, 1);
  for (const Node& n : g.nodes)
    for (int in : n.inputs) out << "  n" << in << " -> n" << n.id << ";\n";
  out << "  out [label=\"output\", shape=oval, style=filled, fillcolor=\"#dddddd\"];\n";
  if (g.output >= 0) out << "  n" << g.output << " -> out;\n";
  out << "}\n";
  return out.str();
}

RenderResult render_with_graphviz(const std::string& dot_text, const std::string& format,
                                  const std::string& out_path) {
  namespace fs = std::filesystem;
  fs::path tmp = fs::temp_directory_path() / ("nasc-" + std::to_string(::getpid()) + ".dot");
  {
    std::ofstream f(tmp);
    f << dot_text;
    if (!f)
      return {RenderResult::Failed,
              "cannot write a temporary file in " + fs::temp_directory_path().string()};
  }
  pid_t pid = ::fork();
  if (pid < 0) return {RenderResult::Failed, "cannot start graphviz"};
  if (pid == 0) {
    std::string fmt_flag = "-T" + format;
    // Quiet graphviz's own chatter; the exit status says whether it worked.
    std::freopen("/dev/null", "w", stderr);
    ::execlp("dot", "dot", fmt_flag.c_str(), "-o", out_path.c_str(), tmp.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::error_code ec;
  fs::remove(tmp, ec);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    return {RenderResult::GraphvizMissing, "graphviz's `dot` is not installed"};
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return {RenderResult::Failed,
            "graphviz's `dot` could not write " + out_path + " (does its folder exist?)"};
  return {};
}

}  // namespace nas
