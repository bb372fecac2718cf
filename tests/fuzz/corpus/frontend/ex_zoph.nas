// The static one-shot search space of Bender et al., "Understanding and Simplifying
// One-Shot Architecture Search" (ICML 2018), after NNablaNAS's zoph example (SearchNet,
// ZophCell, ZophBlock), at a modest size for CIFAR-10 (3x32x32, 10 classes).

// Network: a stem (7x7 conv, BN, ReLU, then 3x3 conv, BN, ReLU), then cells; cell i reads
// the outputs of the two cells before it (the two stem stages for the first cells).
// Cell: each input is projected to the cell's width by a 1x1 conv + BN + ReLU and brought
// to the smallest input resolution by max pooling; a reducing cell then halves H and W
// (2x2 max pool). Then `blocks` choice blocks; the output concatenates the projected
// inputs and every block: (2 + blocks) * width channels.
// Choice block j of a cell reads the 2 + j earlier states of the cell:
//   - "cell<i>/block<j>/inputs": a join picking k=2 of them (summed), which is the
//     input selection of Bender et al.; block 0 has only two states and takes both;
//   - "cell<i>/block<j>/op": a choice over the operations in `ops`: separable
//     convolutions 3x3/5x5, dilated separable convolutions 3x3/5x5, 3x3 max and average
//     pooling (followed by BN), identity and zero (which drops the block).
// Every block has its own keys (nothing is shared), as in NNablaNAS.

// Differences from NNablaNAS, for a small and regular space: NNablaNAS concatenates all
// earlier states and projects them with a 1x1 conv instead of joining 2 of them; its
// candidates end in BN + ReLU where ours are pre-activation (ReLU first, BN last, as in
// stdlib/ops.nas); its head is a 1x1 conv to the classes + BN + ReLU + global pooling,
// ours global pooling + linear. Its default widths are 128/256/512 with 7 blocks per
// cell; ours 32/64/128 with 4 blocks.

import "ops.nas";

let zoph_ops = ["sep_conv_3x3", "sep_conv_5x5", "dil_sep_conv_3x3", "dil_sep_conv_5x5",
                "max_pool_3x3", "avg_pool_3x3", "identity", "zero"];

// One candidate operation of a choice block, by name; shape-preserving on c channels.
module zoph_op(x: tensor, op: string, c: int) {
  if op == "sep_conv_3x3" {
    return sep_conv(x, c, 3, pad=1);
  }
  if op == "sep_conv_5x5" {
    return sep_conv(x, c, 5, pad=2);
  }
  if op == "dil_sep_conv_3x3" {
    return sep_conv(x, c, 3, pad=2, dilation=2);
  }
  if op == "dil_sep_conv_5x5" {
    return sep_conv(x, c, 5, pad=4, dilation=2);
  }
  if op == "max_pool_3x3" {
    return batchnorm(max_pool(x, 3, stride=1, pad=1));
  }
  if op == "avg_pool_3x3" {
    return batchnorm(avg_pool(x, 3, stride=1, pad=1, count_include_pad=false));
  }
  if op == "identity" {
    return identity(x);
  }
  if op == "zero" {
    return zero(x);
  }
  assert false, "unknown zoph operation `" + op + "`; the operations are " + str(zoph_ops);
}

// A choice block: joins k of the earlier states, then applies one of `ops`.
module zoph_block(states: list, c: int, key: string, ops: list, k: int = 2) {
  let h = states[0];
  if len(states) <= k {
    h = sum(states);
  } else {
    h = join(k=k, key=key + "/inputs") {
      for j in range(len(states)) { ("s" + str(j)): states[j] }
    };
  }
  return choice(key=key + "/op") {
    for op in ops { (op): zoph_op(h, op, c) }
  };
}

// A cell of `blocks` choice blocks on c channels over the inputs a and b.
module zoph_cell(a: tensor, b: tensor, c: int, reducing: bool, blocks: int, key: string,
                 ops: list) {
  let inputs = [a, b];
  let size = min(shape(a)[1], shape(b)[1]);
  let states = [];
  for x in inputs {
    let h = relu(batchnorm(conv(x, c, kernel=1, bias=false)));
    let factor = shape(h)[1] / size;
    if factor > 1 {
      h = max_pool(h, factor, stride=factor);
    }
    if reducing {
      h = max_pool(h, 2, stride=2);
    }
    states = states + [h];
  }
  for j in range(blocks) {
    states = states + [zoph_block(states, c, key + "/block" + str(j), ops)];
  }
  return concat(states);
}

network zoph(x: tensor[3, hw, hw], classes: int = 10, hw: int = 32, stem_channels: int = 32,
             widths: list = [32, 64, 128], reducing: list = [false, true, true],
             blocks: int = 4, ops: list = zoph_ops) {
  assert len(widths) == len(reducing), "widths and reducing need one entry per cell";
  let stem1 = relu(batchnorm(conv(x, stem_channels, kernel=7, pad=3, bias=false)));
  let stem2 = relu(batchnorm(conv(stem1, stem_channels, kernel=3, pad=1, bias=false)));
  let prev = stem1;
  let cur = stem2;
  for i in range(len(widths)) {
    let out = zoph_cell(prev, cur, widths[i], reducing[i], blocks, "cell" + str(i), ops);
    prev = cur;
    cur = out;
  }
  return linear(global_avg_pool(cur), classes);
}
