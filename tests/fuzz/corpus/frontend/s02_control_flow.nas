module block(x: tensor, c: int, n: int) {
  let h = x;
  for i in range(n) {
    if i % 2 == 0 {
      h = conv(h, c, kernel=3, pad=1);
    } else if i % 3 == 1 {
      h = relu6(h);
    } else {
      h = hard_swish(h);
    }
  }
  assert n >= 0, "n must be >= 0";
  assert true;
  return h;
}
network n(x: tensor[2, 8, 8], depth: int = 4) {
  let h = block(x, 4, depth);
  return flatten(h);
}
