// What every nasc command prints the same way: exit codes, the diagnostics report, and
// libnasc's errors turned into them. Numbers for people (1,234,567; 1.23M) come from
// libnasc (nasc::with_commas, nasc::human_count), which the runtime's progress lines use
// too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nasc/nasc.h"

namespace nas::cli {

constexpr int kOk = 0, kUserError = 1, kInternalError = 2;
constexpr size_t kMaxErrors = 20;  // the compiler stops at this many

using nasc::human_count;
using nasc::with_commas;

// Prints the diagnostics to stderr (each rendered, then the error count); kUserError when
// there are errors.
int report(const std::vector<nasc::Diagnostic>& diags);
// The same for `first`, then `then` (a space's warnings, then a later call's diagnostics).
int report(const std::vector<nasc::Diagnostic>& first, const std::vector<nasc::Diagnostic>& then);

// Prints a user Error (its diagnostics after `before`, else "nasc: error: MESSAGE") and
// returns kUserError; an internal one is thrown on to main(), which prints it with the
// bug-report line (exit 2).
int report_error(const nasc::Error& e, const std::vector<nasc::Diagnostic>& before = {});

// Runs fn (API calls and their printing, returning the exit status), reporting the user
// Error it throws. With `space`, after the space's warnings (a later call failed on a
// space that compiled).
template <typename F>
int call_api(F&& fn, const nasc::Space* space = nullptr) {
  try {
    return fn();
  } catch (const nasc::Error& e) {
    return report_error(e, space ? space->diagnostics() : std::vector<nasc::Diagnostic>{});
  }
}

// [16,32,32]
std::string shape_text(const std::vector<int64_t>& shape);

}  // namespace nas::cli
