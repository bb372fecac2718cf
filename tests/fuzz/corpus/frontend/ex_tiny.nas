// The smallest search space: one mixed op over {conv, max-pool, identity}, then ReLU,
// global average pooling and a linear classifier (the first example of the original docs).
network tiny(x: tensor[1, 28, 28], classes: int = 10, width: int = 8) {
  let h = conv(x, width, kernel=3, pad=1);           // stem: 1 -> width channels
  h = choice "op" {
    conv:     conv(h, width, kernel=3, pad=1),
    max_pool: max_pool(h, 3, stride=1, pad=1),
    identity: identity(h),
  };
  h = relu(h);
  h = global_avg_pool(h);                             // [width]
  return linear(h, classes);
}
