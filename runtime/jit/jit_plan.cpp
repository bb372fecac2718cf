#include "runtime/jit/jit_plan.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <chrono>

#include "runtime/jit/jit_engine.h"
#include "runtime/jit/object_cache.h"
#include "runtime/jit/plan_codegen.h"

namespace nas {

namespace {

// The optimised modules of a generated plan, the kernels then the bodies.
std::vector<llvm::Module*> optimised_modules(PlanModule& generated) {
  std::vector<llvm::Module*> modules = {generated.kernels.get()};
  for (std::unique_ptr<llvm::Module>& body : generated.bodies) modules.push_back(body.get());
  return modules;
}

}  // namespace

std::string plan_llvm_ir(const ExecPlan& plan, bool optimized) {
  PlanModule generated = generate_plan_module(plan, host_target().vector_floats);
  std::unique_ptr<llvm::Module> schedule =
      schedule_module(generated.schedule_description, *generated.context);
  std::string text;
  for (llvm::Module* module : optimised_modules(generated)) {
    configure_for_host(*module);
    if (optimized) optimize_module(*module);
    text += module_ir_text(*module) + "\n";
  }
  configure_for_host(*schedule);
  return text + module_ir_text(*schedule);
}

std::string plan_assembly(const ExecPlan& plan) {
  PlanModule generated = generate_plan_module(plan, host_target().vector_floats);
  std::unique_ptr<llvm::Module> schedule =
      schedule_module(generated.schedule_description, *generated.context);
  std::string text;
  for (llvm::Module* module : optimised_modules(generated)) {
    configure_for_host(*module);
    text += module_assembly(*module, true) + "\n";
  }
  configure_for_host(*schedule);
  return text + module_assembly(*schedule, false);
}

JitCompileReport compile_plan_module(const ExecPlan& plan, const std::string& cache_dir) {
  const auto start = std::chrono::steady_clock::now();
  DiskObjectCache cache(cache_dir);
  PlanModule generated = generate_plan_module(plan, host_target().vector_floats);
  JitCompileReport report;
  report.functions = generated.symbols.size();
  JitModule module(std::move(generated.context), plan_sources(generated), generated.symbols, cache);
  report.cache_key = module.cache_key();
  report.from_cache = module.from_cache();
  report.corrupt = cache.stats().corrupt;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace nas
