// fuzz_arch: architecture files (parse_arch, what `--arch A.json` reads), against three
// compiled spaces: examples/darts.nas (an op choice per cell edge), examples/mobilenet.nas
// (per-layer op choices) and examples/zoph.nas (joins: k = 2 of several inputs), compiled
// once. A selection that parses must be valid for its space (one list of exactly k
// distinct candidate indices per group), must survive the arch_to_json -> parse_arch round
// trip, and must give a fixed network (derive_fixed_network) without choices that passes
// the graph checks.
#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "compiler/ir/diagnostics.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "tests/fuzz/harness/graph_checks.h"
#include "tests/fuzz/harness/harness.h"

#ifndef NASC_SOURCE_DIR
#error "NASC_SOURCE_DIR must be defined (tests/fuzz/CMakeLists.txt and tests/CMakeLists.txt do it)"
#endif

namespace nas_fuzz {

namespace {

struct Space {
  const char* name;
  nas::Graph supernet;
};

const std::vector<Space>& spaces() {
  static const std::vector<Space> compiled = [] {
    std::vector<Space> out;
    for (const char* name : {"darts", "mobilenet", "zoph"}) {
      nas::Diagnostics diags;
      nas::Compilation c =
          nas::compile_file(std::string(NASC_SOURCE_DIR) + "/examples/" + name + ".nas", {}, diags);
      if (!c.supernet)
        bug("arch harness", std::string("examples/") + name + ".nas does not compile");
      out.push_back({name, std::move(*c.supernet)});
    }
    return out;
  }();
  return compiled;
}

void check_selection(const nas::Graph& g, const nas::Selection& sel, const std::string& space) {
  if (sel.chosen.size() != g.arch.size())
    bug("parse_arch", space + ": selection has " + std::to_string(sel.chosen.size()) +
                          " groups, the space " + std::to_string(g.arch.size()));
  for (size_t i = 0; i < sel.chosen.size(); ++i) {
    const nas::ArchGroup& group = g.arch[i];
    std::vector<int> picks = sel.chosen[i];
    std::sort(picks.begin(), picks.end());
    if (static_cast<int>(picks.size()) != group.k ||
        std::adjacent_find(picks.begin(), picks.end()) != picks.end() ||
        (!picks.empty() &&
         (picks.front() < 0 || picks.back() >= static_cast<int>(group.candidates.size()))))
      bug("parse_arch", space + ": group \"" + group.key + "\" got an invalid pick");
  }
}

void exercise(const nas::Graph& g, const nas::Selection& sel, const std::string& space) {
  check_selection(g, sel, space);
  const std::string json = nas::arch_to_json(g, sel);
  nas::Diagnostics diags;
  std::optional<nas::Selection> back = nas::parse_arch(g, "written-arch.json", json, diags);
  if (!back) bug("arch round trip", space + ": parse_arch refuses arch_to_json's " + json);
  for (size_t i = 0; i < sel.chosen.size(); ++i) {
    std::vector<int> a = sel.chosen[i], b = back->chosen[i];
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) bug("arch round trip", space + ": the selection read back differs: " + json);
  }
  if (nas::live_mask(g, sel).size() != g.nodes.size()) bug("live_mask", space + ": size");
  nas::Graph fixed = nas::derive_fixed_network(g, sel);
  check_graph(fixed, "fixed network");
  if (!fixed.arch.empty()) bug("derive_fixed_network", space + ": choices left");
}

}  // namespace

bool fuzz_arch(const std::string& input) {
  bool any = false;
  // As in `nasc`, which runs every command on a large stack.
  nas::run_with_large_stack([&] {
    for (const Space& space : spaces()) {
      nas::Diagnostics diags;
      std::optional<nas::Selection> sel;
      try {
        sel = nas::parse_arch(space.supernet, "fuzz-arch.json", input, diags);
      } catch (const nas::TooManyErrors&) {
        // The error limit unwinds to the command, which reports what was collected (the
        // CLI's run() catches it): a refusal, like any other diagnostic.
      }
      if (sel && diags.has_errors())
        bug("parse_arch", std::string(space.name) + ": a selection despite " + diags.render());
      if (!sel) {
        if (!diags.has_errors())
          bug("parse_arch", std::string(space.name) + ": no selection, no error");
        continue;
      }
      exercise(space.supernet, *sel, space.name);
      any = true;
    }
  });
  return any;
}

}  // namespace nas_fuzz
