// The runtime entry points generated code calls, registered with the JIT by address
// (absolute symbols). They are C functions with plain argument types, so that generated
// code needs no knowledge of nasc's C++ types.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "runtime/exec/backend.h"

namespace nas {

// What nasc_jit_run_step needs for a step without a generated entry: the plan that runs it
// (the JIT's: a library kernel, or a generated body of a batch norm or depthwise
// convolution through batchnorm_region.h, depthwise_run.h) and this run's state. An
// exception cannot unwind through generated code (it has no unwind tables), so a kernel's
// is kept in `error`, the step returns -1, the plan function returns -1 at once, and the
// caller rethrows it.
struct JitRunContext {
  PreparedPlan* library = nullptr;
  RunState* state = nullptr;
  std::exception_ptr error;
};

// A fused region's loop body over elements [begin, end): args are the region's pointers.
using RegionBody = void (*)(void** args, int64_t begin, int64_t end);
// A generated entry (plan_codegen.h): `args` as PlanArg says; 1 when it wrote its output.
using GeneratedEntry = int32_t (*)(void** args);

extern "C" {
// Runs body over [0, n) split across the OpenMP threads in chunks of whole vectors; small
// ranges run on the calling thread.
void nasc_jit_parallel_for(RegionBody body, void** args, int64_t n);
// Runs body over channels [0, channels), each thread a contiguous range of them (a batch
// norm body's channels, batchnorm_codegen.h; a global average pool's or a depthwise
// convolution's planes, pool_codegen.h, depthwise_codegen.h); a step of at most
// kBatchNormParallelMin `elements` runs on the calling thread, as the library's batch norm.
void nasc_jit_parallel_channels(RegionBody body, void** args, int64_t channels, int64_t elements);
// Runs step `index` of the plan function's schedule, whose value is `node`: its generated
// `entry` (a region's, a global average pool's), or, when that is null, the library step
// of the plan behind args[kArgContext] (a kernel: oneDNN or a plain loop; or a batch norm
// region's generated body). Counts it in args[kArgStepsRun] and marks `node` computed in
// args[kArgComputed] when it wrote its output. Returns 1 when it wrote its output, 0 when
// not, -1 when it threw (see above). This bookkeeping lives here rather than in the
// schedule so that a step is one call in the schedule's unoptimised code: a DARTS
// supernet's 15,000 steps are most of a first compile's code generation.
int32_t nasc_jit_run_step(void** args, int64_t index, int32_t node, GeneratedEntry entry);
}

// Every entry point by the name generated code calls it (the math functions it may call
// too: expf for sigmoid).
const std::vector<std::pair<std::string, void*>>& jit_runtime_symbols();

}  // namespace nas
