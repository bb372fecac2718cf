// The skeleton of a run that `nasc train`, `nasc search` (darts, darts2, pnas) and random
// search share, written once: the run folder, --resume (the checkpoint handed to the run,
// the interrupted epoch's records dropped, or a run with no checkpoint yet started over),
// the epoch loop, the embedder's step and epoch callbacks and their stop, each epoch's
// log line and metrics record, and the checkpoints. A run supplies only what differs,
// through EpochTask: what one epoch does, what its record and its checkpoint hold.
//
// The stop rule (run_control.h): a step callback that returns false ends the epoch at
// that step. The partial epoch gets its line, marked "stopped at step N", but no metrics
// record and no checkpoint, so metrics.jsonl holds whole epochs only and --resume
// continues from the last whole epoch's checkpoint, as after a crash. An epoch callback
// that returns false stops the run after its whole epoch, whose record and checkpoint
// are written first. A task may also end the run after a whole epoch itself (search's
// early stop, EpochEnd::stop_early): the epoch's record and a checkpoint are written, the
// reason logged, and a resume from that checkpoint runs no further epoch.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/train/checkpoint.h"
#include "runtime/train/progress.h"
#include "runtime/train/run_control.h"
#include "runtime/train/run_dir.h"

namespace nas {

struct EpochLoopOptions {
  int64_t epochs = 0;            // the run's (random search: its architectures)
  int64_t checkpoint_every = 1;  // also after the last epoch and after a stop
  std::string unit = "epoch";    // what the resume lines count
  // Whether "resumed after epoch E" names the checkpoint's optimizer step too (random
  // search's checkpoints count architectures there).
  bool resume_line_names_step = true;
};

// What an epoch leaves for the driver to print, log and record.
struct EpochEnd {
  std::string line;               // for log.txt and the terminal
  Progress* bar = nullptr;        // the epoch's bar, finished with the line; null: printed
  nlohmann::ordered_json record;  // metrics.jsonl's (a whole epoch's only)
  EpochReport report;             // on_epoch's (a whole epoch's only)
  // Non-empty (a whole epoch's only): the run ends after this epoch, for this reason.
  std::string stop_early;
};

class EpochDriver;

class EpochTask {
 public:
  virtual ~EpochTask() = default;
  // A fresh run: its config.json and the log's first line.
  virtual void start_fresh(RunDir& run) = 0;
  // --resume: checks that `ck` is this run's (a DataFileError naming `what` otherwise)
  // and restores the state after its ck.epoch epochs.
  virtual void restore(const Checkpoint& ck, const std::string& what) = 0;
  // After the start, whichever way it went: what every run needs before its first epoch.
  virtual void before_epochs(RunDir& /*run*/) {}
  // Epoch `epoch` (0-based). Calls driver.after_step after each optimizer step and ends
  // the epoch there when it returns false.
  virtual void run_epoch(int64_t epoch, EpochDriver& driver) = 0;
  // After run_epoch (`whole` false when a step callback ended it): evaluates, writes the
  // run's own files (arch.json) and returns the line, record and report.
  virtual EpochEnd end_epoch(int64_t epoch, bool whole, RunDir& run) = 0;
  // Appends a whole epoch's record (search also writes its TensorBoard scalars).
  virtual void write_record(RunDir& run, const nlohmann::ordered_json& record, int64_t epoch);
  // The state after ck.epoch epochs: global_step, params, optimizer state, extra.
  virtual void fill_checkpoint(Checkpoint& ck) = 0;
  // True when the restored state is of a run that stopped early: no epoch is left to run.
  virtual bool finished() const { return false; }
};

class EpochDriver {
 public:
  // Opens the run folder first, so that a refused folder is reported before any work.
  EpochDriver(const std::string& dir, bool resume, EpochLoopOptions options,
              const RunControl& control, std::ostream& out);

  RunDir& run_dir() { return run_; }

  // Starts (fresh or resumed) and runs the epochs left, unless a callback stops them.
  void run(EpochTask& task);

  // After each optimizer step: the test kill point, then on_step. False: stop here.
  // On the hot path: it allocates nothing.
  bool after_step(const StepReport& step);

  int64_t first_epoch() const { return first_epoch_; }  // epochs done before this call
  int64_t epochs_run() const { return epochs_run_; }    // whole epochs run by this call
  bool stopped() const { return stopped_; }             // a callback stopped the run
  // Why the task ended the run early in this call (EpochEnd::stop_early), or "".
  const std::string& stopped_early() const { return stop_early_; }

 private:
  void start(EpochTask& task);
  // False when the run stops after this epoch.
  bool finish_epoch(EpochTask& task, int64_t epoch);

  RunDir run_;
  bool resume_;
  EpochLoopOptions options_;
  RunControl control_;
  std::ostream& out_;
  int64_t first_epoch_ = 0, epochs_run_ = 0;
  int64_t last_step_ = 0;  // the last after_step's global_step, for the stop line
  bool stopped_ = false;
  std::string stop_early_;
};

}  // namespace nas
