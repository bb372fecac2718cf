network z(x: tensor[3, 16, 16], c: int = 8) {
  let a = conv(x, c, kernel=3, pad=1);
  let b = choice "edge" {
    zero:  zero(a),
    conv2: conv(a, c, kernel=3, pad=1),
  };
  let d = choice "edge2" { zero: zero(b, stride=2), pool: max_pool(b, 2) };
  return conv(relu(d) * 2.0 + d, c, kernel=3, pad=1);
}
