network n(x: tensor[4, 8, 8], c: int = 4) {
  return choice "outer" { a: choice "inner" { p: relu(x), q: zero(x) }, b: zero(x) };
}
