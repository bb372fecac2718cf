#include "runtime/estimate/profiler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <stdexcept>

#include "runtime/estimate/signature.h"
#include "runtime/exec/backend.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/param_store.h"
#include "support/errors.h"

namespace nas {
namespace {

using Clock = std::chrono::steady_clock;

double since_ms(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Runs `once` warmup times, then takes `repetitions` samples of `inner` runs each, with
// `inner` chosen from one timed run so that a sample lasts min_sample_us.
std::vector<double> sample(const std::function<void()>& once, const MeasureSettings& s) {
  for (int i = 0; i < s.warmup; ++i) once();
  auto t0 = Clock::now();
  once();
  double first = std::max(since_ms(t0), 1e-6);
  int inner = static_cast<int>(std::clamp(std::ceil(s.min_sample_us / 1000.0 / first), 1.0, 1e4));
  std::vector<double> out;
  for (int r = 0; r < s.repetitions; ++r) {
    auto t = Clock::now();
    for (int i = 0; i < inner; ++i) once();
    out.push_back(since_ms(t) / inner);
  }
  return out;
}

// Steps cut out of a plan into a plan of their own, with buffers for every value.
class MicroPlan {
 public:
  MicroPlan(const ExecPlan& plan, const std::vector<int>& steps, int active,
            const std::string& backend) {
    micro_.batch = plan.batch;
    micro_.training = plan.training;
    std::map<int, int> value, param, state, group;
    auto value_of = [&](int old, bool external) {
      auto it = value.find(old);
      if (it != value.end()) return it->second;
      int id = static_cast<int>(micro_.values.size());
      ValueSlot slot;
      slot.storage = external ? ValueStorage::Input : ValueStorage::Arena;
      slot.elements = plan.values[old].elements;
      slot.layout = plan.values[old].layout;  // a conv epilogue's kernel depends on it
      slot.root = id;
      micro_.values.push_back(slot);
      external_.push_back(external);
      value[old] = id;
      return id;
    };
    auto param_of = [&](int old) {
      if (old < 0) return -1;
      auto [it, fresh] = param.emplace(old, static_cast<int>(micro_.params.size()));
      if (fresh) micro_.params.push_back(plan.params[old]);
      return it->second;
    };
    for (int index : steps) {
      Step s = plan.steps[index];
      if (s.kind == StepKind::Choice && active > 0 && active < static_cast<int>(s.inputs.size())) {
        s.inputs.resize(active);
        s.input_shapes.resize(active);
      }
      for (int& in : s.inputs) in = value_of(in, true);
      s.node = value_of(s.node, false);
      // A view reads its input's storage; give it the same buffer.
      if (s.kind == StepKind::View && !s.inputs.empty()) view_of_[s.node] = s.inputs[0];
      s.guard = -1;
      s.weight = param_of(s.weight);
      s.bias = param_of(s.bias);
      s.running_mean = param_of(s.running_mean);
      s.running_var = param_of(s.running_var);
      for (RegionOp& op : s.region) {  // a conv epilogue's batch norm
        op.weight = param_of(op.weight);
        op.bias = param_of(op.bias);
        op.running_mean = param_of(op.running_mean);
        op.running_var = param_of(op.running_var);
      }
      if (s.state >= 0) {
        auto [it, fresh] = state.emplace(s.state, micro_.num_states);
        if (fresh) ++micro_.num_states;
        s.state = it->second;
      }
      if (s.group >= 0) {
        auto [it, fresh] = group.emplace(s.group, static_cast<int>(micro_.arch.size()));
        if (fresh) {
          ArchSpec a = plan.arch[s.group];
          a.candidates.resize(s.inputs.size());
          micro_.arch.push_back(a);
        }
        s.group = it->second;
      }
      micro_.steps.push_back(std::move(s));
    }
    backend_ = make_backend(backend);
    prepared_ = backend_->prepare(micro_);
    std::mt19937 rng(12345);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    st_.values.assign(micro_.values.size(), nullptr);
    st_.computed.assign(micro_.values.size(), 0);
    for (size_t v = 0; v < micro_.values.size(); ++v) {
      if (view_of_.count(static_cast<int>(v))) continue;
      std::vector<float> x(static_cast<size_t>(std::max<int64_t>(micro_.values[v].elements, 1)));
      for (int64_t i = 0; i < micro_.values[v].elements; ++i) x[i] = u(rng);
      st_.values[v] = upload(x);
      st_.computed[v] = external_[v];
    }
    for (const auto& [v, root] : view_of_) st_.values[v] = st_.values[root];
    for (const ParamSpec& p : micro_.params) {
      std::vector<float> x(static_cast<size_t>(std::max<int64_t>(shape_elements(p.shape), 1)));
      // As the store initialises them: batch-norm variances 1 (no NaNs), weights random.
      const float scale = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(p.fan_in, 1)));
      for (float& w : x)
        w = p.init == ParamInit::Ones ? 1.0f : p.init == ParamInit::Zeros ? 0.0f : u(rng) * scale;
      st_.param.push_back(upload(x));
      st_.param_generation.push_back(buffers_.back().generation());
      st_.grad.push_back(nullptr);
    }
    for (const ArchSpec& a : micro_.arch)
      st_.choice_weights.push_back(
          std::vector<float>(a.candidates.size(), 1.0f / static_cast<float>(a.candidates.size())));
    st_.choice_weight_grads.resize(micro_.arch.size());
    prepared_->upload_choice_weights(st_);
    st_.valid_samples = micro_.batch;
    buffers_.emplace_back(*backend_, 2, DType::F64);
    st_.metrics = static_cast<double*>(buffers_.back().raw());
  }
  MicroPlan(const MicroPlan&) = delete;
  MicroPlan& operator=(const MicroPlan&) = delete;

