// Random search, the baseline any search must beat: `random.samples` architectures drawn
// uniformly (every choice independently; a join draws k distinct candidates) among those
// within the regularizer's bound, if one is set (as SPOS compares evolution with random
// search under the same FLOPs limit: over-bound draws are redrawn), each
// trained from freshly initialised weights for `epochs` epochs on the training split with
// the "train" optimizer and schedule, then evaluated on the validation split; the best
// validation accuracy wins (ties: the earlier one). Each architecture runs on the
// supernet's plans in selected mode through its live-step mask, so it costs what the
// architecture alone costs and nothing is recompiled (scratch_trial.h).
//
// The checkpoint records how many architectures are done and the best so far; --resume
// retrains the interrupted architecture from its start (the draw and the training are
// pure functions of the seed, so the outcome is the same as an uninterrupted run).
//
// Over N ranks (docs/scaling.md) the architectures are trained in rounds of N: rank r
// trains architecture i + r of the round that starts at i, each on the whole data, and
// the ranks then share their scores, so every rank records every architecture as one
// process would, in order.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>

#include "runtime/cpu/threads.h"
#include "runtime/search/choice_modes.h"
#include "runtime/search/rerank.h"
#include "runtime/search/scratch_trial.h"
#include "runtime/search/search_run.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/epoch_driver.h"
#include "runtime/train/progress.h"
#include "support/format.h"
#include "support/rng.h"

namespace nas {
namespace {

// Random search's "epochs" for the epoch driver: one per architecture, trained from
// scratch, with its record, samples/arch_NNN.json, the best so far in arch.json, and the
// count and best in the checkpoint (which holds no weights).
class RandomEpochs final : public EpochTask {
 public:
  RandomEpochs(const SearchSetup& setup, const SearchData& sd, const nlohmann::json& meta,
               std::ostream& out)
      : setup_(setup),
        parallel_(setup.parallel),
        cfg_(setup.config),
        base_(setup.config.base),
        sd_(sd),
        meta_(meta),
        out_(out),
        groups_(setup.weight_plan.arch),
        draw_seed_(derive_seed(base_.seed, 0x7a3d)),
        count_(cfg_.random.samples) {
    for (const ArchSpec& g : groups_)
      uniform_.emplace_back(g.candidates.size(), 1.0 / static_cast<double>(g.candidates.size()));
  }

  void start_fresh(RunDir& run) override {
    run.write_json("config.json", search_config_to_json(cfg_));
    const RegularizerConfig& reg = cfg_.regularizer;
    run.log(fmt::format(
        "search {} (random): {} architectures of {} choices{}, each trained {} epochs on {} "
        "samples and validated on {}",
        meta_.value("network", std::string("network")), count_, groups_.size(),
        reg.estimator == "none" ? ""
                                : fmt::format(" within the {} bound {} {}", reg.estimator,
                                              reg.bound, cost_unit(reg.estimator)),
        base_.epochs, sd_.data.train_indices.size(), sd_.data.valid_indices.size()));
  }

  void restore(const Checkpoint& ck, const std::string& what) override {
    if (ck.extra.value("algorithm", std::string()) != "random")
      throw DataFileError(what, "the checkpoint is from a `" +
                                    ck.extra.value("algorithm", std::string("?")) +
                                    "` search, not `random`");
    best_ = ck.extra.value("best", int64_t{-1});
    best_acc_ = ck.extra.value("best_valid_acc", -1.0);
    if (ck.epoch > count_ || best_ >= ck.epoch)
      throw DataFileError(
          what, "the checkpoint does not match random.samples = " + std::to_string(count_));
    if (best_ >= 0) best_info_ = setup_.hooks.describe(path(best_));
  }

  void before_epochs(RunDir& run) override {
    if (cfg_.warmup_epochs > 0)
      run.log("note: random search has no warm-up; warmup_epochs is ignored");
    std::filesystem::create_directories(run.path("samples"));
    events_.emplace(run.dir());
    if (parallel_.ranks() > 1) {
      const std::string line = fmt::format(
          "data parallel: {} ranks over {}, each training its own architectures, in rounds of {}",
          parallel_.ranks(), parallel_.collectives->transport(), parallel_.ranks());
      run.log(line);
      out_ << line << "\n";
    }
  }

  void run_epoch(int64_t index, EpochDriver& driver) override;
  // Trains this rank's architecture of the round that starts at `index` and shares the
  // round's scores with the other ranks (into scores_).
  void run_round(int64_t index, EpochDriver& driver);
  EpochEnd end_epoch(int64_t index, bool whole, RunDir& run) override;

  void write_record(RunDir& run, const nlohmann::ordered_json& record, int64_t epoch) override {
    write_epoch_record(run, *events_, record, epoch);
  }

