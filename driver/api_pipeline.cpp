// libnasc's developer section (include/nasc/pipeline.h) over the compiler's one pipeline:
// what `nasc ir`, `nasc opt` and `nasc --print-pipeline` run.
#include <fmt/format.h>

#include "compiler/frontend/loader.h"
#include "compiler/ir/ir_parser.h"
#include "driver/api_internal.h"
#include "nasc/pipeline.h"
#include "runtime/jit/jit_plan.h"
#include "support/did_you_mean.h"
#include "support/limits.h"

namespace nasc {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The stage `name` names, from `first` on; a user Error naming `field` otherwise.
nas::Stage stage_named(const std::string& field, const std::string& name,
                       nas::Stage first = nas::Stage::Load) {
  std::vector<std::string> allowed;
  for (const nas::StageInfo& s : nas::pipeline_stages())
    if (s.stage >= first) allowed.push_back(s.name);
  if (first == nas::Stage::Load) allowed.insert(allowed.end(), {"llvm", "asm"});
  std::optional<nas::Stage> stage = nas::find_stage(name);
  if (!stage || *stage < first) {
    const bool pass = first != nas::Stage::Load;
    throw Error(
        Error::Kind::User,
        fmt::format("{}: unknown {} `{}`{} ({}: {})", field, pass ? "pass" : "stage", name,
                    nas::did_you_mean(name, allowed), pass ? "passes" : "stages", joined(allowed)));
  }
  return *stage;
}

void check_batch(const std::string& field, int64_t batch) {
  if (batch < 1)
    throw Error(Error::Kind::User, fmt::format("{}: must be >= 1, got {}", field, batch));
}

static_assert(kMaxPartialChannels == nas::kMaxPartialChannels,
              "the public limit on partial_channels is the library's");

// The partial-channels stage's settings, checked; `prefix` is the options struct's name.
nas::PartialChannelsOptions partial_channels_options(const std::string& prefix, int64_t k,
                                                     bool edge_normalization,
                                                     const std::string& arch_file) {
  if (k < 1 || k > nas::kMaxPartialChannels)
    throw Error(Error::Kind::User, fmt::format("{}::partial_channels: must be in 1..{}, got {}",
                                               prefix, nas::kMaxPartialChannels, k));
  const nas::PartialChannelsOptions options{k, edge_normalization};
  if (options.active() && !arch_file.empty())
    throw Error(Error::Kind::User,
                prefix +
                    "::partial_channels: PC-DARTS transforms the supernet a DARTS search "
                    "trains; it does not combine with arch_file (a fixed network)");
  return options;
}

nas::PipelineDumps internal_dumps(const std::string& field, const DumpOptions& d) {
  nas::PipelineDumps dumps;
  for (const std::string& name : d.after) dumps.after.push_back(stage_named(field, name));
  dumps.out = d.out;
  dumps.print.locations = d.locations;
  return dumps;
}

// The passes in order, checked: a pass reads a graph, and lower the memory plan right
// before it.
std::vector<nas::Stage> pass_list(const std::vector<std::string>& names) {
  const std::string field = "PassOptions::passes";
  std::vector<nas::Stage> passes;
  for (const std::string& name : names) {
    nas::Stage s = stage_named(field, name, nas::Stage::Shapes);
    const bool after_plan = !passes.empty() && passes.back() >= nas::Stage::MemoryPlan;
    if (s == nas::Stage::Lower && (passes.empty() || passes.back() != nas::Stage::MemoryPlan))
      throw Error(Error::Kind::User,
                  field + ": lower lowers a memory plan; put memory-plan right before it");
    if (after_plan && s != nas::Stage::Lower)
      throw Error(Error::Kind::User, field + ": " + name + " runs on a graph, but " +
                                         nas::stage_info(passes.back()).name +
                                         " ends the graph passes; put it before memory-plan");
    passes.push_back(s);
  }
  return passes;
}

// Runs fn(diags) to a stage's text: the compiler's diagnostics and the back half's user
// errors (a network it cannot compile) are thrown with every diagnostic, as the CLI
// reports them.
template <typename F>
IrText reporting(F&& fn) {
  nas::Diagnostics diags(detail::kMaxErrors);
  IrText out;
  try {
    std::optional<std::string> text = fn(diags);
    if (!text || diags.has_errors()) detail::throw_diagnostics(diags);
    out.text = std::move(*text);
  } catch (const nas::UserError& e) {
    diags.error({}, e.what());
    detail::throw_diagnostics(diags);
  }
  out.warnings = detail::to_public(diags);
  return out;
}

}  // namespace

