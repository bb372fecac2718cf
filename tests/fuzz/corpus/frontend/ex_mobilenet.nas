// The MobileNetV2 search space of ProxylessNAS (Cai, Zhu, Han, "ProxylessNAS: Direct
// Neural Architecture Search on Target Task and Hardware", ICLR 2019), as in NNablaNAS's
// mobilenet example, on CIFAR-sized inputs by default (3 x hw x hw, 10 classes).

// Fixed: a 3x3 stride-2 convolution to 32 channels (BN, ReLU6) and an inverted residual
// block with expansion 1 to 16 channels; at the end a 1x1 convolution to 1280 channels
// (BN, ReLU6), global average pooling, dropout and a linear classifier.

// Searched: each row [channels, n, stride] of `settings` is a stage of n layers (the
// first with the row's stride). Every layer is a choice of its own, keyed
// "stage<row>/layer<index>" (both from 0), between the inverted residual blocks
// mb<e>_k<k> (expansion e in `expansions`, kernel k x k in `kernels`; MB3/MB6 x 3/5/7 by
// default) and, where a residual connection is possible (stride 1 and as many input as
// output channels, i.e. not the first layer of a stage), `skip`: the identity, which
// removes the layer (depth search).

import "ops.nas";

// One searchable layer: a choice, under `key`, between inverted residual blocks of every
// expansion and kernel size, plus `skip` when the layer keeps its input's shape.
module mb_choice(x: tensor, c_out: int, stride: int, key: string, expansions: list,
                 kernels: list) {
  if stride == 1 and channels(x) == c_out {
    return choice(key=key) {
      for e in expansions {
        for k in kernels { ("mb" + str(e) + "_k" + str(k)): mbconv(x, c_out, e, k, stride) }
      },
      skip: identity(x),
    };
  }
  return choice(key=key) {
    for e in expansions {
      for k in kernels { ("mb" + str(e) + "_k" + str(k)): mbconv(x, c_out, e, k, stride) }
    }
  };
}

network mobilenet(x: tensor[3, hw, hw], classes: int = 10, hw: int = 32,
                  settings: list = [[24, 4, 2], [32, 4, 2], [64, 4, 2], [96, 4, 1],
                                    [160, 4, 2], [320, 1, 1]],
                  expansions: list = [3, 6], kernels: list = [3, 5, 7],
                  first_channels: int = 32, last_channels: int = 1280,
                  dropout_p: float = 0.2) {
  let h = conv_bn_relu6(x, first_channels, kernel=3, stride=2);
  h = mbconv(h, 16, expansion=1, kernel=3, stride=1);
  for row in enumerate(settings) {
    let stage = row[0];
    let c = row[1][0];
    let n = row[1][1];
    let s = row[1][2];
    for i in range(n) {
      h = mb_choice(h, c, i == 0 ? s : 1, "stage" + str(stage) + "/layer" + str(i), expansions,
                    kernels);
    }
  }
  h = conv_bn_relu6(h, last_channels, kernel=1);
  h = dropout(global_avg_pool(h), p=dropout_p);
  return linear(h, classes);
}
