module m(x: tensor[3, 8, 8], y: any, z: list = [], f: float = 1.0, b: bool = true) { return x; }
network a(x: tensor[3, 8, 8]) { return m(x, 1); }
network b(x: tensor[3, 8, 8], y: tensor[3, 8, 8]) { return m(x, [1]) + y; }
