// Convolutions on the GPU through cuDNN's legacy convolution API (cudnnConvolutionForward,
// BackwardData, BackwardFilter), FP32 NCHW. cuDNN 9 deprecated that API without removing it,
// and its graph API has no engine for several FP32 NCHW patterns (NVIDIA/cudnn-frontend#104),
// so every convolution takes the legacy path today.
//
// Each pass's algorithm is chosen once per signature, when a plan that runs the pass is
// prepared (choose()), by timing the candidates (cudnnFind*): the fastest that is
// deterministic, computes with FMA math only (CUDNN_FMA_MATH: no TF32 tensor cores, which
// round the inputs to 10 bits; the CPU backend, the reference, computes in full FP32) and
// fits in kWorkspaceLimit. Kernels are cached per context by signature, so the choices are
// made once per process.
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/cuda/cuda_context.h"

namespace nas::cuda {

struct ConvShape {
  int64_t n = 1, c_in = 1, h = 1, w = 1, c_out = 1;
  int64_t kernel = 1, stride = 1, pad = 0, dilation = 1, groups = 1;
  bool bias = false;

  int64_t out_h() const { return (h + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1; }
  int64_t out_w() const { return (w + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1; }
  std::string key() const;
};

// The most workspace a chosen algorithm may use.
constexpr size_t kWorkspaceLimit = size_t(256) << 20;

class CudnnConv {
 public:
  CudnnConv(CudaContext& context, const ConvShape& shape);
  ~CudnnConv();
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  enum class Pass { Forward, Data, Filter };

  const ConvShape& shape() const { return shape_; }
  // Times the candidates of `pass` and keeps the fastest acceptable one (once; later calls
  // return at once). A signature cuDNN has no acceptable algorithm for is a UserError
  // naming it. The passes call it themselves when a plan did not.
  void choose(Pass pass) const;
  // y = conv(x, w) (+ bias).
  void forward(const float* x, const float* w, const float* bias, float* y) const;
  // dx = the gradient of the input from dy.
  void backward_data(const float* dy, const float* w, float* dx) const;
  // dw += the weight gradient, db += the bias gradient (when db is set): the parameter
  // gradients accumulate, as the CPU backend's do.
  void backward_weights(const float* x, const float* dy, float* dw, float* db) const;

 private:
  CudaContext& context_;
  ConvShape shape_;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr, bias_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  // The choices, made by choose() (hence mutable: a shared kernel is const).
  mutable std::mutex choosing_;
  mutable bool chosen_[3] = {false, false, false};
  mutable cudnnConvolutionFwdAlgo_t fwd_algo_{};
  mutable cudnnConvolutionBwdDataAlgo_t data_algo_{};
  mutable cudnnConvolutionBwdFilterAlgo_t filter_algo_{};
  mutable size_t fwd_bytes_ = 0, data_bytes_ = 0, filter_bytes_ = 0;
};

// Copies between NCHW and channels-last (NHWC) fp32 tensors (cudnnTransformTensor), for the
// inference plans' channels-last values around NCHW kernels (compiler/passes/layout.h).
class LayoutTransform {
 public:
  explicit LayoutTransform(CudaContext& context);
  ~LayoutTransform();
  LayoutTransform(const LayoutTransform&) = delete;
  LayoutTransform& operator=(const LayoutTransform&) = delete;

  void to_nchw(int64_t n, int64_t c, int64_t h, int64_t w, const float* nhwc, float* nchw) const;
  void to_nhwc(int64_t n, int64_t c, int64_t h, int64_t w, const float* nchw, float* nhwc) const;

 private:
  void transform(int64_t n, int64_t c, int64_t h, int64_t w, bool to_nhwc, const float* from,
                 float* to) const;
  CudaContext& context_;
  cudnnTensorDescriptor_t nchw_ = nullptr, nhwc_ = nullptr;
};

// The cached kernel of `shape` in `context` (made, and its algorithms timed, on first use).
std::shared_ptr<const CudnnConv> cudnn_conv(CudaContext& context, const ConvShape& shape);

}  // namespace nas::cuda
