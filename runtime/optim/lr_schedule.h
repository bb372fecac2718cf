// Learning-rate schedules as pure functions of training progress, so that a resumed run
// (which restores only the step count) gets exactly the same learning rates.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace nas {

struct ScheduleConfig {
  std::string name = "constant";  // constant | cosine | step | warmup_cosine
  // "epoch": the rate changes once per epoch (PyTorch scheduler.step() per epoch, as in
  // DARTS); "step": it changes every optimizer step.
  std::string unit = "epoch";
  double eta_min = 0;     // cosine, warmup_cosine: final rate
  int64_t step_size = 1;  // step: decay period, in units
  double gamma = 0.1;     // step: decay factor
  int64_t warmup = 0;     // warmup_cosine: warmup length, in units
};

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  // Rate for optimizer step `step` (0-based) of a run of `total_steps` steps. Steps at or
  // past the end keep the final rate. Throws ConfigError at "schedule.warmup" (relative
  // to the optimizer's section) when the warmup is longer than the run.
  virtual double lr_at(int64_t step, int64_t total_steps) const = 0;
};

// base_lr is the optimizer's lr; steps_per_epoch converts steps to epochs for unit
// "epoch" (ignored for "step"). The config parser has checked the fields a user sets, so
// a bad one here (schedule.name, unit, eta_min, step_size, gamma, warmup, lr,
// steps_per_epoch) is an InternalError naming it.
std::unique_ptr<LrSchedule> make_schedule(const ScheduleConfig& cfg, double base_lr,
                                          int64_t steps_per_epoch = 1);

}  // namespace nas
