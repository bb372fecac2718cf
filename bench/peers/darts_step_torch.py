"""The PyTorch side of bench/darts_step.sh and bench/check_speed.sh: the same DARTS supernet
as examples/darts.nas (Liu et al. 2019: C=16, 8 cells with reductions at 1/3 and 2/3, 4 nodes
per cell, 8 candidate ops per edge, 10 classes) and the same first-order DARTS step as
bench/darts_step.cpp: an alpha step on a valid batch (Adam) then a weight step on a train batch
(SGD with momentum and weight decay, gradient norm clipped at 5).

Prints one JSON line: median step seconds, images/s, peak RSS (MB) and the weight count, which
must equal nasc's for the comparison to mean anything (1,930,618 at the defaults).

  /usr/bin/python3 bench/peers/darts_step_torch.py --steps 3 --threads 2
  /usr/bin/python3 bench/peers/darts_step_torch.py --count-only     (build, print weights)
  python3 bench/peers/darts_step_torch.py --device cuda [--compile]  (on a GPU: peak GPU memory
                                                                     in "peak_gpu_mb")

Needs Debian's python3-torch (PyTorch 1.13, built on the same oneDNN as libdnnl-dev).
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CANDIDATES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
              "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def bn(channels, affine=False):
    return nn.BatchNorm2d(channels, affine=affine)


def relu_conv_bn(c_in, c_out, kernel, stride, pad):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, pad, bias=False), bn(c_out))


def dil_conv(c_in, c_out, kernel, stride, pad, dilation):
    """relu -> depthwise conv -> pointwise conv -> batch norm."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c_in, c_in, kernel, stride, pad, dilation=dilation, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False), bn(c_out))


def sep_conv(c, kernel, stride, pad):
    return nn.Sequential(dil_conv(c, c, kernel, stride, pad, 1), dil_conv(c, c, kernel, 1, pad, 1))


class Zero(nn.Module):
    """The `none` candidate: zeros of the output's shape (it still costs a multiply, as in
    the reference implementation)."""

    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halves H and W with two 1x1 stride-2 convs on offset grids, concatenated."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.even = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.odd = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.norm = bn(c_out)

    def forward(self, x):
        x = F.relu(x)
        return self.norm(torch.cat([self.even(x), self.odd(x[:, :, 1:, 1:])], dim=1))


def candidate(name, c, stride):
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), bn(c))
    if name == "avg_pool_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride, 1, count_include_pad=False), bn(c))
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    kind, size = name.rsplit("_", 1)
    kernel = int(size[0])
    if kind == "sep_conv":
        return sep_conv(c, kernel, stride, kernel // 2)
    return dil_conv(c, c, kernel, stride, kernel - 1, 2)  # dil_conv: dilation 2


class Edge(nn.Module):
    """A mixed op: the softmax-weighted sum of every candidate."""

    def __init__(self, c, stride):
        super().__init__()
        self.candidates = nn.ModuleList(candidate(name, c, stride) for name in CANDIDATES)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self.candidates))


class Cell(nn.Module):
    def __init__(self, nodes, c_prev_prev, c_prev, c, reduction, reduction_prev):
        super().__init__()
        self.nodes = nodes
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else relu_conv_bn(c_prev_prev, c, 1, 1, 0)
        self.pre1 = relu_conv_bn(c_prev, c, 1, 1, 0)
        self.edges = nn.ModuleList()
        for node in range(nodes):
            for source in range(2 + node):
                self.edges.append(Edge(c, 2 if reduction and source < 2 else 1))

    def forward(self, s0, s1, weights):
        states = [self.pre0(s0), self.pre1(s1)]
        edge = 0
        for _ in range(self.nodes):
            total = 0
            for state in states:
                total = total + self.edges[edge](state, weights[edge])
                edge += 1
            states.append(total)
        return torch.cat(states[-self.nodes:], dim=1)


class Supernet(nn.Module):
    def __init__(self, c=16, classes=10, cells=8, nodes=4, in_channels=3):
        super().__init__()
        stem_c = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem_c, 3, padding=1, bias=False), bn(stem_c, True))
        self.cells = nn.ModuleList()
        c_prev_prev, c_prev, c_cell, reduction_prev = stem_c, stem_c, c, False
        for i in range(cells):
            reduction = i in (cells // 3, 2 * cells // 3)
            if reduction:
                c_cell *= 2
            self.cells.append(Cell(nodes, c_prev_prev, c_prev, c_cell, reduction, reduction_prev))
            c_prev_prev, c_prev, reduction_prev = c_prev, nodes * c_cell, reduction
        self.classifier = nn.Linear(c_prev, classes)
        edges = sum(2 + n for n in range(nodes))
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(edges, len(CANDIDATES)))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(edges, len(CANDIDATES)))

    def weight_params(self):
        return [p for name, p in self.named_parameters() if not name.startswith("alpha_")]

    def forward(self, x):
        normal = F.softmax(self.alpha_normal, dim=-1)
        reduce = F.softmax(self.alpha_reduce, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--count-only", action="store_true", help="build the supernet, print its weight count")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU comparison")
    ap.add_argument("--compile", action="store_true", help="the step's network through torch.compile")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = Supernet()
    weights = sum(p.numel() for p in net.weight_params())
    if args.count_only:
        print(weights)
        return
    device = torch.device(args.device)
    net = net.to(device)
    model = torch.compile(net) if args.compile else net
    weight_opt = torch.optim.SGD(net.weight_params(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    alpha_opt = torch.optim.Adam([net.alpha_normal, net.alpha_reduce], lr=3e-4, betas=(0.5, 0.999),
                                 weight_decay=1e-3)
    def batch():
        return torch.randn(args.batch, 3, 32, 32, device=device)

    train_x, valid_x = batch(), batch()
    train_y = torch.randint(0, 10, (args.batch,), device=device)
    valid_y = torch.randint(0, 10, (args.batch,), device=device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step():
        alpha_opt.zero_grad()
        F.cross_entropy(model(valid_x), valid_y).backward()
        alpha_opt.step()
        weight_opt.zero_grad()
        F.cross_entropy(model(train_x), train_y).backward()
        nn.utils.clip_grad_norm_(net.weight_params(), 5.0)
        weight_opt.step()
        synchronize()

    step()  # warm-up: oneDNN creates its primitives on first use (and cuDNN, torch.compile)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    result = {
        "peer": "pytorch-" + torch.__version__ + ("-compile" if args.compile else ""),
        "device": args.device,
        "median_step_s": median,
        "images_per_s": 2 * args.batch / median,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params": weights,
    }
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(result))


if __name__ == "__main__":
    main()
