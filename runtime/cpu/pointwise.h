// 1x1 convolution without padding, over one group, on NCHW float buffers, as a matrix
// product per sample: y_n [c_out, h*w] = w [c_out, c_in] * x_n [c_in, h*w]. On NCHW values
// at stride 1 each sample's planes already are that product's right-hand matrix, so these
// passes read and write the executor's buffers as they are; at a larger stride (DARTS'
// FactorizedReduce) the pixels the window visits are gathered first, and the data
// gradient scattered back to them. oneDNN's 1x1 convolution
// kernels run on a blocked layout (nChw16c) and Conv2dKernel reordered every input and
// output into it and back around each call: in a DARTS step those reorders took more
// time than the convolutions themselves (docs/results.md, "Pointwise convolutions as
// matrix products"). The products are oneDNN's sgemm, one per sample, samples spread over
// the threads; see Conv2dKernel::Code for which passes run here.
#pragma once

#include "runtime/cpu/conv2d.h"

namespace nas {

// kernel == 1, pad == 0, groups == 1, any stride (dilation has no effect on one tap).
bool is_pointwise(const Conv2dParams& p);

// y = conv1x1(x, w) + b; `b` is ignored unless p.bias. Outputs are overwritten.
void pointwise_forward(const Conv2dParams& p, const float* x, const float* w, const float* b,
                       float* y);
// dx = w^T dy, per sample.
void pointwise_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx);
// dw = sum over samples of dy_n x_n^T (and db when p.bias; `db` may be null otherwise). The
// samples are summed in fixed groups, in order, so the result does not depend on the
// thread count.
void pointwise_backward_weights(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                                float* db);

}  // namespace nas
