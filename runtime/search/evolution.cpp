#include "runtime/search/evolution.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <set>

#include "runtime/search/choice_modes.h"
#include "support/errors.h"
#include "support/format.h"

namespace nas {

ChoiceSelection random_architecture(const std::vector<ArchSpec>& groups, Rng& rng) {
  ChoiceSelection out(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const int n = static_cast<int>(groups[g].candidates.size());
    std::vector<int> order(n);
    for (int c = 0; c < n; ++c) order[c] = c;
    rng.shuffle(order);
    out[g].assign(order.begin(), order.begin() + std::min(groups[g].k, n));
  }
  return out;
}

ChoiceSelection mutate_architecture(const ChoiceSelection& parent,
                                    const std::vector<ArchSpec>& groups, double prob, Rng& rng) {
  NAS_CHECK(is_valid_selection(parent, groups), "mutating an invalid selection");
  ChoiceSelection child = parent;
  for (size_t g = 0; g < groups.size(); ++g) {
    const int n = static_cast<int>(groups[g].candidates.size());
    std::vector<int>& picks = child[g];
    for (int& pick : picks) {
      if (!(rng.uniform_float() < prob)) continue;
      // A candidate this group has not picked (a single choice: any other one).
      std::vector<int> free;
      for (int c = 0; c < n; ++c)
        if (std::find(picks.begin(), picks.end(), c) == picks.end()) free.push_back(c);
      if (!free.empty()) pick = free[rng.uniform(free.size())];
    }
  }
  return child;
}

ChoiceSelection cross_architectures(const ChoiceSelection& a, const ChoiceSelection& b,
                                    const std::vector<ArchSpec>& groups, Rng& rng) {
  NAS_CHECK(is_valid_selection(a, groups) && is_valid_selection(b, groups),
            "crossing invalid selections");
  ChoiceSelection child(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) child[g] = rng.coin() ? a[g] : b[g];
  return child;
}

bool is_valid_selection(const ChoiceSelection& sel, const std::vector<ArchSpec>& groups) {
  if (sel.size() != groups.size()) return false;
  for (size_t g = 0; g < groups.size(); ++g) {
    const int n = static_cast<int>(groups[g].candidates.size());
    if (static_cast<int>(sel[g].size()) != std::min(groups[g].k, n)) return false;
    std::set<int> distinct;
    for (int c : sel[g])
      if (c < 0 || c >= n || !distinct.insert(c).second) return false;
  }
  return true;
}

void recalibrate_batch_norm(Executor& training, ParamStore& store, const std::vector<char>& live,
                            const std::vector<Batch>& batches) {
  if (batches.empty()) return;
  struct Norm {
    StoredParam* mean;
    StoredParam* var;
    double momentum;
    std::vector<double> avg_mean, avg_var;
  };
  std::vector<Norm> norms;
  std::set<int> seen;
  const ExecPlan& plan = training.plan();
  for (const Step& s : plan.steps) {
    if (s.node >= plan.forward_nodes) break;  // forward steps come first
    if (s.running_mean < 0 || s.running_var < 0) continue;
    if (!live.empty() && s.guard >= 0 && s.guard < plan.forward_nodes && !live[s.guard]) continue;
    const int mean = store.find(plan.params[s.running_mean].name);
    const int var = store.find(plan.params[s.running_var].name);
    NAS_CHECK(mean >= 0 && var >= 0, "batch-norm statistics missing from the store");
    if (!seen.insert(mean).second) continue;
    const double momentum = s.float_attr("momentum");
    // With momentum 0 the running statistics never move: nothing to re-estimate.
    if (!(momentum > 0)) continue;
    norms.push_back({&store.params()[mean], &store.params()[var], momentum, {}, {}});
  }
  if (norms.empty()) return;
  // Each batch runs from zeroed statistics, so running = momentum * batch statistic and
  // the statistic is read back exactly (to float rounding); the average is kept in double.
  training.set_forward_only(true);
  for (size_t i = 0; i < batches.size(); ++i) {
    for (Norm& n : norms) {
      store.write(n.mean->value, std::vector<float>(n.mean->value.size(), 0.0f));
      store.write(n.var->value, std::vector<float>(n.var->value.size(), 0.0f));
    }
    const Batch& b = batches[i];
    training.set_dropout_seed(derive_seed(0x6b4e, i));
    training.run(b.images.data(), b.labels.data(), static_cast<int64_t>(b.size()));
    const double weight = 1.0 / static_cast<double>(i + 1);
    for (Norm& n : norms) {
      const std::vector<float> mean = store.read(n.mean->value), var = store.read(n.var->value);
      n.avg_mean.resize(mean.size(), 0.0);
      n.avg_var.resize(var.size(), 0.0);
      for (size_t c = 0; c < mean.size(); ++c) {
        n.avg_mean[c] += (mean[c] / n.momentum - n.avg_mean[c]) * weight;
        n.avg_var[c] += (var[c] / n.momentum - n.avg_var[c]) * weight;
      }
    }
  }
  training.set_forward_only(false);
  for (Norm& n : norms) {
    store.write(n.mean->value, std::vector<float>(n.avg_mean.begin(), n.avg_mean.end()));
    store.write(n.var->value, std::vector<float>(n.avg_var.begin(), n.avg_var.end()));
  }
}

namespace {

// Weight steps on single paths; the architecture comes later, from the evolution.
class EvolutionSupernet final : public SearchAlgorithm {
 public:
  explicit EvolutionSupernet(SearchContext ctx)
      : ctx_(ctx),
        mode_(ctx.config.evolution.path == "fair" ? ChoiceMode::Fair : ChoiceMode::Sample),
        groups_(ctx.weights.plan().arch) {
    for (const ArchSpec& g : groups_)
      uniform_.emplace_back(g.candidates.size(), 1.0 / static_cast<double>(g.candidates.size()));
  }

