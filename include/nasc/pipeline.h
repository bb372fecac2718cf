// libnasc's developer section: the compiler pipeline's stages in order, the text of a
// space at any stage (`nasc ir`), and passes run on textual IR (`nasc opt`). For tools
// that inspect or test the compiler; an embedder that trains and searches does not need
// it. Part of the public API (docs/embedding.md, docs/cli.md).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "nasc/diagnostics.h"
#include "nasc/space.h"

namespace nasc {

struct StageDescription {
  std::string name;    // "dce": what IrOptions::stage, dump_after and passes take
  std::string result;  // what it produces ("the supernet")
  std::string does;    // one line
  std::string code;    // where the pass lives in nasc's source
};

// Every stage, in the order the pipeline runs them: load, elaborate, shapes, dce,
// zero-prune, cse, autodiff, fusion, memory-plan, lower.
std::vector<StageDescription> pipeline_stages();
// The stage list as `nasc --print-pipeline` prints it.
std::string describe_pipeline();

// How stage results are printed, and which are printed as the run passes them.
struct DumpOptions {
  bool locations = true;  // the `@file:line:col` of each IR node
  // Stages whose results are also written to `out` as they complete (`--dump-after`).
  std::vector<std::string> after;
  std::ostream* out = nullptr;
};

// The largest partial_channels (PC-DARTS' K) the library accepts.
constexpr int64_t kMaxPartialChannels = 1024;

struct IrOptions {
  CompileOptions compile;
  // The stage whose result is returned; the run stops there. "llvm" and "asm": the whole
  // pipeline, then the JIT backend's module of the lowered plan, as generated (textual
  // LLVM IR) or as the host's assembly after its O3 pipeline.
  std::string stage = "dce";
  // autodiff and later: the training plan (loss and backward); else the forward plan.
  bool training = false;
  // zero-prune and later: the architecture to fix; "" = the whole supernet (every
  // candidate computed, with the architecture gradients when training).
  std::string arch_file;
  // partial-channels and later: PC-DARTS' training supernet (docs/search.md, "PC-DARTS"):
  // the candidates of qualifying choices see 1/partial_channels of the channels, and with
  // edge_normalization each DARTS node weighs its edges. 1 and false: the stage is
  // skipped. Neither combines with arch_file.
  int64_t partial_channels = 1;
  bool edge_normalization = false;
  int64_t batch = 1;  // memory-plan and lower
  DumpOptions dump;
};

// A stage's text and the warnings the run reported.
struct IrText {
  std::string text;
  std::vector<Diagnostic> warnings;
};

// Runs the pipeline on a .nas file up to options.stage and returns that stage's result as
// text: the AST (load), textual IR (graph stages), the memory plan or the lowered plan.
// Throws a user Error naming the IrOptions field for an unknown stage, and with the
// compiler's diagnostics when the file does not compile.
IrText stage_text(const std::string& nas_file, const IrOptions& options);

struct PassOptions {
  // Stages from shapes on, in the order to run them; lower must follow memory-plan, and
  // only lower may follow memory-plan.
  std::vector<std::string> passes;
  std::string arch_file;  // the selection zero-prune fixes
  // The partial-channels pass's settings (IrOptions says what they do).
  int64_t partial_channels = 1;
  bool edge_normalization = false;
  int64_t batch = 1;  // memory-plan
  DumpOptions dump;
};

// Parses textual IR (`name` stands for its file in diagnostics), runs the passes on it in
// the order given (autodiff builds the training graph) and returns the last one's result
// as text (the IR as parsed when there are none). Throws a user Error with located
// diagnostics for IR that does not parse, and one naming the PassOptions field for an
// unknown pass or an order that cannot run.
IrText run_passes(const std::string& name, const std::string& ir_text, const PassOptions& options);
// The same on an IR file (`nasc opt`).
IrText run_passes_on_file(const std::string& path, const PassOptions& options);

}  // namespace nasc
