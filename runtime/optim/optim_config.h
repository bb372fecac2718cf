// The "optimizer" section of a search/train JSON config, read strictly: unknown keys and
// wrong types are errors that name the key path (e.g. "optimizer.schedule.eta_mn: unknown
// key"), because a typo silently falling back to a default wastes a whole search run.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/optim/lr_schedule.h"
#include "runtime/optim/optimizer.h"

namespace nas {

struct OptimizerConfig {
  std::string name = "sgd";           // sgd | adam
  double lr = 0;                      // required
  double momentum = 0;                // sgd
  bool nesterov = false;              // sgd
  double beta1 = 0.9, beta2 = 0.999;  // adam: "betas": [b1, b2]
  double eps = 1e-8;                  // adam
  double weight_decay = 0;
  double grad_clip = 0;  // max global L2 norm; 0 (or null) = no clipping
  ScheduleConfig schedule;
};

// Throws std::invalid_argument with messages "<path>.<key>: <what is wrong>".
OptimizerConfig parse_optimizer_config(const nlohmann::json& j,
                                       const std::string& path = "optimizer");
OptimizerConfig parse_optimizer_config_text(const std::string& json_text,
                                            const std::string& path = "optimizer");

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, std::vector<ParamSlot> slots);

}  // namespace nas
