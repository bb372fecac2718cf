// A small MobileNetV3-style search space (Howard et al., "Searching for MobileNetV3",
// ICCV 2019) for Fashion-MNIST (1 x 28 x 28, 10 classes): the MBConv blocks of
// stdlib/ops.nas with named activations (relu, hard_swish, silu) and optional
// squeeze-and-excitation.

// Fixed: a 3x3 convolution to 16 channels (BN, hard_swish); at the end a 1x1 convolution
// to `last_channels` (BN, hard_swish), global average pooling and a linear classifier.

// Searched: each row [channels, n, stride, activation] of `settings` is a stage of n
// layers (the first with the row's stride). Every layer is a choice, keyed
// "stage<row>/layer<index>", between blocks k<k>_e<e> and k<k>_e<e>_se (kernel k in
// `kernels`, expansion e in `expansions`, without and with squeeze-and-excitation), and
// `skip` (the identity) where a residual connection is possible.

import "ops.nas";

module v3_choice(x: tensor, c_out: int, stride: int, act: string, key: string, kernels: list,
                 expansions: list) {
  if stride == 1 and channels(x) == c_out {
    return choice(key=key) {
      for k in kernels {
        for e in expansions {
          for se in [false, true] {
            ("k" + str(k) + "_e" + str(e) + (se ? "_se" : "")):
                mbconv_v3(x, c_out, e, k, stride, act=act, use_se=se)
          }
        }
      },
      skip: identity(x),
    };
  }
  return choice(key=key) {
    for k in kernels {
      for e in expansions {
        for se in [false, true] {
          ("k" + str(k) + "_e" + str(e) + (se ? "_se" : "")):
              mbconv_v3(x, c_out, e, k, stride, act=act, use_se=se)
        }
      }
    }
  };
}

network mobilenet_v3_fmnist(x: tensor[1, 28, 28], classes: int = 10,
                            settings: list = [[16, 1, 2, "relu"], [24, 2, 2, "relu"],
                                              [40, 2, 2, "silu"], [48, 2, 1, "hard_swish"]],
                            kernels: list = [3, 5], expansions: list = [3, 6],
                            last_channels: int = 96) {
  let h = hard_swish(batchnorm(conv(x, 16, kernel=3, pad=1, bias=false)));
  for row in enumerate(settings) {
    let stage = row[0];
    let c = row[1][0];
    let n = row[1][1];
    let s = row[1][2];
    let act = row[1][3];
    for i in range(n) {
      h = v3_choice(h, c, i == 0 ? s : 1, act, "stage" + str(stage) + "/layer" + str(i), kernels,
                    expansions);
    }
  }
  h = hard_swish(batchnorm(conv(h, last_channels, kernel=1, bias=false)));
  return linear(global_avg_pool(h), classes);
}
