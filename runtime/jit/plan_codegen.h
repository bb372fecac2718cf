// Code generation for a plan (the JIT backend's code for it): LLVM IR for
//   - the bodies of the batch norm regions of training plans (batchnorm_codegen.h), which
//     the plan function runs through nasc_jit_run_step (batchnorm_region.h);
//   - the depthwise convolutions of training plans on small planes (depthwise_codegen.h),
//     which the plan function runs through nasc_jit_run_step (depthwise_run.h);
//   - every global average pool (pool_codegen.h), with an entry like a region's;
//   - every elementwise region step (ElementwiseRegion, made by the fusion pass): an entry
//     that decides, from what this run computed and the choice weights, which of the
//     region's operations run with which operands (the rules of runtime/cpu/fused_region.h)
//     and a vectorised loop body over the region's elements, which the entry runs across
//     threads through nasc_jit_parallel_for;
//   - the plan function: every step in order under the executor's gates (step_gate.h: the
//     regions' guards against the live mask, the gradients wanted, the values each step
//     needs), each a call of nasc_jit_run_step with its region's entry, or none for a
//     library kernel (oneDNN, plain loops).
// The plan function runs the steps in chunks of functions (plan_codegen.cpp says why).
// One calling convention for every entry: `int32_t fn(void** args)`, args as PlanArg says.
// An entry returns 1 when it wrote its output (a region) or 0 when it ran to the end (the
// plan), 0 when a region wrote nothing, and -1 when a library kernel threw (jit_runtime.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"
#include "runtime/jit/jit_engine.h"
#include "runtime/jit/schedule.h"

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm

namespace nas {

// The slots of an entry's `void** args`.
enum PlanArg {
  kArgValues = 0,    // float**: RunState::values
  kArgComputed = 1,  // char*: RunState::computed
  kArgLive = 2,      // const char*: the live mask per forward node, or null (all live)
  kArgWeights = 3,   // float**: the choice weights of each arch group
  kArgControl = 4,   // int32_t[kControlCount]: PlanControl
  kArgStepsRun = 5,  // int64_t*: incremented per step run (by nasc_jit_run_step)
  kArgContext = 6,   // JitRunContext* for nasc_jit_run_step
  kArgDraws = 7,     // uint64_t[2]: RunState::dropout_seed, RunState::first_sample
  kPlanArgCount = 8,
};

// The flags of args[kArgControl], nonzero for true.
enum PlanControl {
  kControlWeightGrads = 0,  // the run computes weight gradients (step_gate.h)
  kControlArchGrads = 1,    // the run computes architecture gradients (step_gate.h)
  kControlForwardOnly = 2,  // the run stops after the loss
  kControlCount = 3,
};

// The plan function's symbol.
inline constexpr const char* kPlanFunction = "nasc_plan";

// Modules in one context, compiled apart:
//   - kernels: the regions' entries and vectorised bodies, which nasc's O3 pipeline
//     optimises and the code generator compiles at its highest level;
//   - a module per batch norm or depthwise body, compiled the same way;
//   - schedule: the plan function and its chunks, a call and a compare per step around
//     kernels that take microseconds to milliseconds, compiled without optimisation (fast
//     instruction selection and register allocation): optimising the thousands of steps of
//     a DARTS supernet cost seconds of compile time and bought nothing. It is made from
//     its description (schedule.h) only when its object is not cached.
struct PlanModule {
  std::unique_ptr<llvm::LLVMContext> context;
  std::unique_ptr<llvm::Module> kernels;
  // The bodies of library steps run by generated code, a module each, optimised like the
  // kernels: batch norm (batchnorm_codegen.h) and depthwise convolutions
  // (depthwise_codegen.h).
  std::vector<std::unique_ptr<llvm::Module>> bodies;
  ScheduleDescription schedule_description;  // schedule_module() makes the module
  // [0]: the plan function, then each region's entry (elementwise, global average pool), then the
  // bodies.
  std::vector<std::string> symbols;
  std::vector<int> region_steps;  // the step of symbols[i + 1]
  // Per batch norm region with generated code: its step and its body's index in symbols.
  std::vector<std::pair<int, size_t>> batchnorm_steps;
  // Per depthwise convolution step with generated code: its step and its body's index.
  std::vector<std::pair<int, size_t>> depthwise_steps;
};

// The kernels module for `plan`, its loops `vector_floats` wide (HostTarget::vector_floats),
// and its schedule's description.
PlanModule generate_plan_module(const ExecPlan& plan, int vector_floats);
// The schedule module of a description, in `context`.
std::unique_ptr<llvm::Module> schedule_module(const ScheduleDescription& d,
                                              llvm::LLVMContext& context);
// The JIT's sources of a generated plan (jit_engine.h): the kernels module, optimised, and
// the schedule, unoptimised, keyed by schedule_key_text and generated only when its object
// is not cached. Moves the kernels module and the description out of `generated`.
std::vector<JitSource> plan_sources(PlanModule& generated);

}  // namespace nas
