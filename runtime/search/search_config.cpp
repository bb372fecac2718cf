#include "runtime/search/search_config.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace nas {
namespace {

using json = nlohmann::json;

// The defaults as JSON, so that parsing a user's file is "defaults, then the user's
// top-level keys and sections" through the strict parsers.
json default_json() {
  json j;
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
  return j;
}

std::string prefix(const std::string& path) {
  return path.empty() ? "" : path + ": ";
}

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
    if (key == "data" && value.is_object()) {
      for (const auto& [k, v] : value.items()) j["data"][k] = v;  // data keys one by one
      continue;
    }
    j[key] = value;
  }
  SearchConfig c;
  json base = j;
  for (const char* k : {"train", "valid", "warmup", "warmup_epochs"}) base.erase(k);
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
  if (c.warmup_epochs >= c.base.epochs)
    throw std::invalid_argument(prefix(path) + "warmup_epochs (" + std::to_string(c.warmup_epochs) +
                                ") must be fewer than epochs (" + std::to_string(c.base.epochs) +
                                ")");
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
  nlohmann::ordered_json j = train_config_to_json(c.base);
  j["train"] = j["optimizer"];
  j.erase("optimizer");
  j["valid"] = optimizer_config_to_json(c.valid);
  j["warmup"] = optimizer_config_to_json(c.warmup);
  j["warmup_epochs"] = c.warmup_epochs;
  return j;
}

}  // namespace nas
