// What the search drivers share (searcher.cpp for darts/darts2/pnas, random_searcher.cpp):
// the data split and loaders, the per-epoch record (metrics.jsonl + TensorBoard scalars)
// and report.html. Internal to runtime/search.
#pragma once

#include <chrono>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/data/loader.h"
#include "runtime/report/tfevents.h"
#include "runtime/search/searcher.h"
#include "runtime/train/run_dir.h"
#include "runtime/train/trainer.h"

namespace nas {

struct SearchData {
  TrainData data;     // train_indices train the weights, valid_indices the architecture
  int64_t batch = 0;  // the config's (mini-)batch, whole
  // Whole batches; a loop that splits them over data-parallel ranks takes its share with
  // rank_share (trainer.h).
  LoaderOptions train_options, valid_options;
};

// Loads the config's data for `plan`'s input and checks that both splits hold a batch.
SearchData load_search_data(const SearchConfig& cfg, const ExecPlan& plan);

// Appends `rec` to metrics.jsonl and its numbers as TensorBoard scalars "search/<key>".
void write_epoch_record(RunDir& run, EventWriter& events, const nlohmann::ordered_json& rec,
                        int64_t step);

// The end every search shares, once its architecture is final (`found`: it has one):
// --retrain's hooks.retrain on the final genotype (not after a stop; a stopped retrain
// stops the run), the search's and the whole run's wall times since `start`, report.html
// from the run folder's own records (so a resumed run reports every epoch), and
// result.json (the found architecture, its cost and validation accuracy, and the
// retrain's test accuracy).
void finish_search(const SearchHooks& hooks, SearchSummary& summary, RunDir& run,
                   const std::vector<ArchSpec>& groups, const nlohmann::json& meta,
                   const std::string& algorithm, std::chrono::steady_clock::time_point start,
                   bool found);

// Which of store.weight_slots() a run of `plan` under the live mask `live` updates: the
// trainable parameters of the forward steps whose guard node is live. A sampled path's
// weight step updates only these (Optimizer::set_active).
std::vector<char> active_weight_slots(const ExecPlan& plan, const ParamStore& store,
                                      const std::vector<char>& live);
// Flags set in `a` or in `b`; empty (every weight) when either is.
std::vector<char> either(const std::vector<char>& a, const std::vector<char>& b);
// The entries of `all` whose flag is set; `all` itself when `flags` is empty.
std::vector<DeviceBuffer*> flagged(const std::vector<DeviceBuffer*>& all,
                                   const std::vector<char>& flags);

double mean_entropy(const std::vector<std::vector<double>>& probs);

SearchSummary run_random_search(SearchSetup setup, const std::string& dir, bool resume,
                                std::ostream& out);

}  // namespace nas
