// The schedule of a plan's JIT code, described: every step the plan function runs, in
// order, with its gate (runtime/exec/step_gate.h), in the chunks of functions the plan
// function calls. The schedule module (plan_codegen.h) is a function of this description
// alone, so its cache key is the description's text (and a fingerprint of the generator):
// a cached schedule is loaded without generating it, or writing its bitcode to hash it,
// which for a DARTS supernet's 15,000 steps were most of a cache hit's time.
// Free of LLVM's headers, for the tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nas {

struct ScheduleStep {
  int64_t index = 0;  // the step's place in the plan (nasc_jit_run_step's argument)
  int node = 0;       // the value it computes (its `computed` flag)
  bool weight_grad = false, arch_grad = false, ends_forward_only = false;  // StepGate's
  std::vector<int> needs;                                                  // StepGate's
  std::string region_entry;  // the generated entry it calls; "" = the library kernel
};

struct ScheduleRegion {
  int guard = -1;  // the forward node whose live-mask flag gates the region; -1: none
  std::vector<ScheduleStep> steps;
};

// A schedule is compiled in parts, each a module of its own, so that they compile side by
// side (jit_engine.h; a DARTS supernet's schedule once took a second on one thread). A part holds
// the chunks [first_chunk, first_chunk + chunks.size()) of a schedule of total_chunks; the part
// with first_chunk 0 also holds the plan function, which calls every chunk (the other parts' by
// name). A whole schedule is the one part with them all.
struct ScheduleDescription {
  std::vector<std::vector<ScheduleRegion>> chunks;  // one function each
  int first_chunk = 0;
  int total_chunks = -1;  // -1: chunks.size() (the whole schedule)
  int total() const { return total_chunks < 0 ? static_cast<int>(chunks.size()) : total_chunks; }
  std::string text() const;  // everything above, one line a step
};

// `whole` in parts of about `part_steps` steps each (whole chunks, at least one per part).
std::vector<ScheduleDescription> split_schedule(ScheduleDescription whole, int part_steps);

// What keys the schedule's cached object: the description's text after a fingerprint of
// the generator itself, the hash of the bitcode it generates for a probe description that
// takes every one of its branches. A change to the generator changes the fingerprint, so
// an object compiled by an older generator is never loaded for a newer one.
std::string schedule_key_text(const ScheduleDescription& d);

// The schedule module's LLVM IR for `d`, after LLVM's verifier (an InternalError with its
// message when it fails): for the tests and `nasc ir --stage llvm`'s readers.
std::string schedule_ir_text(const ScheduleDescription& d);

}  // namespace nas
