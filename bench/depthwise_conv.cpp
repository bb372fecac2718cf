// nasc's depthwise convolution loops (runtime/cpu/depthwise.h) against oneDNN's primitives
// on the same signatures: the depthwise convolutions of a DARTS step at batch 64 (sep_conv
// and dil_conv, 3x3 and 5x5, normal and reduction cells at C = 16, 32, 64). For each
// signature and pass (forward, backward data, backward weights) the two alternate, each the
// best of R calls, and the bench prints both times, their ratio and which one nasc's
// convolution kernel runs for that pass (Conv2dKernel::Code::Fastest); the last
// lines sum the times over all signatures: the loops, oneDNN, and what nasc runs.
//
//   nasc_bench_depthwise_conv [--reps R] [--threads T] [--batch N] [--isa baseline|x86-64-v3]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "bench/conv_passes.h"
#include "runtime/cpu/conv2d.h"
#include "runtime/cpu/depthwise.h"
#include "runtime/cpu/threads.h"

namespace {

using nas::Conv2dKernel;
using nas::Conv2dParams;

struct Signature {
  const char* name;
  int64_t c, hw, kernel, stride, pad, dilation;
};

// DARTS' depthwise convolutions (examples/darts.nas at C = 16): sep_conv_3x3/5x5 and
// dil_conv_3x3/5x5 in the normal cells at 32x32, 16x16, 8x8, and their stride-2 first
// convolutions in the reduction cells.
const std::vector<Signature> kSignatures = {
    {"sep 3x3 C16 32x32", 16, 32, 3, 1, 1, 1},    {"sep 5x5 C16 32x32", 16, 32, 5, 1, 2, 1},
    {"dil 3x3 C16 32x32", 16, 32, 3, 1, 2, 2},    {"dil 5x5 C16 32x32", 16, 32, 5, 1, 4, 2},
    {"sep 3x3 C32 16x16", 32, 16, 3, 1, 1, 1},    {"sep 5x5 C32 16x16", 32, 16, 5, 1, 2, 1},
    {"dil 3x3 C32 16x16", 32, 16, 3, 1, 2, 2},    {"dil 5x5 C32 16x16", 32, 16, 5, 1, 4, 2},
    {"sep 3x3 C64 8x8", 64, 8, 3, 1, 1, 1},       {"sep 5x5 C64 8x8", 64, 8, 5, 1, 2, 1},
    {"dil 3x3 C64 8x8", 64, 8, 3, 1, 2, 2},       {"dil 5x5 C64 8x8", 64, 8, 5, 1, 4, 2},
    {"sep 3x3 s2 C32 32x32", 32, 32, 3, 2, 1, 1}, {"dil 5x5 s2 C32 32x32", 32, 32, 5, 2, 4, 2},
    {"sep 3x3 s2 C64 16x16", 64, 16, 3, 2, 1, 1}, {"dil 5x5 s2 C64 16x16", 64, 16, 5, 2, 4, 2},
};

int usage() {
  std::fprintf(stderr,
               "usage: nasc_bench_depthwise_conv [--reps R] [--threads T] [--batch N] "
               "[--isa baseline|x86-64-v3]\n");
  return 1;
}

}  // namespace

namespace {

int bench_main(int argc, char** argv) {
  int reps = 20, threads = 2;
  int64_t batch = 64;
  nas::DepthwiseIsa isa = nas::depthwise_isa();
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage();
    const char* value = argv[++i];
    if (flag == "--reps")
      reps = std::max(1, std::atoi(value));
    else if (flag == "--threads")
      threads = std::max(1, std::atoi(value));
    else if (flag == "--batch")
      batch = std::max(1, std::atoi(value));
    else if (flag == "--isa") {
      const std::string name = value;
      if (name == "baseline")
        isa = nas::DepthwiseIsa::Baseline;
      else if (name == "x86-64-v3")
        isa = nas::DepthwiseIsa::X86_64_V3;
      else
        return usage();
      const auto runnable = nas::depthwise_isas_runnable();
      if (std::find(runnable.begin(), runnable.end(), isa) == runnable.end()) {
        std::fprintf(stderr, "this CPU cannot run the %s loops\n", value);
        return 1;
      }
    } else
      return usage();
  }
  nas::set_cpu_threads(threads);
  std::printf("depthwise convolutions at batch %lld, %d threads, best of %d calls; loops: %s\n",
              static_cast<long long>(batch), threads, reps, nas::depthwise_isa_name(isa));
  nas::bench::print_conv_pass_header("loops ms");
  std::mt19937 rng(1);
  nas::bench::ConvPassTotals totals;
  for (const Signature& s : kSignatures) {
    Conv2dParams p;
    p.n = batch, p.c_in = p.c_out = p.groups = s.c, p.h = p.w = s.hw;
    p.kernel = s.kernel, p.stride = s.stride, p.pad = s.pad, p.dilation = s.dilation;
    const Conv2dKernel onednn(p, Conv2dKernel::Code::OneDnn);
    const Conv2dKernel fastest(p);
    nas::bench::ConvBuffers b(p, rng);
    const nas::bench::ConvPass passes[] = {
        {"forward",
         [&] { nas::depthwise_forward(p, b.x.data(), b.w.data(), nullptr, b.y.data(), isa); },
         [&] { onednn.forward(b.x.data(), b.w.data(), nullptr, b.y.data()); },
         fastest.nasc_forward()},
        {"data",
         [&] { nas::depthwise_backward_data(p, b.dy.data(), b.w.data(), b.dx.data(), isa); },
         [&] { onednn.backward_data(b.dy.data(), b.w.data(), b.dx.data()); },
         fastest.nasc_backward_data()},
        {"weights",
         [&] {
           nas::depthwise_backward_weights(p, b.x.data(), b.dy.data(), b.dw.data(), nullptr, isa);
         },
         [&] { onednn.backward_weights(b.x.data(), b.dy.data(), b.dw.data(), nullptr); },
         fastest.nasc_backward_weights()},
    };
    for (const nas::bench::ConvPass& pass : passes)
      nas::bench::time_conv_pass(s.name, pass, reps, 1, totals);
  }
  nas::bench::print_conv_pass_totals("all signatures", totals);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
