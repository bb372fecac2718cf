// Test-only crash points, so that the kill-and-resume tests stop a run at an exact place
// instead of racing a timer. The environment variable NASC_TEST_KILL_AT, read here and
// nowhere else, makes the process kill itself with SIGKILL (no unwinding, no flushing, as
// a power cut or the OOM killer would) at one point:
//
//   step:N              right after optimizer step N of the run. N counts like the
//                       checkpoint's global_step: from the start of the run, across
//                       resumes (random search: every architecture's steps in turn).
//   checkpoint-write:N  inside the N-th checkpoint this process writes, once the
//                       temporary file holds half of the checkpoint's bytes and before it
//                       is renamed over the previous checkpoint.
//   internal-error:N    instead of dying, throws an InternalError right after step N, as
//                       a broken invariant deep in a run would: the tests of the error
//                       channels check that nasc then exits 2 with "internal error".
//   stall:N             right after step N, sleeps for good without dying, as a hung rank
//                       of a data-parallel run would (the others must time out).
//
// Under mpirun, NASC_TEST_KILL_RANK=R limits the kill point to rank R (the launcher's
// rank variable), so that one rank of a data-parallel run dies or stalls.
//
// Unset, it costs one branch per step. It is documented as test-only in docs/train.md.
#pragma once

#include <cstdint>

namespace nas {

inline constexpr const char* kKillAtVariable = "NASC_TEST_KILL_AT";
inline constexpr const char* kKillRankVariable = "NASC_TEST_KILL_RANK";

// Called by the training and search loops after each optimizer step.
void kill_point_after_step(int64_t global_step);

// Called by save_checkpoint once per checkpoint, while the file is half written.
void kill_point_in_checkpoint_write();

}  // namespace nas
