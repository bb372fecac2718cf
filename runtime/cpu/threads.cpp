#include "runtime/cpu/threads.h"

#include <omp.h>

#include <stdexcept>
#include <string>
#include <thread>

namespace nas {

void set_cpu_threads(int threads) {
  if (threads < 0)
    throw std::invalid_argument("thread count must be 0 (all cores) or positive, got " +
                                std::to_string(threads));
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(threads);
}

int cpu_threads() {
  return omp_get_max_threads();
}

}  // namespace nas
