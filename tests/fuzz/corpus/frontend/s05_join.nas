network n(x: tensor[4, 8, 8], c: int = 4) {
  let a = conv(x, c, kernel=3, pad=1);
  let b = dwconv(x, 3, pad=1, multiplier=1);
  let d = zero(x);
  let s = join(k=2, key="node3") { e0: a, e1: b, e2: d };
  let t = join { e0: s, e1: a };
  let u = join "j2" (k=1) { e0: t + a, e1: t * 0.5 };
  return concat(u, a, axis=0);
}
