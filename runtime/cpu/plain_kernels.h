// CPU kernels that oneDNN does not provide, written as plain loops over contiguous float
// buffers (the compiler vectorizes them): the training loss, DARTS' mixed-op weighted sum and
// the softmax over its architecture weights, and the combining/reshaping ops of the op
// registry (add, concat, mul, global_avg_pool, crop, zero), and the generic kernel of
// activations that oneDNN lacks. Every kernel works on a batch of
// `batch` samples laid out one after another (NCHW for images); the per-sample shapes are
// those of the registry. Sums over many elements accumulate in double.
//
// Each op has a params struct whose validate() throws InternalError naming the first
// inconsistent field; the kernels validate their params before touching any buffer. Outputs
// are overwritten (never accumulated into). Unless a kernel says otherwise, outputs must not
// overlap its inputs.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/cpu/row_activation.h"

namespace nas::plain {

// --- Softmax cross-entropy -------------------------------------------------------------------

struct CrossEntropyParams {
  int64_t batch = 1;    // samples (rows of logits)
  int64_t classes = 1;  // logits per sample
  // Label smoothing eps in [0, 1): the target is (1 - eps) * onehot(label) + eps / classes,
  // as in PyTorch's CrossEntropyLoss(label_smoothing=eps). 0: the plain one-hot target.
  double smoothing = 0;

  void validate() const;
};

// Mean over the batch of the cross-entropy of softmax(logits[b]) against the (smoothed)
// target q: -sum_j q[j] log softmax[j] = logsumexp(row) - (1 - eps) * row[label]
// - eps / classes * sum(row), with the row maximum subtracted (stable for any finite
// logits) and accumulated in double. logits is [batch, classes], labels is [batch]. When
// dlogits is not null it receives the gradient of the mean loss, (softmax(row) - q) / batch;
// it may be the logits buffer itself (in place). Every label is checked before anything is
// written: one outside [0, classes) throws InternalError naming the sample index and
// the label.
double softmax_cross_entropy(const CrossEntropyParams& p, const float* logits,
                             const int32_t* labels, float* dlogits = nullptr);

// How many samples have their label as the top-1 prediction (ties go to the lowest class
// index, as in argmax). Labels are checked as in softmax_cross_entropy.
int64_t top1_correct(const CrossEntropyParams& p, const float* logits, const int32_t* labels);
// top1_correct / batch.
double top1_accuracy(const CrossEntropyParams& p, const float* logits, const int32_t* labels);

// --- Softmax over a small vector (DARTS' alpha -> mixing weights) ---------------------------

// y = softmax(x) over `size` values, max-subtracted, normalised in double. y may be x.
void softmax_forward(int64_t size, const float* x, float* y);
// dx = y * (dy - sum(dy * y)), from the forward's output y. dx may be dy.
void softmax_backward(int64_t size, const float* y, const float* dy, float* dx);

// sum_j a[j] * b[j] over n floats, accumulated in double (in chunks, on the kernel threads):
// the architecture gradient of a full-mode choice is one such dot per candidate.
double dot(int64_t n, const float* a, const float* b);

// --- Weighted sum (DARTS' mixed op) ----------------------------------------------------------

struct WeightedSumParams {
  int64_t inputs = 1;  // k, the number of candidate tensors (and weights)
  int64_t size = 1;    // elements of each tensor, batch included

  void validate() const;
};

// y = sum_i w[i] * xs[i], xs holding `inputs` pointers to `size` floats.
void weighted_sum_forward(const WeightedSumParams& p, const float* const* xs, const float* w,
                          float* y);
// dxs[i] = w[i] * dy (skipped where dxs is null or dxs[i] is null) and
// dw[i] = sum(dy * xs[i]) in double (skipped where dw is null).
void weighted_sum_backward(const WeightedSumParams& p, const float* const* xs, const float* w,
                           const float* dy, float* const* dxs, float* dw);

// --- Add -------------------------------------------------------------------------------------

struct AddParams {
  int64_t inputs = 1;  // k >= 1
  int64_t size = 1;    // elements of each tensor, batch included

  void validate() const;
};

// y = sum_i xs[i]. y may be one of the inputs (in place), if that input is listed once.
void add_forward(const AddParams& p, const float* const* xs, float* y);
// dxs[i] = dy for every non-null dxs[i] (a dxs[i] equal to dy is left as is).
void add_backward(const AddParams& p, const float* dy, float* const* dxs);

// --- Concat ----------------------------------------------------------------------------------

// Concatenation of `sizes.size()` tensors along one axis. The tensors are viewed as
// [outer, sizes[i], inner]: outer is the batch times the product of the per-sample axes
// before the concat axis, inner the product of those after it. For NCHW images joined on
// channels (registry axis 0): outer = batch, sizes = channel counts, inner = H * W.
struct ConcatParams {
  int64_t outer = 1;
  int64_t inner = 1;
  std::vector<int64_t> sizes;  // extent of each input along the axis, all >= 1

  // The params of `concat(axis)` over inputs of per-sample shape `shapes` (equal except
  // along `axis`, registry semantics) with `batch` samples. Throws InternalError
  // when the shapes disagree or the axis is out of range.
  static ConcatParams from_shapes(int64_t batch, const std::vector<std::vector<int64_t>>& shapes,
                                  int64_t axis);

