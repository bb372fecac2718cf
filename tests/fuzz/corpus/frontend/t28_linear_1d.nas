network n(x: tensor[4, 8, 8], c: int = 4) {
  let v = global_avg_pool(x);
  let w = choice "lin" { a: linear(v, 3), b: linear(v, 3, bias=false), z: zero(linear(v, 3)) };
  return w;
}
