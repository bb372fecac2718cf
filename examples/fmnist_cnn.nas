// A small CNN for Fashion-MNIST: two conv-BN-ReLU-pool blocks and a two-layer classifier.
// `nasc train examples/fmnist_cnn.nas -o runs/cnn` reaches about 92% test accuracy
// (docs/results.md has the command, epochs and time).
network fmnist_cnn(x: tensor[1, 28, 28], width: int = 32, hidden: int = 128, classes: int = 10) {
  let h = relu(batchnorm(conv(x, width, kernel=3, pad=1)));
  h = max_pool(h, 2);                                         // 14x14
  h = relu(batchnorm(conv(h, 2 * width, kernel=3, pad=1)));
  h = max_pool(h, 2);                                         // 7x7
  h = relu(linear(flatten(h), hidden));
  h = dropout(h, p=0.25);
  return linear(h, classes);
}
