// A macro search space of plain and residual convolutions for Fashion-MNIST (1x28x28, 10
// classes), sized for CPUs: every candidate is a dense convolution, which oneDNN runs at
// several times the throughput per multiply-add of the depthwise and 1x1 convolutions of
// darts_fmnist.nas, so a network found here trains for tens of epochs within an hour
// on 2 cores. The layout is that of ResNet and VGG, with the layers searched as in
// ProxylessNAS' and SPOS' macro spaces:

//   stem       3x3 convolution to C channels, BN, ReLU                      28x28
//   stage 0    `slots` searched layers of C channels                        28x28
//   reduce     3x3 stride-2 convolution to 2C channels, BN, ReLU            14x14
//   stage 1    `slots` searched layers of 2C channels                       14x14
//   reduce     3x3 stride-2 convolution to 4C channels, BN, ReLU            7x7
//   stage 2    `slots` searched layers of 4C channels                       7x7
//   head       global average pooling, dropout, linear classifier

// Every searched layer is a choice, keyed "stage<s>/layer<i>", between
//   conv3     3x3 convolution, BN, ReLU
//   conv5     5x5 convolution, BN, ReLU (2.8x conv3's multiply-adds)
//   dil3      3x3 convolution with dilation 2 (a 5x5 receptive field), BN, ReLU
//   res3      a ResNet basic block: two 3x3 convolutions with BN, the input added, ReLU
//   skip      the identity: the layer is left out
// so 5^(3*slots) architectures (slots=3: 1.95M), from 3 to 21 convolutions deep. The
// unbounded winner is the largest network; a search bounds its multiply-adds
// (`regularizer` with `"estimator": "macs"`), which sets its training time.

module conv_bn_relu(x: tensor, c: int, kernel: int = 3, stride: int = 1, dilation: int = 1) {
  let pad = dilation * (kernel - 1) / 2;
  return relu(batchnorm(conv(x, c, kernel=kernel, stride=stride, pad=pad,
                             dilation=dilation, bias=false)));
}

module basic_block(x: tensor) {
  let c = channels(x);
  let h = conv_bn_relu(x, c);
  h = batchnorm(conv(h, c, kernel=3, pad=1, bias=false));
  return relu(x + h);
}

module searched_layer(x: tensor, key: string) {
  let c = channels(x);
  return choice(key=key) {
    conv3: conv_bn_relu(x, c, kernel=3),
    conv5: conv_bn_relu(x, c, kernel=5),
    dil3: conv_bn_relu(x, c, kernel=3, dilation=2),
    res3: basic_block(x),
    skip: identity(x),
  };
}

network convnet_fmnist(x: tensor[in_channels, hw, hw], C: int = 32, slots: int = 3,
                       dropout_p: float = 0.0, classes: int = 10, in_channels: int = 1,
                       hw: int = 28) {
  let h = conv_bn_relu(x, C);
  let c = C;
  for stage in range(3) {
    if stage > 0 {
      c = 2 * c;
      h = conv_bn_relu(h, c, stride=2);
    }
    for i in range(slots) {
      h = searched_layer(h, "stage" + str(stage) + "/layer" + str(i));
    }
  }
  h = global_avg_pool(h);
  if dropout_p > 0.0 {
    h = dropout(h, p=dropout_p);
  }
  return linear(h, classes);
}
