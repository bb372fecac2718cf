// fuzz_frontend: the .nas front end. Each input is the text of a .nas file. It goes
// through the whole front end (compile_text: parse, imports, elaboration, shape
// inference, DCE); when a supernet comes out, the graph is also printed (IR text and DOT),
// summarised (space_stats), and specialised to two selections (the first and the last k
// candidates of every group), with the live mask, zero-pruning, and an arch-file JSON
// round trip.
//
// Diagnostics are the expected answer to bad input (compile_text never throws for it).
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "compiler/analysis/space_stats.h"
#include "compiler/dot/graph_dot.h"
#include "compiler/frontend/ast.h"
#include "compiler/ir/diagnostics.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "tests/fuzz/harness/graph_checks.h"
#include "tests/fuzz/harness/harness.h"

#ifndef NASC_SOURCE_DIR
#error "NASC_SOURCE_DIR must be defined (tests/fuzz/CMakeLists.txt and tests/CMakeLists.txt do it)"
#endif

// The input filters below are not instrumented for coverage: an input the harness skips
// must not look "interesting" to libFuzzer because of the filter's own branches, or the
// skipped inputs would end up in the corpus.
#if defined(__clang__)
#define NAS_FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NAS_FUZZ_NO_COVERAGE
#endif

namespace nas_fuzz {

namespace {

// Inputs naming /proc, /sys or /dev are skipped: `import "/proc/self/..."` would read
// files that are regular but change from run to run (or are huge), which makes the fuzzer
// nondeterministic without telling anything about the compiler. (Imports resolve only
// regular files, so /dev/zero is not read; the filter is cheap insurance.)
NAS_FUZZ_NO_COVERAGE bool names_special_files(const std::string& text) {
  for (const char* s : {"/dev", "/proc", "/sys"})
    if (text.find(s) != std::string::npos) return true;
  return false;
}

NAS_FUZZ_NO_COVERAGE bool skip_input(const std::string& text) {
  return names_special_files(text);
}

nas::CompileOptions fuzz_options() {
  nas::CompileOptions o;
  o.include_paths = {NASC_SOURCE_DIR "/stdlib"};
  // Lower limits than the CLI's, so that every input runs in milliseconds; the limits'
  // own error paths are exercised all the more.
  o.elaborate.max_steps = 200'000;
  o.elaborate.max_nodes = 20'000;
  o.elaborate.max_list_size = 10'000;
  return o;
}

// For every group, its last k candidates (the first k is first_candidates).
nas::Selection last_candidates(const nas::Graph& g) {
  nas::Selection sel;
  for (const auto& group : g.arch) {
    std::vector<int> picks;
    int n = static_cast<int>(group.candidates.size());
    for (int i = std::max(0, n - group.k); i < n; ++i) picks.push_back(i);
    sel.chosen.push_back(std::move(picks));
  }
  return sel;
}

void exercise_selection(const nas::Graph& g, const nas::Selection& sel, const char* which) {
  std::vector<char> mask = nas::live_mask(g, sel);
  if (mask.size() != g.nodes.size()) bug("live_mask size", which);

  // The arch file written for the selection must read back as the same selection.
  std::string json = nas::arch_to_json(g, sel);
  nas::Diagnostics arch_diags;
  auto back = nas::parse_arch(g, "fuzz.json", json, arch_diags);
  if (!back) bug("arch_to_json output rejected by parse_arch", json + "\n" + arch_diags.render());
  for (size_t i = 0; i < sel.chosen.size() && i < back->chosen.size(); ++i) {
    std::vector<int> a = sel.chosen[i], b = back->chosen[i];
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) bug("arch JSON round trip changed the selection", json);
  }
  if (back->chosen.size() != sel.chosen.size()) bug("arch JSON round trip group count", json);

  nas::Graph fixed = nas::specialise(g, sel);
  check_graph(fixed, which);
  if (!fixed.arch.empty()) bug("specialised graph still has architecture groups", which);
  (void)nas::print_graph(fixed);
  (void)nas::graph_to_dot(fixed);
  (void)nas::space_stats(fixed);
}

// Throws on a bug; otherwise returns whether the input compiled to a supernet.
bool compile_and_exercise(const std::string& text) {
  nas::Diagnostics diags;
  nas::Compilation c = nas::compile_text("fuzz.nas", text, fuzz_options(), diags);
  std::string rendered = diags.render();
  // NAS_FUZZ_VERBOSE=1 ./fuzz_frontend input.nas shows what the compiler said about it.
  if (std::getenv("NAS_FUZZ_VERBOSE"))
    std::fprintf(stderr, "%s[%s]\n", rendered.c_str(),
                 c.supernet ? ("supernet of " + std::to_string(c.supernet->nodes.size()) +
                               " nodes, " + std::to_string(c.supernet->arch.size()) + " groups")
                                  .c_str()
                            : "no supernet");
  if (c.program && c.program->main) (void)nas::ast::dump(*c.program->main);
  if (!c.supernet) return false;
  if (diags.has_errors()) bug("supernet produced although errors were reported", diags.render());
  const nas::Graph& g = *c.supernet;
  check_graph(g, "supernet");

  nas::PrintOptions no_locations;
  no_locations.locations = false;
  (void)nas::print_graph(g);
  (void)nas::print_graph(g, no_locations);
  (void)nas::graph_to_dot(g);
  // The CLI enumerates up to 4096 architectures; fewer keeps the fuzzer fast while still
  // covering both the exhaustive and the coordinate-search paths.
  (void)nas::space_stats(g, 256);
  (void)nas::supernet_mask(g);

  exercise_selection(g, nas::first_candidates(g), "first candidates");
  exercise_selection(g, last_candidates(g), "last candidates");
  return true;
}

}  // namespace

bool fuzz_frontend(const std::string& input) {
  if (skip_input(input)) return false;
  bool compiled = false;
  // As in `nasc`: the parser and the evaluator recurse, and the CLI gives them a large
  // stack, so the fuzzer does too (a real stack overflow is still caught by ASan).
  nas::run_with_large_stack([&] { compiled = compile_and_exercise(input); });
  return compiled;
}

}  // namespace nas_fuzz
