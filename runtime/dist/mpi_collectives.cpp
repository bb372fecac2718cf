// Collectives over MPI (Open MPI from Debian's libopenmpi-dev): one process per rank, host
// buffers. Every operation is MPI's non-blocking form followed by a bounded wait, so that
// a dead or stalled rank turns into a CollectiveTimeout on the others rather than a hang.
#include <fmt/format.h>
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "runtime/dist/collectives.h"

namespace nas {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end != nullptr && *end == '\0' && n >= 0 ? static_cast<int>(n) : fallback;
}

class MpiCollectives final : public Collectives {
 public:
  MpiCollectives() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string transport() const override { return "mpi"; }

  void sum(float* data, size_t n, const char* what) override {
    reduce(data, n, MPI_FLOAT, MPI_SUM, what);
  }
  void sum(double* data, size_t n, const char* what) override {
    reduce(data, n, MPI_DOUBLE, MPI_SUM, what);
  }
  void max(double* data, size_t n, const char* what) override {
    reduce(data, n, MPI_DOUBLE, MPI_MAX, what);
  }

  void broadcast(void* data, size_t bytes, int root, const char* what) override {
    MPI_Request r;
    check(MPI_Ibcast(data, count(bytes), MPI_BYTE, root, MPI_COMM_WORLD, &r), what);
    finish(r, what);
  }

  void barrier(const char* what) override {
    MPI_Request r;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &r), what);
    finish(r, what);
  }

  PendingReduction start_sum(float* data, size_t n, const char* what) override {
    Started s;
    s.what = what;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                         &s.request),
          what);
    started_.push_back(s);
    return PendingReduction{next_id_++};
  }

  void progress() override {
    // Open MPI moves a non-blocking collective along only inside MPI calls; a test of the
    // oldest started one is that call.
    if (started_.empty()) return;
    int done = 0;
    MPI_Test(&started_.front().request, &done, MPI_STATUS_IGNORE);
  }

  void wait(PendingReduction& pending) override {
    // Handles are given out in order and waited for in any order; a finished one keeps
    // its slot (a null request) until the ones before it are done too.
    const int64_t first_id = next_id_ - static_cast<int64_t>(started_.size());
    NAS_CHECK(pending.id >= first_id && pending.id < next_id_, "wait on an unknown reduction");
    Started& s = started_[static_cast<size_t>(pending.id - first_id)];
    finish(s.request, s.what);
    while (!started_.empty() && started_.front().request == MPI_REQUEST_NULL) started_.pop_front();
    pending.id = -1;
  }

 private:
  struct Started {
    MPI_Request request = MPI_REQUEST_NULL;
    const char* what = "";
  };

  static int count(size_t n) {
    NAS_CHECK(n <= static_cast<size_t>(INT32_MAX), "a collective of more than 2^31 elements");
    return static_cast<int>(n);
  }

  void check(int status, const char* what) const {
    if (status == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(status, text, &length);
    throw CollectiveTimeout(
        "rank " + std::to_string(rank_),
        fmt::format("MPI failed in the {}: {}", what, std::string(text, length)));
  }

  void reduce(void* data, size_t n, MPI_Datatype type, MPI_Op op, const char* what) {
    MPI_Request r;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), type, op, MPI_COMM_WORLD, &r), what);
    finish(r, what);
  }

  // Polls until the request completes or the timeout passes. Spins briefly (the usual
  // wait is microseconds on one machine), then sleeps between polls so that a rank that
  // waits long for a slower one leaves the CPU to it.
  void finish(MPI_Request& r, const char* what) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout_seconds_);
    for (int polls = 0;; ++polls) {
      int done = 0;
      check(MPI_Test(&r, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      if (polls > 2000) std::this_thread::sleep_for(std::chrono::microseconds(50));
      if ((polls & 63) == 0 && clock::now() > deadline)
        throw CollectiveTimeout(
            "rank " + std::to_string(rank_),
            fmt::format("no answer from the other ranks for {:g} s in the {}: a rank has died, "
                        "stalled or lost its connection (the limit is --comm-timeout)",
                        timeout_seconds_, what));
    }
  }

  int rank_ = 0, size_ = 1;
  std::deque<Started> started_;
  int64_t next_id_ = 0;
};

// MPI_Finalize at exit, when nasc initialised MPI and the process ends normally. A run
// that failed calls abort_mpi_world instead (finalising waits for the other ranks).
void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace

LaunchInfo detect_launch() {
  LaunchInfo info;
  // Open MPI's mpirun, then the PMI variables of MPICH's Hydra and Slurm's srun.
  for (auto [rank_var, size_var] : {std::pair{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                    std::pair{"PMI_RANK", "PMI_SIZE"}}) {
    const int size = env_int(size_var, 0);
    if (size < 1) continue;
    info.under_mpi = true;
    info.size = size;
    info.rank = env_int(rank_var, 0);
    return info;
  }
  return info;
}

Collectives* mpi_world(double timeout_seconds) {
  static std::mutex mu;
  static std::unique_ptr<MpiCollectives> world;
  static bool tried = false;
  std::lock_guard<std::mutex> lock(mu);
  if (!tried) {
    tried = true;
    const LaunchInfo launch = detect_launch();
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized && launch.under_mpi && launch.size > 1) {
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        throw UserError("MPI",
                        "MPI_Init_thread failed: this process was started by an MPI "
                        "launcher but cannot join its job");
      std::atexit(finalize_at_exit);
      initialized = 1;
    }
    if (initialized) {
      int size = 1;
      MPI_Comm_size(MPI_COMM_WORLD, &size);
      if (size > 1) world = std::make_unique<MpiCollectives>();
    }
  }
  if (world && timeout_seconds > 0) world->set_timeout(timeout_seconds);
  return world.get();
}

void abort_mpi_world(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace nas
