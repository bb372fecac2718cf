network n(x: tensor[1,2,2]) { let s = "unterminated; }
