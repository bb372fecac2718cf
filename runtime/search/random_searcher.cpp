// Random search, the baseline any search must beat: `random.samples` architectures drawn
// uniformly (every choice independently; a join draws k distinct candidates), each
// trained from freshly initialised weights for `epochs` epochs on the training split with
// the "train" optimizer and schedule, then evaluated on the validation split; the best
// validation accuracy wins (ties: the earlier one). Each architecture runs on the
// supernet's plans in selected mode through its live-step mask, so it costs what the
// architecture alone costs and nothing is recompiled.
//
// The checkpoint records how many architectures are done and the best so far; --resume
// retrains the interrupted architecture from its start (the draw and the training are
// pure functions of the seed, so the outcome is the same as an uninterrupted run).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <ostream>

#include "runtime/cpu/threads.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/search/choice_modes.h"
#include "runtime/search/search_run.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/epoch_driver.h"
#include "runtime/train/progress.h"
#include "support/format.h"
#include "support/rng.h"

namespace nas {
namespace {

struct Trial {
  double train_loss = 0, train_acc = 0, valid_loss = 0, valid_acc = 0;
};

// Random search's "epochs" for the epoch driver: one per architecture, trained from
// scratch, with its record, samples/arch_NNN.json, the best so far in arch.json, and the
// count and best in the checkpoint (which holds no weights).
class RandomEpochs final : public EpochTask {
 public:
  RandomEpochs(const SearchSetup& setup, const SearchData& sd, const nlohmann::json& meta,
               std::ostream& out)
      : setup_(setup),
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
    run.log(fmt::format(
        "search {} (random): {} architectures of {} choices, each trained {} epochs on {} "
        "samples and validated on {}",
        meta_.value("network", std::string("network")), count_, groups_.size(), base_.epochs,
        sd_.data.train_indices.size(), sd_.data.valid_indices.size()));
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
  }

  void run_epoch(int64_t index, EpochDriver& driver) override;
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
  ChoiceSelection path(int64_t index) const {
    return select_path(ChoiceMode::Sample, groups_, uniform_, draw_seed_, index);
  }

  const SearchSetup& setup_;
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
  Trial trial_;
  std::optional<Progress> bar_;  // its last training epoch's
  std::string epoch_label_;      // "arch 2/4 epoch 1/3"
};

// Trains architecture `index` from scratch and evaluates it on the validation split,
// unless a step callback stops its training.
void RandomEpochs::run_epoch(int64_t index, EpochDriver& driver) {
  start_ = std::chrono::steady_clock::now();
  const ChoiceSelection selected = path(index);
  info_ = setup_.hooks.describe(selected);
  trial_ = Trial();
  ParamStore store(make_backend(setup_.backend));
  Executor weights(setup_.weight_plan, store, base_.seed);
  Executor eval(setup_.eval_plan, store, base_.seed);
  Executor::share_arena(weights, eval);
  const std::vector<char> mask = setup_.hooks.live_mask(selected);
  for (Executor* ex : {&weights, &eval}) {
    ex->use_selection(selected);
    ex->set_live_mask(mask);
  }
  std::unique_ptr<Optimizer> opt =
      make_optimizer(base_.optimizer, store.backend(), store.weight_slots());
  opt->set_active(active_weight_slots(weights.plan(), store, mask));  // only this architecture's
  std::vector<DeviceBuffer*> grads = store.weight_grads();
  Loader train_loader(sd_.data.train, sd_.data.train_indices, sd_.train_options);
  const int64_t steps = static_cast<int64_t>(train_loader.batches_per_epoch());
  const int64_t arch_steps = base_.epochs * steps;
  std::unique_ptr<LrSchedule> schedule =
      make_schedule(base_.optimizer.schedule, base_.optimizer.lr, steps);
  Batch b;
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < base_.epochs; ++epoch) {
    ProgressOptions po;
    po.tty = stdout_is_terminal();
    po.plain_every = base_.log_every;
    epoch_label_ =
        fmt::format("arch {}/{} epoch {}/{}", index + 1, count_, epoch + 1, base_.epochs);
    bar_.emplace(out_, epoch_label_, steps, po);
    train_loader.start_epoch(epoch);
    double loss = 0;
    int64_t correct = 0, seen = 0;
    bool go_on = true;
    for (int64_t s = 0; s < steps && go_on && train_loader.next(b); ++s, ++step) {
      store.zero_grads();
      weights.set_dropout_seed(derive_seed(base_.seed, static_cast<uint64_t>(step)));
      RunResult r = weights.run(b.images.data(), b.labels.data(), sd_.batch);
      if (!std::isfinite(r.loss_sum))
        throw ConfigError("", "train.lr",
                          fmt::format("the training loss of architecture {} became {}; lower the "
                                      "learning rate",
                                      index + 1, r.loss_sum));
      loss += r.loss_sum;
      correct += r.correct;
      seen += sd_.batch;
      if (base_.optimizer.grad_clip > 0)
        clip_grad_norm(store.backend(), grads, base_.optimizer.grad_clip);
      const double lr = schedule->lr_at(step, arch_steps);
      opt->set_lr(lr);
      opt->step();
      // The run's step count: every architecture trains the same number of steps.
      go_on =
          driver.after_step({index + 1, count_, step + 1, arch_steps, index * arch_steps + step + 1,
                             loss / seen, static_cast<double>(correct) / seen, lr});
      bar_->update(s + 1, seen, loss / seen, static_cast<double>(correct) / seen);
    }
    trial_.train_loss = loss / static_cast<double>(std::max<int64_t>(1, seen));
    trial_.train_acc =
        static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, seen));
    if (!go_on) return;  // end_epoch finishes this bar with the stop
    bar_->finish(fmt::format("{}: train loss {:.4f} acc {:.2f}%", epoch_label_, trial_.train_loss,
                             100 * trial_.train_acc));
    bar_.reset();
  }
  LoaderOptions vo = sd_.valid_options;
  vo.shuffle = false;
  vo.drop_last = false;
  vo.train = false;
  Loader valid_loader(sd_.data.train, sd_.data.valid_indices, vo);
  EvalResult v = evaluate(eval, valid_loader);
  trial_.valid_loss = v.loss;
  trial_.valid_acc = v.accuracy;
}

EpochEnd RandomEpochs::end_epoch(int64_t index, bool whole, RunDir& run) {
  EpochEnd end;
  if (!whole) {  // a partly trained architecture is no candidate: a resume retrains it
    end.bar = &*bar_;
    end.line = fmt::format("{}: train loss {:.4f} acc {:.2f}% | not counted", epoch_label_,
                           trial_.train_loss, 100 * trial_.train_acc);
    return end;
  }
  const Trial& t = trial_;
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
  if (!setup.hooks.live_mask || !setup.hooks.describe)
    internal_error(__FILE__, __LINE__, "random search needs the live_mask and describe hooks");
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
  if (setup.hooks.finish && found) setup.hooks.finish(summary.genotype, dir);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_search_report(run, setup.weight_plan.arch, meta, summary, "random");
  if (found)
    run.log(fmt::format("done in {:.0f} s: best architecture #{} ({:.2f}% valid); wrote {}",
                        summary.seconds, architectures.best() + 1, 100 * summary.valid_accuracy,
                        run.path("arch.json")));
  else
    run.log(
        fmt::format("done in {:.0f} s: stopped before any architecture finished", summary.seconds));
  return summary;
}

}  // namespace nas
