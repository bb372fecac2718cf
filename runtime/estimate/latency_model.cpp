#include "runtime/estimate/latency_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "runtime/estimate/signature.h"

namespace nas {
namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

bool live_step(const Step& s, const std::vector<char>* live) {
  return live == nullptr || live->empty() || s.guard < 0 || (*live)[s.guard];
}

// Whether a choice input is a Zero step (value ids are node ids are step indices).
bool nonzero_input(const ExecPlan& plan, int value) {
  return plan.steps[value].kind != StepKind::Zero;
}

int active_count(const ExecPlan& plan, const Step& s, const std::vector<int>& chosen) {
  int m = 0;
  for (int c : chosen)
    if (c >= 0 && c < static_cast<int>(s.inputs.size()) && nonzero_input(plan, s.inputs[c])) ++m;
  return m;
}

std::vector<std::vector<int>> unit_steps(const std::vector<int>& unit_of_step) {
  int units = 0;
  for (int u : unit_of_step) units = std::max(units, u + 1);
  std::vector<std::vector<int>> out(units);
  for (size_t i = 0; i < unit_of_step.size(); ++i)
    if (unit_of_step[i] >= 0) out[unit_of_step[i]].push_back(static_cast<int>(i));
  return out;
}

}  // namespace

std::vector<ProfileJob> profile_jobs(const ExecPlan& plan, const std::vector<int>& unit_of_step,
                                     const std::string& backend,
                                     const std::vector<std::vector<int>>* chosen,
                                     const std::vector<char>* live) {
  std::vector<ProfileJob> jobs;
  std::set<std::string> seen;
  auto add = [&](ProfileJob j) {
    if (seen.insert(j.signature).second) jobs.push_back(std::move(j));
  };
  auto add_choice = [&](const Step& s, int index, int m) {
    if (m >= 2) add({step_signature(backend, plan, s, m), {index}, m, false});
  };
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const Step& s = plan.steps[i];
    if (!step_has_cost(s) || !live_step(s, live)) continue;
    const int index = static_cast<int>(i);
    if (s.kind != StepKind::Choice) {
      add({step_signature(backend, plan, s), {index}, -1, false});
    } else if (chosen) {
      add_choice(s, index, active_count(plan, s, (*chosen)[s.group]));
    } else {
      const int n = static_cast<int>(s.inputs.size());
      add_choice(s, index, n);
      for (int m = 2; m <= std::min(plan.arch[s.group].k, n); ++m) add_choice(s, index, m);
    }
  }
  for (const std::vector<int>& steps : unit_steps(unit_of_step)) {
    if (steps.empty()) continue;
    bool all_live = true;
    for (int i : steps) all_live = all_live && live_step(plan.steps[i], live);
    if (all_live) add({unit_signature(backend, plan, steps), steps, -1, true});
  }
  return jobs;
}

LatencyModel::LatencyModel(const ExecPlan& plan, const std::vector<int>& unit_of_step,
                           const LatencyTable& lut)
    : plan_(&plan), units_(unit_of_step), lut_(&lut) {
  const std::string& backend = lut.device.backend;
  auto lookup = [&](const std::string& sig) {
    auto it = lut.entries.find(sig);
    return it == lut.entries.end() ? kMissing : it->second.ms;
  };
  std::vector<std::vector<int>> units = unit_steps(units_);
  unit_size_.assign(units.size(), 0);
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const Step& s = plan.steps[i];
    if (!step_has_cost(s)) continue;
    CostedStep c;
    c.guard = s.guard;
    c.unit = s.kind == StepKind::Choice ? -1 : units_[i];
    if (c.unit >= 0) ++unit_size_[c.unit];
    int choice = -1;
    if (s.kind == StepKind::Choice) {
      ChoiceCost cc;
      const int n = static_cast<int>(s.inputs.size());
      for (int in : s.inputs) cc.nonzero.push_back(nonzero_input(plan, in) ? 1 : 0);
      cc.by_active.assign(n + 1, 0.0);
      for (int m = 2; m <= n; ++m) cc.by_active[m] = lookup(step_signature(backend, plan, s, m));
      c.group = s.group;
      choice = static_cast<int>(choices_.size());
      choices_.push_back(std::move(cc));
    } else {
      c.ms = lookup(step_signature(backend, plan, s));
    }
    steps_.push_back(c);
    choice_of_step_.push_back(choice);
  }
  for (const std::vector<int>& steps : units)
    unit_ms_.push_back(steps.empty() ? 0.0 : lookup(unit_signature(backend, plan, steps)));
  unit_live_.assign(units.size(), 0);
  unit_sum_.assign(units.size(), 0.0);
}

std::vector<std::string> LatencyModel::missing(const std::vector<std::vector<int>>* chosen,
                                               const std::vector<char>* live) const {
  std::vector<std::string> out;
  for (const ProfileJob& j : profile_jobs(*plan_, units_, lut_->device.backend, chosen, live))
    if (!lut_->entries.count(j.signature)) out.push_back(j.signature);
  return out;
}

LatencyEstimate LatencyModel::estimate(const std::vector<std::vector<int>>* chosen,
                                       const std::vector<char>& live) {
  std::fill(unit_live_.begin(), unit_live_.end(), 0);
  std::fill(unit_sum_.begin(), unit_sum_.end(), 0.0);
  const bool masked = !live.empty();
  double total = 0, loose = 0;
  for (size_t k = 0; k < steps_.size(); ++k) {
    const CostedStep& c = steps_[k];
    if (masked && c.guard >= 0 && !live[c.guard]) continue;
    double ms = c.ms;
    if (choice_of_step_[k] >= 0) {
      const ChoiceCost& cc = choices_[choice_of_step_[k]];
      int m = 0;
      if (chosen) {
        for (int i : (*chosen)[c.group]) m += cc.nonzero[i];
      } else {
        m = static_cast<int>(cc.nonzero.size());
      }
      ms = cc.by_active[m];
    }
    total += ms;
    if (c.unit >= 0) {
      ++unit_live_[c.unit];
      unit_sum_[c.unit] += ms;
    } else {
      loose += ms;
    }
  }
  double fused = loose;
  for (size_t u = 0; u < unit_ms_.size(); ++u)
    fused += unit_live_[u] == unit_size_[u] ? unit_ms_[u] : unit_sum_[u];
  return {total, fused};
}

std::vector<double> LatencyModel::node_ms(size_t nodes) const {
  std::vector<double> out(nodes, 0.0);
  for (const CostedStep& c : steps_)
    if (c.group < 0 && c.guard >= 0 && static_cast<size_t>(c.guard) < nodes && !std::isnan(c.ms))
      out[c.guard] += c.ms;
  return out;
}

}  // namespace nas
