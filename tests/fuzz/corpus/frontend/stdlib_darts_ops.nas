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

import "ops.nas";

// The DARTS primitives, in the reference order (alphas index into this list).
let darts_primitives = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                        "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"];

// One DARTS candidate operation by name, on c channels (input and output), with stride 1
// or 2. `none` is Zero: it keeps the shape (strided) and cuts the graph when selected.
module darts_op(x: tensor, op: string, c: int, stride: int = 1, affine: bool = false) {
  if op == "none" {
    return zero(x, stride=stride);
  }
  if op == "max_pool_3x3" {
    return batchnorm(max_pool(x, 3, stride=stride, pad=1), affine=false);
  }
  if op == "avg_pool_3x3" {
    return batchnorm(avg_pool(x, 3, stride=stride, pad=1, count_include_pad=false), affine=false);
  }
  if op == "skip_connect" {
    return stride == 1 ? identity(x) : factorized_reduce(x, c, affine=affine);
  }
  if op == "sep_conv_3x3" {
    return sep_conv(x, c, 3, stride=stride, pad=1, affine=affine);
  }
  if op == "sep_conv_5x5" {
    return sep_conv(x, c, 5, stride=stride, pad=2, affine=affine);
  }
  if op == "dil_conv_3x3" {
    return dil_conv(x, c, 3, stride=stride, pad=2, dilation=2, affine=affine);
  }
  if op == "dil_conv_5x5" {
    return dil_conv(x, c, 5, stride=stride, pad=4, dilation=2, affine=affine);
  }
  assert false, "unknown DARTS operation `" + op + "`; the primitives are " + str(darts_primitives);
}

// The mixed-op edge: a choice over `ops` (default: all 8 primitives) under the
// architecture key `key`; edges with the same key share one alpha vector.
module darts_edge(x: tensor, c: int, stride: int, key: string, ops: list = darts_primitives,
                  affine: bool = false) {
  return choice(key=key) {
    for op in ops { (op): darts_op(x, op, c, stride, affine=affine) }
  };
}

// A DARTS cell on c channels. s0 and s1 are the outputs of the two previous cells; s0 is
// preprocessed by factorized_reduce when the previous cell was a reduction (it then has
// twice the resolution of s1), else by a 1x1 relu_conv_bn, and s1 by a 1x1 relu_conv_bn.
// Each of the `steps` nodes sums one mixed edge from every earlier state; in a reduction
// cell the edges from the two inputs have stride 2. The output concatenates the last
// `multiplier` states: multiplier*c channels. affine=true gives the convolutions' batch
// norms a scale and shift, as DARTS does when it retrains a genotype (the batch norms
// after pooling stay plain, as in the search network).
module darts_cell(s0: tensor, s1: tensor, c: int, reduction: bool, reduction_prev: bool,
                  steps: int = 4, multiplier: int = 4, ops: list = darts_primitives,
                  affine: bool = false) {
  assert multiplier <= steps + 2, "darts_cell multiplier (" + str(multiplier) +
      ") must be at most steps + 2 = " + str(steps + 2);
  let kind = reduction ? "reduce" : "normal";
  let p0 = reduction_prev ? factorized_reduce(s0, c, affine=affine)
                          : relu_conv_bn(s0, c, 1, affine=affine);
  let p1 = relu_conv_bn(s1, c, 1, affine=affine);
  let states = [p0, p1];
  for i in range(steps) {
    let node = i + 2;
    let edges = [darts_edge(states[j], c, (reduction and j < 2) ? 2 : 1,
                            kind + "/n" + str(node) + "_e" + str(j), ops, affine)
                 for j in range(len(states))];
    states = states + [sum(edges)];
  }
  return concat(states[-multiplier:]);
}
