// darts_ops.nas — the DARTS search space (Liu, Simonyan, Yang, "DARTS: Differentiable
// Architecture Search", ICLR 2019): the 8 candidate operations, the mixed-op edge and
// the normal/reduction cell, as in the reference search network (model_search.py; also
// shared/peers/darts_torch.py). Use with `import "darts_ops.nas";` (not named darts.nas,
// so that examples/darts.nas can import it: an import is looked up in the importing
// file's folder first).
// Modelling decisions:
// - A cell node is the plain SUM of one mixed edge from every earlier state, as in DARTS;
//   it is not a `join`. The genotype ("keep the 2 strongest non-`none` incoming edges of
//   each node") is written in an arch file by selecting `none` on the dropped edges;
//   zero-pruning then removes them, and everything only they consumed.
// - Edge keys are "normal/n<node>_e<input>" and "reduce/n<node>_e<input>", where node 2..
//   is the intermediate node's index among the cell's states (0 and 1 are the inputs), so
//   all normal cells share one set of alphas and all reduction cells another.
// - All batch norms inside cells have affine=false by default, as in the DARTS search
//   network.
// - evaluation=true (darts_op, darts_edge, darts_cell) gives DARTS' evaluation network
//   (model.py) from the same edges: no batch norm after the pools, drop_path(x) on every
//   operation but an identity and Zero, and (in darts_cell) affine batch norms. The choice
//   keys and candidates are the same, so a genotype searched on the search network fixes
//   the evaluation network too.

import "ops.nas";

// The DARTS primitives, in the reference order (alphas index into this list).
let darts_primitives = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                        "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"];

// One DARTS candidate operation by name, on c channels (input and output), with stride 1
// or 2. `none` is Zero: it keeps the shape (strided) and cuts the graph when selected.
// evaluation=true makes it the evaluation network's operation (model.py's OPS and
// Cell.forward): the pools lose the batch norm that the search network's MixedOp puts
// after them (model_search.py), and the result goes through drop_path(x), the run's
// scheduled probability, unless it is an identity (skip_connect at stride 1; at stride 2
// it is a factorized_reduce and is dropped like the others).
module darts_op(x: tensor, op: string, c: int, stride: int = 1, affine: bool = false,
                evaluation: bool = false) {
  if op == "none" {
    return zero(x, stride=stride);
  }
  if op == "skip_connect" and stride == 1 {
    return identity(x);
  }
  let h = x;
  if op == "max_pool_3x3" {
    h = max_pool(x, 3, stride=stride, pad=1);
  } else if op == "avg_pool_3x3" {
    h = avg_pool(x, 3, stride=stride, pad=1, count_include_pad=false);
  } else if op == "skip_connect" {
    h = factorized_reduce(x, c, affine=affine);
  } else if op == "sep_conv_3x3" {
    h = sep_conv(x, c, 3, stride=stride, pad=1, affine=affine);
  } else if op == "sep_conv_5x5" {
    h = sep_conv(x, c, 5, stride=stride, pad=2, affine=affine);
  } else if op == "dil_conv_3x3" {
    h = dil_conv(x, c, 3, stride=stride, pad=2, dilation=2, affine=affine);
  } else if op == "dil_conv_5x5" {
    h = dil_conv(x, c, 5, stride=stride, pad=4, dilation=2, affine=affine);
  } else {
    assert false, "unknown DARTS operation `" + op + "`; the primitives are " +
        str(darts_primitives);
  }
  if evaluation {
    return drop_path(h);
  }
  // model_search.py's MixedOp: a plain batch norm after each pool, as the convolutions
  // already end in one.
  return op in ["max_pool_3x3", "avg_pool_3x3"] ? batchnorm(h, affine=false) : h;
}

// The mixed-op edge: a choice over `ops` (default: all 8 primitives) under the
// architecture key `key`; edges with the same key share one alpha vector.
module darts_edge(x: tensor, c: int, stride: int, key: string, ops: list = darts_primitives,
                  affine: bool = false, evaluation: bool = false) {
  return choice(key=key) {
    for op in ops { (op): darts_op(x, op, c, stride, affine=affine, evaluation=evaluation) }
  };
}

// A DARTS cell on c channels. s0 and s1 are the outputs of the two previous cells; s0 is
// preprocessed by factorized_reduce when the previous cell was a reduction (it then has
// twice the resolution of s1), else by a 1x1 relu_conv_bn, and s1 by a 1x1 relu_conv_bn.
// Each of the `steps` nodes sums one mixed edge from every earlier state; in a reduction
// cell the edges from the two inputs have stride 2. The output concatenates the last
// `multiplier` states: multiplier*c channels. affine=true gives the convolutions' batch
// norms a scale and shift (the batch norms after pooling stay plain, as in the search
// network). evaluation=true is DARTS' evaluation cell (model.py's Cell): affine batch
// norms whatever `affine` says, no batch norm after the pools, and drop_path(x) on every
// chosen operation but an identity.
module darts_cell(s0: tensor, s1: tensor, c: int, reduction: bool, reduction_prev: bool,
                  steps: int = 4, multiplier: int = 4, ops: list = darts_primitives,
                  affine: bool = false, evaluation: bool = false) {
  assert multiplier <= steps + 2, "darts_cell multiplier (" + str(multiplier) +
      ") must be at most steps + 2 = " + str(steps + 2);
  let kind = reduction ? "reduce" : "normal";
  let learned_bn = affine or evaluation;
  let p0 = reduction_prev ? factorized_reduce(s0, c, affine=learned_bn)
                          : relu_conv_bn(s0, c, 1, affine=learned_bn);
  let p1 = relu_conv_bn(s1, c, 1, affine=learned_bn);
  let states = [p0, p1];
  for i in range(steps) {
    let node = i + 2;
    let edges = [darts_edge(states[j], c, (reduction and j < 2) ? 2 : 1,
                            kind + "/n" + str(node) + "_e" + str(j), ops, learned_bn,
                            evaluation)
                 for j in range(len(states))];
    states = states + [sum(edges)];
  }
  return concat(states[-multiplier:]);
}

// DARTS' auxiliary head (AuxiliaryHeadCIFAR in model.py), for the features two thirds of
// the way up an evaluation network (attach it with aux_loss): ReLU, a 5x5 average pool
// without padding (count_include_pad=false) down to 2x2, a 1x1 convolution to 128
// channels, batch norm, ReLU, a 2x2 convolution to 768 channels, batch norm, ReLU and a
// linear classifier on the 768 values. DARTS pools CIFAR's 8x8 with stride 3; the stride
// is a parameter so that other resolutions reach the same 2x2 (7x7 with stride 2).
module darts_aux_head(x: tensor, classes: int, pool_stride: int = 3) {
  let h = avg_pool(relu(x), 5, stride=pool_stride, count_include_pad=false);
  assert shape(h)[1] == 2 and shape(h)[2] == 2, "darts_aux_head pools " +
      str(shape(x)[1]) + "x" + str(shape(x)[2]) + " with stride " + str(pool_stride) +
      " to " + str(shape(h)[1]) + "x" + str(shape(h)[2]) + ", not 2x2: pick pool_stride for " +
      "this resolution";
  h = relu(batchnorm(conv(h, 128, kernel=1, bias=false)));
  h = relu(batchnorm(conv(h, 768, kernel=2, bias=false)));
  return linear(flatten(h), classes);
}
