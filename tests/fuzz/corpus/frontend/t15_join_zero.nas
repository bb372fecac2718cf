network n(x: tensor[4, 8, 8], c: int = 4) {
  let a = join(k=2, key="j") { e0: zero(x), e1: zero(x), e2: relu(x) };
  return global_avg_pool(a);
}
