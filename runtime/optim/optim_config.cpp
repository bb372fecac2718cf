#include "runtime/optim/optim_config.h"

#include <cmath>
#include <cstdio>
#include <set>
#include <stdexcept>

namespace nas {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::invalid_argument(path + ": " + what);
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

std::string type_of(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

void check_keys(const json& obj, const std::string& path, const std::set<std::string>& allowed,
                const std::string& kind) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!allowed.count(it.key()))
      fail(path + "." + it.key(), "unknown key" + (kind.empty() ? "" : " for " + kind));
  }
}

void require_object(const json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "expected an object, got " + type_of(j));
}

// Reads a number field when present; the bounds are checked here so that messages carry
// the key path rather than the bare field name the optimizer constructors use.
double get_number(const json& obj, const std::string& path, const char* key, double def, double min,
                  bool min_exclusive) {
  auto it = obj.find(key);
  if (it == obj.end()) return def;
  const std::string p = path + "." + key;
  if (!it->is_number()) fail(p, "expected a number, got " + type_of(*it));
  double v = it->get<double>();
  if (!std::isfinite(v) || v < min || (min_exclusive && v == min))
    fail(p,
         std::string("must be ") + (min_exclusive ? "> " : ">= ") + num(min) + ", got " + num(v));
  return v;
}

int64_t get_int(const json& obj, const std::string& path, const char* key, int64_t def,
                int64_t min) {
  auto it = obj.find(key);
  if (it == obj.end()) return def;
  const std::string p = path + "." + key;
  if (!it->is_number_integer()) fail(p, "expected an integer, got " + type_of(*it));
  int64_t v = it->get<int64_t>();
  if (v < min) fail(p, "must be >= " + std::to_string(min) + ", got " + std::to_string(v));
  return v;
}

std::string get_string(const json& obj, const std::string& path, const char* key,
                       const std::string& def, bool required) {
  auto it = obj.find(key);
  const std::string p = path + "." + key;
  if (it == obj.end()) {
    if (required) fail(p, "missing required key");
    return def;
  }
  if (!it->is_string()) fail(p, "expected a string, got " + type_of(*it));
  return it->get<std::string>();
}

ScheduleConfig parse_schedule(const json& j, const std::string& path) {
  require_object(j, path);
  ScheduleConfig s;
  s.name = get_string(j, path, "name", "", true);
  std::set<std::string> keys = {"name", "unit"};
  if (s.name == "cosine") {
    keys.insert("eta_min");
  } else if (s.name == "step") {
    keys.insert({"step_size", "gamma"});
  } else if (s.name == "warmup_cosine") {
    keys.insert({"warmup", "eta_min"});
  } else if (s.name != "constant") {
    fail(path + ".name",
         "unknown schedule '" + s.name + "' (expected constant, cosine, step, warmup_cosine)");
  }
  check_keys(j, path, keys, "schedule '" + s.name + "'");
  s.unit = get_string(j, path, "unit", s.unit, false);
  if (s.unit != "epoch" && s.unit != "step")
    fail(path + ".unit", "must be \"epoch\" or \"step\", got \"" + s.unit + "\"");
  s.eta_min = get_number(j, path, "eta_min", s.eta_min, 0, false);
  s.step_size = get_int(j, path, "step_size", s.step_size, 1);
  s.gamma = get_number(j, path, "gamma", s.gamma, 0, true);
  s.warmup = get_int(j, path, "warmup", s.name == "warmup_cosine" ? 1 : 0, 1);
  return s;
}

}  // namespace

