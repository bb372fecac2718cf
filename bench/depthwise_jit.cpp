// The JIT's generated depthwise convolutions (runtime/jit/depthwise_codegen.h) against the
// code the library runs for the same pass (Conv2dKernel's fastest: oneDNN's JIT kernel with
// its reorders into nChw16c and back, or nasc's plane loops), on the depthwise signatures
// of a DARTS step at batch 64 that the JIT generates: sep_conv and dil_conv, 3x3 and 5x5,
// in the normal cells at 16x16 and 8x8 and at stride 2 in the reduction cells (from 32x32
// and 16x16). For each signature and pass the two alternate, each the best of R calls, and
// the bench prints both times and their ratio; the last line sums them. (The signatures
// are bench/conv_passes.h's; the JIT leaves those on 32x32 planes at stride 1 to the
// library, so they are not timed.)
//
//   nasc_bench_depthwise_jit [--reps R] [--threads T] [--batch N]
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "bench/conv_passes.h"
#include "runtime/cpu/conv2d.h"
#include "runtime/cpu/threads.h"
#include "runtime/jit/depthwise_codegen.h"
#include "runtime/jit/depthwise_run.h"
#include "runtime/jit/jit_engine.h"
#include "runtime/jit/jit_runtime.h"
#include "runtime/jit/object_cache.h"

namespace {

using nas::Conv2dKernel;
using nas::Conv2dParams;

int usage() {
  std::fprintf(stderr, "usage: nasc_bench_depthwise_jit [--reps R] [--threads T] [--batch N]\n");
  return 1;
}

// The step of one pass of a depthwise convolution, as lowering makes it.
nas::Step depthwise_step(const Conv2dParams& p, nas::StepKind kind) {
  nas::Step s;
  s.kind = kind;
  s.name = "bench";
  s.op = "dwconv";
  s.fwd_in_shape = {p.n, p.c_in, p.h, p.w};
  s.weight = 0;
  s.ints = {{"out", p.c_out},         {"kernel", p.kernel}, {"stride", p.stride}, {"pad", p.pad},
            {"dilation", p.dilation}, {"groups", p.groups}, {"bias", 0}};
  return s;
}

// The generated bodies of the three passes of `p` (forward, data, weights; null where the
// JIT leaves a pass to the library), compiled.
class GeneratedPasses {
 public:
  explicit GeneratedPasses(const Conv2dParams& p) {
    auto context = std::make_unique<llvm::LLVMContext>();
    nas::DepthwiseCodegen codegen(nas::host_target().vector_floats, *context);
    nas::ExecPlan plan;
    plan.training = true;
    std::vector<std::string> symbols;
    std::vector<int> pass_symbol;
    for (nas::StepKind kind :
         {nas::StepKind::Conv, nas::StepKind::ConvGradInput, nas::StepKind::ConvGradWeight}) {
      const nas::Step s = depthwise_step(p, kind);
      if (!nas::DepthwiseCodegen::generates(plan, s)) {
        pass_symbol.push_back(-1);
        continue;
      }
      pass_symbol.push_back(static_cast<int>(symbols.size()));
      symbols.push_back(codegen.body(s)->getName().str());
    }
    bodies_.assign(3, nullptr);
    if (symbols.empty()) return;
    std::vector<nas::JitSource> sources;
    for (std::unique_ptr<llvm::Module>& m : codegen.take_modules())
      sources.push_back({std::move(m), true, {}, {}});
    module_ = std::make_unique<nas::JitModule>(std::move(context), std::move(sources), symbols,
                                               nas::shared_object_cache());
    for (size_t pass = 0; pass < pass_symbol.size(); ++pass)
      if (pass_symbol[pass] >= 0)
        bodies_[pass] = reinterpret_cast<nas::RegionBody>(module_->address(pass_symbol[pass]));
  }
  // The body of pass 0 (forward), 1 (data) or 2 (weights); null when not generated.
  nas::RegionBody body(int pass) const { return bodies_[static_cast<size_t>(pass)]; }
  bool any() const { return body(0) || body(1) || body(2); }

