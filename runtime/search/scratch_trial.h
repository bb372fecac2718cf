// One architecture of a space trained from freshly initialised weights and scored on the
// validation split: what random search does for each of its samples and --rerank for
// each of its candidates. The architecture runs on the supernet's plans in selected mode
// through its live-step mask, so it costs what it alone costs and nothing is recompiled.
// Training uses the config's "train" optimizer, clipping and schedule (over the trial's
// steps) on the training split; dropout masks are a pure function of (seed, step), so a
// trial is reproducible.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

#include "runtime/search/search_run.h"
#include "runtime/train/progress.h"

namespace nas {

struct ScratchTrial {
  double train_loss = 0, train_acc = 0;  // the last training epoch's means
  double valid_loss = 0, valid_acc = 0;  // unset when stopped
  bool stopped = false;                  // on_step stopped the training
};

struct ScratchTraining {
  const SearchConfig& config;
  const ExecPlan& weight_plan;  // training, weight gradients (the search's)
  const ExecPlan& eval_plan;    // forward + loss at the search batch size
  const SearchHooks& hooks;     // live_mask
  const std::string& backend;
  const SearchData& data;
  std::ostream& out;
};

struct TrialProgress {
  // After each optimizer step: its number within the trial (1-based), the trial's steps,
  // the epoch's running loss and accuracy, the learning rate. False stops the training.
  std::function<bool(int64_t step, int64_t steps, double loss, double accuracy, double lr)> on_step;
  // The progress bar of the epoch in progress; a stopped trial leaves its bar here,
  // unfinished, with the epoch's label, for the caller's stop line.
  std::optional<Progress> bar;
  std::string epoch_label;
};

// Trains `path` for `epochs` epochs with bars labelled "<label> epoch e/E", then scores it
// on the whole validation split. Throws ConfigError (train.lr) when the loss stops being
// finite; `what` names the trial in that message ("architecture 3").
ScratchTrial train_from_scratch(const ScratchTraining& t, const ChoiceSelection& path,
                                int64_t epochs, const std::string& label, const std::string& what,
                                TrialProgress& progress);

}  // namespace nas
