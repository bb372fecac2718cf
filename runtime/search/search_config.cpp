#include "runtime/search/search_config.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace nas {
namespace {

using json = nlohmann::json;

std::string prefix(const std::string& path) {
  return path.empty() ? "" : path + ": ";
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
  j["pnas"] = {
      {"samples", 4}, {"baseline_decay", 0.99}, {"path", "sample"}, {"reward", "accuracy"}};
  j["random"] = {{"samples", 8}};
  j["regularizer"] = {
      {"estimator", "none"}, {"bound", 0}, {"weight", 1}, {"form", "auto"}, {"lut", ""}};
  return j;
}

// The sections only a search config has; the rest goes to the train-config parser.
const std::vector<std::string> kSearchSections = {
    "algorithm", "train", "valid", "warmup", "warmup_epochs", "pnas", "random", "regularizer"};
const std::vector<std::string> kTrainTopKeys = {"epochs",  "seed",      "threads",         "data",
                                                "network", "log_every", "checkpoint_every"};

// Strict reading of one small section: unknown keys, wrong types and ranges are errors
// naming "<file>: section.key".
class Section {
 public:
  Section(const json& j, std::string file, std::string name, const std::vector<std::string>& keys)
      : j_(j), prefix_(prefix(file) + name + ".") {
    if (!j.is_object())
      throw std::invalid_argument(prefix(file) + name + ": expected an object, got " + j.dump());
    for (const auto& [k, v] : j.items())
      if (std::find(keys.begin(), keys.end(), k) == keys.end())
        throw std::invalid_argument(prefix_ + k + ": unknown key" + unknown_key_hint(k, keys));
  }
  int64_t integer(const char* key, int64_t min, int64_t max) const {
    const json& v = j_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max)
      fail(key, "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                    "], got " + v.dump());
    return v.get<int64_t>();
  }
  double number(const char* key, double min, double max) const {
    const json& v = j_.at(key);
    if (!v.is_number() || !(v.get<double>() >= min && v.get<double>() <= max))
      fail(key, "expected a number in [" + fmt_number(min) + ", " + fmt_number(max) + "], got " +
                    v.dump());
    return v.get<double>();
  }
  std::string string(const char* key) const {
    const json& v = j_.at(key);
    if (!v.is_string()) fail(key, "expected a string, got " + v.dump());
    return v.get<std::string>();
  }
  std::string one_of(const char* key, const std::vector<std::string>& values) const {
    const json& v = j_.at(key);
    std::string all;
    for (const std::string& s : values) all += (all.empty() ? "" : ", ") + s;
    if (!v.is_string() ||
        std::find(values.begin(), values.end(), v.get<std::string>()) == values.end())
      fail(key, "expected one of " + all + ", got " + v.dump());
    return v.get<std::string>();
  }

 private:
  [[noreturn]] void fail(const char* key, const std::string& what) const {
    throw std::invalid_argument(prefix_ + key + ": " + what);
  }
  static std::string fmt_number(double v) {
    if (v >= 1e300) return "inf";
    json j = v;
    return j.dump();
  }
  const json& j_;
  std::string prefix_;
};

// The train-config parser names the weights' section "optimizer"; here it is "train".
std::string rename_section(std::string msg) {
  for (size_t at = msg.find("optimizer"); at != std::string::npos;
       at = msg.find("optimizer", at + 5))
    msg.replace(at, 9, "train");
  return msg;
}

}  // namespace

