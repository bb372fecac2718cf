// The compiler pipeline: the one place that states which stages run, in which order, from
// .nas text to an ExecPlan (as Halide's Lower.cpp does). Every caller (nasc, the
// estimator, the searchers' hooks, the benches, the tests) runs these stages through here;
// nothing else restates the order.
//
//   load        parse the main file and its imports                     -> AST (Program)
//   elaborate   evaluate the network, build the IR, check shapes as built -> Graph
//   shapes      re-derive and check every shape over the whole graph      -> Graph
//   dce         drop what the output does not need                        -> the supernet
//   partial-channels  PC-DARTS: candidates on 1/k of the channels, edge weights;
//               skipped unless asked (a DARTS search's training supernet)  -> graph
//   zero-prune  specialise to a selection (--arch); skipped without one   -> fixed network
//   cse         merge equal parameter-free nodes                          -> execution graph
//   autodiff    training: loss + backward; evaluation: loss; else skipped -> Graph
//   fusion      group elementwise chains into fused regions              -> FusionPlan
//   memory-plan arena offsets by liveness at a batch size                 -> MemoryPlan
//   lower       one executor step per node                                -> ExecPlan
//
// The pipeline keeps each stage's result (PipelineResults), can stop after any stage, and
// dumps the result of the stages named in PipelineDumps as it goes (`--dump-after`).
//
// Errors: the front half (load .. dce) reports bad input as diagnostics and never throws
// for it; zero-prune reports a bad arch file the same way. The back half (cse .. lower)
// throws UserError at the network's source for networks it cannot compile (autodiff on a
// network without logits, tensors too large for the batch, a network the executor cannot
// run).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/frontend/elaborate.h"
#include "compiler/frontend/loader.h"
#include "compiler/ir/ir.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/passes/fusion.h"
#include "compiler/passes/memory_plan.h"
#include "compiler/passes/partial_channels.h"
#include "compiler/passes/selection.h"
#include "runtime/exec/exec_plan.h"

namespace nas {

enum class Stage : uint8_t {
  Load,
  Elaborate,
  Shapes,
  Dce,
  PartialChannels,
  ZeroPrune,
  Cse,
  Autodiff,
  Remat,
  Fusion,
  MemoryPlan,
  Lower,
};
constexpr int kStageCount = static_cast<int>(Stage::Lower) + 1;

struct StageInfo {
  Stage stage;
  const char* name;    // as `nasc ir --stage`, `--dump-after` and `nasc opt --passes` spell it
  const char* result;  // what it produces
  const char* does;    // one line for `nasc --print-pipeline`
  const char* code;    // where the pass lives
};

// Every stage, in the order they run.
const std::vector<StageInfo>& pipeline_stages();
const StageInfo& stage_info(Stage stage);
std::optional<Stage> find_stage(const std::string& name);
std::vector<std::string> stage_names();  // in order
// The stage list as `nasc --print-pipeline` prints it.
std::string describe_pipeline();

// The stages whose results are printed as they complete, and where to.
struct PipelineDumps {
  std::vector<Stage> after;
  std::ostream* out = nullptr;  // nothing is dumped while null
  PrintOptions print;
  std::string label;  // says which run a dump belongs to ("train plan"), "" for none
};

struct CompileOptions {
  std::vector<std::string> include_paths;  // -I folders, searched before the stdlib
  ElaborateOptions elaborate;
  PipelineDumps dumps;
};

// The back half's settings: which plan is made from the network, at which batch size.
// Batch size is a compile parameter: a training plan at batch B and an inference plan at
// batch 1 come from the same graph and bind to the same ParamStore.
struct PlanOptions {
  int64_t batch = 1;
  bool training = false;     // autodiff: forward + loss + backward
  bool arch_grads = false;   // training a supernet in full mode: gradients for alpha
  bool weight_grads = true;  // false: an alpha-only plan (smaller: see AutodiffOptions)
  // Training: recompute cheap forward values in the backward pass instead of keeping them
  // (compiler/passes/remat.h); false keeps every value backward reads.
  bool rematerialize = true;
  // Not training: append the loss (an evaluation plan, what the trainer's evaluation
  // runs), or end at the network's output (false: a forward plan, for any network).
  bool loss = true;
  // Fused regions (compiler/passes/fusion.h); false: one step per node, the unfused
  // reference the fused plans are tested against.
  bool fusion = true;
  FusionOptions fusion_kinds;  // with fusion: which kinds of region
  PipelineDumps dumps;
};

struct PipelineOptions {
  CompileOptions compile;  // load .. dce
  // zero-prune: the selection, or an arch file read against the supernet after dce.
  // Neither: the stage is skipped and the later stages see the whole supernet.
  std::optional<Selection> selection;
  std::string arch_file;
  // partial-channels: PC-DARTS' transform of the supernet; k = 1 without edge
  // normalisation skips it.
  PartialChannelsOptions partial_channels;
  PlanOptions plan;  // autodiff .. lower
  Stage stop_after = Stage::Lower;
};

// What a run produced, stage by stage. A stage that rewrites the graph in place (shapes)
// takes over the graph of the stage before it, so that elaborate's graph is kept only when
// the run stops there; a skipped stage (zero-prune without a selection, autodiff for a
// forward plan, fusion) has no graph of its own.
struct PipelineResults {
  std::unique_ptr<Program> program;                      // load
  std::array<std::optional<Graph>, kStageCount> graphs;  // the graph stages' results
  std::optional<FusionPlan> fusion;   // fusion (of the current graph; none: turned off)
  std::optional<MemoryPlan> memory;   // memory-plan
  std::optional<ExecPlan> plan;       // lower
  std::optional<Stage> last;          // the last stage that ran
  std::optional<Stage> latest_graph;  // whose graph the next stage reads
  bool ok = false;                    // false: a stage failed (its errors are in the diagnostics)

