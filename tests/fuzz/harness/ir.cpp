// fuzz_ir: the textual IR reader (parse_ir, what print_graph writes). A graph it accepts
// must pass the graph checks, print, and parse back to a graph that prints the same text
// (print -> parse -> print is a fixed point). The input is also read without shape
// inference (IrParseOptions::infer_shapes = false, the shape pass's tests), which must not
// trip on whatever shapes are written. A graph that parses also goes through PC-DARTS'
// transform (partial channels, 1/2, and edge normalisation).
#include <optional>

#include "compiler/ir/diagnostics.h"
#include "compiler/ir/ir_parser.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/passes/partial_channels.h"
#include "compiler/pipeline/pipeline.h"
#include "tests/fuzz/harness/graph_checks.h"
#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

namespace {

// PC-DARTS' transform of whatever parsed: a graph that checks and prints, or errors.
void transform_partial_channels(const nas::Graph& g) {
  nas::Diagnostics diags;
  std::optional<nas::PartialChannelsResult> pc = nas::partial_channels(g, {2, true}, diags);
  if (!pc) {
    if (!diags.has_errors()) bug("partial_channels", "no graph, no error");
    return;
  }
  check_graph(pc->graph, "partial channels' graph");
  (void)nas::print_graph(pc->graph);
}

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
  transform_partial_channels(*g);
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
