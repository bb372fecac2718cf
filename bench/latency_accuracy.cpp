// Latency estimator accuracy: random sub-networks of a space estimated from a latency
// table (accumulated and fusion-aware), then compiled on their own and run whole; prints
// per-architecture lines and, per estimate, the mean absolute percentage error, the share
// within +-10% and Spearman's rank correlation against the measured latency.
//
// Machine noise only ever adds time, and it comes in stretches (consecutive networks
// measured 20-26% slow on a busy machine). So every network is measured in `--rounds`
// interleaved rounds (round k times all of them, in order, before round k + 1), keeping
// its fastest round: a slow stretch then costs one round of many networks, not every round
// of a few. Rounds go on past `--rounds` until `--min-seconds` have passed since the first,
// so that small networks, timed in seconds, still sample minutes of the machine's drift.
// The networks still more than 10% off are measured again at the end, up to twice.
//
//   nasc_bench_latency_accuracy [--file examples/mobilenet.nas] [--set hw=224]...
//       [--archs 100] [--threads 1] [--lut PATH] [--seed 1] [--warmup 10] [--reps 50]
//       [--calibrate 5] [--rounds 5] [--min-seconds 0] [--table-rounds 1]
//
// --table-rounds profiles the table's new signatures that many times, in turn, keeping
// each one's fastest entry (nasc profile --rounds). --warmup and --reps are the table's measure
// settings (nasc profile's defaults unless given), which time the networks too. The table is
// profiled first (every signature of the space) unless PATH already has it, then calibrated (`nasc
// profile --calibrate`: networks drawn from another seed than the measured ones, timed whole)
// unless it has a calibration. The fused estimate is reported raw, calibrated by the table, and
// calibrated in rounds: `--calibrate` networks of yet another seed are timed in every round beside
// the measured ones, keeping their fastest, and the median of their measured/raw-estimate ratios
// scales the raw estimate. A calibration made once, minutes before the measurements, cannot follow
// the machine's drift between the two (docs/results.md); one timed in the same rounds does. The
// rank correlation between each network's fastest odd and fastest even round says how well the
// measurement repeats itself, which bounds the estimate's.
// bench/latency_accuracy.sh runs the 32x32 and 224x224 cases of docs/results.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "compiler/estimate/estimator.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/cpu/threads.h"
#include "runtime/estimate/profiler.h"

namespace {

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = 0.5 * static_cast<double>(i + j);
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  double ma = std::accumulate(a.begin(), a.end(), 0.0) / a.size();
  double mb = std::accumulate(b.begin(), b.end(), 0.0) / b.size();
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

void report(const char* name, const std::vector<double>& est, const std::vector<double>& meas) {
  double ape = 0;
  int within = 0;
  for (size_t i = 0; i < est.size(); ++i) {
    double e = std::abs(est[i] - meas[i]) / meas[i];
    ape += e;
    within += e <= 0.10;
  }
  std::printf("%-12s MAPE %5.2f%%  within +-10%% %5.1f%%  Spearman %.4f\n", name,
              100 * ape / est.size(), 100.0 * within / est.size(),
              pearson(ranks(est), ranks(meas)));
}

}  // namespace

