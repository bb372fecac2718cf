network n(x: tensor[4, 8, 8]) {
  let z = relu(z);
  return z;
}
