// The interpreter: runs a prepared plan region by region, step by step, on the backend of
// the ParamStore it binds to. It owns the plan's device memory (arena, input, labels,
// output, the loss and accuracy sums), uploads each batch and downloads the results once
// per run, and applies the live-step mask: a sampled sub-network of a supernet runs only
// the regions its selection needs (a region runs when its guard node is live), with no
// recompilation. Backward steps whose incoming gradient was not computed are skipped too,
// and gradient sums add only the contributions that were.
//
// Architecture choices run in one of two ways:
//   - full: each choice is the softmax(alpha)-weighted sum of its candidates (DARTS), and
//     a training plan built with architecture gradients fills alpha_grad;
//   - selected: fixed one-hot (k-hot for a join) weights from a selection; with a live
//     mask from the compiler's LiveMasker, unselected branches cost nothing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/dist/gradient_sync.h"
#include "runtime/exec/backend.h"
#include "runtime/exec/param_store.h"

namespace nas {

struct RunResult {
  double loss_sum = 0;  // summed over the valid samples (divide by `samples` for the mean)
  int64_t correct = 0;
  int64_t samples = 0;
};

class Executor {
 public:
  // Binds `plan` to `store` (new parameters initialised from `seed`) and prepares it on
  // the store's backend. `store` must outlive the executor.
  Executor(ExecPlan plan, ParamStore& store, uint64_t seed = 0);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  const ExecPlan& plan() const { return plan_; }
  int64_t batch() const { return plan_.batch; }

  // Full mode (the default): weights = softmax(alpha), read from the store at each run.
  void use_full_choices();
  // Selected mode: chosen[group] = the candidate indices of each plan arch group.
  void use_selection(const std::vector<std::vector<int>>& chosen);
  // Live mask over the forward nodes (mask[node] != 0: live); empty = every node live.
  void set_live_mask(std::vector<char> mask);

  // Runs the plan on a batch of `samples` <= batch() host images (NCHW floats) and their
  // labels (or null: no loss), uploaded first; rows past `samples` are padding. In a
  // training plan this is forward + backward: gradients are ADDED to the store's grad
  // buffers (call store.zero_grads() before a step; several runs accumulate), and in full
  // mode alpha gradients are added to alpha_grad. `logits`, when given, receives
  // samples * classes floats (downloaded). Loss and accuracy are read back once, at the end.
  RunResult run(const float* images, const int32_t* labels, int64_t samples,
                float* logits = nullptr);

  // Which gradients a training run computes: weight gradients (conv/linear backward-
  // weights, batch-norm scale/shift) and architecture gradients. DARTS' alpha step needs
  // only the latter, its weight step only the former; input gradients always flow.
  void set_gradients(bool weights, bool arch) {
    weight_grads_ = weights;
    arch_grads_ = arch;
  }
  // A training plan run forward only: up to and including the loss, with batch-norm on
  // batch statistics as in training (its running statistics are updated), no backward.
  // PNAS rewards its sampled paths this way. No effect on a forward plan.
  void set_forward_only(bool on) { forward_only_ = on; }

  // Per-op time accounting (off by default: it synchronises after every step). The
  // profile maps "op" (the IR op name) to seconds and calls, summed over runs.
  struct OpTime {
    double seconds = 0;
    int64_t calls = 0;
  };
  void set_profiling(bool on) { profiling_ = on; }
  const std::map<std::string, OpTime>& profile() const { return profile_; }
  // Per-step wall time of the last run, in seconds (0 for steps that did not run); off by
  // default. The latency profiler (runtime/estimate) times units in context with it.
  void set_step_timing(bool on) { step_timing_ = on; }
  const std::vector<double>& step_seconds() const { return step_seconds_; }

