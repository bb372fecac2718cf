// Estimates per second: the latency of random sub-networks of a space from a latency
// table (a live mask from the compiler's LiveMasker, then the masked sums of
// runtime/estimate/latency_model.h), against computing the live mask alone in the same
// run. Target: >= 100,000 architectures/s on examples/mobilenet.nas. The table holds
// every signature of the space with placeholder values (speed does not depend on them).
//
//   nasc_bench_estimate_speed [--file examples/mobilenet.nas] [--seconds 2]
#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "compiler/estimate/estimator.h"
#include "compiler/pipeline/pipeline.h"

namespace {

int bench_main(int argc, char** argv) {
  using namespace nas;
  using Clock = std::chrono::steady_clock;
  std::string file = std::string(NASC_SOURCE_DIR) + "/examples/mobilenet.nas";
  double seconds = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--file")
      file = argv[i + 1];
    else if (a == "--seconds")
      seconds = std::stod(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 1;
    }
  }
  Diagnostics diags;
  Compilation c = compile_file(file, {}, diags);
  if (!c.supernet) {
    std::cerr << diags.render();
    return 1;
  }
  const Graph& supernet = *c.supernet;
  LatencyTable lut;
  lut.device = current_device();
  {
    SpaceLatency space(supernet, lut.batch);
    double v = 1;
    for (const ProfileJob& j : space.jobs(nullptr, lut.device.backend)) {
      LutEntry e;
      e.ms = v += 0.001;
      lut.entries[j.signature] = e;
    }
  }
  ArchEstimator est(supernet, lut);
  if (!est.missing(nullptr).empty()) {
    std::fprintf(stderr, "incomplete table\n");
    return 1;
  }
  std::mt19937 rng(1);
  std::vector<Selection> sels(4096);
  for (Selection& s : sels)
    for (const ArchGroup& g : supernet.arch) {
      std::vector<int> all(g.candidates.size());
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng);
      all.resize(g.k);
      s.chosen.push_back(all);
    }
  auto rate = [&](auto&& fn) {
    int64_t n = 0;
    auto t0 = Clock::now();
    double elapsed = 0;
    while (elapsed < seconds) {
      for (int i = 0; i < 1024; ++i) fn(sels[(n + i) % sels.size()]);
      n += 1024;
      elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    return n / elapsed;
  };
  double sink = 0;
  std::vector<char> live;
  double masks = rate([&](const Selection& s) {
    est.space().mask(s, live);
    sink += live[live.size() / 2];
  });
  double estimates = rate([&](const Selection& s) {
    LatencyEstimate e = est.estimate(s);
    sink += e.fused_ms + e.accumulated_ms;
  });
  std::printf(
      "%s: %zu plan steps, %zu choices\nlive mask alone   %12.0f /s\nlatency estimate  %12.0f "
      "architectures/s (%.2fx the mask alone; target >= 100000)\n(checksum %g)\n",
      file.c_str(), est.space().plan().steps.size(), supernet.arch.size(), masks, estimates,
      estimates / masks, sink);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
