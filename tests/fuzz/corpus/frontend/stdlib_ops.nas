// ops.nas — the common building blocks of NAS search spaces: DARTS' ReLU-conv-BN,
// dilated and separable convolutions and factorized reduction (Liu et al. 2019), and
// MobileNetV2's inverted residual block (Sandler et al. 2018) used by ProxylessNAS.
// Use with `import "ops.nas";`. Every block takes its input tensor first and the number
// of output channels second. `affine` is the learned scale/shift of the final batch
// norm: DARTS turns it off during the search (affine=false) and on when retraining the
// found network (the default here).

// ReLU -> kxk convolution (no bias) -> batch norm. DARTS' ReLUConvBN; with kernel 1 it
// is the 1x1 "preprocess" that matches a cell input to the cell's width.
module relu_conv_bn(x: tensor, c_out: int, kernel: int = 1, stride: int = 1, pad: int = 0,
                    affine: bool = true) {
  let h = relu(x);
  h = conv(h, c_out, kernel=kernel, stride=stride, pad=pad, bias=false);
  return batchnorm(h, affine=affine);
}

// ReLU -> depthwise kxk convolution (stride, dilation) -> 1x1 convolution -> batch norm.
// DARTS' DilConv; with dilation 1 it is one half of a separable convolution.
module dil_conv(x: tensor, c_out: int, kernel: int, stride: int = 1, pad: int = 0,
                dilation: int = 1, affine: bool = true) {
  let h = relu(x);
  h = dwconv(h, kernel, stride=stride, pad=pad, dilation=dilation, bias=false);
  h = conv(h, c_out, kernel=1, bias=false);
  return batchnorm(h, affine=affine);
}

// Separable convolution as in DARTS: dil_conv twice; the first keeps the input width
// and applies the stride, the second maps to c_out with stride 1. DARTS uses dilation 1;
// the dilated version is the "dilated separable convolution" of NASNet-style spaces.
module sep_conv(x: tensor, c_out: int, kernel: int, stride: int = 1, pad: int = 0,
                dilation: int = 1, affine: bool = true) {
  let h = dil_conv(x, channels(x), kernel, stride=stride, pad=pad, dilation=dilation,
                   affine=affine);
  return dil_conv(h, c_out, kernel, stride=1, pad=pad, dilation=dilation, affine=affine);
}

// Halves H and W without losing every other pixel: ReLU, two 1x1 stride-2 convolutions
// of c_out/2 channels, the second shifted by one pixel (crop top/left), concatenated,
// then batch norm. DARTS' FactorizedReduce; c_out must be even.
module factorized_reduce(x: tensor, c_out: int, affine: bool = true) {
  assert c_out % 2 == 0, "factorized_reduce needs an even c_out, got " + str(c_out);
  let h = relu(x);
  let half = c_out / 2;
  let a = conv(h, half, kernel=1, stride=2, bias=false);
  let b = conv(crop(h, top=1, left=1), half, kernel=1, stride=2, bias=false);
  return batchnorm(concat(a, b), affine=affine);
}

// conv (no bias, "same" padding) -> batch norm -> ReLU6: MobileNetV2's ConvBNReLU
// (stem, expansion and last convolutions).
module conv_bn_relu6(x: tensor, c_out: int, kernel: int = 1, stride: int = 1) {
  let h = conv(x, c_out, kernel=kernel, stride=stride, pad=(kernel - 1) / 2, bias=false);
  return relu6(batchnorm(h));
}

// MobileNetV2 inverted residual (MBConv): 1x1 expansion to expansion*C_in channels with
// BN and ReLU6 (skipped when expansion is 1), depthwise kxk with the stride, BN, ReLU6,
// 1x1 linear projection to c_out with BN, and a residual add when the stride is 1 and
// the channel count is unchanged. Matches torchvision's InvertedResidual.
module mbconv(x: tensor, c_out: int, expansion: int = 6, kernel: int = 3, stride: int = 1) {
  assert stride == 1 or stride == 2, "mbconv stride must be 1 or 2, got " + str(stride);
  let c_in = channels(x);
  let hidden = c_in * expansion;
  let h = x;
  if expansion != 1 {
    h = conv_bn_relu6(h, hidden, kernel=1);
  }
  h = dwconv(h, kernel, stride=stride, pad=(kernel - 1) / 2, bias=false);
  h = relu6(batchnorm(h));
  h = batchnorm(conv(h, c_out, kernel=1, bias=false));
  if stride == 1 and c_in == c_out {
    h = x + h;
  }
  return h;
}
