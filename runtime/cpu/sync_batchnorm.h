// Synchronised batch norm for data-parallel training (RunState::sync_batchnorm): the
// training forward and its gradients with the statistics of the GLOBAL batch, the
// concatenation of every rank's samples, as one process over that batch would compute
// them. Each rank calls these on its own plain NCHW buffers (BatchNormParams describes the
// rank's share: p.n is its local batch); the per-channel sums travel through
// Collectives::sum, one call per function, so every rank must call the same functions in
// the same order. Semantics otherwise follow BatchNormKernel (batchnorm.h): the saved
// mean/var are the global batch mean and biased variance, and the running statistics are
// updated with the global unbiased variance (m = the global count per channel).
//
// Plain loops, not oneDNN: its primitives take the statistics over their own buffer only.
#pragma once

#include "runtime/cpu/batchnorm.h"

namespace nas {

class Collectives;

// BatchNormKernel::forward_training over the global batch. Throws InternalError when the
// GLOBAL count per channel is below 2 (a rank may hold a single value per channel).
void sync_batchnorm_forward_training(const BatchNormParams& p, Collectives& collectives,
                                     const float* x, const float* scale, const float* shift,
                                     float* y, float* mean, float* var, float* running_mean,
                                     float* running_var);

// BatchNormKernel::backward with global statistics: `mean`/`var` are what
// sync_batchnorm_forward_training saved. dx is N times this rank's share of the global
// loss's gradient and dscale/dshift are this rank's LOCAL sums (see the .cpp): averaging
// the parameter gradients over the ranks afterwards makes both exact.
void sync_batchnorm_backward(const BatchNormParams& p, Collectives& collectives, const float* x,
                             const float* dy, const float* mean, const float* var,
                             const float* scale, float* dx, float* dscale, float* dshift);

// BatchNormKernel::backward_from_output (affine = false, y = x_hat) with global statistics.
void sync_batchnorm_backward_from_output(const BatchNormParams& p, Collectives& collectives,
                                         const float* y, const float* dy, const float* var,
                                         float* dx);

}  // namespace nas
