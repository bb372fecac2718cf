// nasc's pointwise convolutions (runtime/cpu/pointwise.h: a matrix product per sample on
// NCHW planes) against oneDNN's 1x1 primitives, which nasc stages through their blocked
// layout, on the 1x1 convolutions of a DARTS step at batch 64 (the ReLU-conv-BN
// preprocessing of each cell's inputs, the pointwise halves of sep_conv and dil_conv, and
// the stride-2 halves of FactorizedReduce).
// For each signature and pass (forward, backward data, backward weights) the two
// alternate, each the best of R calls; the last lines sum the times over all signatures,
// each weighted by how often one DARTS step runs that pass.
//
//   nasc_bench_pointwise_conv [--reps R] [--threads T] [--batch N]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "bench/conv_passes.h"
#include "runtime/cpu/conv2d.h"
#include "runtime/cpu/threads.h"

namespace {

using nas::Conv2dKernel;
using nas::Conv2dParams;

struct Signature {
  int64_t c_in, c_out, hw, stride;
  // Calls of each pass (forward, data, weights) in one first-order DARTS step at batch 64
  // (counted with ONEDNN_VERBOSE=1 before these passes left oneDNN).
  int per_step[3];
};

// examples/darts.nas at C = 16: 16, 32 and 64 channels at 32x32, 16x16 and 8x8, and the
// preprocessing convolutions from the concatenated outputs of earlier cells.
const std::vector<Signature> kSignatures = {
    {16, 16, 32, 1, {336, 264, 168}},
    {32, 32, 16, 1, {504, 504, 252}},
    {64, 64, 8, 1, {504, 504, 252}},
    {48, 16, 32, 1, {6, 3, 3}},
    {64, 16, 32, 1, {2, 2, 1}},
    {64, 32, 32, 1, {4, 4, 2}},
    {128, 32, 16, 1, {6, 6, 3}},
    {128, 64, 16, 1, {4, 4, 2}},
    {256, 64, 8, 1, {6, 6, 3}},
    // FactorizedReduce's two halves: the input, and the input cropped by one row and column.
    {32, 16, 32, 2, {16, 16, 8}},
    {32, 16, 31, 2, {16, 16, 8}},
    {64, 32, 16, 2, {16, 16, 8}},
    {64, 32, 15, 2, {16, 16, 8}},
    {64, 16, 32, 2, {2, 2, 1}},
    {128, 32, 16, 2, {2, 2, 1}},
};

int usage() {
  std::fprintf(stderr, "usage: nasc_bench_pointwise_conv [--reps R] [--threads T] [--batch N]\n");
  return 1;
}

int bench_main(int argc, char** argv) {
  nas::bench::ConvBenchOptions options;
  if (!nas::bench::parse_conv_bench_options(argc, argv, options)) return usage();
  nas::set_cpu_threads(options.threads);
  std::printf("1x1 convolutions at batch %lld, %d threads, best of %d calls\n",
              static_cast<long long>(options.batch), options.threads, options.reps);
  nas::bench::print_conv_pass_header("nasc ms");
  std::mt19937 rng(1);
  nas::bench::ConvPassTotals totals;
  for (const Signature& s : kSignatures) {
    Conv2dParams p;
    p.n = options.batch, p.c_in = s.c_in, p.c_out = s.c_out, p.h = p.w = s.hw, p.stride = s.stride;
    const Conv2dKernel nasc(p, Conv2dKernel::Code::Nasc), onednn(p, Conv2dKernel::Code::OneDnn);
    const Conv2dKernel fastest(p);
    nas::bench::ConvBuffers b(p, rng);
    auto forward = [&](const Conv2dKernel& k) {
      return [&] { k.forward(b.x.data(), b.w.data(), nullptr, b.y.data()); };
    };
    auto data = [&](const Conv2dKernel& k) {
      return [&] { k.backward_data(b.dy.data(), b.w.data(), b.dx.data()); };
    };
    auto weights = [&](const Conv2dKernel& k) {
      return [&] { k.backward_weights(b.x.data(), b.dy.data(), b.dw.data(), nullptr); };
    };
    const nas::bench::ConvPass passes[] = {
        {"forward", forward(nasc), forward(onednn), fastest.nasc_forward()},
        {"data", data(nasc), data(onednn), fastest.nasc_backward_data()},
        {"weights", weights(nasc), weights(onednn), fastest.nasc_backward_weights()},
    };
    const std::string name = std::to_string(s.c_in) + "->" + std::to_string(s.c_out) + " " +
                             std::to_string(s.hw) + "x" + std::to_string(s.hw) +
                             (s.stride > 1 ? " s" + std::to_string(s.stride) : "");
    for (int i = 0; i < 3; ++i)
      nas::bench::time_conv_pass(name, passes[i], options.reps, s.per_step[i], totals);
  }
  nas::bench::print_conv_pass_totals("one DARTS step's 1x1 convolutions", totals);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
