let A = 7 / 2 + 7 % 3 - -1 * 2 / 4;
let B = [1, 2, 3][-1] + len([x * x for x in range(5) if x != 2]);
let C = (A > 2 && B <= 10) || !(A == B) ? "yes" : "no";
let D = 3 in [1, 2, 3] and not false or true;
let E = [0, 1, 2, 3, 4][1:3] + [9][:] + [8, 7][1:];
let F = min(1, 2.5) + max([3, 4]) + abs(-2) + sum([1, 2]) + int(3.7) + float(2) + int(2.9);
let G = str(A) + "_" + str(1.5) + "\"q\\";
let H = zip([1, 2], ["a", "b"]);
let I = append([1], 2);
let J = enumerate(["x", "y"]);
let K = watts_strogatz(6, 2, 0.5, 1);
let L = 1.5e3 + .5 + 2e-2 + 3.;
network n(x: tensor[4, 8, 8], w: int = A) {
  let h = conv(x, w, 3, 1, 1);
  assert len(E) == 4, "E";
  return global_avg_pool(h);
}