  // The graph after `stage` of a run in pipeline order: its own result, else that of the
  // latest stage before it that made one; nullptr when none did.
  const Graph* graph_after(Stage stage) const;
  // The graph the next stage reads (in `nasc opt`'s order too); nullptr before elaborate.
  const Graph* current_graph() const;
};

// Runs the pipeline on a .nas file (or on given text, for tests and fuzzing) from `load`
// to options.stop_after, on a thread with a large stack. The error limit (TooManyErrors)
// ends the run with ok = false.
PipelineResults run_pipeline(const std::string& path, const PipelineOptions& options,
                             Diagnostics& diags);
PipelineResults run_pipeline_on_text(const std::string& path, std::string text,
                                     const PipelineOptions& options, Diagnostics& diags);
// Runs from stage `first` (shapes or later) on `graph`, which stands for the result of
// the stage before it (for `first` = cse: a supernet or a fixed network).
PipelineResults run_pipeline_from(Graph graph, Stage first, const PipelineOptions& options,
                                  Diagnostics& diags);

// Runs `passes` (shapes or later) on `graph` in the order given, each followed by its
// dump: what `nasc opt` does with textual IR. Starts as if `graph` were dce's result.
PipelineResults run_passes(Graph graph, const std::vector<Stage>& passes,
                           const PipelineOptions& options, Diagnostics& diags);

// Runs one stage (shapes or later) on the results so far: `nasc opt` runs the stages a
// user lists, in the user's order. A graph stage reads results.current_graph() and drops
// an earlier memory plan and lowered plan (they were of another graph); `lower` needs the
// memory plan of the current graph. Returns false when the stage failed with diagnostics.
bool run_stage(Stage stage, PipelineResults& results, const PipelineOptions& options,
               Diagnostics& diags);

// The text of a stage's result: the AST (load), the textual IR (graph stages; a skipped
// stage shows its input), the memory plan or the lowered plan.
std::string dump_stage(const PipelineResults& results, Stage stage, const PrintOptions& print);

// --- The pipeline's common cuts, for callers that need one result -------------------------

// The front half, load .. dce (parse_only: load alone): the AST and the supernet.
struct Compilation {
  std::unique_ptr<Program> program;  // the AST, kept for `nasc ir --stage ast`
  std::optional<Graph> supernet;     // set when elaboration and checks succeeded
};
Compilation compile_file(const std::string& path, const CompileOptions& options, Diagnostics& diags,
                         bool parse_only = false);
Compilation compile_text(const std::string& path, std::string text, const CompileOptions& options,
                         Diagnostics& diags, bool parse_only = false);

// partial-channels alone: PC-DARTS' training supernet (see partial_channels.h); nullopt
// after reporting into `diags` what cannot be transformed.
std::optional<PartialChannelsResult> partially_connect(const Graph& supernet,
                                                       const PartialChannelsOptions& options,
                                                       Diagnostics& diags);

// zero-prune alone: the fixed network for a selection (pruned, shapes re-checked).
Graph specialise(const Graph& supernet, const Selection& sel);

// cse alone: the forward graph every plan of `network` runs (its nodes are the plans'
// forward values, and the live masks of sampled paths index it).
Graph execution_graph(const Graph& network);

// cse .. lower: the plan of a network (supernet or fixed).
ExecPlan compile_plan(const Graph& network, const PlanOptions& options);

// cse .. lower, keeping the execution graph the plan was lowered from.
struct CompiledPlan {
  Graph exec;  // the result of cse: the plan's forward nodes are its nodes
  ExecPlan plan;
};
CompiledPlan compile_plan_keeping_graph(const Graph& network, const PlanOptions& options);
// autodiff .. lower on an execution graph already made (several plans of one network
// share their cse result).
ExecPlan compile_plan_from_execution_graph(const Graph& exec, const PlanOptions& options);

// Runs fn on a thread with a large stack: the parser and the evaluator recurse, and a
// legitimate but deeply nested file must not depend on the caller's stack size.
void run_with_large_stack(const std::function<void()>& fn);

}  // namespace nas
