network n(x: tensor[4, 8, 8], c: int = 4) {
  return conv(x, 6, 3, groups=3, pad=1);
}
