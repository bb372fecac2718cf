// The backend interface (DESIGN.md section 3): a backend says which steps it supports,
// allocates memory, prepares a plan (creates its kernels once per signature), runs one
// step at a time and synchronises. The executor drives it; the CPU backend
// (runtime/cpu/cpu_backend) is the reference every other backend is tested against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"

namespace nas {

// What a step reads and writes besides its values, for one run of a plan.
struct RunState {
  std::vector<float*> values;  // per value: its storage (alias roots resolved)
  std::vector<char> computed;  // per value: written during this run
  std::vector<float*> param;   // per plan parameter: values
  std::vector<float*> grad;    // per plan parameter: gradient (accumulated into), or null
  std::vector<std::vector<float>> choice_weights;        // per plan arch group
  std::vector<std::vector<double>> choice_weight_grads;  // per group: d(loss)/d(weight)
  const int32_t* labels = nullptr;
  int64_t valid_samples = 0;    // the loss counts the first valid_samples rows only
  double loss_sum = 0;          // over the valid samples
  int64_t correct = 0;          // top-1 hits over the valid samples
  uint64_t dropout_seed = 0;    // per run; each dropout step derives its mask from it
  float* logits_out = nullptr;  // when set, the loss step copies the logits here
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual bool supports(const Step& step) const = 0;
  // Memory for the arena and the caller's tensors, aligned for the backend's kernels.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  // Creates the kernels of every step (once per signature, shared through caches) and
  // the saved-state buffers. An unsupported step is an InternalError naming it.
  virtual void prepare(const ExecPlan& plan) = 0;
  // Runs step `index` of the prepared plan. Returns whether it wrote its output: a
  // gradient sum whose contributions were all skipped, or a candidate's gradient with
  // mixing weight 0, writes nothing.
  virtual bool run(size_t index, RunState& state) = 0;
  virtual void synchronize() = 0;
};

std::unique_ptr<Backend> make_cpu_backend();

}  // namespace nas
