// conv1 -> {zero, conv2} -> conv3 (the second example of the original docs).
// Selecting `zero` cuts the branch: conv1 and conv2 are pruned, and conv3 reads zeros.
network zero_join(x: tensor[3, 16, 16], c: int = 8) {
  let a = conv(x, c, kernel=3, pad=1);   // conv1
  let b = choice "edge" {
    zero:  zero(a),
    conv2: conv(a, c, kernel=3, pad=1),
  };
  return conv(b, c, kernel=3, pad=1);    // conv3
}
