network n(x: tensor[4, 8, 8], c: int = 4) {
  let xs = [choice { a: x, b: zero(x) } for i in range(3)];
  return sum(xs) + add(xs);
}