  void arch_step(const Batch&, const Batch&, int64_t, double, StepTotals&) override {}

  void prepare_weight_step(int64_t step, bool) override {
    const uint64_t seed = derive_seed(ctx_.config.base.seed, 0x5905);  // path stream
    ChoiceSelection path = select_path(mode_, groups_, uniform_, seed, step);
    std::vector<char> mask = ctx_.hooks.live_mask(path);
    active_ = active_weight_slots(ctx_.weights.plan(), ctx_.store, mask);
    ctx_.weights.use_selection(path);
    ctx_.weights.set_live_mask(std::move(mask));
  }

  std::vector<char> active_slots() const override { return active_; }

  bool derives_architecture() const override { return false; }

  GenotypeInfo genotype(const std::vector<std::vector<double>>&) override {
    internal_error(__FILE__, __LINE__, "the supernet phase of evolution has no genotype");
  }

 private:
  SearchContext ctx_;
  ChoiceMode mode_;
  std::vector<ArchSpec> groups_;
  std::vector<std::vector<double>> uniform_;
  std::vector<char> active_;
};

}  // namespace

std::unique_ptr<SearchAlgorithm> make_evolution_supernet(SearchContext ctx) {
  if (!ctx.hooks.live_mask || !ctx.hooks.describe || !ctx.hooks.cost)
    internal_error(__FILE__, __LINE__, "evolution needs the live_mask, describe and cost hooks");
  return std::make_unique<EvolutionSupernet>(ctx);
}

namespace {

struct Candidate {
  ChoiceSelection path;
  ArchCost cost;
  double valid_acc = 0, valid_loss = 0;
  int64_t generation = 0;
};

std::string path_key(const ChoiceSelection& path) {
  std::string key;
  for (const std::vector<int>& picks : path) {
    std::vector<int> sorted = picks;  // a join's picks are a set
    std::sort(sorted.begin(), sorted.end());
    for (int c : sorted) key += std::to_string(c) + ",";
    key += "|";
  }
  return key;
}

// Candidates timed at most, after the evolution, looking for one within a latency bound as
// measured: each run costs the table's warm-up and repetitions, a second or so.
constexpr size_t kMaxTimed = 10;

class Evolution {
 public:
  explicit Evolution(const EvolutionPhase& p)
      : p_(p),
        cfg_(p.config.evolution),
        reg_(p.config.regularizer),
        groups_(p.training.plan().arch),
        rng_(cfg_.seed >= 0 ? static_cast<uint64_t>(cfg_.seed)
                            : derive_seed(p.config.base.seed, 0xe7017)) {}

