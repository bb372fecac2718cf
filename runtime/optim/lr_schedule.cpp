#include "runtime/optim/lr_schedule.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "support/errors.h"

namespace nas {

namespace {

// The config parser has checked every field a user can set, so a bad value here is a
// caller's bug.
[[noreturn]] void bad(const std::string& field, const std::string& rule, const std::string& got) {
  internal_error(__FILE__, __LINE__, field + ": " + rule + ", got " + got);
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

// Converts optimizer steps to schedule units (epochs or steps) and checks the run length.
struct Clock {
  bool per_epoch;
  int64_t steps_per_epoch;

  void check(int64_t step, int64_t total) const {
    if (total <= 0) bad("total_steps", "must be > 0", std::to_string(total));
    if (step < 0) bad("step", "must be >= 0", std::to_string(step));
  }
  int64_t units(int64_t step) const { return per_epoch ? step / steps_per_epoch : step; }
  // A partial last epoch still counts as an epoch.
  int64_t total_units(int64_t total) const {
    return per_epoch ? (total + steps_per_epoch - 1) / steps_per_epoch : total;
  }
};

double cosine(double base, double eta_min, int64_t t, int64_t T) {
  if (t >= T) return eta_min;
  const double pi = std::acos(-1.0);
  return eta_min + (base - eta_min) * (1 + std::cos(pi * static_cast<double>(t) / T)) / 2;
}

class Schedule : public LrSchedule {
 public:
  Schedule(ScheduleConfig cfg, double base, Clock clock)
      : cfg_(std::move(cfg)), base_(base), clock_(clock) {}

  double lr_at(int64_t step, int64_t total_steps) const override {
    clock_.check(step, total_steps);
    const int64_t t = clock_.units(step), T = clock_.total_units(total_steps);
    const std::string& n = cfg_.name;
    if (n == "constant") return base_;
    if (n == "cosine") return cosine(base_, cfg_.eta_min, t, T);
    if (n == "step") return base_ * std::pow(cfg_.gamma, static_cast<double>(t / cfg_.step_size));
    // warmup_cosine: linear ramp reaching base_ on the last warmup unit, then cosine over
    // the remaining units.
    const int64_t W = cfg_.warmup;
    if (W > T)
      // The one check the parser cannot make: the run's length is known only now.
      throw ConfigError("", "schedule.warmup",
                        "must not exceed the run length (" + std::to_string(T) + " " + cfg_.unit +
                            "s), got " + std::to_string(W));
    if (t < W) return base_ * static_cast<double>(t + 1) / static_cast<double>(W);
    return cosine(base_, cfg_.eta_min, t - W, T - W);
  }

 private:
  ScheduleConfig cfg_;
  double base_;
  Clock clock_;
};

}  // namespace

std::unique_ptr<LrSchedule> make_schedule(const ScheduleConfig& cfg, double base_lr,
                                          int64_t steps_per_epoch) {
  const std::string& n = cfg.name;
  if (n != "constant" && n != "cosine" && n != "step" && n != "warmup_cosine")
    bad("schedule.name", "must be one of constant, cosine, step, warmup_cosine", "'" + n + "'");
  if (cfg.unit != "epoch" && cfg.unit != "step")
    bad("schedule.unit", "must be 'epoch' or 'step'", "'" + cfg.unit + "'");
  if (!std::isfinite(base_lr) || base_lr < 0)
    bad("lr", "must be a finite number >= 0", num(base_lr));
  if (!std::isfinite(cfg.eta_min) || cfg.eta_min < 0)
    bad("schedule.eta_min", "must be a finite number >= 0", num(cfg.eta_min));
  if (cfg.step_size < 1) bad("schedule.step_size", "must be >= 1", std::to_string(cfg.step_size));
  if (!std::isfinite(cfg.gamma) || cfg.gamma <= 0)
    bad("schedule.gamma", "must be a finite number > 0", num(cfg.gamma));
  if (cfg.warmup < 0) bad("schedule.warmup", "must be >= 0", std::to_string(cfg.warmup));
  if (n == "warmup_cosine" && cfg.warmup == 0)
    bad("schedule.warmup", "must be >= 1 for warmup_cosine (use cosine for no warmup)", "0");
  if (steps_per_epoch < 1) bad("steps_per_epoch", "must be >= 1", std::to_string(steps_per_epoch));
  return std::make_unique<Schedule>(cfg, base_lr, Clock{cfg.unit == "epoch", steps_per_epoch});
}

}  // namespace nas