SearchConfig parse_search_config(const json& user, const std::string& path) {
  if (!user.is_object())
    throw std::invalid_argument(prefix(path) + "expected a JSON object at the top level");
  json j = default_json();
  for (const auto& [key, value] : user.items()) {
    std::vector<std::string> all = kTrainTopKeys;
    all.insert(all.end(), kSearchSections.begin(), kSearchSections.end());
    if (std::find(all.begin(), all.end(), key) == all.end())
      throw std::invalid_argument(prefix(path) + key + ": unknown key" +
                                  unknown_key_hint(key, all));
    // data and the algorithm sections merge key by key; optimizers are replaced whole.
    if ((key == "data" || key == "pnas" || key == "random" || key == "regularizer") &&
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
  try {
    c.base = parse_train_config(base, path);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(rename_section(e.what()));
  }
  c.valid = parse_optimizer_config(j["valid"], prefix(path) + "valid");
  c.warmup = parse_optimizer_config(j["warmup"], prefix(path) + "warmup");
  const json& w = j["warmup_epochs"];
  if (!w.is_number_integer() || w.get<int64_t>() < 0)
    throw std::invalid_argument(prefix(path) + "warmup_epochs: expected an integer >= 0, got " +
                                w.dump());
  c.warmup_epochs = w.get<int64_t>();
  const json& algo = j["algorithm"];
  const std::vector<std::string> algorithms = {"darts", "darts2", "pnas", "random"};
  if (!algo.is_string() ||
      std::find(algorithms.begin(), algorithms.end(), algo.get<std::string>()) == algorithms.end())
    throw std::invalid_argument(prefix(path) +
                                "algorithm: expected one of darts, darts2, pnas, random, got " +
                                algo.dump());
  c.algorithm = algo.get<std::string>();
  const double inf = std::numeric_limits<double>::infinity();
  Section pnas(j["pnas"], path, "pnas", {"samples", "baseline_decay", "path", "reward"});
  c.pnas.samples = pnas.integer("samples", 1, 1024);
  c.pnas.baseline_decay = pnas.number("baseline_decay", 0, 1);
  c.pnas.path = pnas.one_of("path", {"sample", "fair"});
  c.pnas.reward = pnas.one_of("reward", {"accuracy", "loss"});
  Section random(j["random"], path, "random", {"samples"});
  c.random.samples = random.integer("samples", 1, 100000);
  Section reg(j["regularizer"], path, "regularizer",
              {"estimator", "bound", "weight", "form", "lut"});
  RegularizerConfig& r = c.regularizer;
  r.estimator = reg.one_of("estimator", {"none", "params", "macs", "latency"});
  r.bound = reg.number("bound", 0, inf);
  r.weight = reg.number("weight", 0, inf);
  r.form = reg.one_of("form", {"auto", "bound", "linear", "mul#log"});
  r.lut = reg.string("lut");
  if (r.estimator != "none" && !(r.bound > 0))
    throw std::invalid_argument(prefix(path) + "regularizer.bound: a " + r.estimator +
                                " regularizer needs a bound > 0");
  if (r.estimator == "latency" && r.lut.empty())
    throw std::invalid_argument(prefix(path) +
                                "regularizer.lut: a latency regularizer needs the latency table "
                                "from `nasc profile` (\"lut\": \"lut.json\")");
  if (c.warmup_epochs >= c.base.epochs)
    throw std::invalid_argument(prefix(path) + "warmup_epochs (" + std::to_string(c.warmup_epochs) +
                                ") must be fewer than epochs (" + std::to_string(c.base.epochs) +
                                ")");
  if (r.form == "mul#log" && r.bound == 1)
    throw std::invalid_argument(prefix(path) +
                                "regularizer.bound: the mul#log form divides by "
                                "log(bound), so the bound cannot be 1");
  return c;
}

SearchConfig default_search_config() {
  return parse_search_config(json::object(), "");
}

SearchConfig load_search_config(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument(file + ": cannot read the config file");
  std::stringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw std::invalid_argument(file + ": invalid JSON: " + e.what());
  }
  return parse_search_config(j, file);
}

nlohmann::ordered_json search_config_to_json(const SearchConfig& c) {
  nlohmann::ordered_json j;
  j["algorithm"] = c.algorithm;
  j.update(train_config_to_json(c.base));
  j["train"] = j["optimizer"];
  j.erase("optimizer");
  j["valid"] = optimizer_config_to_json(c.valid);
  j["warmup"] = optimizer_config_to_json(c.warmup);
  j["warmup_epochs"] = c.warmup_epochs;
  j["pnas"] = {{"samples", c.pnas.samples},
               {"baseline_decay", c.pnas.baseline_decay},
               {"path", c.pnas.path},
               {"reward", c.pnas.reward}};
  j["random"] = {{"samples", c.random.samples}};
  j["regularizer"] = {{"estimator", c.regularizer.estimator},
                      {"bound", c.regularizer.bound},
                      {"weight", c.regularizer.weight},
                      {"form", c.regularizer.form},
                      {"lut", c.regularizer.lut}};
  return j;
}

}  // namespace nas
