network n(x: tensor[4, 8, 8], c: int = 4) {
  let z = choice { a: zero(x), b: x };
  return z * 0.0 + z * -1 + mul(z, 1e308) + z;
}
