// Averages a training plan's weight gradients over the ranks of a data-parallel run, in
// buckets that start while backward is still running (as PyTorch's DDP does): the
// gradients are grouped, in the order backward finishes them, into buckets of about
// `bucket_bytes`; a bucket's reduction starts as soon as the last step that adds to any of
// its gradients has run, and the executor waits for all of them after the last step.
//
// A plan run as one generated function (the JIT) has no per-step hook: its buckets all
// start after it, still one reduction per bucket.
//
// Gradients are host memory here (the CPU backends); the buckets are packed copies, so
// the reductions never touch the store's buffers while backward may still write them.
#pragma once

#include <cstddef>
#include <vector>

#include "runtime/dist/collectives.h"
#include "runtime/exec/exec_plan.h"

namespace nas {

class GradientSync {
 public:
  static constexpr size_t kDefaultBucketBytes = size_t{1} << 20;

  // `plan` is a training plan; its trainable parameters are the ones synchronised.
  GradientSync(const ExecPlan& plan, Collectives& collectives,
               size_t bucket_bytes = kDefaultBucketBytes);

  // Before a run that synchronises: `grads[i]` is plan parameter i's gradient buffer, or
  // null for one without (running statistics, or weight gradients switched off).
  void begin(const std::vector<float*>& grads);
  // After step `step` ran or was skipped: starts the buckets it completed.
  void after_step(size_t step);
  // After the run: starts the rest, waits for all, and writes the averages back.
  void finish();

  size_t buckets() const { return buckets_.size(); }
  size_t floats() const { return total_floats_; }  // per run, over all buckets

 private:
  struct Bucket {
    std::vector<int> params;  // plan parameter indices, in pack order
    size_t last_step = 0;     // the last step that adds to one of them
    std::vector<float> packed;
    PendingReduction pending;
    bool started = false;
  };
  void start(Bucket& b);

  Collectives& collectives_;
  std::vector<size_t> param_sizes_;
  std::vector<Bucket> buckets_;  // in the order backward completes them
  size_t next_bucket_ = 0;       // the first bucket not started in this run
  std::vector<float*> grads_;
  size_t total_floats_ = 0;
};

}  // namespace nas
