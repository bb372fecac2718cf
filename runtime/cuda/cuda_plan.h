// A plan prepared on the GPU (Backend::prepare of the CUDA backend): one closure per step,
// as the CPU backend's CpuPlan, enqueuing its kernels on the context's current stream:
//   - convolutions on cuDNN (conv_cudnn.h), fully connected layers on cuBLAS
//     (linear_cublas.h);
//   - every elementwise computation (activations and their gradients, fused regions, sums,
//     choices, a conv epilogue's or batch norm region's activations) as kernels generated
//     from its program into PTX (region_ptx.h), compiled for the whole plan when it is
//     prepared;
//   - batch norm, pooling, data movement, dropout and the losses as CUDA kernels
//     (norm_pool_kernels.h, data_kernels.h) with the CPU backend's arithmetic.
// Nothing is read back to the host during a run: architecture gradients accumulate on the
// device and come back in download_choice_weight_grads, the loss and accuracy in the
// executor's one download of RunState::metrics.
#pragma once

#include <memory>

#include "runtime/cuda/cuda_context.h"
#include "runtime/exec/backend.h"

namespace nas::cuda {

// Whether the CUDA backend runs `step` (Backend::supports).
bool cuda_plan_supports(const Step& step);

std::unique_ptr<PreparedPlan> make_cuda_plan(const ExecPlan& plan,
                                             std::shared_ptr<CudaContext> context);

}  // namespace nas::cuda
