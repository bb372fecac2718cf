// What a ProxylessNAS step costs on the supernet against the sampled sub-network alone:
// the supernet of examples/mobilenet.nas is compiled once (a training plan and a forward
// plan at batch B, one arena); for each of K paths drawn uniformly, a "PNAS step" is the
// weight step on that path in selected mode through its live-step mask (forward,
// backward, SGD on the path's own weights) plus one reward forward of the path, and the
// "alone" step is the same work on the path's fixed network, compiled by itself
// (zero-pruned, dead code removed). The two alternate (A B A B) so that the machine's
// load affects both alike; the figure is the ratio of medians per path and over all.
//
//   nasc_bench_pnas_step [--paths K] [--reps R] [--threads T] [--batch B] [--file F]
//                        [--backend NAME]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/cpu/threads.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/optimizer.h"
#include "runtime/search/choice_modes.h"
#include "runtime/search/search_run.h"

namespace {

using namespace nas;

// One training network: a training plan and a forward plan sharing an arena, SGD. Both
// plans come from one pipeline run's execution graph, which the live masks index.
struct Runner {
  CompiledPlan compiled;  // the execution graph (its plan moves into `train`)
  ParamStore store;
  Executor train, eval;
  std::unique_ptr<Sgd> sgd;
  Runner(const Graph& g, int64_t batch, const std::string& backend)
      : compiled(compile_plan_keeping_graph(g, {batch, true, false, true})),
        store(make_backend(backend)),
        train(std::move(compiled.plan), store, 0),
        eval(compile_plan_from_execution_graph(compiled.exec, {batch, false, false, true}), store,
             0) {
    Executor::share_arena(train, eval);
    SgdOptions so;
    so.lr = 0.01;
    so.momentum = 0.9;
    so.weight_decay = 3e-4;
    sgd = std::make_unique<Sgd>(store.backend(), store.weight_slots(), so);
  }
  // The weights a sampled path trains (weight_slots() order; empty: all), as the searcher
  // keeps them: a step zeroes only the gradients the last step wrote and this one writes.
  std::vector<char> active, written;
  double step(const float* x, const int32_t* y, const float* xv, const int32_t* yv, int64_t b) {
    auto t0 = std::chrono::steady_clock::now();
    store.zero_grads(either(written, active));
    written = active;
    train.run(x, y, b);
    sgd->step();
    eval.run(xv, yv, b);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

namespace {

int bench_main(int argc, char** argv) {
  int paths = 5, reps = 5, threads = 2;
  int64_t batch = 32;
  std::string file = std::string(NASC_SOURCE_DIR) + "/examples/mobilenet.nas";
  std::string backend = default_backend_name();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--paths")
      paths = std::stoi(argv[i + 1]);
    else if (a == "--reps")
      reps = std::stoi(argv[i + 1]);
    else if (a == "--threads")
      threads = std::stoi(argv[i + 1]);
    else if (a == "--batch")
      batch = std::stoll(argv[i + 1]);
    else if (a == "--file")
      file = argv[i + 1];
    else if (a == "--backend")
      backend = argv[i + 1];
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
  const Graph& supernet = *c.supernet;
  Runner super(supernet, batch, backend);
  const Graph& exec = super.compiled.exec;
  LiveMasker masker(exec);

  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  int64_t per = 1;
  for (int64_t d : super.train.plan().input_shape) per *= d;
  std::vector<float> x(batch * per), xv(batch * per);
  std::vector<int32_t> y(batch), yv(batch);
  for (float& v : x) v = normal(rng);
  for (float& v : xv) v = normal(rng);
  for (int64_t i = 0; i < batch; ++i)
    y[i] = yv[i] = static_cast<int32_t>(i % super.train.plan().classes);

  std::vector<std::vector<double>> uniform;
  for (const ArchSpec& g : super.train.plan().arch)
    uniform.emplace_back(g.candidates.size(), 1.0 / g.candidates.size());
  std::vector<double> all_super, all_alone;
  std::printf("path  supernet_s  alone_s  ratio  steps_run/steps\n");
  for (int p = 0; p < paths; ++p) {
    ChoiceSelection path = select_path(ChoiceMode::Sample, super.train.plan().arch, uniform, 17, p);
    std::vector<char> mask;
    masker.compute(Selection{path}, mask);
    for (Executor* e : {&super.train, &super.eval}) {
      e->use_selection(path);
      e->set_live_mask(mask);
    }
    super.active = active_weight_slots(super.train.plan(), super.store, mask);
    super.sgd->set_active(super.active);
    Runner alone(derive_fixed_network(supernet, Selection{path}), batch, backend);
    super.step(x.data(), y.data(), xv.data(), yv.data(), batch);  // warm-up: primitives
    alone.step(x.data(), y.data(), xv.data(), yv.data(), batch);
    std::vector<double> ts, ta;
    for (int r = 0; r < reps; ++r) {
      ts.push_back(super.step(x.data(), y.data(), xv.data(), yv.data(), batch));
      ta.push_back(alone.step(x.data(), y.data(), xv.data(), yv.data(), batch));
    }
    all_super.insert(all_super.end(), ts.begin(), ts.end());
    all_alone.insert(all_alone.end(), ta.begin(), ta.end());
    std::printf("%4d  %10.4f  %7.4f  %5.3f  %lld/%zu\n", p, median(ts), median(ta),
                median(ts) / median(ta), static_cast<long long>(super.train.steps_run()),
                super.train.plan().steps.size());
  }
  double sum_s = 0, sum_a = 0;
  for (double t : all_super) sum_s += t;
  for (double t : all_alone) sum_a += t;
  std::printf(
      "{\"bench\": \"pnas_step\", \"file\": \"%s\", \"batch\": %lld, \"paths\": %d, \"reps\": %d, "
      "\"threads\": %d, \"supernet_total_s\": %.3f, \"alone_total_s\": %.3f, "
      "\"ratio\": %.3f}\n",
      file.c_str(), static_cast<long long>(batch), paths, reps, cpu_threads(), sum_s, sum_a,
      sum_s / sum_a);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
