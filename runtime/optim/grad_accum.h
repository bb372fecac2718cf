// Gradient accumulation for batches larger than what fits at once, as the NNablaNAS
// configs' batch_size / mini_batch: the batch is split into batch_size / mini_batch
// mini-batches, their gradients are averaged, and the optimizer steps once per batch.
//
// Averaging: each mini-batch gradient is the gradient of that mini-batch's *mean* loss;
// the batch gradient is their arithmetic mean (sum in float, then divided by the count),
// which equals the gradient of the mean loss over the whole batch. So lr and weight decay
// mean the same with or without accumulation. The sums live in backend memory and are
// formed by the backend's copy, axpy and scale.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/exec/backend.h"

namespace nas {

// Number of mini-batches per batch. Both must be >= 1 and batch_size a multiple of
// mini_batch (the config parser checks this; here it is an invariant, NAS_CHECK).
int64_t accumulation_steps(int64_t batch_size, int64_t mini_batch);

class GradAccumulator {
 public:
  // sizes: element count of each parameter's gradient, in slot order.
  GradAccumulator(Backend& backend, int64_t batch_size, int64_t mini_batch,
                  std::vector<size_t> sizes);

  int64_t steps() const { return n_; }        // mini-batches per batch
  int64_t pending() const { return count_; }  // mini-batches added since the last batch

  // Adds one mini-batch's gradients (one buffer per slot). Returns true when this was
  // the last mini-batch of the batch: grad(i) then holds the averaged batch gradient
  // until the next add(), which starts a new batch.
  bool add(const std::vector<const DeviceBuffer*>& grads);

  // The accumulated gradient of slot i; hand it to the optimizer's ParamSlot::grad (it
  // is also writable, so clip_grad_norm can scale it).
  DeviceBuffer* grad(size_t i) { return &acc_[i]; }
  std::vector<DeviceBuffer*> buffers();

  void reset();  // drops a partial batch

 private:
  Backend& backend_;
  int64_t n_;
  int64_t count_ = 0;
  bool complete_ = false;
  std::vector<DeviceBuffer> acc_;
};

}  // namespace nas
