let C_default = 16;
module relu_conv_bn(x: tensor, c_out: int, kernel: int = 1, stride: int = 1, pad: int = 0) {
  let h = relu(x);
  h = conv(h, c_out, kernel=kernel, stride=stride, pad=pad, bias=false);
  return batchnorm(h, affine=false);
}
network tiny(x: tensor[3, 16, 16], classes: int = 10, width: int = C_default) {
  let h = relu_conv_bn(x, width, kernel=3, pad=1);
  h = choice "op" {
    conv:     conv(h, width, kernel=3, pad=1),
    max_pool: max_pool(h, 3, stride=1, pad=1),
    identity: identity(h),
  };
  h = relu(h);
  return linear(global_avg_pool(h), classes);
}
