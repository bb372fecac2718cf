// The JSON config of `nasc search` (-c cfg.json): the keys of a train config (epochs,
// seed, threads, data, network, log_every, checkpoint_every; docs/train.md) plus the
// three optimizers of the original DARTS/ProxylessNAS configs:
//   "train":  the weights (default SGD lr 0.025, momentum 0.9, weight decay 3e-4,
//             clipping at 5, cosine schedule: DARTS' settings),
//   "valid":  the architecture parameters (default Adam lr 3e-4, betas (0.5, 0.999),
//             weight decay 1e-3),
//   "warmup": the weights during the warm-up epochs (default: as "train", constant rate),
// and "warmup_epochs" (default 0). A section that is given replaces its default whole.
// Data defaults differ from training: train_portion 0.5 (half the training set trains
// the weights, the other half the architecture), batch size 64. Strict like the train
// config: unknown keys and wrong types are errors naming the key path.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/optim/optim_config.h"
#include "runtime/train/train_config.h"

namespace nas {

struct SearchConfig {
  TrainConfig base;        // base.optimizer is the "train" optimizer
  OptimizerConfig valid;   // architecture parameters
  OptimizerConfig warmup;  // weights during warm-up
  int64_t warmup_epochs = 0;
};

SearchConfig default_search_config();
// Throws std::invalid_argument "<path>: <key path>: <what>".
SearchConfig parse_search_config(const nlohmann::json& j, const std::string& path_for_messages);
SearchConfig load_search_config(const std::string& file);
// Every key, defaults filled in; parse(to_json(c)) == c.
nlohmann::ordered_json search_config_to_json(const SearchConfig& c);

}  // namespace nas
