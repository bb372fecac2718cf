// One first-order DARTS search step on examples/darts.nas, as bench/peers/darts_step_torch.py
// measures it (batch 64, 3x32x32, C=16, 8 cells): an alpha step on a valid batch (Adam,
// lr 3e-4, betas (0.5, 0.999), weight decay 1e-3) then a weight step on a train batch
// (SGD, lr 0.025, momentum 0.9, weight decay 3e-4, gradient norm clipped at 5).
// Prints one JSON line with the median step time and the peak RSS, like the peer, and
// backend_peak_mb: the most memory the backend held at once (Backend::memory_use; on the
// cuda backend the GPU memory, to set beside the peer's peak_gpu_mb).
//
//   nasc_bench_darts_step [--steps N] [--threads T] [--batch B] [--file examples/darts.nas]
//                         [--backend NAME] [--fusion 0|1] [--batchnorm-regions 0|1]
//                         [--remat 0|1]
// --fusion 0 runs the unfused plans (the pipeline's reference), to measure what fusion buys;
// --batchnorm-regions 0 fuses everything but batch norm with its activations (fusion.h);
// --remat 0 keeps every value backward reads (no recomputation), to measure what remat buys.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/cpu/threads.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/optimizer.h"

namespace {

int bench_main(int argc, char** argv) {
  using namespace nas;
  int steps = 5, threads = 2;
  bool profile = false, fusion = true, batchnorm_regions = true, remat = true;
  int64_t batch = 64;
  std::string file = std::string(NASC_SOURCE_DIR) + "/examples/darts.nas";
  std::string backend = default_backend_name();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--steps")
      steps = std::stoi(argv[i + 1]);
    else if (a == "--threads")
      threads = std::stoi(argv[i + 1]);
    else if (a == "--batch")
      batch = std::stoll(argv[i + 1]);
    else if (a == "--profile")
      profile = std::string(argv[i + 1]) == "1";
    else if (a == "--file")
      file = argv[i + 1];
    else if (a == "--backend")
      backend = argv[i + 1];
    else if (a == "--fusion")
      fusion = std::string(argv[i + 1]) == "1";
    else if (a == "--batchnorm-regions")
      batchnorm_regions = std::string(argv[i + 1]) == "1";
    else if (a == "--remat")
      remat = std::string(argv[i + 1]) == "1";
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 1;
    }
  }
  set_cpu_threads(threads);
  Diagnostics diags;
  Compilation c = compile_file(file, {}, diags);
  if (!c.supernet) {
    std::fprintf(stderr, "%s", diags.render().c_str());
    return 1;
  }
  // Two plans of one supernet, one shared arena: the alpha step differentiates only what
  // lies after a choice and keeps no activations for weight gradients; the weight step
  // keeps no candidate outputs for alpha gradients.
  PlanOptions alpha_po, weight_po;
  alpha_po.batch = weight_po.batch = batch;
  alpha_po.training = weight_po.training = true;
  alpha_po.arch_grads = true;
  alpha_po.fusion = weight_po.fusion = fusion;
  alpha_po.fusion_kinds.batchnorm = weight_po.fusion_kinds.batchnorm = batchnorm_regions;
  alpha_po.rematerialize = weight_po.rematerialize = remat;
  alpha_po.weight_grads = false;
  auto t0 = std::chrono::steady_clock::now();
  ParamStore store(make_backend(backend));
  Executor ex(compile_plan(*c.supernet, weight_po), store, 0);
  Executor alpha_ex(compile_plan(*c.supernet, alpha_po), store, 0);
  Executor::share_arena(ex, alpha_ex);
  double compile_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  SgdOptions so;
  so.lr = 0.025;
  so.momentum = 0.9;
  so.weight_decay = 3e-4;
  Sgd wopt(store.backend(), store.weight_slots(), so);
  AdamOptions ao;
  ao.lr = 3e-4;
  ao.beta1 = 0.5;
  ao.beta2 = 0.999;
  ao.weight_decay = 1e-3;
  Adam aopt(store.backend(), store.arch_slots(), ao);
  std::vector<DeviceBuffer*> grads = store.weight_grads();

  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> label(0, static_cast<int>(ex.plan().classes) - 1);
  int64_t per = 1;
  for (int64_t d : ex.plan().input_shape) per *= d;
  std::vector<float> x(batch * per), xv(batch * per);
  std::vector<int32_t> y(batch), yv(batch);
  for (float& v : x) v = normal(rng);
  for (float& v : xv) v = normal(rng);
  for (auto& v : y) v = label(rng);
  for (auto& v : yv) v = label(rng);

  auto step = [&] {
    store.zero_grads();
    alpha_ex.run(xv.data(), yv.data(), batch);
    aopt.step();
    store.zero_grads();
    ex.run(x.data(), y.data(), batch);
    clip_grad_norm(store.backend(), grads, 5.0);
    wopt.step();
  };
  step();  // warm-up
  std::vector<double> times;
  for (int i = 0; i < steps; ++i) {
    auto s = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  if (profile) {
    // One more step with per-op timing, printed to stderr (not part of the median).
    ex.set_profiling(true);
    alpha_ex.set_profiling(true);
    step();
    std::map<std::string, Executor::OpTime> merged = ex.profile();
    for (const auto& [op, t] : alpha_ex.profile()) {
      merged[op].seconds += t.seconds;
      merged[op].calls += t.calls;
    }
    double total = 0;
    for (const auto& [op, t] : merged) total += t.seconds;
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& [op, t] : merged) rows.push_back({t.seconds, op});
    std::sort(rows.rbegin(), rows.rend());
    for (const auto& [sec, op] : rows)
      std::fprintf(stderr, "%-36s %8.3f s %5.1f%%  (%lld calls)\n", op.c_str(), sec,
                   100 * sec / total, static_cast<long long>(merged.at(op).calls));
  }
  std::sort(times.begin(), times.end());
  double med = times[times.size() / 2];
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf(
      "{\"system\": \"nasc\", \"median_step_s\": %.4f, \"images_per_s\": %.1f, \"peak_rss_mb\": "
      "%.1f, \"arena_mb\": %.1f, \"backend_peak_mb\": %.1f, \"params\": %lld, \"steps\": %d, "
      "\"threads\": %d, \"compile_s\": %.3f, \"backend\": \"%s\"}\n",
      med, 2.0 * batch / med, ru.ru_maxrss / 1024.0,
      std::max(ex.arena_bytes(), alpha_ex.arena_bytes()) / 1048576.0,
      store.backend().memory_use().peak / 1048576.0,
      static_cast<long long>(store.trainable_count()), steps, cpu_threads(), compile_s,
      backend.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