  void fill_checkpoint(Checkpoint& ck) override {
    ck.global_step = ck.epoch;  // architectures, as the format has always counted them
    ck.extra = {{"algorithm", "random"}, {"best", best_}, {"best_valid_acc", best_acc_}};
  }

  int64_t best() const { return best_; }
  double best_accuracy() const { return best_acc_; }
  const GenotypeInfo& best_info() const { return best_info_; }

 private:
  ChoiceSelection path(int64_t index) const;

  const SearchSetup& setup_;
  const DataParallel parallel_;  // of the search: rounds of candidates, not batch shares
  const SearchConfig& cfg_;
  const TrainConfig& base_;
  const SearchData& sd_;
  const nlohmann::json& meta_;
  std::ostream& out_;
  const std::vector<ArchSpec>& groups_;
  std::vector<std::vector<double>> uniform_;
  const uint64_t draw_seed_;
  const int64_t count_;
  std::optional<EventWriter> events_;
  int64_t best_ = -1;
  double best_acc_ = -1;
  GenotypeInfo best_info_;
  // The current architecture's.
  std::chrono::steady_clock::time_point start_;
  GenotypeInfo info_;
  ScratchTrial trial_;
  TrialProgress progress_;                  // its bar and label ("arch 2/4 epoch 1/3")
  std::map<int64_t, ScratchTrial> scores_;  // of the current round, by architecture
};

// Architecture `index`: its uniform draw or, with a bound, the first of its redraws (each
// from a seed of its own) within the bound; a pure function of the seed and index, so a
// resumed search draws the same architectures.
ChoiceSelection RandomEpochs::path(int64_t index) const {
  const RegularizerConfig& reg = cfg_.regularizer;
  double cheapest = INFINITY;
  for (int64_t attempt = 0; attempt < kMaxBoundDraws; ++attempt) {
    const uint64_t seed =
        attempt == 0 ? draw_seed_ : derive_seed(draw_seed_, static_cast<uint64_t>(attempt));
    ChoiceSelection drawn = select_path(ChoiceMode::Sample, groups_, uniform_, seed, index);
    if (reg.estimator == "none") return drawn;
    const double cost = cost_in(setup_.hooks.cost(drawn), reg.estimator);
    if (cost <= reg.bound) return drawn;
    cheapest = std::min(cheapest, cost);
  }
  throw_no_draw_within_bound(reg, cheapest);
}

// Trains architecture `index` from scratch and evaluates it on the validation split,
// unless a step callback stops its training.
void RandomEpochs::run_epoch(int64_t index, EpochDriver& driver) {
  start_ = std::chrono::steady_clock::now();
  info_ = setup_.hooks.describe(path(index));
  if (scores_.count(index) == 0) run_round(index, driver);
  trial_ = scores_.at(index);
}

void RandomEpochs::run_round(int64_t index, EpochDriver& driver) {
  const int64_t mine = index + parallel_.rank();
  const ScratchTraining training{
      cfg_, setup_.weight_plan, setup_.eval_plan, setup_.hooks, setup_.backend, sd_, out_};
  progress_.on_step = [&](int64_t step, int64_t steps, double loss, double accuracy, double lr) {
    // The run's step count: every architecture trains the same number of steps.
    return driver.after_step(
        {mine + 1, count_, step, steps, mine * steps + step, loss, accuracy, lr});
  };
  // Per rank: train loss and accuracy, valid loss and accuracy, stopped (zeros elsewhere).
  constexpr int kFields = 5;
  std::vector<double> round(static_cast<size_t>(kFields * parallel_.ranks()), 0.0);
  if (mine < count_) {
    const ScratchTrial t = train_from_scratch(training, path(mine), base_.epochs,
                                              fmt::format("arch {}/{}", mine + 1, count_),
                                              fmt::format("architecture {}", mine + 1), progress_);
    double* mine_fields = round.data() + kFields * parallel_.rank();
    mine_fields[0] = t.train_loss;
    mine_fields[1] = t.train_acc;
    mine_fields[2] = t.valid_loss;
    mine_fields[3] = t.valid_acc;
    mine_fields[4] = t.stopped ? 1 : 0;
  }
  if (parallel_.collectives)
    parallel_.collectives->sum(round.data(), round.size(), "random search's scores");
  scores_.clear();
  for (int r = 0; r < parallel_.ranks() && index + r < count_; ++r) {
    const double* f = round.data() + kFields * r;
    scores_[index + r] = ScratchTrial{f[0], f[1], f[2], f[3], f[4] != 0};
  }
}

EpochEnd RandomEpochs::end_epoch(int64_t index, bool whole, RunDir& run) {
  EpochEnd end;
  if (!whole) {  // a partly trained architecture is no candidate: a resume retrains it
    end.bar = &*progress_.bar;
    end.line = fmt::format("{}: train loss {:.4f} acc {:.2f}% | not counted", progress_.epoch_label,
                           trial_.train_loss, 100 * trial_.train_acc);
    return end;
  }
  const ScratchTrial& t = trial_;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (t.valid_acc > best_acc_) {
    best_acc_ = t.valid_acc;
    best_ = index;
    best_info_ = info_;
  }
  nlohmann::ordered_json& rec = end.record;
  rec["epoch"] = index + 1;  // the architecture's number (the report's x axis)
  rec["phase"] = "random";
  rec["train_loss"] = t.train_loss;
  rec["train_acc"] = t.train_acc;
  rec["valid_loss"] = t.valid_loss;
  rec["valid_acc"] = t.valid_acc;
  rec["best_valid_acc"] = best_acc_;
  rec["genotype"] = info_.names;
  rec["params"] = info_.params;
  rec["macs"] = info_.macs;
  rec["seconds"] = seconds;
  end.line = fmt::format(
      "arch {}/{}: train loss {:.4f} acc {:.2f}% | valid loss {:.4f} acc {:.2f}% | {} "
      "params, {} MACs | best so far #{} ({:.2f}%) | {:.1f} s",
      index + 1, count_, t.train_loss, 100 * t.train_acc, t.valid_loss, 100 * t.valid_acc,
      with_commas(std::llround(info_.params)), human_count(info_.macs), best_ + 1, 100 * best_acc_,
      seconds);
  // Every architecture tried, for retraining or inspecting any of them.
  nlohmann::ordered_json tried = info_.arch;
  tried["valid_acc"] = t.valid_acc;
  run.write_json(fmt::format("samples/arch_{:03d}.json", index + 1), tried);
  nlohmann::ordered_json arch = best_info_.arch;
  arch["valid_acc"] = best_acc_;
  arch["sample"] = best_ + 1;
  run.write_json("arch.json", arch);
  end.report = {index + 1, count_, t.train_loss, t.train_acc, t.valid_loss, t.valid_acc, seconds};
  return end;
}

}  // namespace

SearchSummary run_random_search(SearchSetup setup, const std::string& dir, bool resume,
                                std::ostream& out) {
  if (!setup.hooks.live_mask || !setup.hooks.describe ||
      (setup.config.regularizer.estimator != "none" && !setup.hooks.cost))
    internal_error(__FILE__, __LINE__,
                   "random search needs the live_mask and describe hooks (and cost with a bound)");
  const SearchConfig& cfg = setup.config;
  const auto start = std::chrono::steady_clock::now();
  set_cpu_threads(cfg.base.threads);
  EpochLoopOptions loop;
  loop.epochs = cfg.random.samples;
  loop.checkpoint_every = 1;
  loop.unit = "architecture";
  loop.resume_line_names_step = false;
  EpochDriver driver(dir, resume, loop, setup.control, out);
  RunDir& run = driver.run_dir();
  SearchData sd = load_search_data(cfg, setup.weight_plan);
  nlohmann::json meta = setup.meta;
  meta["algorithm"] = "random";

  RandomEpochs architectures(setup, sd, meta, out);
  driver.run(architectures);
  SearchSummary summary;
  summary.epochs_run = driver.epochs_run();
  summary.stopped = driver.stopped();
  summary.genotype = architectures.best_info();
  const bool found = architectures.best() >= 0;  // not when stopped in the first architecture
  summary.valid_accuracy = found ? architectures.best_accuracy() : 0;
  std::optional<RerankResult> reranked;
  if (cfg.rerank > 0 && found && !summary.stopped) {
    const ScratchTraining training{
        cfg, setup.weight_plan, setup.eval_plan, setup.hooks, setup.backend, sd, out};
    reranked = rerank(
        training, sampled_candidates(run.path("metrics.jsonl"), setup.weight_plan.arch, cfg.rerank),
        run);
    summary.genotype = reranked->genotype;
    summary.valid_accuracy = reranked->valid_accuracy;
  }
  if (setup.hooks.finish && found) setup.hooks.finish(summary.genotype, dir);
  finish_search(setup.hooks, summary, run, setup.weight_plan.arch, meta, "random", start, found);
  if (reranked)
    run.log(fmt::format("done in {:.0f} s: rerank candidate {} ({:.2f}% valid); wrote {}",
                        summary.seconds, reranked->kept + 1, 100 * summary.valid_accuracy,
                        run.path("arch.json")));
  else if (found)
    run.log(fmt::format("done in {:.0f} s: best architecture #{} ({:.2f}% valid); wrote {}",
                        summary.seconds, architectures.best() + 1, 100 * summary.valid_accuracy,
                        run.path("arch.json")));
  else
    run.log(
        fmt::format("done in {:.0f} s: stopped before any architecture finished", summary.seconds));
  return summary;
}

}  // namespace nas
