"""Peer of bench/mobilenet_infer.cpp: MobileNetV2 (torchvision's mobilenet_v2() at width 1.0,
defined here layer for layer so that only Debian's python3-torch is needed: 3,504,872
weights, the network of examples/mobilenet_v2.nas) inference latency in PyTorch, eager and
TorchScript frozen + optimize_for_inference, on the CPU (or, with --device cuda, on the GPU:
every timed run ends with torch.cuda.synchronize()).

Prints one JSON line with the median and minimum milliseconds per batch over --reps timed
runs after --warmup runs, for each mode:
  /usr/bin/python3 bench/peers/mobilenet_infer_torch.py --batch 1 --hw 224 --threads 1
"""
import argparse, json, time
import torch
from torch import nn


def conv_bn(cin, cout, k, stride, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [conv_bn(cin, hidden, 1, 1)] if t != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def mobilenet_v2(classes=1000):
    settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                [6, 160, 3, 2], [6, 320, 1, 1]]
    layers, c = [conv_bn(3, 32, 3, 2)], 32
    for t, cout, n, s in settings:
        for i in range(n):
            layers.append(InvertedResidual(c, cout, s if i == 0 else 1, t))
            c = cout
    layers.append(conv_bn(c, 1280, 1, 1))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(1280, classes))


def timeit(fn, x, warmup, reps):
    def run():
        fn(x)
        if x.is_cuda:
            torch.cuda.synchronize()

    with torch.no_grad():
        for _ in range(warmup):
            run()
        t = []
        for _ in range(reps):
            t0 = time.perf_counter()
            run()
            t.append(time.perf_counter() - t0)
    t.sort()
    return {'median_ms': 1e3 * t[len(t) // 2], 'min_ms': 1e3 * t[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=1)
    ap.add_argument('--hw', type=int, default=224)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--warmup', type=int, default=10)
    ap.add_argument('--reps', type=int, default=50)
    ap.add_argument('--device', default='cpu')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = mobilenet_v2().eval().to(a.device)
    x = torch.randn(a.batch, 3, a.hw, a.hw, device=a.device)
    out = {'system': 'pytorch-' + torch.__version__, 'batch': a.batch, 'hw': a.hw,
           'threads': a.threads, 'device': a.device,
           'params': sum(p.numel() for p in net.parameters())}
    out['eager'] = timeit(net, x, a.warmup, a.reps)
    with torch.no_grad():
        ts = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(net)))
    out['torchscript'] = timeit(ts, x, a.warmup, a.reps)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
