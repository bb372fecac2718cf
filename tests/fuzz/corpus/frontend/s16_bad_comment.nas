/* never closed
network n(x: tensor[1,2,2]) { return x; }
