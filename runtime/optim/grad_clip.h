// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_ (DARTS clips the
// weight gradients to 5 before every SGD step), on gradients in backend memory.
#pragma once

#include <vector>

#include "runtime/exec/backend.h"

namespace nas {

// Computes the L2 norm over all gradients together (the backend's sum of squares,
// accumulated in double and read back) and, when scale = max_norm / (norm + 1e-6) is
// below 1, scales every gradient by it on the backend. Returns the norm before clipping.
// A non-finite norm leaves the gradients untouched (the caller sees it in the return
// value and can skip the step). max_norm must be a finite number > 0 (NAS_CHECK: the
// config maps 0 to "no clipping" before calling).
double clip_grad_norm(Backend& backend, const std::vector<DeviceBuffer*>& grads, double max_norm);

}  // namespace nas
