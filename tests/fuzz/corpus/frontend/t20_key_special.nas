network n(x: tensor[4, 8, 8], c: int = 4) {
  return choice(key="a\"b\\c\n") { ("x y"): x, ("\u00e9"): relu(x), (""): sigmoid(x) };
}
