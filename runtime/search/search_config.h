// The JSON config of `nasc search` (-c cfg.json): the keys of a train config (epochs,
// seed, threads, data, network, log_every, checkpoint_every; docs/train.md) plus the
// three optimizers of the original DARTS/ProxylessNAS configs:
//   "train":  the weights (default SGD lr 0.025, momentum 0.9, weight decay 3e-4,
//             clipping at 5, cosine schedule: DARTS' settings),
//   "valid":  the architecture parameters (default Adam lr 3e-4, betas (0.5, 0.999),
//             weight decay 1e-3),
//   "warmup": the weights during the warm-up epochs (default: as "train", constant rate),
// and "warmup_epochs" (default 0), or instead "warmup_fraction" in [0, 1): the warm-up
// epochs are floor(fraction * epochs), so they follow --epochs. A section that is given
// replaces its default whole.
// "algorithm" names the search (default "darts"; `-a` overrides it, and a resumed run
// reads it from its config.json). Per algorithm (docs/search.md):
//   "pnas":   {"samples": architectures sampled per alpha step (4), "baseline_decay":
//             the reward baseline's moving-average decay (0.99), "path": how weight steps
//             pick their path, "sample" or "fair" (FairNAS), "reward": "accuracy" or
//             "loss" (the negative validation loss)}; keys given are merged into it;
//   "random": {"samples": architectures to try (8)}: each is trained `epochs` epochs;
//   "darts":  against the collapse into parameter-free operations (darts, darts2;
//             docs/search.md#robust-darts): {"max_param_free": at most this many
//             parameter-free operations per cell in the genotype, the weakest beyond it
//             replaced by their edge's best operation with parameters (P-DARTS; -1: off),
//             "stop_at_param_free": the search stops after the first epoch whose genotype
//             has this many in a cell (DARTS+; -1: off), "partial_channels": PC-DARTS'
//             K, the candidates of every channel-preserving choice see 1/K of the
//             channels (1: off), "edge_normalization": each DARTS node weighs its
//             edges by softmax(beta) (default: true with partial_channels > 1)};
//   "evolution": SPOS (docs/search.md#evolution): the supernet's weight steps take
//             single paths, "path" "uniform" or "fair"; then an evolutionary search
//             scores candidates after batch-norm recalibration on "bn_batches" training
//             batches, on "valid_batches" validation batches (0: all), with
//             "population", "generations", "parents" (top-k), "mutation_prob",
//             "crossover" (the share of children by crossover) and "seed" (-1: the run's);
//   "regularizer": the hardware budget (docs/search.md#regularizers):
//             {"estimator": "none" | "params" | "macs" | "latency", "bound": the budget
//             (> 0), "weight": >= 0 (1), "form": "bound" (pnas: reward * min(1, bound /
//             cost)^weight), "linear" (darts: loss + weight * E[cost] / bound) or
//             "mul#log" (darts: loss * (log E[cost] / log bound)^weight); "auto" =
//             the algorithm's default (bound, linear), "lut": the latency table for
//             "latency" (from `nasc profile`)}.
// "rerank": K >= 0 (0: off; --rerank overrides it): after the search, its K best distinct
// candidates are each trained "rerank_epochs" (1) epochs from scratch and validated, and
// the best is the result (runtime/search/rerank.h).
// "retrain": the training of the found architecture after the search (docs/search.md#retrain;
// --retrain turns it on with the defaults): a train config (docs/train.md) whose data set,
// seed and threads default to the search's (its own batch size and optimizer defaults,
// train_portion 1), whose "network" sets the evaluation network's parameters on top of
// the search's (e.g. {"C": 16, "evaluation": true}), and which reads the test split only
// after its last epoch (test_every_epoch false; true is refused). `true` stands for {}.
// Absent: no retrain.
// Data defaults differ from training: train_portion 0.5 (half the training set trains
// the weights, the other half the architecture), batch size 64. Strict like the train
// config: unknown keys and wrong types are errors naming the key path.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/optim/optim_config.h"
#include "runtime/train/train_config.h"

