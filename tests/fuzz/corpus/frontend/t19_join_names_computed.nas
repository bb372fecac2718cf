network n(x: tensor[4, 8, 8], c: int = 4) {
  return join(k=2) { for i in range(4) { ("e" + str(i)): conv(x, c, 1 + 2 * i, pad=i) } };
}
