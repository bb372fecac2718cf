// The CUDA backend's kernels for the plain CPU kernels (runtime/cpu/plain_kernels.h) and
// the CPU backend's dropout, drop path and loss steps (runtime/cpu/cpu_backend.cpp): data
// movement, the product by a factor tensor, the architecture gradient's dot product, the
// random masks and the softmax cross-entropy.
//
// Every function is a host-side launcher: it takes device pointers (a list of inputs is a
// host array of device pointers), enqueues its kernels on `stream` and returns without
// synchronizing. The arithmetic is the CPU's, in
// the same types and, wherever the order changes a float result, in the same order, with no
// multiply-add fused where the CPU rounds twice; double sums over many elements run as
// fixed-order block reductions, so they are reproducible run to run and agree with the
// CPU to double rounding. Random draws are bit-identical to the CPU's. Params are those
// of the plain kernels; their ranges are checked (InternalError) before anything is
// enqueued, as the CPU kernels check them.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "runtime/cpu/plain_kernels.h"

namespace nas::cuda {

// --- Data movement ---------------------------------------------------------------------------

// y = x[:, :, top:H-bottom, left:W-right] (plain::crop_forward).
void crop_forward(const plain::CropParams& p, const float* x, float* y, cudaStream_t stream);
// dx = dy inside the window, zeros on the removed borders (plain::crop_backward).
void crop_backward(const plain::CropParams& p, const float* dy, float* dx, cudaStream_t stream);

// y = x[:, start:start+count] (plain::channel_slice_forward).
void channel_slice_forward(const plain::ChannelSliceParams& p, const float* x, float* y,
                           cudaStream_t stream);
// dx = dy at channels [start, start+count), zeros elsewhere (plain::channel_slice_backward).
void channel_slice_backward(const plain::ChannelSliceParams& p, const float* dy, float* dx,
                            cudaStream_t stream);

// y[:, j*groups + i] = x[:, i*m + j], m = channels / groups (plain::channel_shuffle_forward).
void channel_shuffle_forward(const plain::ChannelShuffleParams& p, const float* x, float* y,
                             cudaStream_t stream);

// y = concat(xs), xs holding p.sizes.size() device pointers (plain::concat_forward).
void concat_forward(const plain::ConcatParams& p, const float* const* xs, float* y,
                    cudaStream_t stream);
// dx = the slice of dy that input `index` went to: plain::concat_backward with only
// dxs[index] non-null, as the CPU's ConcatGrad step calls it.
void concat_backward_one(const plain::ConcatParams& p, const float* dy, int64_t index, float* dx,
                         cudaStream_t stream);

// --- Products --------------------------------------------------------------------------------

// y[f, i] = (float(scale) * factor[f]) * x[f, i]; y may be x (plain::mul_forward).
void mul_forward(const plain::MulParams& p, const float* x, const float* factor, float* y,
                 cudaStream_t stream);

// Blocks of add_dot's first pass: the size of its partials scratch, in doubles.
constexpr int kDotBlocks = 256;

// *accumulator += sum_j double(a[j]) * b[j] over n floats (plain::dot, as the CPU's
// ChoiceGradArch step adds it to its architecture gradient). Every product is exact in
// double; the sum runs per block into partials_scratch (kDotBlocks doubles, overwritten),
// then over the blocks in order, so it is the same on every run.
void add_dot(int64_t n, const float* a, const float* b, double* partials_scratch,
             double* accumulator, cudaStream_t stream);

// --- Dropout and drop path (cpu_backend.cpp build_dropout, build_drop_path) ------------------

// x and y are [batch, n / batch]. Element k of sample b is kept when the k-th uniform_float
// of Rng(derive_seed(derive_seed(dropout_seed, node), first_sample + b)) is >= p (compared
// in double; support/rng.h, dropout_keeps): y = x * dropout_keep_scale(p), else y = 0. The
// forward runs it on x, the gradient on dy with the forward node's draws. y may be x.
void dropout_apply(int64_t n, int64_t batch, double p, uint64_t dropout_seed, int node,
                   int64_t first_sample, const float* x, float* y, cudaStream_t stream);

// Sample b is kept (kept[b] = 1) when the first uniform_float of its Rng (seeded as for
// dropout) is >= p; y = (kept ? dropout_keep_scale(p) : 0.0f) * x per sample, a product
// even when dropped (as plain::scale_forward: a NaN or infinite x stays NaN). y may be x.
void drop_path_forward(int64_t batch, int64_t per_sample, double p, uint64_t dropout_seed, int node,
                       int64_t first_sample, const float* x, float* y, uint8_t* kept,
                       cudaStream_t stream);
// dx = (kept[b] ? scale : 0.0f) * dy per sample, scale = dropout_keep_scale(p); dx may be dy.
void drop_path_backward(int64_t batch, int64_t per_sample, float scale, const uint8_t* kept,
                        const float* dy, float* dx, cudaStream_t stream);

// --- Softmax cross-entropy (plain::softmax_cross_entropy, top1_correct; cpu_backend.cpp
// build_loss, build_aux_loss) ------------------------------------------------------------------

// The loss launchers' scratch, in doubles per valid sample (overwritten).
constexpr int kLossScratchPerSample = 2;

// The CrossEntropy step over the first valid_samples rows of logits [*, classes]: copies
// them to logits_out when it is not null; then, when labels is not null and valid_samples
// >= 1, writes loss[b] = float(the cross-entropy of row b) and adds to metrics (device, 2
// doubles) the sum of double(loss[b]) in sample order and the top-1 hits (ties to the
// lowest class). A label outside [0, classes), which the CPU throws for, gives a NaN loss
// and no hit. scratch: kLossScratchPerSample * valid_samples doubles.
void cross_entropy_forward(int64_t classes, int64_t valid_samples, double label_smoothing,
                           const float* logits, const int32_t* labels, float* loss, double* metrics,
                           float* logits_out, double* scratch, cudaStream_t stream);
// dlogits = the gradient of the mean loss over p.batch rows, (softmax(row) - q) / batch, as
// plain::softmax_cross_entropy writes it; dlogits may be logits. A row with a label out of
// range is all NaN.
void cross_entropy_backward(const plain::CrossEntropyParams& p, const float* logits,
                            const int32_t* labels, float* dlogits, cudaStream_t stream);

// The AuxLoss step: y = x (n floats; nothing when y is x); then, when labels is not null and
// valid_samples >= 1, metrics[0] += weight * mean * valid_samples, mean being
// plain::softmax_cross_entropy's over the first valid_samples rows of logits [*, classes],
// summed in sample order. scratch: kLossScratchPerSample * valid_samples doubles.
void aux_loss_forward(int64_t n, const float* x, float* y, int64_t classes, int64_t valid_samples,
                      double label_smoothing, float weight, const float* logits,
                      const int32_t* labels, double* metrics, double* scratch, cudaStream_t stream);
// dlogits = weight * cross_entropy_backward's gradient, rounded to float before the product
// (the CPU's scale_forward after softmax_cross_entropy); dlogits may be logits.
void aux_loss_backward(const plain::CrossEntropyParams& p, float weight, const float* logits,
                       const int32_t* labels, float* dlogits, cudaStream_t stream);

}  // namespace nas::cuda