namespace nas {

// The search algorithms a config's "algorithm" (and RunOptions::algorithm) may name.
inline const std::vector<std::string> kSearchAlgorithms = {"darts", "darts2", "pnas", "random",
                                                           "evolution"};

struct PnasConfig {
  int64_t samples = 4;              // architectures sampled (and rewarded) per alpha step
  double baseline_decay = 0.99;     // b <- decay * b + (1 - decay) * mean reward
  std::string path = "sample";      // weight-step paths: "sample" (from softmax(alpha)) or "fair"
  std::string reward = "accuracy";  // or "loss": the negative mean validation loss
};

struct RandomConfig {
  int64_t samples = 8;  // architectures drawn uniformly; each trained `epochs` epochs
};

struct EvolutionConfig {
  std::string path = "uniform";  // supernet weight steps: "uniform" or "fair" (FairNAS)
  int64_t population = 20;       // candidates per generation
  int64_t generations = 10;      // populations evaluated, the first drawn at random
  int64_t parents = 5;           // top-k: the best candidates so far breed the next
  double mutation_prob = 0.1;    // per choice key, the chance that a child redraws it
  double crossover = 0.5;        // share of each new generation made by crossover
  int64_t bn_batches = 5;        // training batches that re-estimate batch-norm statistics
  int64_t valid_batches = 10;    // validation batches that score a candidate (0: all)
  int64_t seed = -1;             // the evolution's random stream (-1: the run's seed)
};

struct DartsConfig {
  int64_t max_param_free = -1;      // per cell; -1: no cap
  int64_t stop_at_param_free = -1;  // per cell; -1: no early stop
  // PC-DARTS (compiler/passes/partial_channels.h): candidates see 1/partial_channels of
  // their edge's channels (1: all); edge_normalization weighs each node's edges by
  // softmax(beta) (default: on with partial_channels > 1, as PC-DARTS pairs them).
  int64_t partial_channels = 1;
  bool edge_normalization = false;
};

struct RegularizerConfig {
  std::string estimator = "none";  // "none", "params", "macs", "latency" (ms)
  double bound = 0;                // the budget, in the estimator's unit
  double weight = 1;               // the strength (see form)
  std::string form = "auto";       // "bound", "linear", "mul#log"; "auto": per algorithm
  std::string lut;                 // latency table (estimator "latency")
};

struct SearchConfig {
  std::string algorithm = "darts";  // one of kSearchAlgorithms (-a overrides)
  TrainConfig base;                 // base.optimizer is the "train" optimizer
  OptimizerConfig valid;            // architecture parameters
  OptimizerConfig warmup;           // weights during warm-up
  int64_t warmup_epochs = 0;        // from warmup_fraction when that is given
  double warmup_fraction = -1;      // -1: not given (warmup_epochs counts)
  DartsConfig darts;
  PnasConfig pnas;
  RandomConfig random;
  EvolutionConfig evolution;
  RegularizerConfig regularizer;
  int64_t rerank = 0;  // candidates re-ranked by training from scratch (0: none)
  int64_t rerank_epochs = 1;
  std::optional<TrainConfig> retrain;  // absent: the search ends with arch.json
};

// The warm-up epochs a warm-up fraction gives: floor(fraction * epochs), fewer than epochs.
int64_t warmup_epochs_from_fraction(double fraction, int64_t epochs);

SearchConfig default_search_config();
// The retrain section's defaults for a search whose training config is `search`.
TrainConfig default_retrain_config(const TrainConfig& search);
// Throws ConfigError "<path>: <key path>: <what>".
SearchConfig parse_search_config(const nlohmann::json& j, const std::string& path_for_messages);
// Also JsonSyntaxError (FILE:LINE:COL) for text that is not JSON, UserError when the file
// cannot be read.
SearchConfig load_search_config(const std::string& file);
// Every key, defaults filled in; parse(to_json(c)) == c.
nlohmann::ordered_json search_config_to_json(const SearchConfig& c);

}  // namespace nas
