#include "runtime/search/search_config.h"

#include <cmath>

#include "support/config_section.h"
#include "support/json_file.h"
#include "support/limits.h"

namespace nas {
namespace {

using json = nlohmann::json;

template <typename Json>
Json evolution_json(const EvolutionConfig& e) {
  return {{"path", e.path},
          {"population", e.population},
          {"generations", e.generations},
          {"parents", e.parents},
          {"mutation_prob", e.mutation_prob},
          {"crossover", e.crossover},
          {"bn_batches", e.bn_batches},
          {"valid_batches", e.valid_batches},
          {"seed", e.seed}};
}

EvolutionConfig parse_evolution(const json& section, const std::string& path) {
  const ConfigSection evo(section, path, "evolution");
  evo.check_keys({"path", "population", "generations", "parents", "mutation_prob", "crossover",
                  "bn_batches", "valid_batches", "seed"});
  EvolutionConfig e;
  e.path = evo.get_one_of("path", e.path, {"uniform", "fair"});
  e.population = evo.get_int("population", e.population, 1, 100000);
  e.generations = evo.get_int("generations", e.generations, 1, 100000);
  e.parents = evo.get_int("parents", e.parents, 1, 100000);
  e.mutation_prob = evo.get_number("mutation_prob", e.mutation_prob, 0, 1);
  e.crossover = evo.get_number("crossover", e.crossover, 0, 1);
  e.bn_batches = evo.get_int("bn_batches", e.bn_batches, 0, 100000);
  e.valid_batches = evo.get_int("valid_batches", e.valid_batches, 0, 100000);
  e.seed = evo.get_int("seed", e.seed, -1);
  if (e.parents > e.population)
    evo.fail("parents", "must be at most population (" + std::to_string(e.population) + "), got " +
                            std::to_string(e.parents));
  return e;
}

// The defaults as JSON, so that parsing a user's file is "defaults, then the user's
// top-level keys and sections" through the strict parsers.
json default_json() {
  json j;
  j["algorithm"] = "darts";
  j["epochs"] = 10;
  j["data"] = {{"batch_size", 64}, {"train_portion", 0.5}, {"eval_batch_size", 256}};
  j["train"] = {
      {"name", "sgd"},   {"lr", 0.025},
      {"momentum", 0.9}, {"weight_decay", 3e-4},
      {"grad_clip", 5},  {"schedule", {{"name", "cosine"}, {"unit", "epoch"}, {"eta_min", 0.001}}}};
  j["valid"] = {{"name", "adam"}, {"lr", 3e-4}, {"betas", {0.5, 0.999}}, {"weight_decay", 1e-3}};
  j["warmup"] = {
      {"name", "sgd"}, {"lr", 0.025}, {"momentum", 0.9}, {"weight_decay", 3e-4}, {"grad_clip", 5}};
  j["warmup_epochs"] = 0;
  j["darts"] = {{"max_param_free", -1}, {"stop_at_param_free", -1}, {"partial_channels", 1}};
  j["pnas"] = {
      {"samples", 4}, {"baseline_decay", 0.99}, {"path", "sample"}, {"reward", "accuracy"}};
  j["random"] = {{"samples", 8}};
  j["evolution"] = evolution_json<json>(EvolutionConfig());
  j["regularizer"] = {
      {"estimator", "none"}, {"bound", 0}, {"weight", 1}, {"form", "auto"}, {"lut", ""}};
  return j;
}

// The sections only a search config has; the rest goes to the train-config parser.
const std::vector<std::string> kSearchSections = {
    "algorithm",       "train",  "valid",         "warmup", "warmup_epochs",
    "warmup_fraction", "darts",  "pnas",          "random", "evolution",
    "regularizer",     "rerank", "rerank_epochs", "retrain"};
const std::vector<std::string> kTrainTopKeys = {"epochs",  "seed",      "threads",         "data",
                                                "network", "log_every", "checkpoint_every"};

// The train-config parser calls the weights' section "optimizer"; here it is "train".
TrainConfig parse_base(const json& base, const std::string& path) {
  try {
    return parse_train_config(base, path);
  } catch (const ConfigError& e) {
    const std::string& key = e.key_path();
    if (key != "optimizer" && key.rfind("optimizer.", 0) != 0) throw;
    throw ConfigError(e.file(), "train" + key.substr(9), e.message());
  }
}

// The retrain section before the user's keys: the search's seed, threads and data set
// (its name, files, limits, augmentation), the train config's batch sizes and optimizer,
// the whole training split, and the test split read only at the end. A section that names
// its own data set takes none of the search's data keys.
json retrain_defaults(const TrainConfig& search, const json& section) {
  json j = {{"seed", search.seed}, {"threads", search.threads}, {"test_every_epoch", false}};
  const bool own_data =
      section.contains("data") && section["data"].is_object() && section["data"].contains("name");
  if (own_data) return j;
  const nlohmann::ordered_json data = train_config_to_json(search)["data"];
  json d = json::object();
  for (const char* k : {"name", "dir", "limit_train", "limit_test", "augment", "synthetic_samples",
                        "synthetic_classes", "synthetic_shape"})
    if (data.contains(k)) d[k] = json::parse(data[k].dump());
  j["data"] = d;
  return j;
}

// "retrain": an object (a train config) or true ({}); false or absent: none.
std::optional<TrainConfig> parse_retrain(const json& section, const TrainConfig& search,
                                         const std::string& path) {
  if (section.is_boolean()) {
    if (!section.get<bool>()) return std::nullopt;
    return parse_retrain(json::object(), search, path);
  }
  if (!section.is_object())
    throw ConfigError(path, "retrain",
                      "expected an object (a train config for the found architecture) or "
                      "true, got " +
                          json_kind(section));
  json j = retrain_defaults(search, section);
  for (const auto& [key, value] : section.items()) {
    if (key == "data" && value.is_object() && j.contains("data")) {
      for (const auto& [k, v] : value.items()) j["data"][k] = v;
      continue;
    }
    j[key] = value;
  }
  TrainConfig c;
  try {
    c = parse_train_config(j, path);
  } catch (const ConfigError& e) {
    throw ConfigError(e.file(), e.key_path().empty() ? "retrain" : "retrain." + e.key_path(),
                      e.message());
  }
  if (c.test_every_epoch)
    throw ConfigError(path, "retrain.test_every_epoch",
                      "the retrain reads the test split once, after its last epoch, so that "
                      "nothing is chosen on it; its epochs report the validation split "
                      "(data.train_portion < 1) instead");
  return c;
}

}  // namespace

TrainConfig default_retrain_config(const TrainConfig& search) {
  return *parse_retrain(json::object(), search, search.source);
}

SearchConfig parse_search_config(const json& user, const std::string& path) {
  if (!user.is_object())
    throw ConfigError(path, "", "expected a JSON object at the top level, got " + json_kind(user));
  std::vector<std::string> all = kTrainTopKeys;
  all.insert(all.end(), kSearchSections.begin(), kSearchSections.end());
  ConfigSection(user, path, "").check_keys(all);
  json j = default_json();
  for (const auto& [key, value] : user.items()) {
    // data and the algorithm sections merge key by key; optimizers are replaced whole.
    if ((key == "data" || key == "darts" || key == "pnas" || key == "random" ||
         key == "evolution" || key == "regularizer") &&
        value.is_object()) {
      for (const auto& [k, v] : value.items()) j[key][k] = v;
      continue;
    }
    j[key] = value;
  }
  SearchConfig c;
  json base = j;
  for (const std::string& k : kSearchSections) base.erase(k);
  base["optimizer"] = j["train"];
  c.base = parse_base(base, path);
  c.valid = parse_optimizer_config(j["valid"], "valid", path);
  c.warmup = parse_optimizer_config(j["warmup"], "warmup", path);
  const ConfigSection top(j, path, "");
  c.warmup_epochs = top.get_int("warmup_epochs", 0, 0);
  if (user.contains("warmup_fraction")) {
    // Checked on the user's keys: the defaults hold a warmup_epochs of their own.
    if (user.contains("warmup_epochs"))
      top.fail("warmup_fraction",
               "give either warmup_epochs or warmup_fraction, not both (warmup_epochs is " +
                   user["warmup_epochs"].dump() + ")");
    c.warmup_fraction = top.get_number("warmup_fraction", 0, 0, 1);
    if (c.warmup_fraction >= 1)
      top.fail("warmup_fraction", "must be below 1: the search needs epochs after the warm-up");
    c.warmup_epochs = warmup_epochs_from_fraction(c.warmup_fraction, c.base.epochs);
  }
  c.rerank = top.get_int("rerank", c.rerank, 0, 1000);
  c.rerank_epochs = top.get_int("rerank_epochs", c.rerank_epochs, 1, 100000);
  const ConfigSection darts(j["darts"], path, "darts");
  darts.check_keys(
      {"max_param_free", "stop_at_param_free", "partial_channels", "edge_normalization"});
  c.darts.partial_channels =
      darts.get_int("partial_channels", c.darts.partial_channels, 1, kMaxPartialChannels);
  c.darts.edge_normalization = darts.get_bool("edge_normalization", c.darts.partial_channels > 1);
  c.darts.max_param_free = darts.get_int("max_param_free", c.darts.max_param_free, -1);
  c.darts.stop_at_param_free = darts.get_int("stop_at_param_free", c.darts.stop_at_param_free, -1);
  if (c.darts.stop_at_param_free == 0)
    darts.fail("stop_at_param_free",
               "0 would stop after the first search epoch whatever its genotype; give N >= 1, "
               "or -1 for no early stop");
  c.algorithm = top.get_one_of("algorithm", "darts", kSearchAlgorithms);
  const ConfigSection pnas(j["pnas"], path, "pnas");
  pnas.check_keys({"samples", "baseline_decay", "path", "reward"});
  c.pnas.samples = pnas.get_int("samples", c.pnas.samples, 1, 1024);
  c.pnas.baseline_decay = pnas.get_number("baseline_decay", c.pnas.baseline_decay, 0, 1);
  c.pnas.path = pnas.get_one_of("path", c.pnas.path, {"sample", "fair"});
  c.pnas.reward = pnas.get_one_of("reward", c.pnas.reward, {"accuracy", "loss"});
  const ConfigSection random(j["random"], path, "random");
  random.check_keys({"samples"});
  c.random.samples = random.get_int("samples", c.random.samples, 1, 100000);
  c.evolution = parse_evolution(j["evolution"], path);
  const ConfigSection reg(j["regularizer"], path, "regularizer");
  reg.check_keys({"estimator", "bound", "weight", "form", "lut"});
  RegularizerConfig& r = c.regularizer;
  r.estimator = reg.get_one_of("estimator", r.estimator, {"none", "params", "macs", "latency"});
  r.bound = reg.get_number("bound", r.bound, 0);
  r.weight = reg.get_number("weight", r.weight, 0);
  r.form = reg.get_one_of("form", r.form, {"auto", "bound", "linear", "mul#log"});
  r.lut = reg.get_string("lut", r.lut);
  if (r.estimator != "none" && !(r.bound > 0))
    reg.fail("bound", "a " + r.estimator + " regularizer needs a bound > 0");
  if (r.estimator == "latency" && r.lut.empty())
    reg.fail("lut",
             "a latency regularizer needs the latency table from `nasc profile` (\"lut\": "
             "\"lut.json\")");
  if (c.warmup_epochs >= c.base.epochs)
    top.fail("warmup_epochs", "must be fewer than epochs (" + std::to_string(c.base.epochs) +
                                  "), got " + std::to_string(c.warmup_epochs));
  if (r.form == "mul#log" && r.bound == 1)
    reg.fail("bound", "the mul#log form divides by log(bound), so the bound cannot be 1");
  if (user.contains("retrain")) c.retrain = parse_retrain(user["retrain"], c.base, path);
  return c;
}

int64_t warmup_epochs_from_fraction(double fraction, int64_t epochs) {
  return static_cast<int64_t>(std::floor(fraction * static_cast<double>(epochs)));
}

SearchConfig default_search_config() {
  return parse_search_config(json::object(), "");
}

SearchConfig load_search_config(const std::string& file) {
  return parse_search_config(read_json_file(file), file);
}

nlohmann::ordered_json search_config_to_json(const SearchConfig& c) {
  nlohmann::ordered_json j;
  j["algorithm"] = c.algorithm;
  j.update(train_config_to_json(c.base));
  j["train"] = j["optimizer"];
  j.erase("optimizer");
  // The evaluation recipe's keys are nasc train's alone: a search does not read them.
  j.erase("label_smoothing");
  j.erase("drop_path_prob");
  j.erase("test_every_epoch");
  j["valid"] = optimizer_config_to_json(c.valid);
  j["warmup"] = optimizer_config_to_json(c.warmup);
  if (c.warmup_fraction >= 0)  // the two are exclusive; the fraction follows --epochs
    j["warmup_fraction"] = c.warmup_fraction;
  else
    j["warmup_epochs"] = c.warmup_epochs;
  j["darts"] = {{"max_param_free", c.darts.max_param_free},
                {"stop_at_param_free", c.darts.stop_at_param_free},
                {"partial_channels", c.darts.partial_channels},
                {"edge_normalization", c.darts.edge_normalization}};
  j["pnas"] = {{"samples", c.pnas.samples},
               {"baseline_decay", c.pnas.baseline_decay},
               {"path", c.pnas.path},
               {"reward", c.pnas.reward}};
  j["random"] = {{"samples", c.random.samples}};
  j["evolution"] = evolution_json<nlohmann::ordered_json>(c.evolution);
  j["regularizer"] = {{"estimator", c.regularizer.estimator},
                      {"bound", c.regularizer.bound},
                      {"weight", c.regularizer.weight},
                      {"form", c.regularizer.form},
                      {"lut", c.regularizer.lut}};
  j["rerank"] = c.rerank;
  j["rerank_epochs"] = c.rerank_epochs;
  if (c.retrain) j["retrain"] = train_config_to_json(*c.retrain);
  return j;
}

}  // namespace nas
