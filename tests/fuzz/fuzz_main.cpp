// The libFuzzer entry point of every fuzz target: tests/fuzz/CMakeLists.txt compiles this
// file once per target with NAS_FUZZ_TARGET set to its name (idx gives the binary
// fuzz_idx, which calls nas_fuzz::fuzz_idx). The harnesses are in tests/fuzz/harness/.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/harness/harness.h"

#ifndef NAS_FUZZ_TARGET
#error "NAS_FUZZ_TARGET must name the target (tests/fuzz/CMakeLists.txt sets it)"
#endif
#define NAS_FUZZ_CONCAT2(a, b) a##b
#define NAS_FUZZ_CONCAT(a, b) NAS_FUZZ_CONCAT2(a, b)
#define NAS_FUZZ_STRING2(a) #a
#define NAS_FUZZ_STRING(a) NAS_FUZZ_STRING2(a)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nas_fuzz::run_or_trap(NAS_FUZZ_STRING(NAS_FUZZ_TARGET),
                        &nas_fuzz::NAS_FUZZ_CONCAT(fuzz_, NAS_FUZZ_TARGET),
                        std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
