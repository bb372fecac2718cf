// Parsing: .nas text -> owned AST. Syntax errors become located diagnostics; the parse
// never crashes, whatever the input (binary, huge, deeply nested).
#pragma once

#include <memory>

#include "compiler/frontend/ast.h"

namespace nas {

// Limits that keep hostile input from exhausting the stack or the machine.
constexpr size_t kMaxSourceBytes = 64u << 20;  // 64 MiB
constexpr int kMaxNestingDepth = 256;          // brackets, braces and parentheses

// Returns the AST, or nullptr when there were syntax errors (reported to diags).
std::unique_ptr<ast::File> parse_source(std::shared_ptr<const SourceFile> source,
                                        Diagnostics& diags);

}  // namespace nas
