#include "runtime/optim/optim_config.h"

#include <limits>

#include "support/config_section.h"
#include "support/json_file.h"

namespace nas {

namespace {

using nlohmann::json;

ScheduleConfig parse_schedule(const ConfigSection& j) {
  ScheduleConfig s;
  s.name = j.require_string("name");
  std::vector<std::string> keys = {"name", "unit"};
  if (s.name == "cosine") {
    keys.push_back("eta_min");
  } else if (s.name == "step") {
    keys.insert(keys.end(), {"step_size", "gamma"});
  } else if (s.name == "warmup_cosine") {
    keys.insert(keys.end(), {"warmup", "eta_min"});
  } else if (s.name != "constant") {
    j.fail("name",
           "unknown schedule '" + s.name + "' (expected constant, cosine, step, warmup_cosine)");
  }
  j.check_keys(keys, "schedule '" + s.name + "'");
  s.unit = j.get_string("unit", s.unit);
  if (s.unit != "epoch" && s.unit != "step")
    j.fail("unit", "must be \"epoch\" or \"step\", got \"" + s.unit + "\"");
  s.eta_min = j.get_number("eta_min", s.eta_min, 0);
  s.step_size = j.get_int("step_size", s.step_size, 1);
  s.gamma = j.get_number("gamma", s.gamma, 0, std::numeric_limits<double>::infinity(), true);
  s.warmup = j.get_int("warmup", s.name == "warmup_cosine" ? 1 : 0, 1);
  return s;
}

}  // namespace

OptimizerConfig parse_optimizer_config(const json& value, const std::string& path,
                                       const std::string& file) {
  ConfigSection j(value, file, path);
  OptimizerConfig c;
  c.name = j.require_string("name");
  std::vector<std::string> keys = {"name", "lr", "weight_decay", "grad_clip", "schedule"};
  if (c.name == "sgd") {
    keys.insert(keys.end(), {"momentum", "nesterov"});
  } else if (c.name == "adam") {
    keys.insert(keys.end(), {"betas", "eps"});
  } else {
    j.fail("name", "unknown optimizer '" + c.name + "' (expected sgd or adam)");
  }
  j.check_keys(keys, "optimizer '" + c.name + "'");

  if (!j.has("lr")) j.fail("lr", "missing required key");
  c.lr = j.get_number("lr", 0, 0);
  c.weight_decay = j.get_number("weight_decay", 0, 0);
  const json* clip = j.find("grad_clip");
  c.grad_clip = clip && clip->is_null() ? 0 : j.get_number("grad_clip", 0, 0);
  c.momentum = j.get_number("momentum", 0, 0);
  c.nesterov = j.get_bool("nesterov", c.nesterov);
  if (c.nesterov && c.momentum <= 0) j.fail("nesterov", "requires momentum > 0");
  if (const json* betas = j.find("betas")) {
    if (!betas->is_array() || betas->size() != 2)
      j.fail("betas", "expected an array of two numbers, got " +
                          (betas->is_array() ? "an array of " + std::to_string(betas->size())
                                             : json_kind(*betas)));
    double b[2];
    for (int k = 0; k < 2; ++k) {
      const json& e = (*betas)[k];
      const std::string key = "betas[" + std::to_string(k) + "]";
      if (!e.is_number()) j.fail(key, "expected a number, got " + json_kind(e));
      b[k] = e.get<double>();
      if (!(b[k] >= 0 && b[k] < 1))
        j.fail(key, "must be in [0, 1), got " + config_number_text(b[k]));
    }
    c.beta1 = b[0];
    c.beta2 = b[1];
  }
  c.eps = j.get_number("eps", c.eps, 0);
  if (j.has("schedule")) c.schedule = parse_schedule(j.section("schedule"));
  return c;
}

OptimizerConfig parse_optimizer_config_text(const std::string& json_text, const std::string& path,
                                            const std::string& file) {
  return parse_optimizer_config(parse_json(json_text, file), path, file);
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

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, Backend& backend,
                                          std::vector<ParamSlot> slots) {
  if (cfg.name == "sgd")
    return std::make_unique<Sgd>(backend, std::move(slots),
                                 SgdOptions{cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay});
  if (cfg.name == "adam")
    return std::make_unique<Adam>(
        backend, std::move(slots),
        AdamOptions{cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay});
  internal_error(
      __FILE__, __LINE__,
      "make_optimizer: unknown optimizer '" + cfg.name + "' (the config parser refuses it)");
}

}  // namespace nas
