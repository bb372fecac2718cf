network n(x: tensor[4, 8, 8], c: int = 4) {
  return choice { };
}
