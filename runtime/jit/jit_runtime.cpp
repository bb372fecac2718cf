#include "runtime/jit/jit_runtime.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "runtime/cpu/batchnorm_params.h"
#include "runtime/jit/plan_codegen.h"

namespace nas {
namespace {

// Below this many elements a region runs on the calling thread: waking the OpenMP team
// costs more than it saves.
constexpr int64_t kParallelMin = 16384;
// Chunks are whole multiples of this many elements, so that every thread's loop starts on
// a vector (and a cache line) boundary.
constexpr int64_t kChunkAlign = 64;

float jit_expf(float x) {
  return std::exp(x);
}

}  // namespace

extern "C" void nasc_jit_parallel_for(RegionBody body, void** args, int64_t n) {
  const int threads = omp_get_max_threads();
  if (n < kParallelMin || threads <= 1) {
    body(args, 0, n);
    return;
  }
  int64_t chunk = (n + threads - 1) / threads;
  chunk = (chunk + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
#pragma omp parallel num_threads(threads)
  {
    const int64_t begin = std::min<int64_t>(n, chunk * omp_get_thread_num());
    const int64_t end = std::min<int64_t>(n, begin + chunk);
    if (begin < end) body(args, begin, end);
  }
}

extern "C" void nasc_jit_parallel_channels(RegionBody body, void** args, int64_t channels,
                                           int64_t elements) {
  const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), channels));
  if (elements <= kBatchNormParallelMin || threads <= 1) {
    body(args, 0, channels);
    return;
  }
  const int64_t chunk = (channels + threads - 1) / threads;
#pragma omp parallel num_threads(threads)
  {
    const int64_t begin = std::min<int64_t>(channels, chunk * omp_get_thread_num());
    const int64_t end = std::min<int64_t>(channels, begin + chunk);
    if (begin < end) body(args, begin, end);
  }
}

extern "C" int32_t nasc_jit_run_step(void** args, int64_t index, int32_t node,
                                     GeneratedEntry entry) {
  ++*static_cast<int64_t*>(args[kArgStepsRun]);
  int32_t wrote = 0;
  if (entry) {
    wrote = entry(args);
  } else {
    auto* c = static_cast<JitRunContext*>(args[kArgContext]);
    try {
      wrote = c->library->run(static_cast<size_t>(index), *c->state) ? 1 : 0;
    } catch (...) {
      c->error = std::current_exception();  // rethrown by the caller of the plan function
      return -1;
    }
  }
  if (wrote > 0) static_cast<char*>(args[kArgComputed])[node] = 1;
  return wrote;
}

const std::vector<std::pair<std::string, void*>>& jit_runtime_symbols() {
  static const std::vector<std::pair<std::string, void*>> symbols = {
      {"nasc_jit_parallel_for", reinterpret_cast<void*>(&nasc_jit_parallel_for)},
      {"nasc_jit_parallel_channels", reinterpret_cast<void*>(&nasc_jit_parallel_channels)},
      {"nasc_jit_run_step", reinterpret_cast<void*>(&nasc_jit_run_step)},
      {"expf", reinterpret_cast<void*>(&jit_expf)},
  };
  return symbols;
}

}  // namespace nas