  EvolutionResult run();

 private:
  void load_batches();
  // The bound's verdict (always true without one), with the cost filled in.
  bool feasible(const ChoiceSelection& path, ArchCost& cost);
  // Adds `path` to the next population when it is valid, new and within the bound.
  bool offer(const ChoiceSelection& path, std::vector<Candidate>& next);
  std::vector<Candidate> first_population();
  std::vector<Candidate> next_population();
  void score(Candidate& c);
  // Scores a generation: this rank's share of it, then every rank's scores shared.
  void score_population(std::vector<Candidate>& pop);
  std::vector<size_t> ranked() const;  // all evaluated, best first
  // Times the best of `order` whole (measure_latency); under a latency bound, while the
  // measurement is over the bound, the next one, up to kMaxTimed. Returns the position in
  // `order` of the one kept (the first within the bound, else 0) and sets `measured` to its
  // latency.
  size_t time_best(const std::vector<size_t>& order, double& measured);
  std::vector<size_t> pareto_front() const;
  void write_pareto() const;

  const EvolutionPhase& p_;
  const EvolutionConfig& cfg_;
  const RegularizerConfig& reg_;
  const std::vector<ArchSpec>& groups_;
  Rng rng_;
  std::vector<Batch> bn_batches_, valid_batches_;
  std::vector<Candidate> evaluated_;
  std::set<std::string> seen_;  // evaluated or in the population being formed
  int64_t rejected_ = 0;        // draws over the bound, this generation
  int64_t feasible_draws_ = 0;  // draws within the bound, this generation
  double cheapest_ = INFINITY;  // the lowest cost drawn, for the error message
};

void Evolution::load_batches() {
  const SearchData& sd = p_.data;
  LoaderOptions to = sd.train_options;
  to.prefetch = false;
  Loader train(sd.data.train, sd.data.train_indices, to);
  train.start_epoch(0);
  Batch b;
  for (int64_t i = 0; i < cfg_.bn_batches && train.next(b); ++i) bn_batches_.push_back(b);
  LoaderOptions vo = sd.valid_options;
  vo.prefetch = false;
  vo.train = false;  // no augmentation
  vo.drop_last = false;
  Loader valid(sd.data.train, sd.data.valid_indices, vo);
  valid.start_epoch(0);  // shuffled once, the same for every candidate
  for (int64_t i = 0; (cfg_.valid_batches == 0 || i < cfg_.valid_batches) && valid.next(b); ++i)
    valid_batches_.push_back(b);
}

bool Evolution::feasible(const ChoiceSelection& path, ArchCost& cost) {
  cost = p_.hooks.cost(path);
  if (reg_.estimator == "none") return true;
  const double value = cost_in(cost, reg_.estimator);
  cheapest_ = std::min(cheapest_, value);
  const bool ok = value <= reg_.bound;
  ++(ok ? feasible_draws_ : rejected_);
  return ok;
}

bool Evolution::offer(const ChoiceSelection& path, std::vector<Candidate>& next) {
  if (!is_valid_selection(path, groups_) || seen_.count(path_key(path))) return false;
  Candidate c;
  if (!feasible(path, c.cost)) return false;
  c.path = path;
  seen_.insert(path_key(path));
  next.push_back(std::move(c));
  return true;
}

std::vector<Candidate> Evolution::first_population() {
  std::vector<Candidate> pop;
  for (int64_t draw = 0;
       draw < kMaxBoundDraws && static_cast<int64_t>(pop.size()) < cfg_.population; ++draw)
    offer(random_architecture(groups_, rng_), pop);
  if (pop.empty()) {
    NAS_CHECK(reg_.estimator != "none", "no architecture drawn without a bound");
    throw_no_draw_within_bound(reg_, cheapest_);
  }
  return pop;
}

std::vector<Candidate> Evolution::next_population() {
  const std::vector<size_t> order = ranked();
  const size_t k = std::min(order.size(), static_cast<size_t>(cfg_.parents));
  auto parent = [&]() -> const ChoiceSelection& { return evaluated_[order[rng_.uniform(k)]].path; };
  const int64_t crossed = std::llround(cfg_.crossover * static_cast<double>(cfg_.population));
  const int64_t mutated = cfg_.population - crossed;
  std::vector<Candidate> pop;
  for (int64_t t = 0; t < 10 * mutated && static_cast<int64_t>(pop.size()) < mutated; ++t)
    offer(mutate_architecture(parent(), groups_, cfg_.mutation_prob, rng_), pop);
  for (int64_t t = 0; t < 10 * crossed && static_cast<int64_t>(pop.size()) < cfg_.population; ++t)
    offer(cross_architectures(parent(), parent(), groups_, rng_), pop);
  // Too few new children (a small space, or parents that breed only themselves): new
  // random architectures fill the population, as far as unseen ones remain.
  for (int64_t draw = 0;
       draw < kMaxBoundDraws && static_cast<int64_t>(pop.size()) < cfg_.population; ++draw)
    offer(random_architecture(groups_, rng_), pop);
  return pop;
}

void Evolution::score(Candidate& c) {
  const std::vector<char> mask = p_.hooks.live_mask(c.path);
  p_.training.use_selection(c.path);
  p_.training.set_live_mask(mask);
  recalibrate_batch_norm(p_.training, p_.store, mask, bn_batches_);
  p_.eval.use_selection(c.path);
  p_.eval.set_live_mask(mask);
  double loss = 0;
  int64_t correct = 0, seen = 0;
  for (const Batch& b : valid_batches_) {
    RunResult r = p_.eval.run(b.images.data(), b.labels.data(), static_cast<int64_t>(b.size()));
    loss += r.loss_sum;
    correct += r.correct;
    seen += static_cast<int64_t>(b.size());
  }
  c.valid_loss = loss / static_cast<double>(std::max<int64_t>(1, seen));
  c.valid_acc = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, seen));
}

