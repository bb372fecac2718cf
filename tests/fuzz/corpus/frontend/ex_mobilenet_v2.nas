// MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
// CVPR 2018) for ImageNet, layer for layer as torchvision's mobilenet_v2() at width 1.0:
// a fixed network (no choices) with 3,504,872 weights and 300.8M multiply-adds per
// 3x224x224 image. It is the reference point of the MobileNetV2 search space in
// mobilenet.nas.

// Each row of `settings` is [t, c, n, s]: n inverted residual blocks (mbconv) with
// expansion t and c output channels; the first block of the row has stride s.

import "ops.nas";

network mobilenet_v2(x: tensor[3, hw, hw], classes: int = 1000, hw: int = 224,
                     first_channels: int = 32, last_channels: int = 1280,
                     settings: list = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2],
                                       [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                                       [6, 320, 1, 1]],
                     dropout_p: float = 0.2) {
  let h = conv_bn_relu6(x, first_channels, kernel=3, stride=2);
  for row in settings {
    let t = row[0];
    let c = row[1];
    let n = row[2];
    let s = row[3];
    for i in range(n) {
      h = mbconv(h, c, expansion=t, kernel=3, stride=i == 0 ? s : 1);
    }
  }
  h = conv_bn_relu6(h, last_channels, kernel=1);
  h = dropout(global_avg_pool(h), p=dropout_p);
  return linear(h, classes);
}
