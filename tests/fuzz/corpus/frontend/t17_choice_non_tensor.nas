network n(x: tensor[4, 8, 8], c: int = 4) {
  let v = choice { a: 1, b: 2 };
  return x;
}
