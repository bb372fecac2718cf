network n(x: tensor[4, 8, 8], c: int = 4) {
  let z = choice { a: zero(x), b: x };
  return crop(dropout(z, p=1.0), top=4, bottom=3, left=0, right=7);
}
