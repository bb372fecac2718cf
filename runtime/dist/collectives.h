// The collective operations a data-parallel run needs (docs/scaling.md), behind one
// interface so that the trainer, the searchers and the executor never name the library
// that carries them: MPI between processes on the CPU (mpi_collectives.cpp, Open MPI from
// Debian), NCCL between GPUs. A run of one process has no Collectives at all (a null
// pointer): nothing is reduced and nothing waits.
//
// Every call is collective: all ranks make the same calls in the same order with the same
// sizes. The buffers live where the backend keeps its memory (host memory for MPI).
//
// Failure: a rank that dies or stalls must not leave the others waiting forever. Every
// wait is bounded by the timeout; past it the call throws CollectiveTimeout, which names
// the operation, so the surviving ranks stop with that message instead of hanging.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "support/errors.h"

namespace nas {

// Ranks that stopped answering (a dead or stalled peer, a broken link). Not a bug in nasc
// and not a mistake in the input, but the run cannot go on: the CLI reports it like a
// user error (exit 1), naming the rank and the operation.
class CollectiveTimeout : public UserError {
 public:
  using UserError::UserError;
};

// A started non-blocking reduction; wait() on the Collectives that started it.
struct PendingReduction {
  int64_t id = -1;  // the implementation's handle
};

class Collectives {
 public:
  virtual ~Collectives() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi" or "nccl": what carries the reductions (for logs and config.json).
  virtual std::string transport() const = 0;

  // In place: data[i] = sum over the ranks of data[i]. The sum's order is fixed for a
  // given rank count, so repeated runs give the same bits.
  virtual void sum(float* data, size_t n, const char* what) = 0;
  virtual void sum(double* data, size_t n, const char* what) = 0;
  // In place: data[i] = max over the ranks (union of masks, agreement checks).
  virtual void max(double* data, size_t n, const char* what) = 0;
  // Rank `root`'s bytes on every rank.
  virtual void broadcast(void* data, size_t bytes, int root, const char* what) = 0;
  virtual void barrier(const char* what) = 0;

  // The non-blocking form of sum(float): starts it and returns at once, so that it runs
  // while the caller computes (the gradient buckets during backward). `data` must stay
  // untouched until wait(). progress() lets the library move started reductions along.
  virtual PendingReduction start_sum(float* data, size_t n, const char* what) = 0;
  virtual void progress() = 0;
  virtual void wait(PendingReduction& pending) = 0;

  // The longest any call waits for the other ranks, in seconds.
  void set_timeout(double seconds) { timeout_seconds_ = seconds; }
  double timeout() const { return timeout_seconds_; }

 protected:
  double timeout_seconds_ = 300;
};

// A run's place in a data-parallel job; no collectives: a run of one process.
struct DataParallel {
  Collectives* collectives = nullptr;
  bool sync_batchnorm = false;  // batch-norm statistics over the global batch

  int rank() const { return collectives ? collectives->rank() : 0; }
  int ranks() const { return collectives ? collectives->size() : 1; }
  bool writes_files() const { return rank() == 0; }
};

// How this process was started: by an MPI launcher (mpirun, srun) or alone. Read from
// the launcher's environment, so that a plain `nasc train` never touches MPI.
struct LaunchInfo {
  bool under_mpi = false;
  int rank = 0, size = 1;  // as the launcher says
};
LaunchInfo detect_launch();

// The process-wide MPI world when this process was started by an MPI launcher with more
// than one rank, else null. Initialises MPI on first use (MPI_Init_thread; an embedder
// that initialised MPI itself keeps it) and finalises it at exit. A positive timeout
// becomes the one every later call uses; 0 keeps the current one (300 s at first).
Collectives* mpi_world(double timeout_seconds);
// Ends every rank of the MPI job with `code` (MPI_Abort): a rank whose run failed must not
// finalise, which would wait for ranks that are still computing. No-op without MPI.
void abort_mpi_world(int code);

}  // namespace nas
