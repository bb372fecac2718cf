#include "runtime/train/kill_points.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "runtime/dist/collectives.h"
#include "support/errors.h"

namespace nas {
namespace {

enum class KillAt { Nowhere, Step, CheckpointWrite, InternalError, Stall };

struct KillPlan {
  KillAt where = KillAt::Nowhere;
  int64_t n = 0;
};

// A typo must not turn a crash test into a run that simply finishes, so a value that
// does not parse is an error rather than "no kill".
KillPlan parse_kill_plan(const char* text) {
  KillPlan plan;
  if (text == nullptr || *text == '\0') return plan;
  const std::string value = text;
  const size_t colon = value.find(':');
  const std::string kind = value.substr(0, colon);
  const std::string count = colon == std::string::npos ? "" : value.substr(colon + 1);
  char* end = nullptr;
  const long long n = count.empty() ? 0 : std::strtoll(count.c_str(), &end, 10);
  const bool number_ok = !count.empty() && end != nullptr && *end == '\0' && n >= 1;
  if (kind == "step" && number_ok) plan.where = KillAt::Step;
  if (kind == "checkpoint-write" && number_ok) plan.where = KillAt::CheckpointWrite;
  if (kind == "internal-error" && number_ok) plan.where = KillAt::InternalError;
  if (kind == "stall" && number_ok) plan.where = KillAt::Stall;
  if (plan.where == KillAt::Nowhere)
    throw UserError(kKillAtVariable,
                    "expected step:N, checkpoint-write:N, internal-error:N or stall:N with N >= "
                    "1 (a test-only setting), got \"" +
                        value + "\"");
  plan.n = n;
  return plan;
}

// The plan, or none on a rank that NASC_TEST_KILL_RANK leaves out.
KillPlan this_process_plan() {
  KillPlan plan = parse_kill_plan(std::getenv(kKillAtVariable));
  const char* only_rank = std::getenv(kKillRankVariable);
  if (plan.where != KillAt::Nowhere && only_rank != nullptr && *only_rank != '\0') {
    const std::string wanted = only_rank;
    if (wanted.size() > 9 || wanted.find_first_not_of("0123456789") != std::string::npos)
      throw UserError(kKillRankVariable, "expected a rank number, got \"" + wanted + "\"");
    if (std::stoll(wanted) != detect_launch().rank) plan.where = KillAt::Nowhere;
  }
  return plan;
}

const KillPlan& kill_plan() {
  static const KillPlan plan = this_process_plan();
  return plan;
}

[[noreturn]] void kill_now() {
  ::kill(::getpid(), SIGKILL);
  ::_exit(137);  // not reached: SIGKILL cannot be caught or ignored
}

}  // namespace

void kill_point_after_step(int64_t global_step) {
  const KillPlan& plan = kill_plan();
  if (plan.where == KillAt::Step && global_step == plan.n) kill_now();
  if (plan.where == KillAt::Stall && global_step == plan.n)
    for (;;) ::pause();  // until a signal ends the process (mpirun's, when the job aborts)
  if (plan.where == KillAt::InternalError && global_step == plan.n)
    internal_error(__FILE__, __LINE__,
                   std::string(kKillAtVariable) + " stops the run after step " +
                       std::to_string(global_step) + " (test-only)");
}

void kill_point_in_checkpoint_write() {
  static int64_t writes = 0;
  ++writes;
  const KillPlan& plan = kill_plan();
  if (plan.where == KillAt::CheckpointWrite && writes == plan.n) kill_now();
}

}  // namespace nas
