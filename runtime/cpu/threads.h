// The number of threads CPU kernels use. oneDNN parallelises inside each primitive with
// OpenMP; the executor itself is single-threaded (one step at a time).
#pragma once

namespace nas {

// Sets the thread count for every later kernel; 0 means all hardware threads.
// A negative count is an InternalError (every caller passes a checked count).
void set_cpu_threads(int threads);
// The count in effect.
int cpu_threads();

}  // namespace nas
