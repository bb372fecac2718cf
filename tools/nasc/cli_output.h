// What every nasc command prints the same way: exit codes and the diagnostics report.
// Numbers for people (1,234,567; 1.23M) come from support/format.h, which the runtime's
// progress lines use too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "compiler/ir/diagnostics.h"
#include "support/format.h"

namespace nas::cli {

constexpr int kOk = 0, kUserError = 1, kInternalError = 2;
constexpr size_t kMaxErrors = 20;  // the compiler stops at this many

// Prints the diagnostics to stderr with an error count; kUserError when there are errors.
int report(const Diagnostics& diags);

}  // namespace nas::cli
