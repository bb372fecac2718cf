module r(x: tensor, n: int) {
  if n <= 0 { return x; }
  return r(relu(x), n - 1);
}
let big = [i for i in range(100000)];
network n(x: tensor[1, 4, 4]) {
  for i in range(1000000) { }
  return r(x, 1000);
}
