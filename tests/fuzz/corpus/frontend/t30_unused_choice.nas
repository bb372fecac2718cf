network n(x: tensor[4, 8, 8], c: int = 4) {
  let unused = choice "dead" { a: relu(x), b: x };
  return x;
}
