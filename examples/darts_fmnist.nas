// A small DARTS search space for Fashion-MNIST (1x28x28, 10 classes), sized for a short
// search on 2 CPU cores. Same cell, operations and network layout as darts.nas (Liu et
// al., "DARTS: Differentiable Architecture Search", ICLR 2019), scaled down:

//   C=8 (vs 16)        the cell width; the stem has 3*C = 24 channels
//   layers=5 (vs 8)    normal, reduce, normal, reduce, normal: 28x28 -> 14x14 -> 7x7
//   steps=3 (vs 4)     intermediate nodes per cell: 9 edges per cell type (vs 14)
//   multiplier=3       the cell output concatenates its 3 nodes: 3*C channels
//   affine=false       the cells' batch norms have no scale and shift, as in darts.nas
//                      (--set affine=true gives them one)
//   evaluation=false   --set evaluation=true: the evaluation network of a genotype, as in
//                      darts.nas (affine batch norms, no batch norm after the pools,
//                      drop_path(x) on every chosen operation but an identity)
//   auxiliary=false    --set auxiliary=true (with evaluation=true): DARTS' auxiliary head
//                      after the second reduction cell, loss weight 0.4; its 5x5 pool has
//                      stride 2 on the 7x7 features, giving CIFAR's 2x2

// That gives 18 architecture groups (9 normal + 9 reduce edges, 8 ops each), a supernet
// of 256,066 weights and 30.7M multiply-adds per sample (darts.nas: 1.93M and 300M), so a
// first-order DARTS step on batches of 32 + 32 images is about 6 GMAC: a few hundred
// steps, i.e. a few minutes, on two cores.

// Retrain a searched genotype as the evaluation network (docs/train.md, "Evaluation
// recipe"): nasc train examples/darts_fmnist.nas --arch A.json --set evaluation=true
// --set auxiliary=true -c cfg.json, with a drop_path_prob in cfg.json.

import "darts_ops.nas";

network darts_fmnist(x: tensor[in_channels, hw, hw], C: int = 8, layers: int = 5,
                     steps: int = 3, multiplier: int = 3, stem_multiplier: int = 3,
                     classes: int = 10, in_channels: int = 1, hw: int = 28,
                     affine: bool = false, evaluation: bool = false,
                     auxiliary: bool = false) {
  assert evaluation or not auxiliary,
      "auxiliary=true is the evaluation network's head: set evaluation=true too";
  let c = stem_multiplier * C;
  let stem = batchnorm(conv(x, c, kernel=3, pad=1, bias=false));
  let s0 = stem;
  let s1 = stem;
  c = C;
  let reduction_prev = false;
  for i in range(layers) {
    // Reduction cells at layers/3 and 2*layers/3 (`/` on ints is integer division).
    let reduction = i in [layers / 3, 2 * layers / 3];
    if reduction {
      c = 2 * c;
    }
    let out = darts_cell(s0, s1, c, reduction, reduction_prev, steps=steps,
                         multiplier=multiplier, affine=affine, evaluation=evaluation);
    s0 = s1;
    s1 = out;
    reduction_prev = reduction;
    // The auxiliary head reads the second reduction cell's output, 7x7 at hw=28: its 5x5
    // pool takes stride 2 there (DARTS' stride 3 would give 1x1) to reach CIFAR's 2x2.
    if auxiliary and i == 2 * layers / 3 {
      s1 = aux_loss(s1, darts_aux_head(s1, classes, pool_stride=2), weight=0.4);
    }
  }
  return linear(global_avg_pool(s1), classes);
}
