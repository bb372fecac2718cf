network n(x: tensor[3, 32, 32]) {
  let h = conv(x, 8, kernel=3, stride=2, pad=1, dilation=1, groups=1, bias=true);
  h = batchnorm(h, affine=true, eps=1e-5, momentum=0.1);
  h = leaky_relu(h, slope=0.2);
  h = dwconv(h, 5, stride=1, pad=2, dilation=1, multiplier=2, bias=false);
  h = conv(h, 16, 1, groups=2);
  h = hard_sigmoid(h) + sigmoid(h);
  h = mul(h, 0.25);
  h = dropout(h, p=0.1);
  h = crop(h, top=1, left=1, bottom=1, right=1);
  h = max_pool(h, 2);
  h = avg_pool(h, 3, stride=1, pad=1);
  let parts = [h, relu(h), zero(h, stride=1)];
  h = add(parts);
  h = add(h, h, h);
  h = concat([h, h]);
  let c = channels(h);
  let s = shape(h);
  assert c == s[0], "channels";
  let v = flatten(h);
  v = linear(v, 10, bias=false);
  return sum([v, v]);
}
