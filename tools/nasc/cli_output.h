// What every nasc command prints the same way: exit codes, the diagnostics report, and
// numbers for people (1,234,567; 1.23M).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "compiler/ir/diagnostics.h"

namespace nas::cli {

constexpr int kOk = 0, kUserError = 1, kInternalError = 2;
constexpr size_t kMaxErrors = 20;  // the compiler stops at this many

// Prints the diagnostics to stderr with an error count; kUserError when there are errors.
int report(const Diagnostics& diags);
std::string with_commas(int64_t v);  // 1234567 -> "1,234,567"
std::string human(int64_t v);        // 1234567 -> "1.23M"

}  // namespace nas::cli
