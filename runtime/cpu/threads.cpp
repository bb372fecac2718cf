#include "runtime/cpu/threads.h"

#include <omp.h>

#include <string>
#include <thread>

#include "support/errors.h"

namespace nas {

void set_cpu_threads(int threads) {
  // --threads, the configs' "threads" and a table's device are all checked to be >= 0.
  NAS_CHECK(threads >= 0,
            "thread count must be 0 (all cores) or positive, got " + std::to_string(threads));
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(threads);
}

int cpu_threads() {
  return omp_get_max_threads();
}

}  // namespace nas
