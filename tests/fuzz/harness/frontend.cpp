// libFuzzer target for the nasc front end (see tests/fuzz/README.md and scripts/fuzz.sh).
//
// Each input is the text of a .nas file. It goes through the whole front end
// (compile_text: parse, imports, elaboration, shape inference, DCE); when a supernet comes
// out, the graph is also printed (IR text and DOT), summarised (space_stats), and
// specialised to two selections (the first and the last k candidates of every group),
// with the live mask, zero-pruning, and an arch-file JSON round trip.
//
// User errors are fine: they are diagnostics. A nas::InternalError (a failed NAS_CHECK),
// any other exception escaping the library, or a broken invariant checked here (a
// FuzzFinding) is a compiler bug, and traps so that libFuzzer records the input as a crash.
//
// tests/test_fuzz_corpus.cpp includes this file with NAS_FUZZ_NO_ENTRY_POINT defined and
// calls nas_fuzz::run_one on every corpus file, so the regression test checks exactly what
// the fuzzer checks.
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
#include "compiler/passes/pipeline.h"

#ifndef NASC_SOURCE_DIR
#error "NASC_SOURCE_DIR must be defined (tests/fuzz/CMakeLists.txt does it)"
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

// A broken invariant found by the harness itself (not by the compiler's NAS_CHECKs).
struct FuzzFinding : std::logic_error {
  using std::logic_error::logic_error;
};

[[noreturn]] void bug(const char* what, const std::string& detail) {
  throw FuzzFinding(std::string(what) + ": " + detail);
}

// The structural invariants every pass relies on (ir.h, live_mask.h): ids match
// positions, edges go from lower to higher ids, the output and the inputs are nodes, and
// every group's choice nodes are nodes. Checked here so that a broken graph is reported
// as such in any build, not only when a later index happens to trap.
void check_graph(const nas::Graph& g, const char* which) {
  const int n = static_cast<int>(g.nodes.size());
  auto node = [&](int id) { return id >= 0 && id < n; };
  if (!node(g.output))
    bug("graph output is not a node", std::string(which) + ": output " + std::to_string(g.output) +
                                          " of " + std::to_string(n) + " nodes");
  for (int id : g.inputs)
    if (!node(id)) bug("graph input is not a node", which);
  for (int i = 0; i < n; ++i) {
    const nas::Node& nd = g.nodes[i];
    if (nd.id != i) bug("node id differs from its position", which);
    if (!nd.op) bug("node without an op", which);
    for (int in : nd.inputs)
      if (!(in >= 0 && in < i))
        bug("edge not from an earlier node",
            std::string(which) + ": %" + std::to_string(in) + " -> %" + std::to_string(i));
  }
  for (const auto& group : g.arch) {
    if (group.k < 1 || group.k > static_cast<int>(group.candidates.size()))
      bug("group k out of range", group.key);
    for (int id : group.nodes)
      if (!node(id)) bug("group node is not a node", group.key);
  }
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

// Runs one input through everything. Throws on a bug; otherwise returns whether the
// input compiled to a supernet.
bool run_one(const std::string& text) {
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

}  // namespace nas_fuzz

#ifndef NAS_FUZZ_NO_ENTRY_POINT
namespace {
[[noreturn]] void crash(const char* what, const char* detail) {
  std::fprintf(stderr, "\n==fuzz_frontend== %s: %s\n", what, detail);
  std::fflush(stderr);
  __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (nas_fuzz::skip_input(text)) return 0;
  try {
    // As in `nasc`: the parser and the evaluator recurse, and the CLI gives them a large
    // stack, so the fuzzer does too (a real stack overflow is still caught by ASan).
    nas::run_with_large_stack([&] { nas_fuzz::run_one(text); });
  } catch (const nas::InternalError& e) {
    crash("nas::InternalError", e.what());
  } catch (const nas_fuzz::FuzzFinding& e) {
    crash("invariant broken", e.what());
  } catch (const std::exception& e) {
    crash("exception escaped the compiler", e.what());
  } catch (...) {
    crash("exception escaped the compiler", "(not a std::exception)");
  }
  return 0;
}
#endif  // NAS_FUZZ_NO_ENTRY_POINT
