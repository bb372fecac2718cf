// nasc: the command-line driver. Thin by design: parses flags, calls libnasc's public API
// (train, search, the version and backends) or the compiler library, prints. Exit status 0 ok, 1
// user error, 2 internal error.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "compiler/analysis/space_stats.h"
#include "compiler/dot/graph_dot.h"
#include "compiler/estimate/estimator.h"
#include "compiler/ir/ir_parser.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/pipeline/pipeline.h"
#include "nasc/nasc.h"
#include "runtime/search/searcher.h"
#include "runtime/train/trainer.h"
#include "tools/nasc/cli_output.h"
#include "tools/nasc/estimate_cmds.h"
#include "tools/nasc/options.h"

namespace nas::cli {
namespace {

bool write_text(const std::string& path, const std::string& text, Diagnostics& diags) {
  if (path.empty() || path == "-") {
    std::cout << text;
    return true;
  }
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) {
    diags.error({}, "cannot write \"" + path + "\"");
    return false;
  }
  return true;
}

int cmd_check(const Options& o, const Graph& g, Diagnostics& diags) {
  SpaceStats s = space_stats(g);
  std::optional<Graph> fixed;
  if (!o.arch.empty()) {
    auto sel = load_arch(g, o.arch, diags);
    if (!sel) return report(diags);
    fixed = specialise(g, *sel);
  }
  if (o.json) {
    nlohmann::ordered_json j;
    j["network"] = g.name;
    nlohmann::ordered_json params = nlohmann::ordered_json::object();
    for (const auto& [k, v] : g.params) params[k] = nlohmann::json::parse(v, nullptr, false);
    j["network_params"] = params;
    j["nodes"] = g.nodes.size();
    j["params"] = s.supernet_params;
    j["macs"] = s.supernet_macs;
    j["params_largest"] = s.largest.params;
    j["params_smallest"] = s.smallest.params;
    j["extremes_exact"] = s.extremes_exact;
    j["log10_space_size"] = s.log10_space_size;
    nlohmann::ordered_json choices = nlohmann::ordered_json::array();
    for (const auto& group : g.arch)
      choices.push_back({{"key", group.key},
                         {"candidates", group.candidates},
                         {"k", group.k},
                         {"nodes", group.nodes.size()}});
    j["choices"] = choices;
    if (fixed) {
      NodeCosts c = node_costs(*fixed);
      std::vector<char> all(fixed->nodes.size(), 1);
      j["arch"] = {{"file", o.arch},
                   {"params", masked_sum(c.params, all)},
                   {"macs", masked_sum(c.macs, all)},
                   {"nodes", fixed->nodes.size()}};
    }
    // Replace, not throw, on invalid UTF-8 in names ("é"[0] is one byte of two).
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return report(diags);
  }
  std::cout << o.file << ": network " << g.name << "(";
  for (size_t i = 0; i < g.params.size(); ++i)
    std::cout << (i ? ", " : "") << g.params[i].first << "=" << g.params[i].second;
  std::cout << ")\n";
  std::cout << "  input            ";
  for (size_t i = 0; i < g.inputs.size(); ++i)
    std::cout << (i ? ", " : "") << g.nodes[g.inputs[i]].name << " "
              << shape_str(g.nodes[g.inputs[i]].shape);
  std::cout << "\n  output           " << shape_str(g.nodes[g.output].shape) << "\n";
  std::cout << "  nodes            " << g.nodes.size() << "\n";
  std::cout << "  choices          " << s.num_choices << " (" << s.num_choice_nodes
            << " choice nodes)\n";
  const size_t kShown = 40;
  for (size_t i = 0; i < g.arch.size() && i < kShown; ++i) {
    const ArchGroup& group = g.arch[i];
    std::cout << "    " << group.key << ": " << group.candidates.size() << " candidates";
    if (group.k > 1) std::cout << ", picks " << group.k;
    if (group.nodes.size() > 1) std::cout << ", shared by " << group.nodes.size() << " nodes";
    std::cout << " {";
    for (size_t c = 0; c < group.candidates.size(); ++c)
      std::cout << (c ? ", " : "") << group.candidates[c];
    std::cout << "}\n";
  }
  if (g.arch.size() > kShown)
    std::cout << "    ... and " << g.arch.size() - kShown << " more (--json lists all)\n";
  char size[64];
  std::snprintf(size, sizeof size, "10^%.2f", s.log10_space_size);
  std::cout << "  search space     " << size << " architectures\n";
  std::cout << "  params           supernet " << with_commas(s.supernet_params) << ", largest "
            << with_commas(s.largest.params) << ", smallest " << with_commas(s.smallest.params)
            << (s.extremes_exact     ? ""
                : s.search_truncated ? " (best found before the search's work limit)"
                                     : " (largest/smallest by coordinate search)")
            << "\n";
  std::cout << "  MACs             supernet " << with_commas(s.supernet_macs) << " ("
            << human_count(s.supernet_macs) << ") per sample\n";
  if (fixed) {
    NodeCosts c = node_costs(*fixed);
    std::vector<char> all(fixed->nodes.size(), 1);
    std::cout << "  arch " << o.arch << ": " << fixed->nodes.size() << " nodes, params "
              << with_commas(masked_sum(c.params, all)) << ", MACs "
              << with_commas(masked_sum(c.macs, all)) << "\n";
  }
  return report(diags);
}

int cmd_graph(const Options& o, const Graph& supernet, Diagnostics& diags) {
  Graph g = supernet;
  if (!o.arch.empty()) {
    auto sel = load_arch(supernet, o.arch, diags);
    if (!sel) return report(diags);
    g = specialise(supernet, *sel);
  }
  std::string dot = graph_to_dot(g);
  std::string ext = std::filesystem::path(o.output).extension().string();
  if (o.output.empty() || o.output == "-" || ext == ".dot" || ext == ".gv") {
    if (!write_text(o.output, dot, diags)) return report(diags);
    return report(diags);
  }
  std::string format = ext.empty() ? "" : ext.substr(1);
  if (format != "svg" && format != "png" && format != "pdf") {
    diags.error({}, "cannot tell the output format from \"" + o.output +
                        "\"; use .dot, .svg, .png or .pdf");
    return report(diags);
  }
  RenderResult rendered = render_with_graphviz(dot, format, o.output);
  if (rendered.status == RenderResult::GraphvizMissing) {
    // Still useful without graphviz: keep the DOT text next to the requested file.
    std::string dot_path = std::filesystem::path(o.output).replace_extension(".dot").string();
    if (!write_text(dot_path, dot, diags)) return report(diags);
    diags.warning({}, rendered.message + "; wrote DOT to " + dot_path + " instead");
    return report(diags);
  }
  if (rendered.status == RenderResult::Failed) {
    diags.error({}, rendered.message);
    return report(diags);
  }
  std::cerr << "wrote " << o.output << "\n";
  return report(diags);
}

PipelineDumps dumps_to_stderr(const Options& o, const PrintOptions& print) {
  PipelineDumps dumps;
  for (const std::string& name : o.dump_after) dumps.after.push_back(*find_stage(name));
  dumps.out = &std::cerr;
  dumps.print = print;
  return dumps;
}

// nasc ir: the pipeline from the file to the stage asked for, then that stage's result.
// The stages after dce work on the network --arch selects, or on the whole supernet
// (every candidate computed, as DARTS' full mode does; its training graph also carries
// the architecture gradients).
int cmd_ir(const Options& o, Diagnostics& diags) {
  PrintOptions print;
  print.locations = !o.no_locations;
  const IrStage stage = ir_stage(o);
  PipelineOptions p;
  p.compile.include_paths = o.include_paths;
  p.compile.elaborate.network = o.network;
  p.compile.elaborate.overrides = o.overrides;
  p.compile.dumps = dumps_to_stderr(o, print);
  p.arch_file = o.arch;
  p.plan.batch = o.batch;
  p.plan.training = stage.training;
  p.plan.arch_grads = o.arch.empty();
  p.plan.loss = false;  // a forward plan unless training
  p.plan.dumps = p.compile.dumps;
  p.stop_after = stage.stop_after;
  try {
    PipelineResults r = run_pipeline(o.file, p, diags);
    if (!r.ok || diags.has_errors()) return report(diags);
    std::cout << dump_stage(r, stage.stop_after, print);
  } catch (const UserError& e) {
    diags.error({}, e.what());
  }
  return report(diags);
}

// nasc opt: textual IR in, the passes in the order given, the last one's result out.
int cmd_opt(const Options& o, Diagnostics& diags) {
  bool readable = false;
  std::string text = read_file_or_empty(o.file, &readable);
  if (!readable) {
    diags.error({}, "cannot read \"" + o.file + "\"");
    return report(diags);
  }
  std::optional<Graph> g = parse_ir(o.file, text, diags);
  if (!g) return report(diags);
  PrintOptions print;
  print.locations = !o.no_locations;
  PipelineOptions p;
  p.arch_file = o.arch;
  p.plan.batch = o.batch;
  p.plan.training = true;  // the autodiff pass builds the training graph
  p.plan.arch_grads = true;
  p.compile.dumps = p.plan.dumps = dumps_to_stderr(o, print);
  std::vector<Stage> passes;
  for (const std::string& name : o.passes) passes.push_back(*find_stage(name));
  try {
    PipelineResults r = run_passes(std::move(*g), passes, p, diags);
    if (!r.ok || diags.has_errors()) return report(diags);
    std::cout << (r.last ? dump_stage(r, *r.last, print) : print_graph(*r.current_graph(), print));
  } catch (const UserError& e) {
    diags.error({}, e.what());
  }
  return report(diags);
}

// train and search go through libnasc's public API (include/nasc/run.h): the run's
// options from the flags.
nasc::RunOptions run_options(const Options& o) {
  nasc::RunOptions r;
  r.space_file = o.file;
  r.compile.import_paths = o.include_paths;
  r.compile.network = o.network;
  r.compile.overrides = o.overrides;
  r.config_file = o.config;
  r.data = o.data;
  r.epochs = o.epochs;
  r.threads = static_cast<int>(o.threads);
  r.backend = o.backend;
  r.output_dir = o.output;
  r.resume = o.resume;
  r.arch_file = o.arch;
  r.algorithm = o.algorithm;
  r.lut = o.lut;
  r.log = &std::cout;
  return r;
}

// The API's diagnostics as report() prints the compiler's: each rendered, then the count.
int report_api(const std::vector<nasc::Diagnostic>& diags) {
  size_t errors = 0;
  for (const nasc::Diagnostic& d : diags) {
    std::cerr << d.rendered;
    if (d.severity == nasc::Severity::Error) ++errors;
  }
  if (errors == 0) return kOk;
  std::cerr << errors << " error" << (errors == 1 ? "" : "s")
            << (errors >= kMaxErrors ? " (stopped at the limit)" : "") << "\n";
  return kUserError;
}

// Runs an API call: a user Error is reported (exit 1); an internal one goes on to main()
// as an InternalError (exit 2).
template <typename F>
int call_api(F&& fn) {
  try {
    return fn();
  } catch (const nasc::Error& e) {
    if (!e.is_user_error()) throw InternalError(e.what());
    if (!e.diagnostics().empty()) return report_api(e.diagnostics());
    std::cerr << "nasc: error: " << e.what() << "\n";
    return kUserError;
  }
}

int cmd_train(const Options& o) {
  return call_api([&] {
    nasc::TrainResult r = nasc::train(run_options(o));
    std::cout << "test accuracy " << fmt::format("{:.2f}", 100 * r.test_accuracy) << "% after "
              << r.epochs << " epochs (" << fmt::format("{:.0f}", r.seconds) << " s); wrote "
              << o.output << "/weights\n";
    return report_api(r.warnings);
  });
}

int cmd_search(const Options& o) {
  return call_api([&] {
    nasc::SearchResult r = nasc::search(run_options(o));
    std::cout << "found " << r.choices.size() << " choices, "
              << with_commas(static_cast<int64_t>(r.params)) << " params, " << human_count(r.macs)
              << " MACs (" << fmt::format("{:.0f}", r.seconds) << " s); wrote " << o.output
              << "/arch.json\nretrain it: nasc train " << o.file << " --arch " << o.output
              << "/arch.json -o RUN_DIR\n";
    return report_api(r.warnings);
  });
}

int run_checked(const Options& o, Diagnostics& diags);

constexpr const char* kBugReport =
    "This is a bug in nasc; please report it with the command line and its input files.\n";

// The error limit unwinds with TooManyErrors. compile_file catches it, but the later
// stages (an arch file with many bad keys) run here: still a user error, not exit 2.
int run(const Options& o) {
  Diagnostics diags(kMaxErrors);
  try {
    return run_checked(o, diags);
  } catch (const TooManyErrors&) {
    return report(diags);
  }
}

int run_checked(const Options& o, Diagnostics& diags) {
  if (o.command == "train") return cmd_train(o);
  if (o.command == "search") return cmd_search(o);
  if (o.command == "profile") return cmd_profile(o, diags);
  if (o.command == "estimate") return cmd_estimate(o, diags);
  if (o.command == "ir") return cmd_ir(o, diags);
  if (o.command == "opt") return cmd_opt(o, diags);
  CompileOptions copt;
  copt.include_paths = o.include_paths;
  copt.elaborate.network = o.network;
  copt.elaborate.overrides = o.overrides;
  Compilation c = compile_file(o.file, copt, diags);
  if (diags.has_errors() || !c.supernet) return report(diags);
  if (o.command == "check") return cmd_check(o, *c.supernet, diags);
  return cmd_graph(o, *c.supernet, diags);
}

}  // namespace
}  // namespace nas::cli

