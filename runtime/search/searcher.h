// Architecture search loops on the executor: DARTS (first order) alternates a weight
// step on a training batch with an architecture step on a validation batch, over one
// supernet compiled twice (a weight plan and an alpha-only plan sharing one arena).
// Optional warm-up epochs train the weights alone with their own optimizer.
//
// The runtime does not know the front end, so what needs the compiler (the genotype
// from the probabilities, its params/MACs, drawing it) comes in as hooks from the caller.
// Per epoch: a progress bar, a metrics record (losses, accuracies, mean alpha entropy,
// probabilities, the current genotype and its cost), arch.json, a checkpoint; `--resume`
// continues bit-identically (same seed and threads).
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"
#include "runtime/search/search_config.h"

namespace nas {

struct GenotypeInfo {
  nlohmann::ordered_json arch;               // the arch file (network, choices)
  std::map<std::string, std::string> names;  // key -> chosen candidate(s), "+"-joined
  double params = 0, macs = 0;
};

struct SearchHooks {
  // The genotype for per-choice probabilities (indexed like ExecPlan::arch).
  std::function<GenotypeInfo(const std::vector<std::vector<double>>& probs)> derive;
  // Called once at the end with the final genotype (draws arch.svg); may be empty.
  std::function<void(const GenotypeInfo&, const std::string& dir)> finish;
};

struct SearchSetup {
  SearchConfig config;
  std::string algorithm = "darts";
  ExecPlan weight_plan;  // training, full mode, weight gradients only
  ExecPlan alpha_plan;   // training, full mode, alpha gradients only
  SearchHooks hooks;
  nlohmann::json meta = nlohmann::json::object();  // network, file, command line
};

struct SearchSummary {
  GenotypeInfo genotype;
  std::vector<std::vector<double>> probs;
  double valid_accuracy = 0, seconds = 0;
  int64_t epochs_run = 0;
};

// Runs the search into `dir` (fresh, or resumed from its checkpoint). Throws for bad
// data, a corrupt checkpoint or I/O errors.
SearchSummary run_search(SearchSetup setup, const std::string& dir, bool resume, std::ostream& out);

}  // namespace nas
