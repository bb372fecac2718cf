#include "runtime/cuda/conv_cudnn.h"

#include <fmt/format.h>

#include <vector>

#include "runtime/cuda/cuda_check.h"

namespace nas::cuda {

namespace {

// The first (fastest) acceptable result of a cudnnFind* call: deterministic, FMA math only
// (CUDNN_DEFAULT_MATH would allow TF32 tensor cores on Ampere and later), within the
// workspace limit.
template <typename Perf>
const Perf& pick(const std::vector<Perf>& results, int returned, const ConvShape& shape,
                 const char* pass) {
  for (int i = 0; i < returned; ++i) {
    const Perf& r = results[i];
    if (r.status == CUDNN_STATUS_SUCCESS && r.determinism == CUDNN_DETERMINISTIC &&
        r.mathType == CUDNN_FMA_MATH && r.memory <= kWorkspaceLimit)
      return r;
  }
  throw UserError("cuda backend",
                  fmt::format("cuDNN has no deterministic FP32 {} algorithm within {} MiB of "
                              "workspace for the convolution {}; --backend jit runs it",
                              pass, kWorkspaceLimit >> 20, shape.key()));
}

void set_nchw(cudnnTensorDescriptor_t d, int64_t n, int64_t c, int64_t h, int64_t w) {
  NAS_CUDNN(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(n),
                                       static_cast<int>(c), static_cast<int>(h),
                                       static_cast<int>(w)));
}

}  // namespace

std::string ConvShape::key() const {
  return fmt::format("conv {}x{}x{}x{} -> {} k{} s{} p{} d{} g{}{}", n, c_in, h, w, c_out, kernel,
                     stride, pad, dilation, groups, bias ? " bias" : "");
}

