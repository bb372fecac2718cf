module m(a: int, b: float, c: bool, d: string, e: list, f: any, t: tensor[2, 4, 4]) {
  assert a + b > 0 and c and d != "" and len(e) >= 0, "types";
  return t;
}
network n(x: tensor[2, 4, 4]) {
  let r = m(1, 2.0, true, "s", [1, [2, 3]], none_here, x);
  return m(a=1, b=2.5, c=false or true, d="x", e=[], f=1, t=r);
}
