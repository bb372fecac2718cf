network n(x: tensor[4, 8, 8], c: int = 4) {
  return choice { a: conv(x, 8, 1), b: relu(x) };
}
