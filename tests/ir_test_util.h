// Helpers shared by the IR-in, IR-out pass tests: parse textual IR (failing the test with
// the diagnostics when it does not parse) and print a graph without names or locations;
// and compile .nas source text to its supernet (failing the test with the diagnostics).
#pragma once

#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "compiler/ir/ir_parser.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/pipeline/pipeline.h"

namespace nas::test {

inline Graph parse_ir_text(const std::string& text) {
  Diagnostics diags;
  std::optional<Graph> g = parse_ir("test.ir", text, diags);
  INFO(diags.render());
  REQUIRE(g);
  return *g;
}

inline Graph compile_source(const std::string& text) {
  Diagnostics diags;
  Compilation c = compile_text("space.nas", text, {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  return *c.supernet;
}

inline std::string print_bare(const Graph& g) {
  PrintOptions o;
  o.locations = false;
  o.names = false;
  return print_graph(g, o);
}

}  // namespace nas::test
