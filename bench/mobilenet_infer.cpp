// MobileNetV2 inference latency at a fixed batch (examples/mobilenet_v2.nas, the network
// of bench/peers/mobilenet_infer_torch.py), as that peer measures it: --warmup untimed
// runs, then --reps timed ones; prints one JSON line with the median and minimum
// milliseconds per batch. bench/mobilenet_infer.sh runs both pinned to one core.
//
//   nasc_bench_mobilenet_infer [--hw 224] [--batch 1] [--threads 1] [--warmup 10]
//                              [--reps 50] [--backend NAME] [--profile 1] [--file F.nas]
// --profile 1 adds one more run with per-op times, printed to stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/cpu/threads.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"

namespace {

int bench_main(int argc, char** argv) {
  using namespace nas;
  int threads = 1, warmup = 10, reps = 50;
  int64_t batch = 1, hw = 224;
  bool profile = false;
  std::string file = std::string(NASC_SOURCE_DIR) + "/examples/mobilenet_v2.nas";
  std::string backend = default_backend_name();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--hw")
      hw = std::stoll(v);
    else if (a == "--batch")
      batch = std::stoll(v);
    else if (a == "--threads")
      threads = std::stoi(v);
    else if (a == "--warmup")
      warmup = std::stoi(v);
    else if (a == "--reps")
      reps = std::stoi(v);
    else if (a == "--backend")
      backend = v;
    else if (a == "--profile")
      profile = v == "1";
    else if (a == "--file")
      file = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 1;
    }
  }
  if (reps < 1 || warmup < 0 || batch < 1 || hw < 1) {
    std::fprintf(stderr, "--reps, --batch and --hw must be positive, --warmup not negative\n");
    return 1;
  }
  set_cpu_threads(threads);
  Diagnostics diags;
  CompileOptions co;
  co.elaborate.overrides.push_back({"hw", std::to_string(hw)});
  Compilation c = compile_file(file, co, diags);
  if (!c.supernet) {
    std::fprintf(stderr, "%s", diags.render().c_str());
    return 1;
  }
  PlanOptions po;
  po.batch = batch;
  po.loss = false;  // a forward plan: image in, logits out
  ParamStore store(make_backend(backend));
  Executor ex(compile_plan(*c.supernet, po), store, 0);

  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  int64_t per = 1;
  for (int64_t d : ex.plan().input_shape) per *= d;
  std::vector<float> x(batch * per);
  for (float& v : x) v = normal(rng);
  std::vector<float> logits(batch * ex.plan().classes);

  for (int i = 0; i < warmup; ++i) ex.run(x.data(), nullptr, batch, logits.data());
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    auto s = std::chrono::steady_clock::now();
    ex.run(x.data(), nullptr, batch, logits.data());
    ms.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  if (profile) {
    ex.set_profiling(true);
    ex.run(x.data(), nullptr, batch, logits.data());
    double total = 0;
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& [op, t] : ex.profile()) {
      total += t.seconds;
      rows.push_back({t.seconds, op});
    }
    std::sort(rows.rbegin(), rows.rend());
    for (const auto& [sec, op] : rows)
      std::fprintf(stderr, "%-36s %8.3f ms %5.1f%%  (%lld calls)\n", op.c_str(), 1e3 * sec,
                   100 * sec / total, static_cast<long long>(ex.profile().at(op).calls));
  }
  std::sort(ms.begin(), ms.end());
  std::printf(
      "{\"system\": \"nasc\", \"backend\": \"%s\", \"batch\": %lld, \"hw\": %lld, \"threads\": "
      "%d, \"params\": %lld, \"median_ms\": %.3f, \"min_ms\": %.3f}\n",
      backend.c_str(), static_cast<long long>(batch), static_cast<long long>(hw), cpu_threads(),
      static_cast<long long>(store.trainable_count()), ms[ms.size() / 2], ms[0]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