  void run() {
    for (size_t i = 0; i < micro_.steps.size(); ++i)
      if (prepared_->run(i, st_)) st_.computed[micro_.steps[i].node] = 1;
    backend_->synchronize();
  }

 private:
  float* upload(const std::vector<float>& host) {
    buffers_.emplace_back(*backend_, host.size());
    upload_floats(*backend_, buffers_.back(), host);
    return buffers_.back().data();
  }

  ExecPlan micro_;
  std::vector<bool> external_;
  std::map<int, int> view_of_;
  std::shared_ptr<Backend> backend_;
  std::deque<DeviceBuffer> buffers_;  // before prepared_: the kernels go first
  std::unique_ptr<PreparedPlan> prepared_;
  RunState st_;
};

}  // namespace

LutEntry summarise(std::vector<double> samples, const MeasureSettings& s) {
  NAS_CHECK(!samples.empty(), "no samples to summarise");  // repetitions >= 1 is checked
  std::sort(samples.begin(), samples.end());
  size_t drop = static_cast<size_t>(std::floor(s.trim * static_cast<double>(samples.size())));
  if (2 * drop >= samples.size()) drop = (samples.size() - 1) / 2;
  std::vector<double> kept(samples.begin() + static_cast<std::ptrdiff_t>(drop),
                           samples.end() - static_cast<std::ptrdiff_t>(drop));
  LutEntry e;
  size_t n = kept.size();
  e.median_ms = n % 2 ? kept[n / 2] : 0.5 * (kept[n / 2 - 1] + kept[n / 2]);
  double sum = 0;
  for (double x : kept) sum += x;
  e.mean_ms = sum / static_cast<double>(n);
  e.min_ms = samples.front();
  e.max_ms = samples.back();
  e.samples = static_cast<int>(samples.size());
  e.ms = s.statistic == "min" ? e.min_ms : s.statistic == "median" ? e.median_ms : e.mean_ms;
  return e;
}

LutEntry measure_steps(const std::string& backend, const ExecPlan& plan,
                       const std::vector<int>& steps, const MeasureSettings& settings, int active) {
  MicroPlan micro(plan, steps, active, backend);
  return summarise(sample([&] { micro.run(); }, settings), settings);
}

LutEntry measure_plan(const std::string& backend, const ExecPlan& plan,
                      const MeasureSettings& settings, const std::vector<std::vector<int>>* chosen,
                      const std::vector<char>& live) {
  ParamStore store(make_backend(backend));
  Executor exec(plan, store, 1);
  if (chosen) {
    exec.use_selection(*chosen);
    exec.set_live_mask(live);
  }
  std::vector<float> images(static_cast<size_t>(plan.batch * shape_elements(plan.input_shape)));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& x : images) x = u(rng);
  MeasureSettings whole = settings;
  whole.min_sample_us = 0;  // one network run per sample
  return summarise(sample([&] { exec.run(images.data(), nullptr, plan.batch); }, whole), whole);
}