  void validate() const;
  int64_t total() const;  // extent of the output along the axis
};

// y = concat(xs) (shape [outer, total(), inner]).
void concat_forward(const ConcatParams& p, const float* const* xs, float* y);
// The split: dxs[i] = the slice of dy that xs[i] went to (skipped where dxs[i] is null).
void concat_backward(const ConcatParams& p, const float* dy, float* const* dxs);

// --- Mul by a constant -----------------------------------------------------------------------

// y = scale * x over `size` elements; y may be x. The backward is the same map on dy
// (dx = scale * dy). Throws InternalError for size < 1 or a non-finite scale.
void scale_forward(int64_t size, double scale, const float* x, float* y);
void scale_backward(int64_t size, double scale, const float* dy, float* dx);

// --- Dropout ---------------------------------------------------------------------------------

// One dropout node's draws in one run (support/rng.h, dropout_keeps), over its tensor
// [batch, per_sample].
struct DropoutParams {
  uint64_t node_seed = 0;    // derive_seed(the run's dropout seed, the dropout node's id)
  int64_t first_sample = 0;  // the global batch index of this rank's sample 0, >= 0
  int64_t per_sample = 1;    // elements per sample
  double p = 0.0;            // the drop probability, in [0, 1)

  void validate() const;
};

// y[e] = kept(begin + e) ? x[e] * dropout_keep_scale(p) : 0 for e in [0, n): elements [begin,
// begin + n) of the tensor, x and y pointing at element `begin`. The forward runs it on x,
// the backward on dy, with the same draws. y may be x.
void dropout_range(const DropoutParams& p, int64_t begin, int64_t n, const float* x, float* y);

// --- Mul by a tensor -------------------------------------------------------------------------

// x viewed as [factors, inner] times one factor per row: inner = 1 for a factor shaped like
// x, inner = H * W for a per-channel factor [batch, C] of x [batch, C, H, W].
struct MulParams {
  int64_t factors = 1;  // elements of the factor tensor, batch included
  int64_t inner = 1;    // elements of x per factor
  double scale = 1.0;   // finite

  void validate() const;
};

// y[f, i] = scale * x[f, i] * factor[f]; y may be x. Its gradients are muls again (dx =
// mul(dy, factor)) and, for the factor, a sum over `inner` (see the mul op's gradient rule).
void mul_forward(const MulParams& p, const float* x, const float* factor, float* y);

// --- Generic elementwise (ops with no oneDNN algorithm) ---------------------------------------

// y[i] = value(x[i], a) in double over `size` elements, for an activation's scalar formula
// (support/elementwise_ops.h); y may be x.
void elementwise_forward(int64_t size, double (*value)(double, double), double a, const float* x,
                         float* y);
// dx[i] = dy[i] * derivative(x[i], a); dx may be dy.
void elementwise_backward(int64_t size, double (*derivative)(double, double), double a,
                          const float* x, const float* dy, float* dx);

// --- Global average pooling ------------------------------------------------------------------

struct GlobalAvgPoolParams {
  int64_t batch = 1, channels = 1, height = 1, width = 1;  // input [batch, C, H, W]

  void validate() const;
};

// y[b, c] = mean over H, W of x[b, c] (accumulated in double); y is [batch, C]. With
// activations (a fused region), of f_k(...f_1(x)) instead, each plane activated into
// scratch first.
void global_avg_pool_forward(const GlobalAvgPoolParams& p, const float* x, float* y,
                             const std::vector<RowActivation>& activations = {});
// dx[b, c, h, w] = dy[b, c] / (H * W).
void global_avg_pool_backward(const GlobalAvgPoolParams& p, const float* dy, float* dx);

// --- Crop ------------------------------------------------------------------------------------

struct CropParams {
  int64_t batch = 1, channels = 1, height = 1, width = 1;  // input [batch, C, H, W]
  int64_t top = 0, left = 0, bottom = 0, right = 0;        // rows/columns removed, >= 0

  void validate() const;  // also: at least 1 row and 1 column must remain
  int64_t out_height() const { return height - top - bottom; }
  int64_t out_width() const { return width - left - right; }
};

// y = x[:, :, top:H-bottom, left:W-right].
void crop_forward(const CropParams& p, const float* x, float* y);
// dx = dy placed back in the window, zeros on the removed borders.
void crop_backward(const CropParams& p, const float* dy, float* dx);

// --- Channel slice and shuffle (PC-DARTS' partial channels) ---------------------------------

// A tensor [batch, channels, ...] seen as [batch, channels, inner].
struct ChannelSliceParams {
  int64_t batch = 1, channels = 1, inner = 1;
  int64_t start = 0, count = 1;  // channels [start, start + count) are kept

  void validate() const;
};

// y = x[:, start:start+count].
void channel_slice_forward(const ChannelSliceParams& p, const float* x, float* y);
// dx = dy placed at channels [start, start+count), zeros in the other channels.
void channel_slice_backward(const ChannelSliceParams& p, const float* dy, float* dx);

struct ChannelShuffleParams {
  int64_t batch = 1, channels = 1, inner = 1;
  int64_t groups = 1;  // divides channels

  void validate() const;
};

// ShuffleNet's shuffle: with m = channels / groups, y[:, j*groups + i] = x[:, i*m + j]
// (the channels seen as [groups, m], transposed). Its inverse is the shuffle with m groups.
void channel_shuffle_forward(const ChannelShuffleParams& p, const float* x, float* y);

// --- Zero ------------------------------------------------------------------------------------

// The output of `zero` (and the gradient it passes back, which is zero as well): `size`
// zeros. For zero(stride s) on [batch, C, H, W] the size is batch * C * ceil(H/s) * ceil(W/s),
// see zero_output_size. Throws InternalError for size < 1.
void zero_fill(int64_t size, float* y);
// batch * channels * ceil(height / stride) * ceil(width / stride); all arguments >= 1.
int64_t zero_output_size(int64_t batch, int64_t channels, int64_t height, int64_t width,
                         int64_t stride);

}  // namespace nas::plain
