module m(x: tensor) {
  let z = relu(z);
  return z;
}
network n(x: tensor[4, 8, 8]) {
  return conv(m(x), 4, 1);
}
