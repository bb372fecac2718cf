network n(x: tensor[4, 8, 8], c: int = 4) {
  let a = choice "k" { p: relu(x), q: sigmoid(x) };
  return choice "k" { p: relu(a), r: sigmoid(a) };
}
