// Views of parameter and gradient buffers owned by someone else (the ParamStore, in
// backend memory). Optimizers and clipping work through these views and the backend's
// operations, so that no buffer is copied to the host between the executor and the
// update rule.
#pragma once

#include <cstddef>

#include "runtime/exec/backend.h"

namespace nas {

// One trainable tensor: its values (updated in place), its gradient and whether weight
// decay applies (DARTS-style setups exempt e.g. BN affine params or biases).
struct ParamSlot {
  DeviceBuffer* value = nullptr;
  const DeviceBuffer* grad = nullptr;
  bool decay = true;
  size_t size() const { return value ? value->size() : 0; }
};

}  // namespace nas
