// The JIT's module for a plan, without LLVM types: its text for the dumps (`nasc ir --stage
// llvm|asm`) and a compile with a given object cache (tests, benchmarks).
#pragma once

#include <string>

#include "runtime/exec/exec_plan.h"

namespace nas {

// The generated module's textual LLVM IR, before or after nasc's O3 pipeline.
std::string plan_llvm_ir(const ExecPlan& plan, bool optimized);
// The host assembly of the optimised module.
std::string plan_assembly(const ExecPlan& plan);

struct JitCompileReport {
  std::string cache_key;
  bool from_cache = false;
  double seconds = 0;    // generating, optimising (on a miss) and loading the code
  int64_t corrupt = 0;   // cache entries found corrupt (and rebuilt) during this compile
  size_t functions = 0;  // the plan function, the elementwise regions, the batch norm bodies
};
// Compiles `plan`'s module with the object cache in `cache_dir` ("": none) and drops it.
JitCompileReport compile_plan_module(const ExecPlan& plan, const std::string& cache_dir);

}  // namespace nas
