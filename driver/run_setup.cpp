#include "driver/run_setup.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "compiler/analysis/space_stats.h"
#include "compiler/dot/graph_dot.h"
#include "compiler/estimate/estimator.h"
#include "compiler/estimate/expected_cost_terms.h"
#include "compiler/estimate/param_free.h"
#include "compiler/ir/op_registry.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/genotype.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "driver/space_latency.h"
#include "runtime/cpu/threads.h"
#include "runtime/search/search_config.h"
#include "runtime/train/train_config.h"
#include "support/did_you_mean.h"
#include "support/format.h"
#include "support/json_file.h"

namespace nas::driver {
namespace {

constexpr const char* kConfigTextName = "<config>";

// A resolved config (as JSON) with its data set replaced by --data's: fashion-mnist,
// cifar10:DIR, npy:DIR, images:DIR or synthetic; the keys only the old data set takes are
// dropped.
nlohmann::json with_data_flag(nlohmann::json j, const std::string& data) {
  const size_t colon = data.find(':');
  std::string name = data.substr(0, colon);
  j["data"]["name"] = name;
  j["data"].erase("dir");
  if (colon != std::string::npos) j["data"]["dir"] = data.substr(colon + 1);
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
    nlohmann::json j = with_data_flag(search_config_to_json(cfg), r.data);
    if (j.contains("retrain")) j["retrain"] = with_data_flag(j["retrain"], r.data);
    cfg = parse_search_config(j, "--data");
    cfg.base.source = source;
    if (cfg.retrain) cfg.retrain->source = source;
  }
  if (r.epochs > 0) cfg.base.epochs = r.epochs;
  if (r.threads >= 0) cfg.base.threads = static_cast<int>(r.threads);
  if (r.retrain && !cfg.retrain) cfg.retrain = default_retrain_config(cfg.base);
  if (cfg.retrain && r.threads >= 0) cfg.retrain->threads = static_cast<int>(r.threads);
  const bool own_config = r.config_file.empty() && r.config_json.empty();
  if (r.resume && !r.algorithm.empty() && own_config && r.algorithm != cfg.algorithm)
    throw ConfigError(config_source(r), "algorithm",
                      "this run is a `" + cfg.algorithm + "` search; resume it without -a " +
                          "(or with -a " + cfg.algorithm + ")");
  // The CLI checks -a; a library caller's RunOptions::algorithm is checked here.
  const std::vector<std::string>& algorithms = kSearchAlgorithms;
  if (!r.algorithm.empty() &&
      std::find(algorithms.begin(), algorithms.end(), r.algorithm) == algorithms.end())
    throw UserError("RunOptions::algorithm",
                    "unknown search algorithm `" + r.algorithm + "`" +
                        did_you_mean(r.algorithm, algorithms) +
                        " (algorithms: " + fmt::format("{}", fmt::join(algorithms, ", ")) + ")");
  if (!r.algorithm.empty()) cfg.algorithm = r.algorithm;
  if (!r.lut.empty()) cfg.regularizer.lut = r.lut;
  if (r.rerank >= 0) cfg.rerank = r.rerank;
  if (cfg.warmup_fraction >= 0)  // after --epochs
    cfg.warmup_epochs = warmup_epochs_from_fraction(cfg.warmup_fraction, cfg.base.epochs);
  const bool darts = cfg.algorithm == "darts" || cfg.algorithm == "darts2";
  for (const auto& [key, value] :
       {std::pair{"max_param_free", cfg.darts.max_param_free},
        std::pair{"stop_at_param_free", cfg.darts.stop_at_param_free},
        std::pair{"partial_channels", cfg.darts.partial_channels > 1 ? int64_t{1} : int64_t{-1}},
        std::pair{"edge_normalization", cfg.darts.edge_normalization ? int64_t{1} : int64_t{-1}}})
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
// reward, evolution and random search draw only architectures within the bound). Throws
// ConfigError.
void check_regularizer(RegularizerConfig& reg, const std::string& algorithm,
                       const std::string& source) {
  if (reg.estimator == "none") return;
  if (algorithm == "evolution" || algorithm == "random") {
    // A hard limit: architectures over the bound are redrawn.
    if (reg.form == "auto") reg.form = "bound";
    if (reg.form != "bound")
      throw ConfigError(source, "regularizer.form",
                        algorithm +
                            " keeps only architectures within the bound, form \"bound\", "
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

using NetworkParams = std::vector<std::pair<std::string, std::string>>;

// A --set value as a config's "network" section holds it (the .nas literal of its JSON
// form), so that the run folder's config.json reads back to the value the compile saw.
std::string config_literal(const std::string& name, const std::string& value) {
  try {
    return json_to_nas_literal(nas_literal_to_json(value), "network." + name);
  } catch (const ConfigError& e) {
    throw ConfigError("--set", e.key_path(),
                      e.message() + ", so --set " + name + "=" + value +
                          " cannot be recorded in the run folder's config.json");
  }
}

// The network parameters a run records in its config.json: the config's, then --set's
// (later wins, as in the compile), sorted by name as a config reads them back. A resume
// then rebuilds the same network without the flags. Call it after the compile accepted
// the --set values. Throws ConfigError.
NetworkParams with_set_values(NetworkParams network, const RunRequest& r) {
  for (const auto& [name, value] : r.overrides) {
    const std::string literal = config_literal(name, value);
    auto it = std::find_if(network.begin(), network.end(),
                           [&name = name](const auto& kv) { return kv.first == name; });
    if (it != network.end())
      it->second = literal;
    else
      network.emplace_back(name, literal);
  }
  std::sort(network.begin(), network.end());
  return network;
}

// On --resume the network parameters must be those the run folder's config.json
// recorded: others would continue the checkpoint's weights in another network (one
// whose shapes happen to match loads them silently). `network` is with_set_values'.
// Throws ConfigError at the recorded parameter.
void check_resumed_network(const RunRequest& r, const NetworkParams& network) {
  namespace fs = std::filesystem;
  const std::string file = (fs::path(r.output) / "config.json").string();
  std::error_code ec;
  if (!r.resume || !fs::exists(file, ec)) return;  // the run folder says what is missing
  const nlohmann::json recorded_json = read_json_file(file);
  std::map<std::string, std::string> recorded, given(network.begin(), network.end());
  if (recorded_json.contains("network") && recorded_json["network"].is_object()) {
    for (const auto& [name, value] : recorded_json["network"].items()) {
      try {
        recorded[name] = json_to_nas_literal(value, "network." + name);
      } catch (const ConfigError& e) {
        throw ConfigError(file, e.key_path(), e.message());
      }
    }
  }
  std::set<std::string> names;
  for (const auto& m : {recorded, given})
    for (const auto& kv : m) names.insert(kv.first);
  for (const std::string& name : names) {
    auto was = recorded.find(name), now = given.find(name);
    if (was != recorded.end() && now != given.end() && was->second == now->second) continue;
    const bool from_set = std::any_of(r.overrides.begin(), r.overrides.end(),
                                      [&](const auto& kv) { return kv.first == name; });
    const std::string source = from_set ? "--set" : config_source(r);
    const std::string started = was != recorded.end()
                                    ? "with " + name + "=" + was->second
                                    : "without " + name + " (the network's default)";
    const std::string resumed = now != given.end()
                                    ? name + "=" + now->second + " (" + source + ")"
                                    : "the network's default (" + source + " sets no " + name + ")";
    const std::string advice =
        from_set ? "resume without --set " + name +
                       ": the run folder keeps the values it was started with" +
                       (was == recorded.end() ? " (a run folder from before they were kept "
                                                "needs them added to its config.json)"
                                              : "")
                 : "resume without -c: the run folder's config.json is the run's config";
    throw ConfigError(file, "network." + name,
                      "this run was started " + started + ", but is resumed with " + resumed +
                          ", which would continue its weights in another network; " + advice);
  }
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
                         std::shared_ptr<SpaceLatencyTable> latency, int64_t max_param_free,
                         const std::vector<std::string>& edge_weight_keys) {
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
    const NetworkCost cost = fixed_network_cost(fixed);
    info.params = static_cast<double>(cost.params);
    info.macs = static_cast<double>(cost.macs);
    info.activation_bytes = static_cast<double>(static_estimate(fixed, 1).activation_bytes);
    if (latency) info.latency_ms = latency->estimator->estimate(sel).fused_ms;
    return info;
  };
  SearchHooks hooks;
  auto cells = std::make_shared<ParamFreeCells>(param_free_cells(supernet));
  // PC-DARTS' edge weights follow the supernet's groups in the plans (partial_channels.h).
  hooks.derive = [&supernet, describe, cells, max_param_free,
                  edge_weight_keys](const std::vector<std::vector<double>>& probs) {
    const size_t own = supernet.arch.size();
    NAS_CHECK(probs.size() == own + edge_weight_keys.size(),
              "derive: probabilities for " + std::to_string(probs.size()) + " groups");
    GenotypeOptions options;
    for (size_t i = 0; i < edge_weight_keys.size(); ++i)
      options.edge_weights[edge_weight_keys[i]] = probs[own + i];
    const std::vector<std::vector<double>> choice_probs(probs.begin(), probs.begin() + own);
    const CappedGenotype found =
        derive_capped_genotype(supernet, *cells, choice_probs, max_param_free, options);
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

// A rank's share of the config's (mini-)batch of `global` samples: the plans' batch. Every
// rank must get the same number of samples (batch-norm statistics, averaged gradients).
int64_t rank_share(int64_t global, const DataParallel& parallel, const std::string& source) {
  const int ranks = parallel.ranks();
  if (global % ranks != 0)
    throw ConfigError(source, "data.batch_size",
                      fmt::format("a batch of {} does not split evenly over {} ranks: use a "
                                  "multiple of {} (each rank takes an equal share)",
                                  global, ranks, ranks));
  return global / ranks;
}

// The plans a search runs, compiled from the supernet (or from PC-DARTS' transform of it,
// `trained`): the weight plan for every algorithm, plus an alpha plan (darts, darts2) or a
// forward plan (random's validation). The plans run the execution graph (the pipeline's
// cse result), returned for the live masks and the costs: one pipeline run gives both,
// the other plans continue from it. With `trained`, the returned graph is the supernet's
// own, whose costs are those of the networks the search finds.
std::shared_ptr<Graph> compile_search_plans(const Graph& supernet, const Graph* trained,
                                            const SearchConfig& cfg, SearchSetup& setup) {
  const std::string& algorithm = cfg.algorithm;
  PlanOptions weights;
  // Random search's ranks train whole architectures each (rounds of candidates); the others
  // split every batch.
  weights.batch = algorithm == "random" ? cfg.base.data.effective_mini_batch()
                                        : rank_share(cfg.base.data.effective_mini_batch(),
                                                     setup.parallel, cfg.base.source);
  weights.training = true;
  CompiledPlan weight_plan = compile_plan_keeping_graph(trained ? *trained : supernet, weights);
  auto exec = std::make_shared<Graph>(std::move(weight_plan.exec));
  setup.weight_plan = std::move(weight_plan.plan);
  if (algorithm == "darts" || algorithm == "darts2") {
    PlanOptions alphas = weights;
    alphas.arch_grads = true;
    alphas.weight_grads = algorithm == "darts2";  // the unrolled step needs dL_val/dw'
    setup.alpha_plan = compile_plan_from_execution_graph(*exec, alphas);
  }
  PlanOptions eval;
  // Scores run on whole batches, by one rank each (random, evolution, rerank).
  eval.batch = cfg.base.data.effective_mini_batch();
  if (!trained) {
    if (algorithm == "random" || algorithm == "evolution" || cfg.rerank > 0)
      setup.eval_plan = compile_plan_from_execution_graph(*exec, eval);
    // Over several ranks the weight plan holds a rank's share of a batch, and evolution
    // recalibrates batch norm on whole ones.
    if (algorithm == "evolution" && setup.parallel.ranks() > 1) {
      PlanOptions whole = weights;
      whole.batch = eval.batch;
      setup.recalibration_plan = compile_plan_from_execution_graph(*exec, whole);
    }
    return exec;
  }
  // PC-DARTS: --rerank's trials train architectures of the space as written.
  if (cfg.rerank == 0) return std::make_shared<Graph>(execution_graph(supernet));
  CompiledPlan own = compile_plan_keeping_graph(supernet, weights);
  setup.scratch_plan = std::move(own.plan);
  setup.eval_plan = compile_plan_from_execution_graph(own.exec, eval);
  return std::make_shared<Graph>(std::move(own.exec));
}

// What a data-parallel search can run: darts, darts2 and evolution's supernet (each rank a
// share of every batch, gradients averaged), pnas (each rank its own paths), random and
// evolution's candidates (each rank its own). Synchronised batch norm needs every rank to
// run the same network, which pnas' per-rank paths are not.
void check_data_parallel_search(const SearchConfig& cfg, const DataParallel& parallel,
                                const std::string& source) {
  if (parallel.ranks() == 1) return;
  const std::string& a = cfg.algorithm;
  if (parallel.sync_batchnorm && a == "pnas")
    throw ConfigError(source, "algorithm",
                      "--sync-bn needs every rank to run the same network, but pnas trains a "
                      "different sampled path on each rank");
  if (parallel.sync_batchnorm && a == "random")
    throw ConfigError(source, "algorithm",
                      "--sync-bn has nothing to synchronise in random search: each rank trains "
                      "its own architectures on whole batches");
  if (cfg.rerank > 0)
    throw ConfigError(source, "rerank",
                      "--rerank's trials do not run over several processes; run it without "
                      "mpirun");
}

// The partial-channels stage's settings from the config's darts section.
PartialChannelsOptions pc_darts_options(const DartsConfig& darts) {
  return {darts.partial_channels, darts.edge_normalization};
}

// PC-DARTS' training supernet (darts.partial_channels, darts.edge_normalization), with a
// line on what it changed; nullopt after reporting into `diags` what it cannot transform.
std::optional<PartialChannelsResult> pc_darts_supernet(const Graph& supernet,
                                                       const DartsConfig& darts, Diagnostics& diags,
                                                       std::ostream& out) {
  std::optional<PartialChannelsResult> pc =
      partially_connect(supernet, pc_darts_options(darts), diags);
  if (!pc) return std::nullopt;
  const size_t choices = pc->narrowed + pc->kept_whole.size();
  out << "PC-DARTS: ";
  if (darts.partial_channels > 1)
    out << fmt::format("{} of {} choice nodes see 1/{} of their channels", pc->narrowed, choices,
                       darts.partial_channels);
  if (darts.partial_channels > 1 && darts.edge_normalization) out << "; ";
  if (darts.edge_normalization)
    out << fmt::format("{} edge-weight group{} (beta)", pc->edge_weights.size(),
                       pc->edge_weights.size() == 1 ? "" : "s");
  out << "\n";  // the choices left whole are warnings in `diags`
  return pc;
}

// Trains the fixed network `net` as `cfg` says into `dir`: nasc train's run, and the
// retrain of `nasc search --retrain`.
TrainSummary train_fixed_network(const Graph& net, const TrainConfig& cfg,
                                 const std::string& backend, const RunControl& control,
                                 const DataParallel& parallel, const nlohmann::json& meta,
                                 const std::string& dir, bool resume, std::ostream& out,
                                 const std::string& init = "") {
  TrainerSetup setup;
  setup.config = cfg;
  setup.init_weights = init;
  if (!backend.empty()) setup.backend = backend;
  setup.control = control;
  setup.parallel = parallel;
  PlanOptions train, eval;
  train.batch = rank_share(cfg.data.effective_mini_batch(), parallel, cfg.source);
  train.training = true;
  // A rank evaluates its shard of each evaluation batch: at most this many samples.
  eval.batch = (cfg.data.eval_batch_size + parallel.ranks() - 1) / parallel.ranks();
  CompiledPlan train_plan = compile_plan_keeping_graph(net, train);
  setup.train_plan = std::move(train_plan.plan);
  setup.eval_plan = compile_plan_from_execution_graph(train_plan.exec, eval);
  setup.network_meta = meta;
  return train_network(std::move(setup), dir, resume, out);
}

// The message's location for the retrain section: the config file's key, or the flag.
std::string retrain_source(const RunRequest& r, const SearchConfig& cfg) {
  return cfg.retrain->source.empty() ? (r.retrain ? "--retrain" : "") : cfg.retrain->source;
}

// --retrain's network, compiled before the search so that a mistake in it costs no
// search: the space with the search's parameters, then the retrain section's "network"
// (the evaluation network, e.g. C=16, evaluation=true). Any architecture the search can
// find must fit it, so its choices must be the search network's. Reports into `diags`.
std::shared_ptr<Graph> compile_retrain_network(const RunRequest& r, const SearchConfig& cfg,
                                               const Graph& searched, Diagnostics& diags) {
  const TrainConfig& retrain = *cfg.retrain;
  CompileOptions copt = compile_options(r, cfg.base.network);
  for (const auto& kv : retrain.network) copt.elaborate.overrides.push_back(kv);
  // Its own diagnostics: the search's compile has already warned about the same file.
  Diagnostics own;
  Compilation c = compile_file(r.file, copt, own);
  if (own.has_errors() || !c.supernet) {
    for (const Diagnostic& d : own.all()) {
      if (d.severity != Severity::Error) continue;
      diags.error(d.loc, d.message, d.instance_path);
      for (const auto& [loc, text] : d.notes) diags.note(loc, text);
    }
    diags.error({}, retrain_source(r, cfg) +
                        ": retrain.network: the network to retrain does not compile with "
                        "these parameters (above)");
    return nullptr;
  }
  const Graph& net = *c.supernet;
  auto mismatch = [&](const std::string& what) {
    throw ConfigError(retrain_source(r, cfg), "retrain.network",
                      "the retrained network must have the search network's choices, so that "
                      "the found architecture fits it, but " +
                          what);
  };
  if (net.arch.size() != searched.arch.size())
    mismatch(fmt::format("it has {} choices and the search network {}", net.arch.size(),
                         searched.arch.size()));
  for (size_t g = 0; g < net.arch.size(); ++g)
    if (net.arch[g].key != searched.arch[g].key ||
        net.arch[g].candidates != searched.arch[g].candidates ||
        net.arch[g].k != searched.arch[g].k)
      mismatch("choice `" + searched.arch[g].key + "` differs (" + net.arch[g].key + ": " +
               fmt::format("{}", fmt::join(net.arch[g].candidates, ", ")) + ")");
  if (retrain.drop_path_prob > 0) {
    bool reads = false;
    for (const Node& n : net.nodes)
      reads = reads || (n.op->name == "drop_path" && n.float_attr("p") < 0);
    if (!reads)
      throw ConfigError(retrain_source(r, cfg), "retrain.drop_path_prob",
                        "the retrained network has no drop_path(x) that takes the run's "
                        "probability (one without its own p), so the schedule would change "
                        "nothing; set the network parameter that adds them in retrain.network");
  }
  return std::make_shared<Graph>(std::move(*c.supernet));
}

// The search hook that retrains the final genotype on `network` into <dir>/retrain,
// resuming it when the search resumes and the retrain had started.
std::function<RetrainOutcome(const GenotypeInfo&, const std::string&)> retrain_hook(
    const RunRequest& r, const TrainConfig& cfg, std::shared_ptr<Graph> network,
    const std::string& backend, std::ostream& out) {
  return [r, cfg, network, backend, &out](const GenotypeInfo& found, const std::string& dir) {
    namespace fs = std::filesystem;
    const std::string retrain_dir = (fs::path(dir) / "retrain").string();
    Diagnostics local;
    std::optional<Selection> sel = parse_arch(*network, "arch.json", found.arch.dump(), local);
    NAS_CHECK(sel.has_value(),
              "the found architecture does not fit the retrained network, "
              "whose choices were checked to be the search network's");
    const Graph fixed = specialise(*network, *sel);
    const NetworkCost cost = fixed_network_cost(fixed);
    RetrainOutcome o;
    o.dir = retrain_dir;
    for (const auto& [name, value] : cfg.network)
      o.network[name] = nlohmann::ordered_json::parse(nas_literal_to_json(value).dump());
    o.params = static_cast<double>(cost.params);
    o.macs = static_cast<double>(cost.macs);
    o.epochs = cfg.epochs;
    std::error_code ec;
    const bool resume = r.resume && (fs::exists(fs::path(retrain_dir) / "config.json", ec) ||
                                     fs::exists(fs::path(retrain_dir) / "checkpoint", ec));
    out << fmt::format("retrain: {} ({}{} params, {} MACs) for {} epochs into {}\n", network->name,
                       o.network.empty() ? "" : "with " + o.network.dump() + ", ",
                       with_commas(std::llround(o.params)), human_count(o.macs), cfg.epochs,
                       retrain_dir);
    // The arch file relative to the weights' folder, so that the weights do not depend
    // on where the run folder is.
    const nlohmann::json meta = {
        {"network", network->name}, {"file", r.file}, {"arch", "../arch.json"}};
    const TrainSummary t = train_fixed_network(fixed, cfg, backend, r.control, r.parallel, meta,
                                               retrain_dir, resume, out);
    o.epochs_run = t.epochs_run;
    o.train_loss = t.train_loss;
    o.train_accuracy = t.train_accuracy;
    o.test_loss = t.test_loss;
    o.test_accuracy = t.test_accuracy;
    o.seconds = t.seconds;
    o.stopped = t.stopped;
    return o;
  };
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
    cfg->network = with_set_values(cfg->network, r);
    check_resumed_network(r, cfg->network);
    nlohmann::json meta = {{"network", net.name}, {"file", r.file}};
    if (!r.arch.empty()) meta["arch"] = r.arch;
    return TrainRun{train_fixed_network(net, *cfg, r.backend, r.control, r.parallel, meta, r.output,
                                        r.resume, out, r.init),
                    *cfg};
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
    cfg->base.network = with_set_values(cfg->base.network, r);
    check_resumed_network(r, cfg->base.network);
    SearchSetup setup;
    setup.config = *cfg;
    if (!r.backend.empty()) setup.backend = r.backend;
    setup.algorithm = algorithm;
    setup.control = r.control;
    setup.parallel = r.parallel;
    check_data_parallel_search(*cfg, r.parallel, config_source(r));
    std::optional<PartialChannelsResult> pc;
    if (pc_darts_options(cfg->darts).active()) {
      pc = pc_darts_supernet(supernet, cfg->darts, diags, out);
      if (!pc) return std::nullopt;
    }
    std::shared_ptr<Graph> exec =
        compile_search_plans(supernet, pc ? &pc->graph : nullptr, *cfg, setup);
    if (pc) setup.edge_weight_groups = pc->edge_weights.size();
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
                  {"command", "nasc search " + r.file + " -a " + algorithm + config_flag +
                                  (r.retrain ? " --retrain" : "") + " -o " + r.output}};
    auto exec_costs = std::make_shared<NodeCosts>(node_costs(*exec));
    setup.hooks = search_hooks(supernet, exec, exec_costs, latency, cfg->darts.max_param_free,
                               pc ? pc->edge_weights : std::vector<std::string>{});
    if (cfg->retrain) {
      std::shared_ptr<Graph> network = compile_retrain_network(r, *cfg, supernet, diags);
      if (!network) return std::nullopt;
      setup.hooks.retrain = retrain_hook(r, *cfg->retrain, network, setup.backend, out);
    }
    if (latency && algorithm == "evolution") {
      // Judging the estimate: the found network timed whole with the table's settings
      // (warm-up, repetitions, statistic: a median against a table of minimums would read
      // noise as error), batch and thread count (the search's own count would time a
      // 2-thread run against a 1-thread table), on the search's backend.
      const MeasureSettings ms = latency->table->settings;
      const int64_t batch = latency->table->batch;
      const int table_threads = latency->table->device.threads;
      setup.hooks.measure_latency = [&supernet, ms, batch, table_threads,
                                     backend = setup.backend](const ChoiceSelection& path) {
        Selection sel{path};
        const int search_threads = cpu_threads();
        if (table_threads > 0) set_cpu_threads(table_threads);
        const double ms_measured = measure_network(supernet, &sel, batch, ms, backend).ms;
        set_cpu_threads(search_threads);
        return ms_measured;
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
