// What the convolution kernel benches (depthwise_conv.cpp, pointwise_conv.cpp) share: each
// pass of a signature timed against oneDNN's primitive, A B A B, one row per pass, and the
// sums over all of them.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "runtime/cpu/conv2d.h"

namespace nas::bench {

inline double best_of(int reps, const std::function<void()>& call) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    call();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// One signature's inputs (x, w, dy: uniform in [-1, 1]) and outputs (y, dx, dw).
struct ConvBuffers {
  ConvBuffers(const Conv2dParams& p, std::mt19937& rng)
      : x(random(p.input_size(), rng)),
        w(random(p.weight_size(), rng)),
        dy(random(p.output_size(), rng)),
        y(p.output_size()),
        dx(p.input_size()),
        dw(p.weight_size()) {}
  std::vector<float> x, w, dy, y, dx, dw;

 private:
  static std::vector<float> random(int64_t size, std::mt19937& rng) {
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> v(size);
    for (float& f : v) f = uniform(rng);
    return v;
  }
};

// One pass of one signature: nasc's code, oneDNN's, and which one Conv2dKernel runs.
struct ConvPass {
  const char* name;
  std::function<void()> nasc, onednn;
  bool runs_nasc;
};

// Seconds summed over the passes timed: nasc's code, oneDNN's, and what nasc runs.
struct ConvPassTotals {
  double nasc = 0, onednn = 0, chosen = 0;
};

inline void print_conv_pass_header(const char* nasc_label) {
  std::printf("%-22s %-8s %10s %10s %7s  %s\n", "signature", "pass", nasc_label, "oneDNN ms",
              "ratio", "nasc runs");
}

// Times `pass` (the best of `reps` calls of each side, twice, alternated so that the
// machine's drift affects both alike), prints its row and adds it `weight` times to `totals`.
inline void time_conv_pass(const std::string& signature, const ConvPass& pass, int reps,
                           double weight, ConvPassTotals& totals) {
  double mine = 1e30, theirs = 1e30;
  for (int round = 0; round < 2; ++round) {
    mine = std::min(mine, best_of(reps, pass.nasc));
    theirs = std::min(theirs, best_of(reps, pass.onednn));
  }
  totals.nasc += mine * weight;
  totals.onednn += theirs * weight;
  totals.chosen += (pass.runs_nasc ? mine : theirs) * weight;
  std::printf("%-22s %-8s %10.3f %10.3f %7.2f  %s\n", signature.c_str(), pass.name, mine * 1e3,
              theirs * 1e3, mine / theirs, pass.runs_nasc ? "nasc" : "oneDNN");
}

// The options the convolution benches share: --reps R, --threads T, --batch N (each at least
// 1). `own` may claim a flag of a bench's own (true when it took it and its value).
// False on a flag nobody takes or one without its value.
struct ConvBenchOptions {
  int reps = 20, threads = 2;
  int64_t batch = 64;
};
inline bool parse_conv_bench_options(
    int argc, char** argv, ConvBenchOptions& o,
    const std::function<bool(const std::string&, const char*)>& own = {}) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    const int number = std::max(1, std::atoi(value));
    if (flag == "--reps")
      o.reps = number;
    else if (flag == "--threads")
      o.threads = number;
    else if (flag == "--batch")
      o.batch = number;
    else if (!own || !own(flag, value))
      return false;
  }
  return true;
}

// The depthwise convolutions of a DARTS step (examples/darts.nas at C = 16): sep_conv
// 3x3/5x5 and dil_conv 3x3/5x5 in the normal cells at 32x32, 16x16 and 8x8, and at stride 2
// in the reduction cells, from 32x32 and 16x16.
struct DepthwiseSignature {
  const char* name;
  int64_t c, hw, kernel, stride, pad, dilation;
};
inline const std::vector<DepthwiseSignature>& darts_depthwise_signatures() {
  static const std::vector<DepthwiseSignature> all = {
      {"sep 3x3 C16 32x32", 16, 32, 3, 1, 1, 1},    {"sep 5x5 C16 32x32", 16, 32, 5, 1, 2, 1},
      {"dil 3x3 C16 32x32", 16, 32, 3, 1, 2, 2},    {"dil 5x5 C16 32x32", 16, 32, 5, 1, 4, 2},
      {"sep 3x3 C32 16x16", 32, 16, 3, 1, 1, 1},    {"sep 5x5 C32 16x16", 32, 16, 5, 1, 2, 1},
      {"dil 3x3 C32 16x16", 32, 16, 3, 1, 2, 2},    {"dil 5x5 C32 16x16", 32, 16, 5, 1, 4, 2},
      {"sep 3x3 C64 8x8", 64, 8, 3, 1, 1, 1},       {"sep 5x5 C64 8x8", 64, 8, 5, 1, 2, 1},
      {"dil 3x3 C64 8x8", 64, 8, 3, 1, 2, 2},       {"dil 5x5 C64 8x8", 64, 8, 5, 1, 4, 2},
      {"sep 3x3 s2 C32 32x32", 32, 32, 3, 2, 1, 1}, {"sep 5x5 s2 C32 32x32", 32, 32, 5, 2, 2, 1},
      {"dil 3x3 s2 C32 32x32", 32, 32, 3, 2, 2, 2}, {"dil 5x5 s2 C32 32x32", 32, 32, 5, 2, 4, 2},
      {"sep 3x3 s2 C64 16x16", 64, 16, 3, 2, 1, 1}, {"sep 5x5 s2 C64 16x16", 64, 16, 5, 2, 2, 1},
      {"dil 3x3 s2 C64 16x16", 64, 16, 3, 2, 2, 2}, {"dil 5x5 s2 C64 16x16", 64, 16, 5, 2, 4, 2},
  };
  return all;
}
// Its convolution at batch `n`.
inline Conv2dParams depthwise_params(const DepthwiseSignature& s, int64_t n) {
  Conv2dParams p;
  p.n = n, p.c_in = p.c_out = p.groups = s.c, p.h = p.w = s.hw;
  p.kernel = s.kernel, p.stride = s.stride, p.pad = s.pad, p.dilation = s.dilation;
  return p;
}

// The sums' two lines, the first naming what they are summed over.
inline void print_conv_pass_totals(const char* over, const ConvPassTotals& totals) {
  std::printf("%s: nasc %.1f ms, oneDNN %.1f ms, ratio %.2f\n", over, totals.nasc * 1e3,
              totals.onednn * 1e3, totals.nasc / totals.onednn);
  std::printf("what nasc runs: %.1f ms, ratio against oneDNN alone %.2f\n", totals.chosen * 1e3,
              totals.chosen / totals.onednn);
}

}  // namespace nas::bench
