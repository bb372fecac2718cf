// fuzz_ir: the textual IR reader (parse_ir, what print_graph writes). A graph it accepts
// must pass the graph checks, print, and parse back to a graph that prints the same text
// (print -> parse -> print is a fixed point). The input is also read without shape
// inference (IrParseOptions::infer_shapes = false, the shape pass's tests), which must not
// trip on whatever shapes are written.
#include <optional>

#include "compiler/ir/diagnostics.h"
#include "compiler/ir/ir_parser.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/pipeline/pipeline.h"
#include "tests/fuzz/harness/graph_checks.h"
#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

namespace {

bool parse_and_round_trip(const std::string& input) {
  nas::Diagnostics diags;
  std::optional<nas::Graph> g = nas::parse_ir("fuzz.ir", input, diags);
  if (g && diags.has_errors()) bug("parse_ir", "a graph despite " + diags.render());
  if (!g) {
    if (!diags.has_errors()) bug("parse_ir", "no graph, no error");
    return false;
  }
  check_graph(*g, "parsed IR");
  const std::string printed = nas::print_graph(*g);
  nas::Diagnostics again;
  std::optional<nas::Graph> back = nas::parse_ir("printed.ir", printed, again);
  if (!back) bug("IR round trip", "parse_ir refuses print_graph's\n" + printed + again.render());
  const std::string reprinted = nas::print_graph(*back);
  if (reprinted != printed)
    bug("IR round trip", "print -> parse -> print changed\n" + printed + "into\n" + reprinted);
  return true;
}

void parse_without_shapes(const std::string& input) {
  nas::Diagnostics diags;
  nas::IrParseOptions options;
  options.infer_shapes = false;
  std::optional<nas::Graph> g = nas::parse_ir("fuzz.ir", input, diags, options);
  if (!g) return;
  check_graph(*g, "parsed IR (written shapes)");
  nas::PrintOptions no_names;
  no_names.names = false;
  (void)nas::print_graph(*g, no_names);
}

}  // namespace

bool fuzz_ir(const std::string& input) {
  bool ok = false;
  nas::run_with_large_stack([&] {
    ok = parse_and_round_trip(input);
    parse_without_shapes(input);
  });
  return ok;
}

}  // namespace nas_fuzz
