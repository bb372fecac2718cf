// Elementwise work on the GPU as kernels generated from the work's own program: an
// ElementwiseProgram (a fused region's RegionOps, exec_plan.h, or one activation, its
// gradient, a sum or a choice) is compiled by LLVM's NVPTX backend into PTX, with each
// activation's registry formula (runtime/jit/region_codegen.h, shared with the JIT), and
// loaded through the driver API (cuModuleLoadData). A plan's programs are compiled into one
// module when the plan is prepared; identical programs share a kernel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cuda/cuda_context.h"
#include "runtime/exec/exec_plan.h"
#include "runtime/exec/region_read_map.h"

namespace nas::cuda {

// `inputs` operands of the same number of elements, and the operations over them (operand
// k >= 0: input k; k < 0: the result of operation -k-1). The last operation is the output.
struct ElementwiseProgram {
  std::string name;  // the step's, for messages
  int inputs = 0;
  std::vector<RegionOp> ops;
  // Per input, read through a crop's window (runtime/exec/region_read_map.h); empty: every
  // input read in place.
  std::vector<RegionReadMap> maps;

  // What the generated kernel depends on: programs with the same signature share one.
  std::string signature() const;
  // Operand slots: one per (operation, operand), in order.
  size_t slots() const;
};

// Which operations of a program run in one run, as the CPU's fused regions decide
// (runtime/cpu/fused_region.h): a sum adds its operands that were computed, a choice the
// candidates with a nonzero weight, any other operation needs all of its operands.
struct ProgramRun {
  bool writes = false;           // the last operation runs: the output is written
  std::vector<float> weights;    // per slot: a choice's weight (else 1)
  std::vector<int32_t> present;  // per slot: whether the sum or choice takes the operand
  // A dropout's draws (runtime/jit/region_codegen.h, RegionDraws): the elements per sample,
  // the global index of the rank's sample 0, and per operation mix64(node seed) (0 for the
  // other operations; empty: no dropout).
  int64_t per_sample = 1;
  int64_t first_sample = 0;
  std::vector<uint64_t> seed_mix;
};
// The run's draws for dropout operations (RunState's dropout seed and first sample).
struct ProgramDraws {
  uint64_t dropout_seed = 0;
  int64_t first_sample = 0;
  int64_t per_sample = 1;
};
ProgramRun decide_program_run(const ElementwiseProgram& program,
                              const std::vector<char>& input_computed,
                              const std::vector<std::vector<float>>& choice_weights,
                              const ProgramDraws& draws = {});

// The PTX of a module with one kernel per program, kernel k named "nasc_elementwise_<k>",
// taking (float* out, float* input..., int64 n, then per slot float weight, then per slot
// int32 present, then int64 per_sample, int64 first_sample, and per operation int64
// seed_mix).
// Generated for sm_80 (the newest architecture LLVM 14 knows), which the driver compiles
// for the GPU at hand. exp is ex2.approx(x * log2 e), as CUDA's __expf.
std::string elementwise_ptx(const std::vector<ElementwiseProgram>& programs);

class ElementwiseKernels {
 public:
  explicit ElementwiseKernels(CudaContext& context) : context_(context) {}
  ~ElementwiseKernels();
  ElementwiseKernels(const ElementwiseKernels&) = delete;
  ElementwiseKernels& operator=(const ElementwiseKernels&) = delete;

  // The kernel index of `program` (added once per signature). Every add comes before load.
  int add(const ElementwiseProgram& program);
  // Generates the module of every program added and loads it.
  void load();
  // out[0, n) = the program over inputs[k][0, n), as `run` decided (run.writes must hold).
  void launch(int kernel, float* out, const std::vector<const float*>& inputs, int64_t n,
              const ProgramRun& run, cudaStream_t stream) const;

 private:
  CudaContext& context_;
  std::vector<ElementwiseProgram> programs_;
  std::vector<std::string> signatures_;
  CUmodule module_ = nullptr;
  std::vector<CUfunction> functions_;
};

}  // namespace nas::cuda
