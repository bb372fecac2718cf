// nasc's depthwise convolution loops (runtime/cpu/depthwise.h) against oneDNN's primitives
// on the same signatures: the depthwise convolutions of a DARTS step at batch 64 (sep_conv
// and dil_conv, 3x3 and 5x5, normal and reduction cells at C = 16, 32, 64). For each
// signature and pass (forward, backward data, backward weights) the two alternate, each the
// best of R calls, and the bench prints both times, their ratio and which one nasc's
// convolution kernel runs for that pass (Conv2dKernel::DepthwiseCode::Fastest); the last
// lines sum the times over all signatures: the loops, oneDNN, and what nasc runs.
//
//   nasc_bench_depthwise_conv [--reps R] [--threads T] [--batch N] [--isa baseline|x86-64-v3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_main.h"
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

double best_of(int reps, const std::function<void()>& call) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    call();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

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
  std::printf("%-22s %-8s %10s %10s %7s  %s\n", "signature", "pass", "loops ms", "oneDNN ms",
              "ratio", "nasc runs");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  double loops_total = 0, onednn_total = 0, chosen_total = 0;
  for (const Signature& s : kSignatures) {
    Conv2dParams p;
    p.n = batch, p.c_in = p.c_out = p.groups = s.c, p.h = p.w = s.hw;
    p.kernel = s.kernel, p.stride = s.stride, p.pad = s.pad, p.dilation = s.dilation;
    const Conv2dKernel onednn(p, Conv2dKernel::DepthwiseCode::OneDnn);
    const Conv2dKernel fastest(p);
    auto fill = [&](int64_t size) {
      std::vector<float> v(size);
      for (float& f : v) f = uniform(rng);
      return v;
    };
    std::vector<float> x = fill(p.input_size()), w = fill(p.weight_size()),
                       dy = fill(p.output_size()), y(p.output_size()), dx(p.input_size()),
                       dw(p.weight_size());
    struct Pass {
      const char* name;
      std::function<void()> nasc, peer;
      bool runs_loops;
    };
    const Pass passes[] = {
        {"forward", [&] { nas::depthwise_forward(p, x.data(), w.data(), nullptr, y.data(), isa); },
         [&] { onednn.forward(x.data(), w.data(), nullptr, y.data()); }, fastest.loops_forward()},
        {"data", [&] { nas::depthwise_backward_data(p, dy.data(), w.data(), dx.data(), isa); },
         [&] { onednn.backward_data(dy.data(), w.data(), dx.data()); },
         fastest.loops_backward_data()},
        {"weights",
         [&] { nas::depthwise_backward_weights(p, x.data(), dy.data(), dw.data(), nullptr, isa); },
         [&] { onednn.backward_weights(x.data(), dy.data(), dw.data(), nullptr); },
         fastest.loops_backward_weights()},
    };
    for (const Pass& pass : passes) {
      double mine = 1e30, theirs = 1e30;
      for (int round = 0; round < 2; ++round) {  // A B A B: drift affects both alike
        mine = std::min(mine, best_of(reps, pass.nasc));
        theirs = std::min(theirs, best_of(reps, pass.peer));
      }
      loops_total += mine;
      onednn_total += theirs;
      chosen_total += pass.runs_loops ? mine : theirs;
      std::printf("%-22s %-8s %10.3f %10.3f %7.2f  %s\n", s.name, pass.name, mine * 1e3,
                  theirs * 1e3, mine / theirs, pass.runs_loops ? "loops" : "oneDNN");
    }
  }
  std::printf("all signatures: loops %.1f ms, oneDNN %.1f ms, ratio loops / oneDNN %.2f\n",
              loops_total * 1e3, onednn_total * 1e3, loops_total / onednn_total);
  std::printf("what nasc runs: %.1f ms, ratio against oneDNN alone %.2f\n", chosen_total * 1e3,
              chosen_total / onednn_total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
