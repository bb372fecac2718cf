network n(x: tensor[4, 8, 8], c: int = 4) {
  let z = choice "z" { a: zero(x), b: relu(x) };
  return concat(z, zero(x), axis=0);
}