namespace {

int bench_main(int argc, char** argv) {
  using namespace nas;
  std::string file = std::string(NASC_SOURCE_DIR) + "/examples/mobilenet.nas", lut_path;
  std::vector<std::pair<std::string, std::string>> sets;
  int archs = 100, threads = 1, calibrate = 5, rounds = 5, table_rounds = 1;
  double min_seconds = 0;
  unsigned seed = 1;
  MeasureSettings settings;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--file")
      file = v;
    else if (a == "--set")
      sets.emplace_back(v.substr(0, v.find('=')), v.substr(v.find('=') + 1));
    else if (a == "--archs")
      archs = std::stoi(v);
    else if (a == "--threads")
      threads = std::stoi(v);
    else if (a == "--lut")
      lut_path = v;
    else if (a == "--seed")
      seed = static_cast<unsigned>(std::stoul(v));
    else if (a == "--warmup")
      settings.warmup = std::stoi(v);
    else if (a == "--reps")
      settings.repetitions = std::stoi(v);
    else if (a == "--calibrate")
      calibrate = std::stoi(v);
    else if (a == "--rounds")
      rounds = std::max(1, std::stoi(v));
    else if (a == "--table-rounds")
      table_rounds = std::max(1, std::stoi(v));
    else if (a == "--min-seconds")
      min_seconds = std::stod(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 1;
    }
  }
  set_cpu_threads(threads);
  Diagnostics diags;
  CompileOptions copt;
  copt.elaborate.overrides = sets;
  Compilation c = compile_file(file, copt, diags);
  if (!c.supernet) {
    std::cerr << diags.render();
    return 1;
  }
  const Graph& supernet = *c.supernet;
  LatencyTable lut;
  if (!lut_path.empty() && std::filesystem::exists(lut_path))
    lut = load_lut(lut_path);
  else {
    lut.device = current_device();
    lut.settings = settings;
    lut.network = supernet.name;
  }
  auto t0 = std::chrono::steady_clock::now();
  {
    SpaceLatency space(supernet, lut.batch);
    ProfileStats ps = profile_space(lut, space, nullptr, lut_path, nullptr, table_rounds);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("table: %zu entries (%d measured now in %.1f s, %d reused)\n", lut.entries.size(),
                ps.measured, s, ps.skipped);
    if (calibrate > 0 && (!lut.calibration || ps.measured > 0)) {
      const std::string problem =
          calibrate_table(lut, supernet, nullptr, calibrate, seed + 1000003, &std::cout);
      if (!problem.empty()) std::printf("%s\n", problem.c_str());
      if (!lut_path.empty()) save_lut(lut, lut_path);
    }
    if (lut.calibration) std::printf("calibration: x%.4f\n", lut.calibration->scale);
  }
  ArchEstimator est(supernet, lut);
  std::mt19937 rng(seed);
  auto draw = [&](std::mt19937& from) {
    Selection sel;
    for (const ArchGroup& g : supernet.arch) {
      std::vector<int> all(g.candidates.size());
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), from);
      all.resize(g.k);
      std::sort(all.begin(), all.end());
      sel.chosen.push_back(all);
    }
    return sel;
  };
  std::vector<double> acc, fused, raw, meas;
  // Each network's fastest time over the odd and over the even rounds: two measurements
  // as independent as one run can make them (every round compiles and allocates each
  // network afresh), whose agreement bounds what an estimate can reach.
  std::vector<double> odd_rounds, even_rounds;
  std::vector<Selection> sels;
  auto measure = [&](const Selection& sel) {
    return measure_network(supernet, &sel, lut.batch, lut.settings, lut.device.backend).ms;
  };
  // The in-round calibration's networks (see the top of this file), timed at the start of
  // every round.
  std::mt19937 calibration_rng(seed + 2000003);
  std::vector<Selection> calibration_sels;
  std::vector<double> calibration_raw, calibration_meas;
  for (int c = 0; c < calibrate; ++c) {
    calibration_sels.push_back(draw(calibration_rng));
    calibration_raw.push_back(est.estimate(calibration_sels.back()).fused_ms / est.calibration());
    calibration_meas.push_back(std::numeric_limits<double>::infinity());
  }
  auto time_calibration_networks = [&] {
    for (size_t c = 0; c < calibration_sels.size(); ++c)
      calibration_meas[c] = std::min(calibration_meas[c], measure(calibration_sels[c]));
  };
  const auto rounds_start = std::chrono::steady_clock::now();
  time_calibration_networks();
  for (int a = 0; a < archs; ++a) {
    Selection sel = draw(rng);
    LatencyEstimate e = est.estimate(sel);
    const double m = measure(sel);
    acc.push_back(e.accumulated_ms);
    fused.push_back(e.fused_ms);
    raw.push_back(e.fused_ms / est.calibration());
    meas.push_back(m);
    odd_rounds.push_back(m);
    even_rounds.push_back(std::numeric_limits<double>::infinity());
    sels.push_back(sel);
    std::printf(
        "arch %3d  measured %8.3f ms  accumulated %8.3f (%+5.1f%%)  fused %8.3f (%+5.1f%%)\n", a, m,
        e.accumulated_ms, 100 * (e.accumulated_ms - m) / m, e.fused_ms, 100 * (e.fused_ms - m) / m);
    std::fflush(stdout);
  }
  // The later rounds (see the top of this file); each prints the median of the networks'
  // measured/estimated ratios in that round, which shows the machine's drift.
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - rounds_start).count();
  };
  int round = 2;
  for (; round <= rounds || (elapsed() < min_seconds && round <= 100); ++round) {
    time_calibration_networks();
    std::vector<double> ratios;
    for (size_t a = 0; a < sels.size(); ++a) {
      const double m = measure(sels[a]);
      ratios.push_back(m / fused[a]);
      meas[a] = std::min(meas[a], m);
      double& half = round % 2 ? odd_rounds[a] : even_rounds[a];
      half = std::min(half, m);
    }
    std::nth_element(ratios.begin(), ratios.begin() + ratios.size() / 2, ratios.end());
    std::printf("round %d: median measured/estimated %.4f (%.0f s)\n", round,
                ratios[ratios.size() / 2], elapsed());
    std::fflush(stdout);
  }
  rounds = round - 1;
  // The in-round calibration (see the top of this file); without one, the table's.
  std::vector<double> in_rounds = fused;
  double in_round_scale = 0;
  if (!calibration_sels.empty()) {
    std::vector<double> ratios;
    for (size_t c = 0; c < calibration_sels.size(); ++c)
      ratios.push_back(calibration_meas[c] / calibration_raw[c]);
    std::nth_element(ratios.begin(), ratios.begin() + ratios.size() / 2, ratios.end());
    in_round_scale = ratios[ratios.size() / 2];
    for (size_t a = 0; a < raw.size(); ++a) in_rounds[a] = raw[a] * in_round_scale;
  }
  // Networks still more than 10% off that estimate are timed again, keeping the fastest.
  int remeasured = 0, still_off = 0;
  for (size_t a = 0; a < sels.size(); ++a) {
    for (int again = 0; again < 2 && std::abs(in_rounds[a] - meas[a]) > 0.10 * meas[a]; ++again) {
      if (again == 0) ++remeasured;
      meas[a] = std::min(meas[a], measure(sels[a]));
    }
    still_off += std::abs(in_rounds[a] - meas[a]) > 0.10 * meas[a];
  }
  std::printf("re-measured %d architecture(s) more than 10%% off; %d still are\n", remeasured,
              still_off);
  for (size_t a = 0; a < sels.size(); ++a)
    std::printf("arch %3zu  fastest %8.3f ms  fused %8.3f (%+5.1f%%)  in-round %8.3f (%+5.1f%%)\n",
                a, meas[a], fused[a], 100 * (fused[a] - meas[a]) / meas[a], in_rounds[a],
                100 * (in_rounds[a] - meas[a]) / meas[a]);
  std::printf("%s %d architectures, batch %lld, %d thread(s), %d round(s), device: %s\n",
              file.c_str(), archs, static_cast<long long>(lut.batch), threads, rounds,
              lut.device.describe().c_str());
  if (rounds >= 2)
    std::printf(
        "repeatability: Spearman %.4f between the odd and the even rounds' fastest times "
        "(the most an estimate's can be expected to reach)\n",
        pearson(ranks(odd_rounds), ranks(even_rounds)));
  report("accumulated", acc, meas);
  report("fused raw", raw, meas);
  report("fused", fused, meas);  // calibrated by the table
  if (!calibration_sels.empty()) {
    std::printf("in-round calibration: x%.4f (median of %zu networks' fastest rounds)\n",
                in_round_scale, calibration_sels.size());
    report("fused, rounds", in_rounds, meas);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