OptimizerConfig parse_optimizer_config(const json& j, const std::string& path) {
  require_object(j, path);
  OptimizerConfig c;
  c.name = get_string(j, path, "name", "", true);
  std::set<std::string> keys = {"name", "lr", "weight_decay", "grad_clip", "schedule"};
  if (c.name == "sgd") {
    keys.insert({"momentum", "nesterov"});
  } else if (c.name == "adam") {
    keys.insert({"betas", "eps"});
  } else {
    fail(path + ".name", "unknown optimizer '" + c.name + "' (expected sgd or adam)");
  }
  check_keys(j, path, keys, "optimizer '" + c.name + "'");

  if (!j.contains("lr")) fail(path + ".lr", "missing required key");
  c.lr = get_number(j, path, "lr", 0, 0, false);
  c.weight_decay = get_number(j, path, "weight_decay", 0, 0, false);
  if (j.contains("grad_clip") && j["grad_clip"].is_null())
    c.grad_clip = 0;
  else
    c.grad_clip = get_number(j, path, "grad_clip", 0, 0, false);
  c.momentum = get_number(j, path, "momentum", 0, 0, false);
  if (auto it = j.find("nesterov"); it != j.end()) {
    if (!it->is_boolean()) fail(path + ".nesterov", "expected a boolean, got " + type_of(*it));
    c.nesterov = it->get<bool>();
    if (c.nesterov && c.momentum <= 0) fail(path + ".nesterov", "requires momentum > 0");
  }
  if (auto it = j.find("betas"); it != j.end()) {
    const std::string p = path + ".betas";
    if (!it->is_array() || it->size() != 2)
      fail(p, "expected an array of two numbers, got " +
                  (it->is_array() ? "an array of " + std::to_string(it->size()) : type_of(*it)));
    double b[2];
    for (int k = 0; k < 2; ++k) {
      const json& e = (*it)[k];
      const std::string pk = p + "[" + std::to_string(k) + "]";
      if (!e.is_number()) fail(pk, "expected a number, got " + type_of(e));
      b[k] = e.get<double>();
      if (!(b[k] >= 0 && b[k] < 1)) fail(pk, "must be in [0, 1), got " + num(b[k]));
    }
    c.beta1 = b[0];
    c.beta2 = b[1];
  }
  c.eps = get_number(j, path, "eps", c.eps, 0, false);
  if (auto it = j.find("schedule"); it != j.end())
    c.schedule = parse_schedule(*it, path + ".schedule");
  return c;
}

OptimizerConfig parse_optimizer_config_text(const std::string& json_text, const std::string& path) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    fail(path, std::string("invalid JSON: ") + e.what());
  }
  return parse_optimizer_config(j, path);
}

nlohmann::ordered_json optimizer_config_to_json(const OptimizerConfig& cfg) {
  nlohmann::ordered_json j;
  j["name"] = cfg.name;
  j["lr"] = cfg.lr;
  if (cfg.name == "sgd") {
    j["momentum"] = cfg.momentum;
    j["nesterov"] = cfg.nesterov;
  } else if (cfg.name == "adam") {
    j["betas"] = {cfg.beta1, cfg.beta2};
    j["eps"] = cfg.eps;
  }
  j["weight_decay"] = cfg.weight_decay;
  j["grad_clip"] = cfg.grad_clip;
  const ScheduleConfig& s = cfg.schedule;
  nlohmann::ordered_json sj;
  sj["name"] = s.name;
  sj["unit"] = s.unit;
  if (s.name == "cosine") {
    sj["eta_min"] = s.eta_min;
  } else if (s.name == "step") {
    sj["step_size"] = s.step_size;
    sj["gamma"] = s.gamma;
  } else if (s.name == "warmup_cosine") {
    sj["warmup"] = s.warmup;
    sj["eta_min"] = s.eta_min;
  }
  j["schedule"] = std::move(sj);
  return j;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg,
                                          std::vector<ParamSlot> slots) {
  if (cfg.name == "sgd")
    return std::make_unique<Sgd>(std::move(slots),
                                 SgdOptions{cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay});
  if (cfg.name == "adam")
    return std::make_unique<Adam>(
        std::move(slots), AdamOptions{cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay});
  throw std::invalid_argument("optimizer.name: unknown optimizer '" + cfg.name + "'");
}

}  // namespace nas
