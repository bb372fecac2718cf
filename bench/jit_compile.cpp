// The JIT's compile time for a space's DARTS search plans (the weight step's and the
// alpha step's training plans at batch 64): each compiled with an empty object cache (the
// first compile: generate, optimise, emit) and again (a cache hit: the object loaded).
// Prints one JSON line. The targets: a first compile under 2 s, a second under 0.2 s.
//   nasc_bench_jit_compile [FILE.nas] [--batch N]      (default examples/darts.nas, 64)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "bench/bench_main.h"
#include "compiler/frontend/loader.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/jit/jit_plan.h"

using namespace nas;

namespace {

int bench_main(int argc, char** argv) {
  std::string file = NASC_SOURCE_DIR "/examples/darts.nas";
  int64_t batch = 64;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc)
      batch = std::stoll(argv[++i]);
    else
      file = a;
  }
  Diagnostics diags;
  Compilation c = compile_file(file, {}, diags);
  if (!c.supernet) {
    std::fprintf(stderr, "%s", diags.render().c_str());
    return 1;
  }
  PlanOptions weight_po, alpha_po;
  weight_po.batch = alpha_po.batch = batch;
  weight_po.training = alpha_po.training = true;
  alpha_po.arch_grads = true;
  alpha_po.weight_grads = false;
  const ExecPlan plans[] = {compile_plan(*c.supernet, weight_po),
                            compile_plan(*c.supernet, alpha_po)};
  const std::filesystem::path cache =
      std::filesystem::temp_directory_path() / ("nasc_bench_jit_" + std::to_string(::getpid()));
  std::filesystem::remove_all(cache);
  double first = 0, second = 0;
  size_t steps = 0, functions = 0;
  bool hits = true;
  for (const ExecPlan& plan : plans) {
    steps += plan.steps.size();
    JitCompileReport cold = compile_plan_module(plan, cache.string());
    JitCompileReport warm = compile_plan_module(plan, cache.string());
    first += cold.seconds;
    second += warm.seconds;
    functions += cold.functions;
    hits = hits && !cold.from_cache && warm.from_cache;
  }
  std::filesystem::remove_all(cache);
  std::printf(
      "{\"file\": \"%s\", \"plans\": 2, \"steps\": %zu, \"functions\": %zu, \"first_compile_s\": "
      "%.3f, \"cached_compile_s\": %.3f, \"cache_hits_as_expected\": %s}\n",
      file.c_str(), steps, functions, first, second, hits ? "true" : "false");
  return hits ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
