// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_ (DARTS clips the
// weight gradients to 5 before every SGD step).
#pragma once

#include <vector>

#include "runtime/optim/param_slot.h"

namespace nas {

// Computes the L2 norm over all gradients together (accumulated in double) and, when
// scale = max_norm / (norm + 1e-6) is below 1, multiplies every gradient by it in place.
// Returns the norm before clipping. A non-finite norm leaves the gradients untouched
// (the caller sees it in the return value and can skip the step). max_norm must be a
// finite number > 0 (NAS_CHECK: the config maps 0 to "no clipping" before calling).
double clip_grad_norm(const std::vector<GradSpan>& grads, double max_norm);

}  // namespace nas