std::vector<StageDescription> pipeline_stages() {
  std::vector<StageDescription> out;
  for (const nas::StageInfo& s : nas::pipeline_stages())
    out.push_back({s.name, s.result, s.does, s.code});
  return out;
}

std::string describe_pipeline() {
  return nas::describe_pipeline();
}

IrText stage_text(const std::string& nas_file, const IrOptions& options) {
  return detail::translate_errors([&] {
    // The JIT's module of the lowered plan: as generated (llvm) or as host assembly after
    // its O3 pipeline (asm).
    const bool codegen = options.stage == "llvm" || options.stage == "asm";
    const nas::Stage stop =
        codegen ? nas::Stage::Lower : stage_named("IrOptions::stage", options.stage);
    check_batch("IrOptions::batch", options.batch);
    nas::PipelineOptions p;
    p.compile = detail::internal_options(options.compile);
    p.compile.dumps = internal_dumps("IrOptions::dump.after", options.dump);
    p.arch_file = options.arch_file;
    p.partial_channels = partial_channels_options("IrOptions", options.partial_channels,
                                                  options.edge_normalization, options.arch_file);
    p.plan.batch = options.batch;
    p.plan.training = options.training;
    p.plan.arch_grads = options.arch_file.empty();
    p.plan.loss = false;  // a forward plan unless training
    p.plan.dumps = p.compile.dumps;
    p.stop_after = stop;
    return reporting([&](nas::Diagnostics& diags) -> std::optional<std::string> {
      nas::PipelineResults r = nas::run_pipeline(nas_file, p, diags);
      if (!r.ok) return std::nullopt;
      if (codegen)
        return options.stage == "llvm" ? nas::plan_llvm_ir(*r.plan, false)
                                       : nas::plan_assembly(*r.plan);
      return nas::dump_stage(r, stop, p.compile.dumps.print);
    });
  });
}

IrText run_passes(const std::string& name, const std::string& ir_text, const PassOptions& options) {
  return detail::translate_errors([&] {
    const std::vector<nas::Stage> passes = pass_list(options.passes);
    check_batch("PassOptions::batch", options.batch);
    nas::PipelineOptions p;
    p.arch_file = options.arch_file;
    p.partial_channels = partial_channels_options("PassOptions", options.partial_channels,
                                                  options.edge_normalization, options.arch_file);
    p.plan.batch = options.batch;
    p.plan.training = true;  // the autodiff pass builds the training graph
    p.plan.arch_grads = true;
    p.compile.dumps = p.plan.dumps = internal_dumps("PassOptions::dump.after", options.dump);
    const nas::PrintOptions& print = p.compile.dumps.print;
    return reporting([&](nas::Diagnostics& diags) -> std::optional<std::string> {
      std::optional<nas::Graph> g = nas::parse_ir(name, ir_text, diags);
      if (!g) return std::nullopt;
      nas::PipelineResults r = nas::run_passes(std::move(*g), passes, p, diags);
      if (!r.ok) return std::nullopt;
      return r.last ? nas::dump_stage(r, *r.last, print)
                    : nas::print_graph(*r.current_graph(), print);
    });
  });
}

IrText run_passes_on_file(const std::string& path, const PassOptions& options) {
  std::string text = detail::translate_errors([&] {
    bool readable = false;
    std::string text = nas::read_file_or_empty(path, &readable);
    if (!readable) {
      nas::Diagnostics diags;
      diags.error({}, "cannot read \"" + path + "\"");
      detail::throw_diagnostics(diags);
    }
    return text;
  });
  return run_passes(path, text, options);
}

}  // namespace nasc
