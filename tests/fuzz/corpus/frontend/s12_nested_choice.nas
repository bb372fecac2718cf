module cell(x: tensor, c: int, idx: int) {
  let nodes = [x];
  for j in range(1, 3) {
    let inputs = [choice(key="c" + str(idx) + "_" + str(j) + "_" + str(i)) {
        sep: conv(relu(nodes[i]), c, kernel=3, pad=1),
        pool: avg_pool(nodes[i], 3, stride=1, pad=1),
        none: zero(nodes[i]),
        skip: identity(nodes[i]),
      } for i in range(j)];
    nodes = nodes + [sum(inputs)];
  }
  return concat(nodes[1:], axis=0);
}
network net(x: tensor[3, 8, 8], c: int = 4, cells: int = 2) {
  let h = conv(x, c, kernel=3, pad=1);
  for k in range(cells) {
    h = conv(cell(h, c, k), c, 1);
  }
  return linear(global_avg_pool(h), 10);
}
