// Views of parameter and gradient buffers owned by someone else (the executor's arena).
// Optimizers and clipping work through these views so that no buffer is ever copied
// between the executor and the update rule.
#pragma once

#include <cstddef>

namespace nas {

// One trainable tensor: its values (updated in place), its gradient and whether weight
// decay applies (DARTS-style setups exempt e.g. BN affine params or biases).
struct ParamSlot {
  float* value = nullptr;
  const float* grad = nullptr;
  size_t size = 0;
  bool decay = true;
};

// A gradient buffer that may be rewritten (clipping scales gradients in place, the
// accumulator writes the averaged batch gradient).
struct GradSpan {
  float* data = nullptr;
  size_t size = 0;
};

}  // namespace nas
