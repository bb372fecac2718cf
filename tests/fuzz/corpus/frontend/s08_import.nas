import "missing.nas";
import "darts_ops.nas";
network n(x: tensor[3, 8, 8]) { return x; }
