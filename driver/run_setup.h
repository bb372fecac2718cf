// `nasc train` and `nasc search` as library calls: the config (a file, JSON text or the
// run folder's own on resume, then the --data/--epochs/--threads/-a/--lut/--retrain
// overrides and their checks), the space compiled, the plans built, the search hooks that
// connect the runtime's searchers to the compiler (genotypes, live masks, costs,
// arch.svg, the retrain of the found architecture), and the run. The CLI and libnasc's nasc::train
// / nasc::search both call these. Internal to the driver library.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/ir/diagnostics.h"
#include "runtime/search/searcher.h"
#include "runtime/train/run_control.h"
#include "runtime/train/trainer.h"

namespace nas::driver {

struct RunRequest {
  std::string file;  // the .nas file
  std::vector<std::string> include_paths;
  std::string network;
  std::vector<std::pair<std::string, std::string>> overrides;  // after the config's
  std::string config_file;                                     // -c
  std::string config_json;  // config as text (named "<config>" in messages)
  std::string data;         // --data
  int64_t epochs = 0;       // > 0: --epochs
  int64_t threads = -1;     // >= 0: --threads
  std::string backend;      // "" = the default
  std::string output;       // the run folder
  bool resume = false;
  std::string arch;       // train: an arch file
  std::string init;       // train: --init, initial weights (a weights file or checkpoint)
  std::string algorithm;  // search: -a
  std::string lut;        // search: --lut
  int64_t rerank = -1;    // search: >= 0: --rerank
  bool retrain = false;   // search: --retrain (the config's "retrain" section, or defaults)
  RunControl control;
  // This process's place in a data-parallel job (none: one process). The plans are
  // compiled for the rank's share of each batch.
  DataParallel parallel;
};

// What a train run did, and the config it ran (after the overrides).
struct TrainRun {
  TrainSummary summary;
  TrainConfig config;
};

// Both report user errors into `diags` and return nullopt; they print progress to `out`.
// Internal errors throw.
std::optional<TrainRun> train(const RunRequest& request, Diagnostics& diags, std::ostream& out);
std::optional<SearchSummary> search(const RunRequest& request, Diagnostics& diags,
                                    std::ostream& out);

}  // namespace nas::driver
