// The DARTS search space on CIFAR-10 (Liu, Simonyan, Yang, "DARTS: Differentiable
// Architecture Search", ICLR 2019), exactly as the reference search network
// (model_search.py; shared/peers/darts_torch.py): a 3x3 stem of stem_multiplier*C
// channels, `layers` cells with reduction cells at layers/3 and 2*layers/3 (which double
// the width), global average pooling and a linear classifier.

// Search space: 14 edges per cell type x 8 operations; alphas are shared by all normal
// cells (keys "normal/n<node>_e<input>") and by all reduction cells ("reduce/...").
// The supernet has 1,930,618 weights, like darts_torch.py's Network().

// A genotype is an arch file that picks one op per edge and `none` on the edges a node
// drops (DARTS keeps the 2 strongest per node); zero-pruning removes those edges.

// The batch norms inside the cells have no scale and shift (affine=false), as in the DARTS
// search network: with them an operation could rescale its own output, and the alphas
// would no longer compare the operations alone. `--set affine=true` gives them one; the
// batch norms after the pools stay plain either way.

// The same file is DARTS' evaluation network (model.py's NetworkCIFAR), which retrains a
// genotype: --set evaluation=true gives affine batch norms, no batch norm after the
// pools and drop_path(x) on every chosen operation but an identity (nasc train's
// drop_path_prob schedules it); --set auxiliary=true adds the auxiliary head after the
// second reduction cell (loss weight 0.4; needs evaluation=true). DARTS' CIFAR-10 network
// is --set C=36 --set layers=20 --set evaluation=true: 3,349,342 weights with DARTS_V2,
// plus 476,426 for the auxiliary head. The choice keys are the search network's, so the
// search's arch.json applies as it is.

import "darts_ops.nas";

network darts(x: tensor[in_channels, hw, hw], C: int = 16, layers: int = 8, steps: int = 4,
              multiplier: int = 4, stem_multiplier: int = 3, classes: int = 10,
              in_channels: int = 3, hw: int = 32, affine: bool = false,
              evaluation: bool = false, auxiliary: bool = false) {
  assert evaluation or not auxiliary,
      "auxiliary=true is the evaluation network's head: set evaluation=true too";
  let c = stem_multiplier * C;
  let stem = batchnorm(conv(x, c, kernel=3, pad=1, bias=false));   // affine BN, as in DARTS
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
    // DARTS' auxiliary head reads the second reduction cell's output (8x8 at hw=32) and
    // weighs its loss 0.4 (train.py's auxiliary_weight).
    if auxiliary and i == 2 * layers / 3 {
      s1 = aux_loss(s1, darts_aux_head(s1, classes, pool_stride=3), weight=0.4);
    }
  }
  return linear(global_avg_pool(s1), classes);
}