int main(int argc, char** argv) {
  using namespace nas::cli;
  Options o = parse_options(argc, argv);
  if (o.command == "help") {
    std::cout << usage();
    return kOk;
  }
  if (o.command == "version") {
    std::cout << "nasc " << nasc::version() << "\n";
    std::cout << "backends:\n";
    for (const nasc::BackendDescription& b : nasc::backends())
      std::cout << "  " << b.name << (b.is_default ? " (default)" : "") << ": " << b.description
                << "\n";
    return kOk;
  }
  if (o.command == "print-pipeline") {
    std::cout << nas::describe_pipeline();
    return kOk;
  }
  if (!o.error.empty()) {
    std::cerr << "nasc: error: " << o.error << "\n(see `nasc --help`)\n";
    return kUserError;
  }
  int status = kInternalError;
  try {
    nas::run_with_large_stack([&] { status = run(o); });
  } catch (const nas::UserError& e) {  // one that a command did not report itself
    std::cerr << "nasc: error: " << e.what() << "\n";
    return kUserError;
  } catch (const nas::InternalError& e) {
    std::cerr << "nasc: " << e.what() << "\n" << kBugReport;
    return kInternalError;
  } catch (const std::exception& e) {  // a library's exception: not a user error either
    std::cerr << "nasc: internal error: " << e.what() << "\n" << kBugReport;
    return kInternalError;
  }
  return status;
}
