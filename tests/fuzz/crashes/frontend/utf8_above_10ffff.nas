// U+110000 is past the last code point: ô€€
network n(x: tensor[1, 2, 2]) { return x; }
