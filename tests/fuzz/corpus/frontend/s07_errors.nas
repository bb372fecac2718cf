network n(x: tensor[3, 8, 8]) {
  let h = conv(x, 4, kernel=9);
  return h;
}
