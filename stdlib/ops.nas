// ops.nas — the common building blocks of NAS search spaces: DARTS' ReLU-conv-BN,
// dilated and separable convolutions and factorized reduction (Liu et al. 2019), and
// MobileNetV2's inverted residual block (Sandler et al. 2018) used by ProxylessNAS, and
// MobileNetV3's (Howard et al. 2019): named activations, squeeze-and-excitation (`se`) and
// `mbconv_v3`. Use with `import "ops.nas";`. Every block takes its input tensor first and
// the number of output channels second (`se` and `activation` keep the input's shape). `affine` is the learned scale/shift of the final batch
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

// The activation named `act`: "relu", "relu6", "hard_swish" or "silu" (the activations of
// MobileNetV3 and EfficientNet-style spaces, chosen by name in a layer's settings).
module activation(x: tensor, act: string) {
  assert act == "relu" or act == "relu6" or act == "hard_swish" or act == "silu",
      "activation must be relu, relu6, hard_swish or silu, got " + act;
  if act == "relu" {
    return relu(x);
  }
  if act == "relu6" {
    return relu6(x);
  }
  if act == "hard_swish" {
    return hard_swish(x);
  }
  return silu(x);
}

// Squeeze-and-excitation (Hu et al. 2018), as MobileNetV3 and EfficientNet use it: global
// average pooling squeezes each channel to one number; a bottleneck of channels/reduction
// units (at least 1) with ReLU and a linear layer back to the channel count make one gate
// per channel (sigmoid, or MobileNetV3's hard_sigmoid); the input is scaled by its gates.
module se(x: tensor, reduction: int = 4, gate: string = "sigmoid") {
  assert reduction >= 1, "se reduction must be >= 1, got " + str(reduction);
  assert gate == "sigmoid" or gate == "hard_sigmoid",
      "se gate must be sigmoid or hard_sigmoid, got " + gate;
  let c = channels(x);
  let hidden = c / reduction;
  if hidden < 1 {
    hidden = 1;
  }
  let s = linear(relu(linear(global_avg_pool(x), hidden)), c);
  if gate == "sigmoid" {
    return x * sigmoid(s);
  }
  return x * hard_sigmoid(s);
}

// MobileNetV3's block: mbconv with a named activation (`act`) and an optional
// squeeze-and-excitation (hard_sigmoid gate, reduction 4) after the depthwise convolution.
// The residual add is there when the stride is 1 and the channel count is unchanged.
module mbconv_v3(x: tensor, c_out: int, expansion: int = 4, kernel: int = 3, stride: int = 1,
                 act: string = "hard_swish", use_se: bool = false) {
  assert stride == 1 or stride == 2, "mbconv_v3 stride must be 1 or 2, got " + str(stride);
  let c_in = channels(x);
  let h = x;
  if expansion != 1 {
    h = activation(batchnorm(conv(h, c_in * expansion, kernel=1, bias=false)), act);
  }
  h = dwconv(h, kernel, stride=stride, pad=(kernel - 1) / 2, bias=false);
  h = activation(batchnorm(h), act);
  if use_se {
    h = se(h, reduction=4, gate="hard_sigmoid");
  }
  h = batchnorm(conv(h, c_out, kernel=1, bias=false));
  if stride == 1 and c_in == c_out {
    h = x + h;
  }
  return h;
}
