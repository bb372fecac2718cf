#include "compiler/pipeline/pipeline.h"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <ostream>

#include "compiler/frontend/ast.h"
#include "compiler/lowering/lower.h"
#include "compiler/lowering/plan_printer.h"
#include "compiler/passes/autodiff.h"
#include "compiler/passes/cse.h"
#include "compiler/passes/dce.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/fusion.h"
#include "compiler/passes/remat.h"
#include "compiler/passes/shape_inference.h"

namespace nas {

// The stage list. The order here is the order of the Stage enum and of every run.
const std::vector<StageInfo>& pipeline_stages() {
  static const std::vector<StageInfo> stages = {
      {Stage::Load, "load", "AST", "parse the main file and its imports",
       "compiler/frontend/loader.h, parser.h"},
      {Stage::Elaborate, "elaborate", "graph",
       "evaluate the network and build the IR, checking shapes as built",
       "compiler/frontend/elaborate.h"},
      {Stage::Shapes, "shapes", "graph", "re-derive and check every shape",
       "compiler/passes/shape_inference.h"},
      {Stage::Dce, "dce", "supernet", "drop what the output does not depend on",
       "compiler/passes/dce.h"},
      {Stage::PartialChannels, "partial-channels", "graph",
       "PC-DARTS (--partial-channels K, --edge-normalization): candidates see 1/K of the "
       "channels, nodes weigh their edges; skipped unless asked",
       "compiler/passes/partial_channels.h"},
      {Stage::ZeroPrune, "zero-prune", "fixed network",
       "specialise to a selection (--arch): Zero cuts, dead branches go; skipped without one",
       "compiler/passes/zero_prune.h, derive_arch.h"},
      {Stage::Cse, "cse", "execution graph", "merge equal parameter-free nodes",
       "compiler/passes/cse.h"},
      {Stage::Autodiff, "autodiff", "graph",
       "training: loss and backward graph; evaluation: the loss; skipped for a forward plan",
       "compiler/passes/autodiff.h"},
      {Stage::Remat, "remat", "graph",
       "training: the backward pass recomputes cheap forward values (activations, depthwise "
       "convolutions) instead of keeping them",
       "compiler/passes/remat.h"},
      {Stage::Fusion, "fusion", "fused regions",
       "group elementwise chains, conv epilogues and batch norms with their activations into "
       "regions that run as one step",
       "compiler/passes/fusion.h"},
      {Stage::MemoryPlan, "memory-plan", "memory plan",
       "arena offsets by liveness at the batch size (--batch)", "compiler/passes/memory_plan.h"},
      {Stage::Lower, "lower", "execution plan", "one executor step per node",
       "compiler/lowering/lower.h, plan_printer.h"},
  };
  return stages;
}

const StageInfo& stage_info(Stage stage) {
  return pipeline_stages()[static_cast<size_t>(stage)];
}

std::optional<Stage> find_stage(const std::string& name) {
  for (const StageInfo& s : pipeline_stages())
    if (name == s.name) return s.stage;
  return std::nullopt;
}

std::vector<std::string> stage_names() {
  std::vector<std::string> names;
  for (const StageInfo& s : pipeline_stages()) names.push_back(s.name);
  return names;
}

std::string describe_pipeline() {
  size_t width = 0;  // the longest name, and a space
  for (const StageInfo& s : pipeline_stages())
    width = std::max(width, std::string(s.name).size() + 1);
  std::string out;
  int n = 0;
  for (const StageInfo& s : pipeline_stages()) {
    std::string name = s.name;
    name.resize(width, ' ');
    std::string result = std::string("-> ") + s.result;
    result.resize(std::max<size_t>(result.size(), 19), ' ');
    ++n;
    out += (n < 10 ? " " : "") + std::to_string(n) + ". " + name + result + s.does + "  [" +
           s.code + "]\n";
  }
  return out;
}

const Graph* PipelineResults::graph_after(Stage stage) const {
  for (int i = static_cast<int>(stage); i >= 0; --i)
    if (graphs[i]) return &*graphs[i];
  return nullptr;
}

const Graph* PipelineResults::current_graph() const {
  return latest_graph ? &*graphs[static_cast<int>(*latest_graph)] : nullptr;
}

namespace {

bool is_front(Stage stage) {
  return stage <= Stage::Dce;
}

const PipelineDumps& dumps_for(Stage stage, const PipelineOptions& options) {
  return is_front(stage) ? options.compile.dumps : options.plan.dumps;
}

// Why a stage did nothing in this run; "" when it ran.
std::string skip_reason(Stage stage, const PipelineOptions& options) {
  switch (stage) {
    case Stage::PartialChannels:
      return options.partial_channels.active() ? "" : "not asked";
    case Stage::ZeroPrune:
      return options.selection || !options.arch_file.empty() ? "" : "no selection";
    case Stage::Autodiff:
      return options.plan.training || options.plan.loss ? "" : "a forward plan";
    case Stage::Remat:
      return !options.plan.training       ? "not a training plan"
             : options.plan.rematerialize ? ""
                                          : "turned off";
    case Stage::Fusion:
      return options.plan.fusion ? "" : "turned off";
    default:
      return "";
  }
}

void dump_if_asked(Stage stage, const PipelineResults& results, const PipelineOptions& options) {
  const PipelineDumps& dumps = dumps_for(stage, options);
  if (!dumps.out || std::find(dumps.after.begin(), dumps.after.end(), stage) == dumps.after.end())
    return;
  std::string skipped = skip_reason(stage, options);
  *dumps.out << "// ----- after " << stage_info(stage).name
             << (dumps.label.empty() ? "" : " (" + dumps.label + ")")
             << (skipped.empty() ? "" : " [skipped: " + skipped + "]") << " -----\n"
             << dump_stage(results, stage, dumps.print);
}

// A graph stage's result becomes the graph the next stage reads; plans made from an
// earlier graph no longer describe it.
void keep_graph(PipelineResults& r, Stage stage, Graph g) {
  r.graphs[static_cast<int>(stage)] = std::move(g);
  r.latest_graph = stage;
  r.fusion.reset();
  r.memory.reset();
  r.plan.reset();
}

void check_executable(const Graph& g) {
  if (g.inputs.size() != 1)
    throw UserError(node_place(g, g.inputs.empty() ? -1 : g.inputs.back()),
                    "network `" + g.name + "` has " + std::to_string(g.inputs.size()) +
                        " inputs; the executor runs networks with exactly one");
}

// The source the load stage reads: a file, or given text.
struct Source {
  const std::string& path;
  std::string* text = nullptr;
};

bool run_load(const Source& source, PipelineResults& r, const PipelineOptions& options,
              Diagnostics& diags) {
  std::vector<std::string> search = default_search_paths(options.compile.include_paths);
  r.program = source.text
                  ? load_program_from_text(source.path, std::move(*source.text), search, diags)
                  : load_program(source.path, search, diags);
  return r.program != nullptr;
}

// Runs the stages from `first` through options.stop_after, each followed by its dump.
void run_stages(Stage first, PipelineResults& r, const PipelineOptions& options, Diagnostics& diags,
                const Source* source) {
  r.ok = true;
  for (int i = static_cast<int>(first); i <= static_cast<int>(options.stop_after); ++i) {
    const Stage stage = static_cast<Stage>(i);
    r.ok = stage == Stage::Load ? run_load(*source, r, options, diags)
                                : run_stage(stage, r, options, diags);
    if (!r.ok) return;
    r.last = stage;
    dump_if_asked(stage, r, options);
  }
}

// Runs a front-end job on a large stack (the parser and evaluator recurse, and callers
// of the library should not have to know) and turns the error limit into a failed run.
PipelineResults guarded(const std::function<void(PipelineResults&)>& job) {
  PipelineResults results;
  run_with_large_stack([&] {
    try {
      job(results);
    } catch (const TooManyErrors&) {
      results.ok = false;
    }
  });
  return results;
}

}  // namespace

bool run_stage(Stage stage, PipelineResults& r, const PipelineOptions& options,
               Diagnostics& diags) {
  NAS_CHECK(stage != Stage::Load, "the load stage reads a source, not results");
  const Graph* in = r.current_graph();
  NAS_CHECK(stage == Stage::Elaborate || in != nullptr,
            std::string("stage ") + stage_info(stage).name + " has no graph to read");
  switch (stage) {
    case Stage::Load:
      return false;
    case Stage::Elaborate: {
      NAS_CHECK(r.program != nullptr, "elaborate needs the loaded program");
      std::optional<Graph> g = elaborate(*r.program, options.compile.elaborate, diags);
      if (!g) return false;
      keep_graph(r, stage, std::move(*g));
      return true;
    }
    case Stage::Shapes: {
      // Rewrites in place: takes over the graph it reads (see PipelineResults).
      Graph g = std::move(r.graphs[static_cast<int>(*r.latest_graph)]).value();
      r.graphs[static_cast<int>(*r.latest_graph)].reset();
      bool ok = infer_shapes(g, diags);
      keep_graph(r, stage, std::move(g));
      return ok;
    }
    case Stage::Dce:
      keep_graph(r, stage, eliminate_dead_code(*in));
      return true;
    case Stage::PartialChannels: {
      if (!skip_reason(stage, options).empty()) return true;
      std::optional<PartialChannelsResult> pc =
          partial_channels(*in, options.partial_channels, diags);
      if (!pc) return false;
      keep_graph(r, stage, std::move(pc->graph));
      return true;
    }
    case Stage::ZeroPrune: {
      std::optional<Selection> sel = options.selection;
      if (!sel && !options.arch_file.empty()) {
        sel = load_arch(*in, options.arch_file, diags);
        if (!sel) return false;
      }
      if (sel) keep_graph(r, stage, derive_fixed_network(*in, *sel));
      return true;
    }
    case Stage::Cse:
      keep_graph(r, stage, eliminate_common_subexpressions(*in));
      return true;
    case Stage::Autodiff: {
      const PlanOptions& p = options.plan;
      if (p.training) {
        AutodiffOptions ad;
        ad.arch_grads = p.arch_grads;
        ad.weight_grads = p.weight_grads;
        keep_graph(r, stage, build_training_graph(*in, ad));
      } else if (p.loss) {
        keep_graph(r, stage, with_loss(*in));
      }
      return true;
    }
    case Stage::Remat:
      if (options.plan.rematerialize) keep_graph(r, stage, rematerialize(*in));
      return true;
    case Stage::Fusion:
      if (options.plan.fusion) r.fusion = plan_fusion(*in, options.plan.fusion_kinds);
      r.memory.reset();
      r.plan.reset();
      return true;
    case Stage::MemoryPlan:
      r.memory = plan_memory(*in, options.plan.batch, 4, r.fusion ? &*r.fusion : nullptr);
      r.plan.reset();
      return true;
    case Stage::Lower:
      NAS_CHECK(r.memory.has_value(), "lower needs the memory plan of its graph");
      check_executable(*in);
      r.plan = lower(*in, *r.memory, r.fusion ? &*r.fusion : nullptr);
      return true;
  }
  return false;
}

std::string dump_stage(const PipelineResults& r, Stage stage, const PrintOptions& print) {
  switch (stage) {
    case Stage::Load:
      NAS_CHECK(r.program && r.program->main, "no AST to dump");
      return ast::dump(*r.program->main);
    case Stage::MemoryPlan: {
      const Graph* g = r.current_graph();
      NAS_CHECK(g && r.memory, "no memory plan to dump");
      return print_plan(*g, *r.memory);
    }
    case Stage::Lower:
      NAS_CHECK(r.plan.has_value(), "no lowered plan to dump");
      return print_exec_plan(*r.plan);
    case Stage::Fusion:
      if (r.fusion && r.last == stage) return print_fusion(*r.current_graph(), *r.fusion, print);
      [[fallthrough]];
    default: {
      // A graph stage's own result; a stage that did nothing (or rewrote in place) shows
      // the graph it passed on: the current one while it is the last stage that ran.
      const Graph* g = r.graphs[static_cast<int>(stage)] ? &*r.graphs[static_cast<int>(stage)]
                       : r.last == stage                 ? r.current_graph()
                                                         : r.graph_after(stage);
      NAS_CHECK(g != nullptr, std::string("no graph to dump after ") + stage_info(stage).name);
      return print_graph(*g, print);
    }
  }
}

PipelineResults run_pipeline(const std::string& path, const PipelineOptions& options,
                             Diagnostics& diags) {
  return guarded([&](PipelineResults& r) {
    Source source{path};
    run_stages(Stage::Load, r, options, diags, &source);
  });
}

PipelineResults run_pipeline_on_text(const std::string& path, std::string text,
                                     const PipelineOptions& options, Diagnostics& diags) {
  return guarded([&](PipelineResults& r) {
    Source source{path, &text};
    run_stages(Stage::Load, r, options, diags, &source);
  });
}

PipelineResults run_pipeline_from(Graph graph, Stage first, const PipelineOptions& options,
                                  Diagnostics& diags) {
  NAS_CHECK(first >= Stage::Shapes, "a run from a graph starts at shapes or later");
  PipelineResults r;
  keep_graph(r, static_cast<Stage>(static_cast<int>(first) - 1), std::move(graph));
  run_stages(first, r, options, diags, nullptr);
  return r;
}

PipelineResults run_passes(Graph graph, const std::vector<Stage>& passes,
                           const PipelineOptions& options, Diagnostics& diags) {
  PipelineResults r;
  keep_graph(r, Stage::Dce, std::move(graph));
  r.ok = true;
  for (Stage stage : passes) {
    NAS_CHECK(stage >= Stage::Shapes, "a pass on a graph is shapes or a later stage");
    r.ok = run_stage(stage, r, options, diags);
    if (!r.ok) break;
    r.last = stage;
    dump_if_asked(stage, r, options);
  }
  return r;
}

// --- The common cuts ------------------------------------------------------------------------

namespace {

PipelineOptions front_half(const CompileOptions& options, bool parse_only) {
  PipelineOptions p;
  p.compile = options;
  p.stop_after = parse_only ? Stage::Load : Stage::Dce;
  return p;
}

Compilation as_compilation(PipelineResults r) {
  Compilation c;
  c.program = std::move(r.program);
  if (r.ok && r.last == Stage::Dce) c.supernet = std::move(r.graphs[static_cast<int>(Stage::Dce)]);
  return c;
}

// The back half never reports diagnostics (its errors are UserErrors); a run that stops
// with one is a bug.
PipelineResults back_half(Graph g, Stage first, Stage stop_after, const PlanOptions& plan) {
  PipelineOptions p;
  p.plan = plan;
  p.stop_after = stop_after;
  Diagnostics diags;
  PipelineResults r = run_pipeline_from(std::move(g), first, p, diags);
  NAS_CHECK(r.ok, "the back half reported diagnostics: " + diags.render());
  return r;
}

}  // namespace

Compilation compile_file(const std::string& path, const CompileOptions& options, Diagnostics& diags,
                         bool parse_only) {
  return as_compilation(run_pipeline(path, front_half(options, parse_only), diags));
}

Compilation compile_text(const std::string& path, std::string text, const CompileOptions& options,
                         Diagnostics& diags, bool parse_only) {
  return as_compilation(
      run_pipeline_on_text(path, std::move(text), front_half(options, parse_only), diags));
}

std::optional<PartialChannelsResult> partially_connect(const Graph& supernet,
                                                       const PartialChannelsOptions& options,
                                                       Diagnostics& diags) {
  return partial_channels(supernet, options, diags);
}

Graph specialise(const Graph& supernet, const Selection& sel) {
  // The zero-prune stage's body, without a run around it: the searchers call this per
  // sampled architecture, and a run would first copy the supernet.
  return derive_fixed_network(supernet, sel);
}

Graph execution_graph(const Graph& network) {
  PipelineResults r = back_half(network, Stage::Cse, Stage::Cse, {});
  return std::move(*r.graphs[static_cast<int>(Stage::Cse)]);
}

ExecPlan compile_plan(const Graph& network, const PlanOptions& options) {
  return std::move(*back_half(network, Stage::Cse, Stage::Lower, options).plan);
}

CompiledPlan compile_plan_keeping_graph(const Graph& network, const PlanOptions& options) {
  PipelineResults r = back_half(network, Stage::Cse, Stage::Lower, options);
  return {std::move(*r.graphs[static_cast<int>(Stage::Cse)]), std::move(*r.plan)};
}

ExecPlan compile_plan_from_execution_graph(const Graph& exec, const PlanOptions& options) {
  return std::move(*back_half(exec, Stage::Autodiff, Stage::Lower, options).plan);
}

void run_with_large_stack(const std::function<void()>& fn) {
  constexpr size_t kStackBytes = 512u << 20;  // reserved address space, not committed memory
  struct Task {
    const std::function<void()>* fn;
    std::exception_ptr error;
  } task{&fn, nullptr};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStackBytes);
  pthread_t thread;
  auto body = [](void* arg) -> void* {
    auto* t = static_cast<Task*>(arg);
    try {
      (*t->fn)();
    } catch (...) {
      t->error = std::current_exception();
    }
    return nullptr;
  };
  if (pthread_create(&thread, &attr, body, &task) != 0) {
    pthread_attr_destroy(&attr);
    fn();  // could not get a thread: run on this stack
    return;
  }
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  if (task.error) std::rethrow_exception(task.error);
}

}  // namespace nas
