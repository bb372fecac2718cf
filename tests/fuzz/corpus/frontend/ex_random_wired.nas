// A randomly wired network (Xie, Kirillov, Girshick, He, "Exploring Randomly Wired Neural
// Networks for Image Recognition", ICCV 2019), small regime, on CIFAR-sized inputs.
// A fixed network: the graph generator is the design, and each seed gives one network
// (no choices; try `nasc graph random_wired.nas --set seed=7`).

// Stage i is a DAG from the Watts-Strogatz generator watts_strogatz(n, k, p, seed + i),
// its undirected edges [u, v] (u < v) oriented from the lower to the higher node index.
// Node v: the sum of its predecessors' outputs (a node without predecessors reads the
// stage input instead, with stride 2 and the channel change of the stage), then
// ReLU -> 3x3 depthwise conv -> 1x1 conv -> BN (stdlib dil_conv with dilation 1).
// The stage output is the average of the nodes without successors.
// Xie et al. aggregate with learned sigmoid-positive weights; this space uses plain sums.

// Network: 3x3 conv stem (C channels) + BN, `stages` random stages of widths C, 2C, 4C,
// ... (each halves H and W), then ReLU, 1x1 conv to last_channels + BN, ReLU, global
// average pooling and a linear classifier. Defaults follow the paper's WS(4, 0.75) with
// fewer nodes (n=12 vs 32) and a smaller width for CIFAR-10.

import "ops.nas";

// One random stage: x [c_in, H, W] -> [c, H/2, W/2].
module random_stage(x: tensor, c: int, n: int, k: int, p: float, seed: int) {
  let edges = watts_strogatz(n, k, p, seed);
  let outs = [];
  let sinks = [];
  for v in range(n) {
    let preds = [e[0] for e in edges if e[1] == v];
    let h = x;
    let stride = 2;
    if len(preds) > 0 {
      let ins = [outs[u] for u in preds];
      h = len(ins) == 1 ? ins[0] : sum(ins);
      stride = 1;
    }
    let y = dil_conv(h, c, 3, stride=stride, pad=1);
    outs = outs + [y];
    if len([e for e in edges if e[0] == v]) == 0 {
      sinks = sinks + [y];
    }
  }
  if len(sinks) == 1 {
    return sinks[0];
  }
  return sum(sinks) * (1.0 / len(sinks));
}

network random_wired(x: tensor[3, hw, hw], classes: int = 10, hw: int = 32, C: int = 32,
                     stages: int = 3, n: int = 12, k: int = 4, p: float = 0.75, seed: int = 1,
                     last_channels: int = 512) {
  let h = batchnorm(conv(x, C, kernel=3, pad=1, bias=false));
  let c = C;
  for i in range(stages) {
    h = random_stage(h, c, n, k, p, seed + i);
    c = 2 * c;
  }
  h = relu(batchnorm(conv(relu(h), last_channels, kernel=1, bias=false)));
  return linear(global_avg_pool(h), classes);
}
