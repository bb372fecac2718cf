#include "driver/run_setup.h"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "compiler/analysis/space_stats.h"
#include "compiler/dot/graph_dot.h"
#include "compiler/estimate/estimator.h"
#include "compiler/estimate/expected_cost_terms.h"
#include "compiler/estimate/param_free.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/genotype.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "driver/space_latency.h"
#include "runtime/search/search_config.h"
#include "runtime/train/train_config.h"
#include "support/json_file.h"

namespace nas::driver {
namespace {

constexpr const char* kConfigTextName = "<config>";

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

// The config a train or search reads: the file, the text, or the run folder's own
// config.json on resume; "" for the defaults. Errors found after parsing are located there.
std::string config_source(const RunRequest& r) {
  if (!r.config_file.empty()) return r.config_file;
  if (!r.config_json.empty()) return kConfigTextName;
  if (!r.resume) return {};
  return (std::filesystem::path(r.output) / "config.json").string();
}

template <typename Config, typename Parse>
Config read_config(const RunRequest& r, Config defaults, Parse parse) {
  if (!r.config_json.empty())
    return parse(parse_json(r.config_json, kConfigTextName), kConfigTextName);
  const std::string file = config_source(r);
  if (file.empty()) return defaults;
  return parse(read_json_file(file), file);
}

// The train config with the request's overrides. Throws UserError.
TrainConfig train_config(const RunRequest& r) {
  TrainConfig cfg = read_config(r, default_train_config(), parse_train_config);
  if (!r.data.empty()) {
    const std::string source = cfg.source;  // data.synthetic_* still come from the file
    cfg = parse_train_config(with_data_flag(train_config_to_json(cfg), r.data), "--data");
    cfg.source = source;
  }
  if (r.epochs > 0) cfg.epochs = r.epochs;
  if (r.threads >= 0) cfg.threads = static_cast<int>(r.threads);
  return cfg;
}

// The search config with the request's overrides and their checks. Throws UserError.
SearchConfig search_config(const RunRequest& r) {
  SearchConfig cfg = read_config(r, default_search_config(), parse_search_config);
  if (!r.data.empty()) {
    const std::string source = cfg.base.source;  // data.synthetic_* still from the file
    cfg = parse_search_config(with_data_flag(search_config_to_json(cfg), r.data), "--data");
    cfg.base.source = source;
  }
  if (r.epochs > 0) cfg.base.epochs = r.epochs;
  if (r.threads >= 0) cfg.base.threads = static_cast<int>(r.threads);
  const bool own_config = r.config_file.empty() && r.config_json.empty();
  if (r.resume && !r.algorithm.empty() && own_config && r.algorithm != cfg.algorithm)
    throw ConfigError(config_source(r), "algorithm",
                      "this run is a `" + cfg.algorithm + "` search; resume it without -a " +
                          "(or with -a " + cfg.algorithm + ")");
  if (!r.algorithm.empty()) cfg.algorithm = r.algorithm;
  if (!r.lut.empty()) cfg.regularizer.lut = r.lut;
  if (r.rerank >= 0) cfg.rerank = r.rerank;
  if (cfg.warmup_fraction >= 0)  // after --epochs
    cfg.warmup_epochs = warmup_epochs_from_fraction(cfg.warmup_fraction, cfg.base.epochs);
  const bool darts = cfg.algorithm == "darts" || cfg.algorithm == "darts2";
  for (const auto& [key, value] : {std::pair{"max_param_free", cfg.darts.max_param_free},
                                   std::pair{"stop_at_param_free", cfg.darts.stop_at_param_free}})
    if (value >= 0 && !darts)
      throw ConfigError(config_source(r), std::string("darts.") + key,
                        "applies to darts and darts2, whose genotypes come from alpha; this "
                        "is a `" +
                            cfg.algorithm + "` search");
  if (cfg.warmup_epochs >= cfg.base.epochs && cfg.algorithm != "random")
    throw ConfigError(config_source(r), "warmup_epochs",
                      "must be fewer than epochs (" + std::to_string(cfg.base.epochs) +
                          (r.epochs > 0 ? ", from --epochs" : "") + "), got " +
                          std::to_string(cfg.warmup_epochs));
  return cfg;
}

// The regularizer's form per algorithm (darts adds E[cost] to its loss, pnas bounds its
// reward); random search takes none. Throws ConfigError.
void check_regularizer(RegularizerConfig& reg, const std::string& algorithm,
                       const std::string& source) {
  if (reg.estimator == "none") return;
  if (algorithm == "random")
    throw ConfigError(source, "regularizer",
                      "random search draws architectures uniformly; a regularizer applies "
                      "to darts, darts2, pnas and evolution");
  if (algorithm == "evolution") {  // a hard limit: candidates over the bound are redrawn
    if (reg.form == "auto") reg.form = "bound";
    if (reg.form != "bound")
      throw ConfigError(source, "regularizer.form",
                        "evolution keeps only candidates within the bound, form \"bound\", "
                        "not \"" +
                            reg.form + "\"");
    return;
  }
  const bool pnas = algorithm == "pnas";
  if (reg.form == "auto") reg.form = pnas ? "bound" : "linear";
  if (pnas && reg.form != "bound")
    throw ConfigError(source, "regularizer.form",
                      "pnas bounds its reward, form \"bound\" (reward * min(1, bound / "
                      "cost)^weight), not \"" +
                          reg.form + "\"");
  if (!pnas && reg.form == "bound")
    throw ConfigError(source, "regularizer.form",
                      algorithm +
                          " adds the expected cost to its loss: form \"linear\" or "
                          "\"mul#log\", not \"bound\"");
}

CompileOptions compile_options(const RunRequest& r,
                               const std::vector<std::pair<std::string, std::string>>& config) {
  CompileOptions copt;
  copt.include_paths = r.include_paths;
  copt.elaborate.network = r.network;
  copt.elaborate.overrides = config;  // the config's, then --set (later wins)
  for (const auto& kv : r.overrides) copt.elaborate.overrides.push_back(kv);
  return copt;
}

// The hooks through which the runtime's searchers reach the compiler: genotypes from
// probabilities, descriptions and costs of selections, live masks over the execution
// graph the plans run, arch.svg at the end. `supernet` must outlive the search. Derived
// genotypes count their parameter-free operations per cell, and a `max_param_free` >= 0
// caps them (P-DARTS).
SearchHooks search_hooks(const Graph& supernet, std::shared_ptr<Graph> exec,
                         std::shared_ptr<NodeCosts> exec_costs,
                         std::shared_ptr<SpaceLatencyTable> latency, int64_t max_param_free) {
  auto masker = std::make_shared<LiveMasker>(*exec);
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
  SearchHooks hooks;
  auto cells = std::make_shared<ParamFreeCells>(param_free_cells(supernet));
  hooks.derive = [&supernet, describe, cells,
                  max_param_free](const std::vector<std::vector<double>>& probs) {
    const CappedGenotype found = derive_capped_genotype(supernet, *cells, probs, max_param_free);
    GenotypeInfo info = describe(found.selection);
    for (size_t c = 0; c < cells->names.size(); ++c)
      info.param_free[cells->names[c]] = found.param_free[c];
    for (int g : found.replaced) info.param_free_replaced.push_back(supernet.arch[g].key);
    return info;
  };
  hooks.describe = [describe](const ChoiceSelection& path) { return describe(Selection{path}); };
  hooks.live_mask = [exec, masker](const ChoiceSelection& path) {
    std::vector<char> mask;
    masker->compute(Selection{path}, mask);
    return mask;
  };
  hooks.cost = [exec, masker, exec_costs, latency](const ChoiceSelection& path) {
    std::vector<char> mask;
    masker->compute(Selection{path}, mask);
    return ArchCost{static_cast<double>(masked_sum(exec_costs->params, mask)),
                    static_cast<double>(masked_sum(exec_costs->macs, mask)),
                    latency ? latency->estimator->estimate(Selection{path}).fused_ms : NAN};
  };
  hooks.finish = [&supernet](const GenotypeInfo& info, const std::string& dir) {
    Diagnostics local;
    auto sel = parse_arch(supernet, "arch.json", info.arch.dump(), local);
    if (!sel) return;
    std::string svg = (std::filesystem::path(dir) / "arch.svg").string();
    RenderResult r = render_with_graphviz(graph_to_dot(specialise(supernet, *sel)), "svg", svg);
    if (r.status != RenderResult::Ok) std::cerr << "nasc: warning: arch.svg: " << r.message << "\n";
  };
  return hooks;
}

// DARTS' differentiable E[cost]: per execution-graph node, its cost in the regularizer's
// unit, as a polynomial in the probabilities.
std::vector<CostTerm> darts_cost_terms(const RegularizerConfig& reg, const Graph& exec,
                                       const NodeCosts& exec_costs,
                                       const SpaceLatencyTable* latency) {
  std::vector<double> node_cost(exec.nodes.size(), 0.0);
  if (reg.estimator == "latency") {
    // The config parser requires regularizer.lut for the latency estimator.
    NAS_CHECK(latency != nullptr, "a latency regularizer without a table");
    NAS_CHECK(latency->estimator->space().graph().nodes.size() == exec.nodes.size(),
              "the latency table's execution graph is not the plans'");
    node_cost = latency->estimator->node_ms();
  } else {
    const std::vector<int64_t>& per =
        reg.estimator == "params" ? exec_costs.params : exec_costs.macs;
    for (size_t i = 0; i < per.size(); ++i) node_cost[i] = static_cast<double>(per[i]);
  }
  return expected_cost_terms(exec, node_cost);
}

// The plans a search runs, compiled from the supernet: the weight plan for every
// algorithm, plus an alpha plan (darts, darts2) or a forward plan (random's validation).
// The plans run the execution graph (the pipeline's cse result), returned for the live
// masks: one pipeline run gives both, the other plans continue from it.
std::shared_ptr<Graph> compile_search_plans(const Graph& supernet, const SearchConfig& cfg,
                                            SearchSetup& setup) {
  const std::string& algorithm = cfg.algorithm;
  PlanOptions weights;
  weights.batch = cfg.base.data.effective_mini_batch();
  weights.training = true;
  CompiledPlan weight_plan = compile_plan_keeping_graph(supernet, weights);
  auto exec = std::make_shared<Graph>(std::move(weight_plan.exec));
  setup.weight_plan = std::move(weight_plan.plan);
  if (algorithm == "darts" || algorithm == "darts2") {
    PlanOptions alphas = weights;
    alphas.arch_grads = true;
    alphas.weight_grads = algorithm == "darts2";  // the unrolled step needs dL_val/dw'
    setup.alpha_plan = compile_plan_from_execution_graph(*exec, alphas);
  }
  if (algorithm == "random" || algorithm == "evolution" || cfg.rerank > 0) {
    PlanOptions eval;
    eval.batch = weights.batch;
    setup.eval_plan = compile_plan_from_execution_graph(*exec, eval);
  }
  return exec;
}

}  // namespace

std::optional<TrainRun> train(const RunRequest& r, Diagnostics& diags, std::ostream& out) {
  std::optional<TrainConfig> cfg;
  try {
    cfg = train_config(r);
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return std::nullopt;
  }
  Compilation c = compile_file(r.file, compile_options(r, cfg->network), diags);
  if (diags.has_errors() || !c.supernet) return std::nullopt;
  std::optional<Graph> fixed;
  if (!r.arch.empty()) {
    auto sel = load_arch(*c.supernet, r.arch, diags);
    if (!sel) return std::nullopt;
    fixed = specialise(*c.supernet, *sel);
  } else if (!c.supernet->arch.empty()) {
    diags.error({}, "`nasc train` trains a fixed network, but `" + c.supernet->name + "` has " +
                        std::to_string(c.supernet->arch.size()) +
                        " choices; give --arch A.json (from `nasc search`) to select one");
    return std::nullopt;
  }
  const Graph& net = fixed ? *fixed : *c.supernet;
  try {
    TrainerSetup setup;
    setup.config = *cfg;
    if (!r.backend.empty()) setup.backend = r.backend;
    setup.control = r.control;
    PlanOptions train, eval;
    train.batch = cfg->data.effective_mini_batch();
    train.training = true;
    eval.batch = cfg->data.eval_batch_size;
    CompiledPlan train_plan = compile_plan_keeping_graph(net, train);
    setup.train_plan = std::move(train_plan.plan);
    setup.eval_plan = compile_plan_from_execution_graph(train_plan.exec, eval);
    setup.network_meta = {{"network", net.name}, {"file", r.file}};
    if (!r.arch.empty()) setup.network_meta["arch"] = r.arch;
    return TrainRun{train_network(std::move(setup), r.output, r.resume, out), *cfg};
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return std::nullopt;
  }
}

std::optional<SearchSummary> search(const RunRequest& r, Diagnostics& diags, std::ostream& out) {
  std::optional<SearchConfig> cfg;
  try {
    cfg = search_config(r);
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return std::nullopt;
  }
  const std::string algorithm = cfg->algorithm;
  Compilation c = compile_file(r.file, compile_options(r, cfg->base.network), diags);
  if (diags.has_errors() || !c.supernet) return std::nullopt;
  const Graph& supernet = *c.supernet;
  if (supernet.arch.empty()) {
    diags.error({}, "`" + supernet.name +
                        "` has no choices: there is nothing to search (use "
                        "`nasc train` to train it)");
    return std::nullopt;
  }
  try {
    SearchSetup setup;
    setup.config = *cfg;
    if (!r.backend.empty()) setup.backend = r.backend;
    setup.algorithm = algorithm;
    setup.control = r.control;
    std::shared_ptr<Graph> exec = compile_search_plans(supernet, *cfg, setup);
    RegularizerConfig& reg = setup.config.regularizer;
    check_regularizer(reg, algorithm, config_source(r));
    std::shared_ptr<SpaceLatencyTable> latency;
    if (!reg.lut.empty()) {
      std::optional<SpaceLatencyTable> loaded =
          load_space_latency(r.file, reg.lut, supernet, diags);
      if (!loaded) return std::nullopt;
      latency = std::make_shared<SpaceLatencyTable>(std::move(*loaded));
    }
    const std::string config_flag = !r.config_file.empty() ? " -c " + r.config_file : "";
    setup.meta = {{"network", supernet.name},
                  {"file", r.file},
                  {"command",
                   "nasc search " + r.file + " -a " + algorithm + config_flag + " -o " + r.output}};
    auto exec_costs = std::make_shared<NodeCosts>(node_costs(*exec));
    setup.hooks = search_hooks(supernet, exec, exec_costs, latency, cfg->darts.max_param_free);
    if (latency && algorithm == "evolution") {
      // Judging the estimate: the found network timed whole, the median of the table's
      // repetitions at its batch, on the search's backend.
      MeasureSettings ms = latency->table->settings;
      ms.statistic = "median";
      const int64_t batch = latency->table->batch;
      setup.hooks.measure_latency = [&supernet, ms, batch,
                                     backend = setup.backend](const ChoiceSelection& path) {
        Selection sel{path};
        return measure_network(supernet, &sel, batch, ms, backend).ms;
      };
    }
    if ((algorithm == "darts" || algorithm == "darts2") && reg.estimator != "none")
      setup.cost_terms = darts_cost_terms(reg, *exec, *exec_costs, latency.get());
    return run_search(std::move(setup), r.output, r.resume, out);
  } catch (const UserError& e) {
    diags.error({}, e.what());
    return std::nullopt;
  }
}

}  // namespace nas::driver