void Evolution::score_population(std::vector<Candidate>& pop) {
  const DataParallel& par = p_.parallel;
  // Per candidate: loss and accuracy, from the rank that scored it (zeros elsewhere).
  std::vector<double> scores(2 * pop.size(), 0.0);
  for (size_t i = 0; i < pop.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(par.ranks())) != par.rank()) continue;
    score(pop[i]);
    scores[2 * i] = pop[i].valid_loss;
    scores[2 * i + 1] = pop[i].valid_acc;
  }
  if (par.collectives == nullptr) return;
  par.collectives->sum(scores.data(), scores.size(), "evolution's scores");
  for (size_t i = 0; i < pop.size(); ++i) {
    pop[i].valid_loss = scores[2 * i];
    pop[i].valid_acc = scores[2 * i + 1];
  }
}

// Best first: accuracy, then the lower cost, then the earlier candidate.
std::vector<size_t> Evolution::ranked() const {
  std::vector<size_t> order(evaluated_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const std::string& est = reg_.estimator;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Candidate &x = evaluated_[a], &y = evaluated_[b];
    if (x.valid_acc != y.valid_acc) return x.valid_acc > y.valid_acc;
    return cost_in(x.cost, est) < cost_in(y.cost, est);
  });
  return order;
}

// The candidates no other beats on both accuracy (higher) and cost (lower), by cost.
std::vector<size_t> Evolution::pareto_front() const {
  const std::string& est = reg_.estimator;
  std::vector<size_t> front;
  for (size_t i = 0; i < evaluated_.size(); ++i) {
    const Candidate& c = evaluated_[i];
    bool dominated = false;
    for (size_t j = 0; j < evaluated_.size() && !dominated; ++j) {
      const Candidate& o = evaluated_[j];
      const double co = cost_in(o.cost, est), cc = cost_in(c.cost, est);
      dominated = o.valid_acc >= c.valid_acc && co <= cc &&
                  (o.valid_acc > c.valid_acc || co < cc || (co == cc && j < i));
    }
    if (!dominated) front.push_back(i);
  }
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    return cost_in(evaluated_[a].cost, est) < cost_in(evaluated_[b].cost, est);
  });
  return front;
}

