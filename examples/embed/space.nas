// The small search space of the embedding example: a stem, two choices (an operation and
// an activation) and a classifier, on 12x12 single-channel images.
network embed_demo(x: tensor[1, 12, 12], classes: int = 4, width: int = 8) {
  let h = conv(x, width, kernel=3, pad=1);
  h = choice "op" {
    conv3: conv(h, width, kernel=3, pad=1),
    conv5: conv(h, width, kernel=5, pad=2),
    pool:  max_pool(h, 3, stride=1, pad=1),
  };
  h = choice "act" {
    relu:    relu(h),
    sigmoid: sigmoid(h),
  };
  h = global_avg_pool(h);
  return linear(h, classes);
}
