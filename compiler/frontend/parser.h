// Parsing: .nas text -> owned AST. Syntax errors become located diagnostics; the parse
// never crashes, whatever the input (binary, huge, deeply nested).
#pragma once

#include <memory>

#include "compiler/frontend/ast.h"

namespace nas {

// Limits that keep hostile input from exhausting the stack or the machine.
// ANTLR needs about 200 bytes of memory per source byte, so 16 MiB of source is ~3 GB.
constexpr size_t kMaxSourceBytes = 16u << 20;  // 16 MiB
constexpr int kMaxNestingDepth = 256;          // brackets, braces and parentheses

// Returns the AST, or nullptr when there were syntax errors (reported to diags).
std::unique_ptr<ast::File> parse_source(std::shared_ptr<const SourceFile> source,
                                        Diagnostics& diags);

}  // namespace nas