void Evolution::write_pareto() const {
  const std::string cost = reg_.estimator == "none"      ? "params"
                           : reg_.estimator == "latency" ? "latency_ms"
                                                         : reg_.estimator;
  nlohmann::ordered_json j;
  j["cost"] = cost;
  j["bound"] =
      reg_.estimator == "none" ? nlohmann::ordered_json() : nlohmann::ordered_json(reg_.bound);
  j["evaluated"] = evaluated_.size();
  nlohmann::ordered_json front = nlohmann::ordered_json::array();
  for (size_t i : pareto_front()) {
    const Candidate& c = evaluated_[i];
    nlohmann::ordered_json e;
    e["choices"] =
        p_.hooks.describe(c.path).arch.value("choices", nlohmann::ordered_json::object());
    e["valid_acc"] = c.valid_acc;
    e["params"] = c.cost.params;
    e["macs"] = c.cost.macs;
    if (!std::isnan(c.cost.latency_ms)) e["latency_ms"] = c.cost.latency_ms;
    e["generation"] = c.generation;
    front.push_back(std::move(e));
  }
  j["front"] = std::move(front);
  // Every evaluated candidate as [cost, accuracy], for the report's scatter.
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const Candidate& c : evaluated_)
    all.push_back({cost_in(c.cost, reg_.estimator), c.valid_acc});
  j["points"] = std::move(all);
  p_.run.write_json("pareto.json", j);
}

size_t Evolution::time_best(const std::vector<size_t>& order, double& measured) {
  // The estimate decided feasibility; a network that runs slower than its table's entries
  // add up to (a table from another machine, a busy one) is caught here, so the result
  // keeps the bound as measured, not only as estimated.
  const bool bounded = reg_.estimator == "latency";
  const size_t tries = bounded ? std::min(order.size(), kMaxTimed) : 1;
  double first = NAN;
  for (size_t t = 0; t < tries; ++t) {
    const Candidate& c = evaluated_[order[t]];
    measured = p_.hooks.measure_latency(c.path);
    if (t == 0) first = measured;
    if (!bounded || measured <= reg_.bound) return t;
    const std::string line = fmt::format(
        "timed: candidate {} of the ranking ({:.2f}% valid, {:.4f} ms estimated) runs in {:.4f} "
        "ms, over the {} ms bound{}",
        t + 1, 100 * c.valid_acc, c.cost.latency_ms, measured, reg_.bound,
        t + 1 < tries ? "; timing the next" : "");
    p_.out << line << "\n";
    p_.run.log(line);
  }
  measured = first;
  return 0;
}

