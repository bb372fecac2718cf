// nasc: the command-line driver. Thin by design: parses flags, calls the compiler
// library, prints. Exit status 0 ok, 1 user error, 2 internal error.
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
#include "compiler/estimate/expected_cost_terms.h"
#include "compiler/ir/ir_parser.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/genotype.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/search/search_config.h"
#include "runtime/search/searcher.h"
#include "runtime/train/train_config.h"
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

// A resolved config (as JSON) with its data set replaced by --data's: fashion-mnist,
// cifar10:DIR or synthetic; the keys only the old data set takes are dropped.
nlohmann::json with_data_flag(nlohmann::json j, const std::string& data) {
  std::string name = data.substr(0, data.find(':'));
  j["data"]["name"] = name;
  j["data"].erase("dir");
  if (name == "cifar10") j["data"]["dir"] = data.substr(data.find(':') + 1);
  if (name != "synthetic")
    for (const char* k : {"synthetic_samples", "synthetic_classes", "synthetic_shape"})
      j["data"].erase(k);
  return j;
}

// The config file a train or search reads: -c, or the run folder's own config.json on
// --resume; "" for the defaults. Errors found after parsing are located there.
std::string config_file(const Options& o) {
  if (!o.config.empty() || !o.resume) return o.config;
  return (std::filesystem::path(o.output) / "config.json").string();
}

// The train config: -c, or the run folder's own config.json on --resume, or the defaults;
// then the command-line overrides.
std::optional<TrainConfig> train_config(const Options& o, Diagnostics& diags) {
  try {
    std::string file = o.config;
    if (file.empty() && o.resume) file = (std::filesystem::path(o.output) / "config.json").string();
    TrainConfig cfg = file.empty() ? default_train_config() : load_train_config(file);
    if (!o.data.empty()) {
      const std::string source = cfg.source;  // data.synthetic_* still come from the file
      cfg = parse_train_config(with_data_flag(train_config_to_json(cfg), o.data), "--data");
      cfg.source = source;
    }
    if (o.epochs > 0) cfg.epochs = o.epochs;
    if (o.threads >= 0) cfg.threads = static_cast<int>(o.threads);
    return cfg;
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return std::nullopt;
  }
}

int cmd_train(const Options& o, Diagnostics& diags) {
  std::optional<TrainConfig> cfg = train_config(o, diags);
  if (!cfg) return report(diags);
  CompileOptions copt;
  copt.include_paths = o.include_paths;
  copt.elaborate.network = o.network;
  copt.elaborate.overrides = cfg->network;  // the config's, then --set (later wins)
  for (const auto& kv : o.overrides) copt.elaborate.overrides.push_back(kv);
  Compilation c = compile_file(o.file, copt, diags);
  if (diags.has_errors() || !c.supernet) return report(diags);
  std::optional<Graph> fixed;
  if (!o.arch.empty()) {
    auto sel = load_arch(*c.supernet, o.arch, diags);
    if (!sel) return report(diags);
    fixed = specialise(*c.supernet, *sel);
  } else if (!c.supernet->arch.empty()) {
    diags.error({}, "`nasc train` trains a fixed network, but `" + c.supernet->name + "` has " +
                        std::to_string(c.supernet->arch.size()) +
                        " choices; give --arch A.json (from `nasc search`) to select one");
    return report(diags);
  }
  const Graph& net = fixed ? *fixed : *c.supernet;
  try {
    TrainerSetup setup;
    setup.config = *cfg;
    if (!o.backend.empty()) setup.backend = o.backend;
    PlanOptions train, eval;
    train.batch = cfg->data.effective_mini_batch();
    train.training = true;
    eval.batch = cfg->data.eval_batch_size;
    CompiledPlan train_plan = compile_plan_keeping_graph(net, train);
    setup.train_plan = std::move(train_plan.plan);
    setup.eval_plan = compile_plan_from_execution_graph(train_plan.exec, eval);
    setup.network_meta = {{"network", net.name}, {"file", o.file}};
    if (!o.arch.empty()) setup.network_meta["arch"] = o.arch;
    TrainSummary s = train_network(std::move(setup), o.output, o.resume, std::cout);
    std::cout << "test accuracy " << fmt::format("{:.2f}", 100 * s.test_accuracy) << "% after "
              << cfg->epochs << " epochs (" << fmt::format("{:.0f}", s.seconds) << " s); wrote "
              << o.output << "/weights\n";
  } catch (const UserError& e) {
    diags.error({}, e.what());
  }
  return report(diags);
}

