let ops = ["a", "b", "c"];
module darts_op(x: tensor, op: string, c: int) {
  if op == "a" { return conv(x, c, kernel=3, pad=1); }
  if op == "b" { return max_pool(x, 3, stride=1, pad=1); }
  return identity(x);
}
network n(x: tensor[4, 8, 8], c: int = 4) {
  let h = x;
  for i in range(3) {
    h = choice(key="n" + str(i)) {
      for op in ops { (op): darts_op(h, op, c) },
    };
  }
  h = choice { "conv 1x1": conv(h, c, 1), skip: h, z: zero(h) };
  let shared = choice "s" { p: relu(h), q: sigmoid(h) };
  let shared2 = choice "s" { p: relu(shared), q: sigmoid(shared) };
  return avg_pool(shared2, 2, count_include_pad=false);
}