EvolutionResult Evolution::run() {
  load_batches();
  std::ofstream records(p_.run.path("evolution.jsonl"), std::ios::trunc);  // a resume redoes it
  const std::string start = fmt::format(
      "evolution: population {}, {} generations, top-{} parents, mutation {}, crossover {}; "
      "batch-norm recalibrated on {} training batches, scored on {} validation batches{}",
      cfg_.population, cfg_.generations, cfg_.parents, cfg_.mutation_prob, cfg_.crossover,
      bn_batches_.size(), valid_batches_.size(),
      reg_.estimator == "none"
          ? std::string()
          : fmt::format("; {} bound {} {}", reg_.estimator, reg_.bound, cost_unit(reg_.estimator)));
  p_.out << start << "\n";
  p_.run.log(start);
  for (int64_t gen = 0; gen < cfg_.generations; ++gen) {
    const auto t0 = std::chrono::steady_clock::now();
    rejected_ = feasible_draws_ = 0;
    std::vector<Candidate> pop = gen == 0 ? first_population() : next_population();
    if (pop.empty()) {  // every feasible architecture has been scored
      const std::string line =
          fmt::format("generation {}/{}: no unseen architecture within the bound is left; stopping",
                      gen + 1, cfg_.generations);
      p_.out << line << "\n";
      p_.run.log(line);
      break;
    }
    score_population(pop);
    double sum = 0;
    for (Candidate& c : pop) {
      c.generation = gen + 1;
      sum += c.valid_acc;
      evaluated_.push_back(c);
    }
    const Candidate& best = evaluated_[ranked().front()];
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double mean = sum / static_cast<double>(pop.size());
    const std::string line = fmt::format(
        "generation {}/{}: {} candidates | best {:.2f}% (so far) | mean {:.2f}% | {} "
        "feasible, {} over the bound | {:.1f} s",
        gen + 1, cfg_.generations, pop.size(), 100 * best.valid_acc, 100 * mean,
        reg_.estimator == "none" ? static_cast<int64_t>(pop.size()) : feasible_draws_, rejected_,
        seconds);
    p_.out << line << "\n";
    p_.run.log(line);
    nlohmann::ordered_json rec;
    rec["generation"] = gen + 1;
    rec["candidates"] = pop.size();
    rec["best_valid_acc"] = best.valid_acc;
    rec["mean_valid_acc"] = mean;
    rec["feasible"] = reg_.estimator == "none" ? static_cast<int64_t>(pop.size()) : feasible_draws_;
    rec["over_bound"] = rejected_;
    rec["seconds"] = seconds;
    records << rec.dump() << "\n" << std::flush;
  }
  write_pareto();

  std::vector<size_t> order = ranked();
  double measured = NAN;
  if (p_.hooks.measure_latency) {
    // The kept candidate leads the ranking (--rerank's candidates). Timings differ from
    // rank to rank, so rank 0's decide for all.
    double decision[2] = {0, NAN};
    if (p_.parallel.rank() == 0) {
      decision[0] = static_cast<double>(time_best(order, measured));
      decision[1] = measured;
    }
    if (p_.parallel.collectives)
      p_.parallel.collectives->broadcast(decision, sizeof decision, 0, "evolution's timing");
    measured = decision[1];
    const auto kept = order.begin() + static_cast<std::ptrdiff_t>(decision[0]);
    std::rotate(order.begin(), kept, kept + 1);
  }
  const Candidate& best = evaluated_[order.front()];
  EvolutionResult res;
  for (size_t i : order)
    res.ranked.push_back({evaluated_[i].path, evaluated_[i].valid_acc, evaluated_[i].generation});
  res.best = p_.hooks.describe(best.path);
  res.valid_accuracy = best.valid_acc;
  res.best.measured_latency_ms = measured;
  nlohmann::ordered_json arch = res.best.arch;
  arch["valid_acc"] = best.valid_acc;
  arch["generation"] = best.generation;
  arch["params"] = res.best.params;
  arch["macs"] = res.best.macs;
  if (!std::isnan(res.best.latency_ms)) arch["latency_ms"] = res.best.latency_ms;
  if (!std::isnan(res.best.measured_latency_ms))
    arch["measured_latency_ms"] = res.best.measured_latency_ms;
  p_.run.write_json("arch.json", arch);
  std::string line = fmt::format(
      "best: {:.2f}% valid (generation {}) | {} params, {} MACs", 100 * best.valid_acc,
      best.generation, with_commas(std::llround(res.best.params)), human_count(res.best.macs));
  if (!std::isnan(res.best.latency_ms))
    line += fmt::format(" | latency {:.4f} ms estimated", res.best.latency_ms);
  if (!std::isnan(res.best.measured_latency_ms))
    line += fmt::format(", {:.4f} ms measured", res.best.measured_latency_ms);
  p_.out << line << "\n";
  p_.run.log(line);
  if (reg_.estimator == "latency" && res.best.measured_latency_ms > reg_.bound) {
    const std::string note = fmt::format(
        "note: none of the {} best candidates runs within the bound {} ms as measured (the best: "
        "{:.4f} ms), though the table's estimates keep it; re-profile the table on this machine "
        "(`nasc profile`) or lower the bound",
        std::min(order.size(), kMaxTimed), reg_.bound, res.best.measured_latency_ms);
    p_.out << note << "\n";
    p_.run.log(note);
  }
  return res;
}

}  // namespace

EvolutionResult run_evolution(const EvolutionPhase& phase) {
  return Evolution(phase).run();
}

}  // namespace nas