ProfileStats profile_into(LatencyTable& table, const ExecPlan& plan,
                          const std::vector<ProfileJob>& jobs, const std::string& path,
                          std::ostream* log, double save_every_s) {
  ProfileStats stats;
  std::vector<const ProfileJob*> todo;
  for (const ProfileJob& j : jobs) {
    if (table.entries.count(j.signature))
      ++stats.skipped;
    else
      todo.push_back(&j);
  }
  if (log)
    *log << "profiling " << todo.size() << " signature" << (todo.size() == 1 ? "" : "s") << " ("
         << stats.skipped << " already in the table)\n";
  auto last_save = Clock::now();
  for (size_t i = 0; i < todo.size(); ++i) {
    const ProfileJob& j = *todo[i];
    LutEntry e = measure_steps(table.device.backend, plan, j.steps, table.settings, j.active);
    if (j.unit) {
      e.kind = "unit";
      for (int s : j.steps)
        if (step_has_cost(plan.steps[s]))
          e.steps.push_back(step_signature(table.device.backend, plan, plan.steps[s]));
    }
    table.entries[j.signature] = e;
    ++stats.measured;
    if (log) {
      char ms[32];
      std::snprintf(ms, sizeof ms, "%.4f", e.ms);
      *log << "[" << i + 1 << "/" << todo.size() << "] " << ms << " ms  "
           << (j.unit ? j.signature + " (" + std::to_string(e.steps.size()) + " steps)"
                      : j.signature)
           << "\n";
      log->flush();
    }
    if (!path.empty() && since_ms(last_save) >= 1000 * save_every_s) {
      save_lut(table, path);
      last_save = Clock::now();
    }
  }
  if (!path.empty()) save_lut(table, path);
  return stats;
}

ProfileStats profile_units_in_context(LatencyTable& table, const ExecPlan& plan,
                                      const std::vector<int>& unit_of_step,
                                      const std::vector<ContextRound>& rounds,
                                      const std::string& path, std::ostream* log,
                                      double save_every_s) {
  ProfileStats stats;
  const std::string& backend = table.device.backend;
  int units = 0;
  for (int u : unit_of_step) units = std::max(units, u + 1);
  std::vector<std::vector<int>> members(units);
  for (size_t i = 0; i < unit_of_step.size(); ++i)
    if (unit_of_step[i] >= 0) members[unit_of_step[i]].push_back(static_cast<int>(i));
  std::vector<std::string> signature(units);
  for (int u = 0; u < units; ++u) signature[u] = unit_signature(backend, plan, members[u]);

  ParamStore store(make_backend(backend));
  std::unique_ptr<Executor> exec;
  std::vector<float> images;
  auto last_save = Clock::now();
  for (size_t r = 0; r < rounds.size(); ++r) {
    const ContextRound& round = rounds[r];
    auto live = [&](int step) {
      int g = plan.steps[step].guard;
      return round.live.empty() || g < 0 || round.live[g];
    };
    std::vector<int> wanted;  // units fully live here and not yet in the table
    std::set<std::string> names;
    for (int u = 0; u < units; ++u) {
      bool all = true;
      for (int s : members[u]) all = all && live(s);
      if (!all) continue;
      if (table.entries.count(signature[u])) {
        if (names.insert(signature[u]).second) ++stats.skipped;
        continue;
      }
      wanted.push_back(u);
      names.insert(signature[u]);
    }
    if (wanted.empty()) continue;
    if (!exec) {
      exec = std::make_unique<Executor>(plan, store, 1);
      images.resize(static_cast<size_t>(plan.batch * shape_elements(plan.input_shape)));
      std::mt19937 rng(7);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (float& x : images) x = u(rng);
    }
    exec->use_selection(round.chosen);
    exec->set_live_mask(round.live);
    exec->set_step_timing(false);
    for (int i = 0; i < table.settings.warmup; ++i) exec->run(images.data(), nullptr, plan.batch);
    exec->set_step_timing(true);
    std::map<std::string, std::vector<double>> samples;
    std::map<std::string, int> first_unit;
    for (int rep = 0; rep < table.settings.repetitions; ++rep) {
      exec->run(images.data(), nullptr, plan.batch);
      const std::vector<double>& t = exec->step_seconds();
      for (int u : wanted) {
        double sum = 0;
        for (int s : members[u]) sum += t[s];
        samples[signature[u]].push_back(1000 * sum);
        first_unit.emplace(signature[u], u);
      }
    }
    exec->set_step_timing(false);
    for (auto& [sig, xs] : samples) {
      LutEntry e = summarise(xs, table.settings);
      e.kind = "unit";
      e.in_network = true;
      for (int s : members[first_unit[sig]])
        if (step_has_cost(plan.steps[s]))
          e.steps.push_back(step_signature(backend, plan, plan.steps[s]));
      table.entries[sig] = e;
      ++stats.measured;
      if (log) {
        char ms[32];
        std::snprintf(ms, sizeof ms, "%.4f", e.ms);
        *log << "[round " << r + 1 << "/" << rounds.size() << "] " << ms << " ms  " << sig << " ("
             << e.steps.size() << " steps, in context)\n";
      }
    }
    if (log) log->flush();
    if (!path.empty() && since_ms(last_save) >= 1000 * save_every_s) {
      save_lut(table, path);
      last_save = Clock::now();
    }
  }
  if (!path.empty() && stats.measured > 0) save_lut(table, path);
  return stats;
}

}  // namespace nas
