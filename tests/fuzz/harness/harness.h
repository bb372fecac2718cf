// The fuzz harnesses: one function per input path of nasc, shared by the libFuzzer
// binaries (tests/fuzz/fuzz_main.cpp, built with -DNASC_FUZZ=ON) and by the regression test
// that replays every committed corpus and crash reproducer in the normal build
// (tests/test_fuzz_corpus.cpp), so that both check exactly the same things.
//
// A harness takes the raw input bytes, feeds them to one reader (and to what consumes the
// reader's result), and returns whether the input was accepted. Refusing an input with a
// nas::UserError is correct behaviour; a harness throws for a bug: a nas::InternalError
// (failed NAS_CHECK), any other exception escaping the code under test, or a FuzzFinding
// (an invariant the harness checks itself, such as a write -> read round trip).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "support/errors.h"

namespace nas_fuzz {

// A broken invariant found by a harness itself (not by nasc's own NAS_CHECKs).
struct FuzzFinding : std::logic_error {
  using std::logic_error::logic_error;
};

[[noreturn]] void bug(const std::string& what, const std::string& detail);

// Runs `read`; true when it returned, false when it refused the input with a
// nas::UserError. Any other exception propagates: it is a bug.
template <class Read>
bool accepted(Read&& read) {
  try {
    read();
    return true;
  } catch (const nas::UserError&) {
    return false;
  }
}

// One input path: true when the input was accepted (read successfully).
using Harness = bool (*)(const std::string& input);

bool fuzz_frontend(const std::string& input);  // .nas source text (compile_text + passes)
bool fuzz_arch(const std::string& input);      // arch JSON against darts, mobilenet, zoph
bool fuzz_ir(const std::string& input);        // IR text (parse_ir), print -> parse round trip
bool fuzz_config(const std::string& input);    // train and search config JSON
bool fuzz_lut(const std::string& input);       // latency table JSON
bool fuzz_idx(const std::string& input);       // IDX images + labels (MNIST format)
bool fuzz_cifar(const std::string& input);     // CIFAR-10 binary batches
bool fuzz_weights(const std::string& input);   // weights file and checkpoint (both formats)
bool fuzz_npy(const std::string& input);       // .npy arrays and the npy data-set folder
bool fuzz_images(const std::string& input);    // PNG/JPEG decoding and the image folder

// What the fuzzer reports for `input`: "" when the harness passes, else the kind of bug
// and its message. *was_accepted gets the harness's result when it passed.
std::string failure_of(Harness harness, const std::string& input, bool* was_accepted = nullptr);

// libFuzzer's side: prints the failure and traps, so that the input is saved as a crash.
void run_or_trap(const char* target, Harness harness, const std::string& input);

// The readers under test take file paths; inputs are written to files in a private
// scratch folder (on /dev/shm when there is one, so that fsyncs cost nothing), created on
// first use and removed at exit. Returns the path of `name` in it (or in its subfolder
// `sub`) after writing `bytes` there.
std::string scratch_dir();
std::string write_scratch(const std::string& name, const std::string& bytes);

// Splits `input` at every occurrence of `separator` (the readers that take several files
// get them as one input, joined by a separator that the dictionaries hold).
std::vector<std::string> split_input(const std::string& input, const std::string& separator);

}  // namespace nas_fuzz