 private:
  std::unique_ptr<nas::JitModule> module_;
  std::vector<nas::RegionBody> bodies_;
};

}  // namespace

namespace {

int bench_main(int argc, char** argv) {
  nas::bench::ConvBenchOptions options;
  if (!nas::bench::parse_conv_bench_options(argc, argv, options)) return usage();
  nas::set_cpu_threads(options.threads);
  std::printf("generated depthwise convolutions at batch %lld, %d threads, best of %d calls\n",
              static_cast<long long>(options.batch), options.threads, options.reps);
  std::printf("%-22s %-8s %12s %10s %7s  %s\n", "signature", "pass", "generated ms", "library ms",
              "ratio", "library runs");
  std::mt19937 rng(1);
  double generated_total = 0, library_total = 0;
  for (const nas::bench::DepthwiseSignature& sig : nas::bench::darts_depthwise_signatures()) {
    const Conv2dParams p = nas::bench::depthwise_params(sig, options.batch);
    const GeneratedPasses generated(p);
    if (!generated.any()) continue;  // a plane the JIT leaves to the library
    const Conv2dKernel library(p);
    nas::bench::ConvBuffers b(p, rng);
    // Each body's slots (depthwise_run.h): forward x, w -> y; data dy, w -> dx; weights x,
    // dy -> dw (added to).
    void* forward_slots[nas::kDwSlots] = {b.x.data(), b.w.data(), nullptr, b.y.data()};
    void* data_slots[nas::kDwSlots] = {b.dx.data(), b.w.data(), nullptr, b.dy.data()};
    void* weight_slots[nas::kDwSlots] = {b.x.data(), b.dw.data(), nullptr, b.dy.data()};
    const int64_t planes = p.n * p.c_in, elements = p.input_size();
    struct Pass {
      const char* name;
      nas::RegionBody body;
      std::function<void()> generated, library;
      bool library_runs_loops;
    };
    const Pass passes[] = {
        {"forward", generated.body(0),
         [&] {
           nas::nasc_jit_parallel_channels(generated.body(0), forward_slots, planes, elements);
         },
         [&] { library.forward(b.x.data(), b.w.data(), nullptr, b.y.data()); },
         library.nasc_forward()},
        {"data", generated.body(1),
         [&] { nas::nasc_jit_parallel_channels(generated.body(1), data_slots, planes, elements); },
         [&] { library.backward_data(b.dy.data(), b.w.data(), b.dx.data()); },
         library.nasc_backward_data()},
        {"weights", generated.body(2),
         [&] {
           nas::nasc_jit_parallel_channels(generated.body(2), weight_slots, p.c_in, elements);
         },
         [&] { library.backward_weights(b.x.data(), b.dy.data(), b.dw.data(), nullptr); },
         library.nasc_backward_weights()},
    };
    for (const Pass& pass : passes) {
      if (!pass.body) {
        std::printf("%-22s %-8s %12s %10s %7s  %s\n", sig.name, pass.name, "-", "-", "-",
                    "(not generated)");
        continue;
      }
      double mine = 1e30, theirs = 1e30;
      for (int round = 0; round < 2; ++round) {
        mine = std::min(mine, nas::bench::best_of(options.reps, pass.generated));
        theirs = std::min(theirs, nas::bench::best_of(options.reps, pass.library));
      }
      generated_total += mine;
      library_total += theirs;
      std::printf("%-22s %-8s %12.3f %10.3f %7.2f  %s\n", sig.name, pass.name, mine * 1e3,
                  theirs * 1e3, mine / theirs, pass.library_runs_loops ? "loops" : "oneDNN");
    }
  }
  std::printf("%-31s %12.3f %10.3f %7.2f\n", "all generated passes", generated_total * 1e3,
              library_total * 1e3, generated_total / library_total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return nas::bench::guarded_main(argc, argv, bench_main);
}
