// libFuzzer target for the nasc front end (see tests/fuzz/README.md and scripts/fuzz.sh).
//
// Each input is the text of a .nas file. It goes through the whole front end
// (compile_text: parse, imports, elaboration, shape inference, DCE); when a supernet comes
// out, the graph is also printed (IR text and DOT), summarised (space_stats), and
// specialised to two selections (the first and the last k candidates of every group),
// with the live mask, zero-pruning, and an arch-file JSON round trip.
//
// User errors are fine: they are diagnostics. A nas::InternalError (a failed NAS_CHECK)
// or any other exception escaping the library is a compiler bug, and traps so that
// libFuzzer records the input as a crash.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "compiler/analysis/space_stats.h"
#include "compiler/dot/graph_dot.h"
#include "compiler/frontend/ast.h"
#include "compiler/ir/diagnostics.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/live_mask.h"
#include "compiler/passes/pipeline.h"

#ifndef NASC_SOURCE_DIR
#error "NASC_SOURCE_DIR must be defined (tests/fuzz/CMakeLists.txt does it)"
#endif

namespace {

// `import "/dev/zero"` (or /dev/stdin, /proc/...) would make the loader read forever or
// block: that is the harness touching the machine, not a finding about the parser. Such
// inputs are skipped.
bool names_special_files(const std::string& text) {
  for (const char* s : {"/dev", "/proc", "/sys"})
    if (text.find(s) != std::string::npos) return true;
  return false;
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

[[noreturn]] void bug(const char* what, const std::string& detail) {
  std::fprintf(stderr, "\n==fuzz_frontend== %s: %s\n", what, detail.c_str());
  std::fflush(stderr);
  __builtin_trap();
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
  if (!fixed.arch.empty()) bug("specialised graph still has architecture groups", which);
  (void)nas::print_graph(fixed);
  (void)nas::graph_to_dot(fixed);
  (void)nas::space_stats(fixed);
}

void run_one(const std::string& text) {
  nas::Diagnostics diags;
  nas::Compilation c = nas::compile_text("fuzz.nas", text, fuzz_options(), diags);
  (void)diags.render();
  if (c.program && c.program->main) (void)nas::ast::dump(*c.program->main);
  if (!c.supernet) return;
  if (diags.has_errors()) bug("supernet produced although errors were reported", diags.render());
  const nas::Graph& g = *c.supernet;

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
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (names_special_files(text)) return 0;
  try {
    // As in `nasc`: the parser and the evaluator recurse, and the CLI gives them a large
    // stack, so the fuzzer does too (a real stack overflow is still caught by ASan).
    nas::run_with_large_stack([&] { run_one(text); });
  } catch (const nas::InternalError& e) {
    bug("nas::InternalError", e.what());
  } catch (const std::exception& e) {
    bug("exception escaped the compiler", e.what());
  } catch (...) {
    bug("exception escaped the compiler", "(not a std::exception)");
  }
  return 0;
}
