#include "runtime/optim/grad_accum.h"

#include <algorithm>
#include <string>

#include "support/errors.h"

namespace nas {

int64_t accumulation_steps(int64_t batch_size, int64_t mini_batch) {
  // The config parser refuses these (data.batch_size, data.mini_batch) with their key.
  NAS_CHECK(batch_size >= 1, "batch_size: must be >= 1, got " + std::to_string(batch_size));
  NAS_CHECK(mini_batch >= 1, "mini_batch: must be >= 1, got " + std::to_string(mini_batch));
  NAS_CHECK(batch_size % mini_batch == 0, "batch_size: must be a multiple of mini_batch (" +
                                              std::to_string(mini_batch) + "), got " +
                                              std::to_string(batch_size));
  return batch_size / mini_batch;
}

GradAccumulator::GradAccumulator(Backend& backend, int64_t batch_size, int64_t mini_batch,
                                 std::vector<size_t> sizes)
    : backend_(backend), n_(accumulation_steps(batch_size, mini_batch)) {
  acc_.reserve(sizes.size());
  for (size_t s : sizes) acc_.emplace_back(backend, s);
}

bool GradAccumulator::add(const std::vector<const DeviceBuffer*>& grads) {
  NAS_CHECK(grads.size() == acc_.size(),
            "GradAccumulator::add: expected " + std::to_string(acc_.size()) +
                " gradient buffers, got " + std::to_string(grads.size()));
  if (complete_) reset();
  for (size_t s = 0; s < acc_.size(); ++s) {
    if (count_ == 0)
      backend_.copy(acc_[s], *grads[s]);  // no zeroing pass, and exact for n == 1
    else
      backend_.axpy(acc_[s], 1.0f, *grads[s]);
  }
  if (++count_ < n_) return false;
  if (n_ > 1)
    for (DeviceBuffer& a : acc_) backend_.scale(a, 1.0f / static_cast<float>(n_));
  complete_ = true;
  return true;
}

std::vector<DeviceBuffer*> GradAccumulator::buffers() {
  std::vector<DeviceBuffer*> out;
  for (DeviceBuffer& a : acc_) out.push_back(&a);
  return out;
}

void GradAccumulator::reset() {
  count_ = 0;
  complete_ = false;
}

}  // namespace nas
