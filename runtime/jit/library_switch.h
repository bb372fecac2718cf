// The environment switches that send a kind of step back to the library's code (the
// interpreter's) instead of the JIT's generated code, to measure what that code buys
// (bench/README.md): NASC_JIT_BATCHNORM, NASC_JIT_DEPTHWISE.
#pragma once

namespace nas {

// Whether `what` runs generated code: the variable `name` unset or `generated` (the default)
// says yes, `library` says no; any other value gets a warning on stderr and keeps the
// default. Callers read it once.
bool generated_unless_library(const char* name, const char* what);

}  // namespace nas
