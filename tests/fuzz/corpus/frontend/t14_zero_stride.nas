network n(x: tensor[4, 8, 8], c: int = 4) {
  let z = choice "z" { a: zero(x, stride=2), b: max_pool(x, 2) };
  return conv(z, c, 3, pad=1) + avg_pool(x, 2);
}