CudnnConv::CudnnConv(CudaContext& context, const ConvShape& shape)
    : context_(context), shape_(shape) {
  const ConvShape& s = shape_;
  NAS_CUDNN(cudnnCreateTensorDescriptor(&x_));
  NAS_CUDNN(cudnnCreateTensorDescriptor(&y_));
  NAS_CUDNN(cudnnCreateTensorDescriptor(&bias_));
  NAS_CUDNN(cudnnCreateFilterDescriptor(&w_));
  NAS_CUDNN(cudnnCreateConvolutionDescriptor(&conv_));
  set_nchw(x_, s.n, s.c_in, s.h, s.w);
  set_nchw(y_, s.n, s.c_out, s.out_h(), s.out_w());
  set_nchw(bias_, 1, s.c_out, 1, 1);
  NAS_CUDNN(cudnnSetFilter4dDescriptor(
      w_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, static_cast<int>(s.c_out),
      static_cast<int>(s.c_in / s.groups), static_cast<int>(s.kernel), static_cast<int>(s.kernel)));
  const int pad = static_cast<int>(s.pad), stride = static_cast<int>(s.stride),
            dilation = static_cast<int>(s.dilation);
  NAS_CUDNN(cudnnSetConvolution2dDescriptor(conv_, pad, pad, stride, stride, dilation, dilation,
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  NAS_CUDNN(cudnnSetConvolutionGroupCount(conv_, static_cast<int>(s.groups)));
  NAS_CUDNN(cudnnSetConvolutionMathType(conv_, CUDNN_FMA_MATH));
}

void CudnnConv::choose(Pass pass) const {
  std::lock_guard<std::mutex> lock(choosing_);
  const int index = static_cast<int>(pass);
  if (chosen_[index]) return;
  // Timing the candidates (cuDNN allocates its own buffers for it).
  cudnnHandle_t h = context_.cudnn();
  constexpr int kCandidates = 16;
  int returned = 0;
  switch (pass) {
    case Pass::Forward: {
      std::vector<cudnnConvolutionFwdAlgoPerf_t> found(kCandidates);
      NAS_CUDNN(cudnnFindConvolutionForwardAlgorithm(h, x_, w_, conv_, y_, kCandidates, &returned,
                                                     found.data()));
      const auto& r = pick(found, returned, shape_, "forward");
      fwd_algo_ = r.algo, fwd_bytes_ = r.memory;
      break;
    }
    case Pass::Data: {
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> found(kCandidates);
      NAS_CUDNN(cudnnFindConvolutionBackwardDataAlgorithm(h, w_, y_, conv_, x_, kCandidates,
                                                          &returned, found.data()));
      const auto& r = pick(found, returned, shape_, "backward-data");
      data_algo_ = r.algo, data_bytes_ = r.memory;
      break;
    }
    case Pass::Filter: {
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> found(kCandidates);
      NAS_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithm(h, x_, y_, conv_, w_, kCandidates,
                                                            &returned, found.data()));
      const auto& r = pick(found, returned, shape_, "backward-filter");
      filter_algo_ = r.algo, filter_bytes_ = r.memory;
      break;
    }
  }
  chosen_[index] = true;
}

CudnnConv::~CudnnConv() {
  cudnnDestroyConvolutionDescriptor(conv_);
  cudnnDestroyFilterDescriptor(w_);
  cudnnDestroyTensorDescriptor(bias_);
  cudnnDestroyTensorDescriptor(y_);
  cudnnDestroyTensorDescriptor(x_);
}

void CudnnConv::forward(const float* x, const float* w, const float* bias, float* y) const {
  choose(Pass::Forward);
  const float one = 1.0f, zero = 0.0f;
  NAS_CUDNN(cudnnConvolutionForward(context_.cudnn(), &one, x_, x, w_, w, conv_, fwd_algo_,
                                    context_.workspace(fwd_bytes_), fwd_bytes_, &zero, y_, y));
  if (bias != nullptr) NAS_CUDNN(cudnnAddTensor(context_.cudnn(), &one, bias_, bias, &one, y_, y));
}

void CudnnConv::backward_data(const float* dy, const float* w, float* dx) const {
  choose(Pass::Data);
  const float one = 1.0f, zero = 0.0f;
  NAS_CUDNN(cudnnConvolutionBackwardData(context_.cudnn(), &one, w_, w, y_, dy, conv_, data_algo_,
                                         context_.workspace(data_bytes_), data_bytes_, &zero, x_,
                                         dx));
}

void CudnnConv::backward_weights(const float* x, const float* dy, float* dw, float* db) const {
  choose(Pass::Filter);
  const float one = 1.0f;
  NAS_CUDNN(cudnnConvolutionBackwardFilter(context_.cudnn(), &one, x_, x, y_, dy, conv_,
                                           filter_algo_, context_.workspace(filter_bytes_),
                                           filter_bytes_, &one, w_, dw));
  if (db != nullptr)
    NAS_CUDNN(cudnnConvolutionBackwardBias(context_.cudnn(), &one, y_, dy, &one, bias_, db));
}

LayoutTransform::LayoutTransform(CudaContext& context) : context_(context) {
  NAS_CUDNN(cudnnCreateTensorDescriptor(&nchw_));
  NAS_CUDNN(cudnnCreateTensorDescriptor(&nhwc_));
}

LayoutTransform::~LayoutTransform() {
  cudnnDestroyTensorDescriptor(nhwc_);
  cudnnDestroyTensorDescriptor(nchw_);
}

void LayoutTransform::to_nchw(int64_t n, int64_t c, int64_t h, int64_t w, const float* nhwc,
                              float* nchw) const {
  transform(n, c, h, w, false, nhwc, nchw);
}

void LayoutTransform::to_nhwc(int64_t n, int64_t c, int64_t h, int64_t w, const float* nchw,
                              float* nhwc) const {
  transform(n, c, h, w, true, nchw, nhwc);
}

// The descriptors are set on each call: one object serves every shape of its step.
void LayoutTransform::transform(int64_t n, int64_t c, int64_t h, int64_t w, bool to_nhwc,
                                const float* from, float* to) const {
  set_nchw(nchw_, n, c, h, w);
  NAS_CUDNN(cudnnSetTensor4dDescriptor(nhwc_, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT,
                                       static_cast<int>(n), static_cast<int>(c),
                                       static_cast<int>(h), static_cast<int>(w)));
  const float one = 1.0f, zero = 0.0f;
  NAS_CUDNN(cudnnTransformTensor(context_.cudnn(), &one, to_nhwc ? nchw_ : nhwc_, from, &zero,
                                 to_nhwc ? nhwc_ : nchw_, to));
}

std::shared_ptr<const CudnnConv> cudnn_conv(CudaContext& context, const ConvShape& shape) {
  return context.cached<CudnnConv>(
      shape.key(), [&] { return std::make_shared<const CudnnConv>(context, shape); });
}

}  // namespace nas::cuda
