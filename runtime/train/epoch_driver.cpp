#include "runtime/train/epoch_driver.h"

#include <fmt/format.h>

#include <optional>
#include <ostream>

#include "runtime/train/kill_points.h"

namespace nas {

void EpochTask::write_record(RunDir& run, const nlohmann::ordered_json& record, int64_t /*epoch*/) {
  run.metrics(record);
}

EpochDriver::EpochDriver(const std::string& dir, bool resume, EpochLoopOptions options,
                         const RunControl& control, std::ostream& out)
    : run_(dir, !resume),
      resume_(resume),
      options_(std::move(options)),
      control_(control),
      out_(out) {}

void EpochDriver::start(EpochTask& task) {
  std::optional<Checkpoint> ck;
  if (resume_) ck = load_checkpoint(run_.dir());
  if (ck) {
    task.restore(*ck, run_.path(kCheckpointFileName));
    first_epoch_ = ck->epoch;
    // The interrupted epoch is redone and records itself again.
    run_.truncate_metrics_after(first_epoch_);
    run_.log(options_.resume_line_names_step
                 ? fmt::format("resumed after {} {} (step {})", options_.unit, first_epoch_,
                               ck->global_step)
                 : fmt::format("resumed after {} {}", options_.unit, first_epoch_));
    out_ << "resuming after " << options_.unit << " " << first_epoch_ << "\n";
  } else if (resume_) {
    run_.start_over();
    out_ << kStartingOver << "\n";
  } else {
    task.start_fresh(run_);
  }
}

bool EpochDriver::after_step(const StepReport& step) {
  last_step_ = step.global_step;
  kill_point_after_step(step.global_step);
  if (control_.on_step && !control_.on_step(step)) stopped_ = true;
  return !stopped_;
}

bool EpochDriver::finish_epoch(EpochTask& task, int64_t epoch) {
  const bool whole = !stopped_;
  EpochEnd end = task.end_epoch(epoch, whole, run_);
  const std::string line =
      whole ? end.line : end.line + " | stopped at step " + std::to_string(last_step_);
  if (end.bar != nullptr)
    end.bar->finish(line);
  else
    out_ << line << "\n";
  run_.log(line);
  if (!whole) return false;  // no record, no checkpoint: a resume redoes this epoch
  task.write_record(run_, end.record, epoch + 1);
  ++epochs_run_;
  if (!end.stop_early.empty()) {
    stop_early_ = end.stop_early;
    run_.log("stopping early: " + stop_early_);
    out_ << "stopping early: " << stop_early_ << "\n";
  }
  if (control_.on_epoch && !control_.on_epoch(end.report)) stopped_ = true;
  if ((epoch + 1) % options_.checkpoint_every == 0 || epoch + 1 == options_.epochs || stopped_ ||
      !stop_early_.empty()) {
    Checkpoint ck;
    ck.epoch = epoch + 1;
    task.fill_checkpoint(ck);
    save_checkpoint(run_.dir(), ck);
  }
  return !stopped_ && stop_early_.empty();
}

void EpochDriver::run(EpochTask& task) {
  start(task);
  task.before_epochs(run_);
  for (int64_t epoch = first_epoch_; epoch < options_.epochs && !task.finished(); ++epoch) {
    task.run_epoch(epoch, *this);
    if (!finish_epoch(task, epoch)) break;
  }
}

}  // namespace nas
