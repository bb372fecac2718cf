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

int usage() {
  std::fprintf(stderr,
               "usage: nasc_bench_depthwise_conv [--reps R] [--threads T] [--batch N] "
               "[--isa baseline|x86-64-v3]\n");
  return 1;
}

}  // namespace

namespace {

int bench_main(int argc, char** argv) {
  nas::DepthwiseIsa isa = nas::depthwise_isa();
  bool bad_isa = false;
  nas::bench::ConvBenchOptions options;
  const bool parsed = nas::bench::parse_conv_bench_options(
      argc, argv, options, [&](const std::string& flag, const char* value) {
        if (flag != "--isa") return false;
        const std::string name = value;
        if (name == "baseline")
          isa = nas::DepthwiseIsa::Baseline;
        else if (name == "x86-64-v3")
          isa = nas::DepthwiseIsa::X86_64_V3;
        else
          bad_isa = true;
        return !bad_isa;
      });
  if (!parsed) return usage();
  const auto runnable = nas::depthwise_isas_runnable();
  if (std::find(runnable.begin(), runnable.end(), isa) == runnable.end()) {
    std::fprintf(stderr, "this CPU cannot run the %s loops\n", nas::depthwise_isa_name(isa));
    return 1;
  }
  nas::set_cpu_threads(options.threads);
  std::printf("depthwise convolutions at batch %lld, %d threads, best of %d calls; loops: %s\n",
              static_cast<long long>(options.batch), options.threads, options.reps,
              nas::depthwise_isa_name(isa));
  nas::bench::print_conv_pass_header("loops ms");
  std::mt19937 rng(1);
  nas::bench::ConvPassTotals totals;
  for (const nas::bench::DepthwiseSignature& s : nas::bench::darts_depthwise_signatures()) {
    const Conv2dParams p = nas::bench::depthwise_params(s, options.batch);
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
      nas::bench::time_conv_pass(s.name, pass, options.reps, 1, totals);
  }
  nas::bench::print_conv_pass_totals("all signatures", totals);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