// nasc search: the supernet compiled as a weight plan plus an alpha plan (darts, darts2)
// or a forward plan (random's validation); genotypes derived
// (compiler/passes/genotype), live masks of sampled paths and their costs computed on the
// execution graph, all through hooks the runtime calls.
int cmd_search(const Options& o, Diagnostics& diags) {
  std::optional<SearchConfig> cfg;
  try {
    std::string file = o.config;
    if (file.empty() && o.resume) file = (std::filesystem::path(o.output) / "config.json").string();
    cfg = file.empty() ? default_search_config() : load_search_config(file);
    if (!o.data.empty()) {
      const std::string source = cfg->base.source;  // data.synthetic_* still from the file
      cfg = parse_search_config(with_data_flag(search_config_to_json(*cfg), o.data), "--data");
      cfg->base.source = source;
    }
    if (o.epochs > 0) cfg->base.epochs = o.epochs;
    if (o.threads >= 0) cfg->base.threads = static_cast<int>(o.threads);
    if (o.resume && !o.algorithm.empty() && o.config.empty() && o.algorithm != cfg->algorithm)
      throw ConfigError(config_file(o), "algorithm",
                        "this run is a `" + cfg->algorithm + "` search; resume it without -a " +
                            "(or with -a " + cfg->algorithm + ")");
    if (!o.algorithm.empty()) cfg->algorithm = o.algorithm;
    if (!o.lut.empty()) cfg->regularizer.lut = o.lut;
    if (cfg->warmup_epochs >= cfg->base.epochs && cfg->algorithm != "random")
      throw ConfigError(config_file(o), "warmup_epochs",
                        "must be fewer than epochs (" + std::to_string(cfg->base.epochs) +
                            (o.epochs > 0 ? ", from --epochs" : "") + "), got " +
                            std::to_string(cfg->warmup_epochs));
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return report(diags);
  }
  const std::string algorithm = cfg->algorithm;
  CompileOptions copt;
  copt.include_paths = o.include_paths;
  copt.elaborate.network = o.network;
  copt.elaborate.overrides = cfg->base.network;
  for (const auto& kv : o.overrides) copt.elaborate.overrides.push_back(kv);
  Compilation c = compile_file(o.file, copt, diags);
  if (diags.has_errors() || !c.supernet) return report(diags);
  const Graph& supernet = *c.supernet;
  if (supernet.arch.empty()) {
    diags.error({}, "`" + supernet.name +
                        "` has no choices: there is nothing to search (use "
                        "`nasc train` to train it)");
    return report(diags);
  }
  try {
    SearchSetup setup;
    setup.config = *cfg;
    if (!o.backend.empty()) setup.backend = o.backend;
    setup.algorithm = algorithm;
    const bool darts = algorithm == "darts" || algorithm == "darts2";
    PlanOptions weights;
    weights.batch = cfg->base.data.effective_mini_batch();
    weights.training = true;
    // The plans run the execution graph (the pipeline's cse result), and the live masks
    // of sampled paths are computed on it: one run gives both, the other plans continue
    // from it.
    CompiledPlan weight_plan = compile_plan_keeping_graph(supernet, weights);
    auto exec = std::make_shared<Graph>(std::move(weight_plan.exec));
    setup.weight_plan = std::move(weight_plan.plan);
    if (darts) {
      PlanOptions alphas = weights;
      alphas.arch_grads = true;
      alphas.weight_grads = algorithm == "darts2";  // the unrolled step needs dL_val/dw'
      setup.alpha_plan = compile_plan_from_execution_graph(*exec, alphas);
    } else if (algorithm == "random") {
      PlanOptions eval;
      eval.batch = weights.batch;
      setup.eval_plan = compile_plan_from_execution_graph(*exec, eval);
    }
    // The hardware regularizer: its form per algorithm, and a latency table when asked for.
    RegularizerConfig& reg = setup.config.regularizer;
    if (reg.estimator != "none") {
      if (algorithm == "random")
        throw ConfigError(config_file(o), "regularizer",
                          "random search draws architectures uniformly; a regularizer applies "
                          "to darts, darts2 and pnas");
      const bool pnas = algorithm == "pnas";
      if (reg.form == "auto") reg.form = pnas ? "bound" : "linear";
      if (pnas && reg.form != "bound")
        throw ConfigError(config_file(o), "regularizer.form",
                          "pnas bounds its reward, form \"bound\" (reward * min(1, bound / "
                          "cost)^weight), not \"" +
                              reg.form + "\"");
      if (!pnas && reg.form == "bound")
        throw ConfigError(config_file(o), "regularizer.form",
                          algorithm +
                              " adds the expected cost to its loss: form \"linear\" or "
                              "\"mul#log\", not \"bound\"");
    }
    std::shared_ptr<SpaceLatencyTable> latency;
    if (!reg.lut.empty()) {
      std::optional<SpaceLatencyTable> loaded =
          load_space_latency(o.file, reg.lut, supernet, diags);
      if (!loaded) return report(diags);
      latency = std::make_shared<SpaceLatencyTable>(std::move(*loaded));
    }
    setup.meta = {{"network", supernet.name},
                  {"file", o.file},
                  {"command", "nasc search " + o.file + " -a " + algorithm +
                                  (o.config.empty() ? "" : " -c " + o.config) + " -o " + o.output}};
    auto masker = std::make_shared<LiveMasker>(*exec);
    auto exec_costs = std::make_shared<NodeCosts>(node_costs(*exec));
    auto describe = [&supernet, latency](const Selection& sel) {
      GenotypeInfo info;
      info.arch = nlohmann::ordered_json::parse(arch_to_json(supernet, sel));
      for (size_t g = 0; g < supernet.arch.size(); ++g) {
        std::string names;
        for (int cand : sel.chosen[g])
          names += (names.empty() ? "" : "+") + supernet.arch[g].candidates[cand];
        info.names[supernet.arch[g].key] = names;
      }
      Graph fixed = specialise(supernet, sel);
      NodeCosts costs = node_costs(fixed);
      std::vector<char> all(fixed.nodes.size(), 1);
      info.params = static_cast<double>(masked_sum(costs.params, all));
      info.macs = static_cast<double>(masked_sum(costs.macs, all));
      info.activation_bytes = static_cast<double>(static_estimate(fixed, 1).activation_bytes);
      if (latency) info.latency_ms = latency->estimator->estimate(sel).fused_ms;
      return info;
    };
    setup.hooks.derive = [&supernet, describe](const std::vector<std::vector<double>>& probs) {
      return describe(derive_genotype(supernet, probs));
    };
    setup.hooks.describe = [describe](const ChoiceSelection& path) {
      return describe(Selection{path});
    };
    setup.hooks.live_mask = [exec, masker](const ChoiceSelection& path) {
      std::vector<char> mask;
      masker->compute(Selection{path}, mask);
      return mask;
    };
    setup.hooks.cost = [exec, masker, exec_costs, latency](const ChoiceSelection& path) {
      std::vector<char> mask;
      masker->compute(Selection{path}, mask);
      return ArchCost{static_cast<double>(masked_sum(exec_costs->params, mask)),
                      static_cast<double>(masked_sum(exec_costs->macs, mask)),
                      latency ? latency->estimator->estimate(Selection{path}).fused_ms : NAN};
    };
    if (darts && reg.estimator != "none") {
      // DARTS' differentiable E[cost]: per execution-graph node, its cost in the unit.
      std::vector<double> node_cost(exec->nodes.size(), 0.0);
      if (reg.estimator == "latency") {
        // The config parser requires regularizer.lut for the latency estimator.
        NAS_CHECK(latency != nullptr, "a latency regularizer without a table");
        NAS_CHECK(latency->estimator->space().graph().nodes.size() == exec->nodes.size(),
                  "the latency table's execution graph is not the plans'");
        node_cost = latency->estimator->node_ms();
      } else {
        const std::vector<int64_t>& per =
            reg.estimator == "params" ? exec_costs->params : exec_costs->macs;
        for (size_t i = 0; i < per.size(); ++i) node_cost[i] = static_cast<double>(per[i]);
      }
      setup.cost_terms = expected_cost_terms(*exec, node_cost);
    }
    setup.hooks.finish = [&supernet](const GenotypeInfo& info, const std::string& dir) {
      Diagnostics local;
      auto sel = parse_arch(supernet, "arch.json", info.arch.dump(), local);
      if (!sel) return;
      std::string svg = (std::filesystem::path(dir) / "arch.svg").string();
      RenderResult r = render_with_graphviz(graph_to_dot(specialise(supernet, *sel)), "svg", svg);
      if (r.status != RenderResult::Ok)
        std::cerr << "nasc: warning: arch.svg: " << r.message << "\n";
    };
    SearchSummary s = run_search(std::move(setup), o.output, o.resume, std::cout);
    std::cout << "found " << s.genotype.names.size() << " choices, "
              << with_commas(static_cast<int64_t>(s.genotype.params)) << " params, "
              << human_count(s.genotype.macs) << " MACs (" << fmt::format("{:.0f}", s.seconds)
              << " s); wrote " << o.output << "/arch.json\nretrain it: nasc train " << o.file
              << " --arch " << o.output << "/arch.json -o RUN_DIR\n";
  } catch (const UserError& e) {
    diags.error({}, e.what());
  }
  return report(diags);
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
  if (o.command == "train") return cmd_train(o, diags);
  if (o.command == "search") return cmd_search(o, diags);
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
    std::cout << "nasc " << NASC_VERSION << "\n";
    std::cout << "backends:\n";
    for (const nas::BackendInfo& b : nas::registered_backends())
      std::cout << "  " << b.name << (b.name == nas::default_backend_name() ? " (default)" : "")
                << ": " << b.description << "\n";
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
