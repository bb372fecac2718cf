/* block
   comment */ # hash comment
// line comment
network n(x: tensor[1, 4, 4],) { return identity(x) ; }
