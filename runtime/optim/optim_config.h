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

// Throws ConfigError "<file>: <path>.<key>: <what is wrong>" (no "<file>: " when file is
// empty); the text form also JsonSyntaxError for text that is not JSON.
OptimizerConfig parse_optimizer_config(const nlohmann::json& j,
                                       const std::string& path = "optimizer",
                                       const std::string& file = "");
OptimizerConfig parse_optimizer_config_text(const std::string& json_text,
                                            const std::string& path = "optimizer",
                                            const std::string& file = "");

// The config as JSON with every key that parse_optimizer_config accepts for its optimizer
// and schedule kind, defaults filled in (written to a run's config.json, so that it says
// exactly what ran); parse_optimizer_config(optimizer_config_to_json(c)) gives c back.
// Fields that do not apply to the kind (e.g. betas for sgd) are left out.
nlohmann::ordered_json optimizer_config_to_json(const OptimizerConfig& cfg);

// The config's optimizer over `slots`, whose buffers live on `backend`.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, Backend& backend,
                                          std::vector<ParamSlot> slots);

}  // namespace nas