  // Seeds the dropout masks of the next run (the trainer passes a per-step value).
  void set_dropout_seed(uint64_t seed) { state_.dropout_seed = seed; }
  // The loss's label smoothing eps in [0, 1) for the runs that follow (0: one-hot targets;
  // nasc train smooths its training runs only, as the config's label_smoothing says).
  void set_label_smoothing(double eps) {
    NAS_CHECK(eps >= 0 && eps < 1, "label smoothing must be in [0, 1)");
    state_.label_smoothing = eps;
  }
  // The drop probability in [0, 1) of the drop_path steps that take the run's, for the
  // runs that follow (nasc train sets its schedule's value at each epoch; 0: identity).
  void set_drop_path_prob(double p) {
    NAS_CHECK(p >= 0 && p < 1, "drop path probability must be in [0, 1)");
    state_.drop_path_prob = p;
  }
  // Data parallelism (docs/scaling.md): with `collectives`, this executor is one rank's
  // share of a global batch (rank r holds samples r * batch() ..). A training run then
  // averages its weight and architecture gradients over the ranks (weights in buckets
  // started during backward, runtime/dist/gradient_sync.h) and returns loss, hits and
  // samples summed over the ranks; with `sync_batchnorm` batch norm takes its statistics
  // over the global batch. A forward-only run and a forward plan reduce nothing (their
  // callers reduce what they need). Null: one process, nothing reduced.
  void set_collectives(Collectives* collectives, bool sync_batchnorm);
  // While false, training runs leave the weight gradients local (PyTorch's no_sync): the
  // micro-batches of gradient accumulation reduce only the sum, after the last of them.
  void set_gradient_sync(bool on) { sync_gradients_ = on; }
  Collectives* collectives() const { return state_.collectives; }
  int64_t arena_bytes() const { return plan_.arena_bytes; }
  // Makes two executors that never run at the same time (DARTS' alpha and weight steps)
  // use one arena, sized for the larger plan: nothing in an arena outlives a run. The
  // larger plan's executor must outlive the other. An arena is allocated at its first run,
  // so executors that share never hold two at once (on a GPU, two arenas at once would set
  // the peak).
  static void share_arena(Executor& a, Executor& b);
  // Steps that ran in the last run (skipped: masked out, or missing their gradient).
  int64_t steps_run() const { return steps_run_; }
  Backend& backend() { return *backend_; }
  // The regions the executor gates: the plan's, or one per step when it has none.
  const std::vector<Region>& regions() const { return regions_; }

 private:
  void check_plan() const;
  void build_regions();
  void refresh_choice_weights();
  void add_alpha_gradients();
  void average_choice_weight_grads();
  void bind_arena(char* arena);
  void ensure_arena();
  // Runs step i when it is ready; returns whether it ran. Sets stop_ after the loss step
  // of a forward-only run.
  bool run_step(size_t i);

  ExecPlan plan_;
  ParamStore& store_;
  std::shared_ptr<Backend> backend_;
  std::unique_ptr<PreparedPlan> prepared_;
  std::vector<Region> regions_;
  std::vector<int> param_index_, arch_index_;
  DeviceBuffer arena_;  // allocated at the first run; empty while this executor shares
  Executor* arena_source_ = nullptr;  // share_arena: the executor whose arena this one uses
  bool lends_arena_ = false;          // share_arena: other executors use this one's arena
  char* arena_base_ = nullptr;        // null until the first run binds the values to it
  DeviceBuffer output_;               // the plan's own output buffer (the loss in training)
  DeviceBuffer input_;                // the uploaded images
  DeviceBuffer labels_;               // the uploaded labels (int32)
  DeviceBuffer metrics_;              // [loss sum, correct] (f64), read back once per run
  DeviceBuffer logits_;  // the loss step's copy of the logits, when the caller wants them
  bool stop_ = false;
  RunState state_;
  bool full_ = true;
  int64_t steps_run_ = 0;
  bool weight_grads_ = true, arch_grads_ = true;
  bool forward_only_ = false;
  bool profiling_ = false, step_timing_ = false;
  std::map<std::string, OpTime> profile_;
  std::vector<double> step_seconds_;
  std::vector<char> live_;
  bool computes_arch_grads_ = false;  // some step computes architecture gradients
  bool sync_gradients_ = true;
  std::unique_ptr<GradientSync> gradient_sync_;  // made at the first synchronised run
};

}  // namespace nas
