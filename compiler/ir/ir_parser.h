// Reads the textual IR that print_graph (ir_printer.h) writes, so that every pass can be
// tested as "IR text in -> IR text out" and IR dumps can be fed back to the compiler.
//
// Grammar (spaces and tabs may separate tokens; blank lines and lines that start with
// `//` are ignored, so that a test file can carry its RUN and CHECK lines):
//
//   file    := header node* 'return' ref '\n' '}' '\n' arch*
//   header  := 'network' NAME '(' [param (', ' param)*] ')' '{'
//   param   := NAME '=' RAW            RAW: any text; brackets and "..." may hold ', '
//   node    := ref '=' OP '(' [ref (',' ref)*] ')' ['{' [attr (',' attr)*] '}'] ':' shape
//              ['#' [NAME] ['@' FILE ':' LINE ':' COL]]
//   attr    := NAME '=' value
//   value   := INT | FLOAT | 'true' | 'false' | STRING | '[' ']' | '[' INT (',' INT)* ']'
//            | '[' STRING (',' STRING)* ']'
//   shape   := '[' [INT (',' INT)*] ']'
//   arch    := 'arch' STRING 'k' '=' INT 'candidates' '=' '[' [STRING (',' STRING)*] ']'
//              'nodes' '=' '[' [ref (',' ref)*] ']'
//   ref     := '%' INT
//
// INT is a decimal int64 with an optional '-'. FLOAT has a '.' or an exponent, or is
// inf/nan (optionally negative), as attr_str writes doubles. STRING is double-quoted with
// the escapes \" \\ \n \t \r \xHH. An empty list takes its type (int or string list) from
// the op's AttrSpec. The comment after '#' is the node's name (Node::name), then, when the
// text ends with ` @file:line:col`, its source location (kept as a SourceLoc whose
// SourceFile is named `file` and has no text); a node without one has an unknown location.
//
// Checks, each reported at line:col of the IR text: node ids are 0..n-1 in order; inputs
// and `return` refer to earlier/existing nodes; ops exist (internal ones such as input
// and choice included); arity; attribute names, types, duplicates and required ones
// (defaults are filled in, as complete_attrs does); each choice has one candidate per
// input and 1 <= k <= inputs; `arch` lines have distinct keys, valid k and distinct
// candidates, list exactly the choice nodes with their key, with the same candidates and
// k. Then shapes are recomputed with infer_shapes; a broken shape rule is reported at the
// node's line (op name) and a written shape that differs from the inferred one at the
// written shape.
//
// Graph::inputs is filled with the `input` nodes in order; ArchGroup::loc is the location
// of the group's first choice node.
#pragma once

#include <optional>
#include <string>

#include "compiler/ir/ir.h"

namespace nas {

struct IrParseOptions {
  // Recompute shapes with infer_shapes and check them against the written ones. When
  // false, the written shapes are kept as they are (to test the shape pass itself on a
  // graph with wrong shapes); other passes must not be run on such a graph before
  // infer_shapes succeeds on it.
  bool infer_shapes = true;
};

// `path` names the IR text in diagnostics. Returns nullopt when any error was reported.
// Never throws for bad input (TooManyErrors is caught here).
std::optional<Graph> parse_ir(const std::string& path, const std::string& text, Diagnostics& diags);
std::optional<Graph> parse_ir(const std::string& path, const std::string& text, Diagnostics& diags,
                              const IrParseOptions& options);

}  // namespace nas
