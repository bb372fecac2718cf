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
#include <ostream>

#include "runtime/cpu/threads.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/search/choice_modes.h"
#include "runtime/search/search_run.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/kill_points.h"
#include "runtime/train/progress.h"
#include "support/format.h"
#include "support/rng.h"

namespace nas {
namespace {

struct Trial {
  double train_loss = 0, train_acc = 0, valid_loss = 0, valid_acc = 0;
};

// Trains one architecture from scratch and evaluates it on the validation split.
Trial train_one(const SearchSetup& setup, const SearchData& sd, const ChoiceSelection& path,
                int64_t index, int64_t count, std::ostream& out) {
  const TrainConfig& base = setup.config.base;
  ParamStore store(make_backend(setup.backend));
  Executor weights(setup.weight_plan, store, base.seed);
  Executor eval(setup.eval_plan, store, base.seed);
  Executor::share_arena(weights, eval);
  const std::vector<char> mask = setup.hooks.live_mask(path);
  for (Executor* ex : {&weights, &eval}) {
    ex->use_selection(path);
    ex->set_live_mask(mask);
  }
  std::unique_ptr<Optimizer> opt =
      make_optimizer(base.optimizer, store.backend(), store.weight_slots());
  opt->set_active(active_weight_slots(weights.plan(), store, mask));  // only this architecture's
  std::vector<DeviceBuffer*> grads = store.weight_grads();
  Loader train_loader(sd.data.train, sd.data.train_indices, sd.train_options);
  LoaderOptions vo = sd.valid_options;
  vo.shuffle = false;
  vo.drop_last = false;
  vo.train = false;
  Loader valid_loader(sd.data.train, sd.data.valid_indices, vo);
  const int64_t steps = static_cast<int64_t>(train_loader.batches_per_epoch());
  std::unique_ptr<LrSchedule> schedule =
      make_schedule(base.optimizer.schedule, base.optimizer.lr, steps);
  Trial t;
  Batch b;
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < base.epochs; ++epoch) {
    ProgressOptions po;
    po.tty = stdout_is_terminal();
    po.plain_every = base.log_every;
    Progress bar(out,
                 fmt::format("arch {}/{} epoch {}/{}", index + 1, count, epoch + 1, base.epochs),
                 steps, po);
    train_loader.start_epoch(epoch);
    double loss = 0;
    int64_t correct = 0, seen = 0;
    for (int64_t s = 0; s < steps && train_loader.next(b); ++s, ++step) {
      store.zero_grads();
      weights.set_dropout_seed(derive_seed(base.seed, static_cast<uint64_t>(step)));
      RunResult r = weights.run(b.images.data(), b.labels.data(), sd.batch);
      if (!std::isfinite(r.loss_sum))
        throw ConfigError("", "train.lr",
                          fmt::format("the training loss of architecture {} became {}; lower the "
                                      "learning rate",
                                      index + 1, r.loss_sum));
      loss += r.loss_sum;
      correct += r.correct;
      seen += sd.batch;
      if (base.optimizer.grad_clip > 0)
        clip_grad_norm(store.backend(), grads, base.optimizer.grad_clip);
      opt->set_lr(schedule->lr_at(step, base.epochs * steps));
      opt->step();
      // The run's step count: every architecture trains the same number of steps.
      kill_point_after_step(index * base.epochs * steps + step + 1);
      bar.update(s + 1, seen, loss / seen, static_cast<double>(correct) / seen);
    }
    t.train_loss = loss / static_cast<double>(std::max<int64_t>(1, seen));
    t.train_acc = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, seen));
    bar.finish(fmt::format("arch {}/{} epoch {}/{}: train loss {:.4f} acc {:.2f}%", index + 1,
                           count, epoch + 1, base.epochs, t.train_loss, 100 * t.train_acc));
  }
  EvalResult v = evaluate(eval, valid_loader);
  t.valid_loss = v.loss;
  t.valid_acc = v.accuracy;
  return t;
}

}  // namespace

SearchSummary run_random_search(SearchSetup setup, const std::string& dir, bool resume,
                                std::ostream& out) {
  if (!setup.hooks.live_mask || !setup.hooks.describe)
    internal_error(__FILE__, __LINE__, "random search needs the live_mask and describe hooks");
  const SearchConfig& cfg = setup.config;
  const TrainConfig& base = cfg.base;
  const auto start = std::chrono::steady_clock::now();
  set_cpu_threads(base.threads);
  RunDir run(dir, !resume);
  SearchData sd = load_search_data(cfg, setup.weight_plan);
  const std::vector<ArchSpec>& groups = setup.weight_plan.arch;
  std::vector<std::vector<double>> uniform;
  for (const ArchSpec& g : groups)
    uniform.emplace_back(g.candidates.size(), 1.0 / static_cast<double>(g.candidates.size()));
  const uint64_t draw_seed = derive_seed(base.seed, 0x7a3d);
  const int64_t count = cfg.random.samples;

  nlohmann::json meta = setup.meta;
  meta["algorithm"] = "random";
  int64_t first = 0, best = -1;
  double best_acc = -1;
  std::optional<Checkpoint> ck;
  if (resume) ck = load_checkpoint(dir);
  if (ck) {
    const std::string what = run.path(kCheckpointFileName);
    if (ck->extra.value("algorithm", std::string()) != "random")
      throw DataFileError(what, "the checkpoint is from a `" +
                                    ck->extra.value("algorithm", std::string("?")) +
                                    "` search, not `random`");
    first = ck->epoch;
    best = ck->extra.value("best", int64_t{-1});
    best_acc = ck->extra.value("best_valid_acc", -1.0);
    if (first > count || best >= first)
      throw DataFileError(
          what, "the checkpoint does not match random.samples = " + std::to_string(count));
    run.truncate_metrics_after(first);
    run.log(fmt::format("resumed after architecture {}", first));
    out << "resuming after architecture " << first << "\n";
  } else if (resume) {
    run.start_over();
    out << kStartingOver << "\n";
  } else {
    run.write_json("config.json", search_config_to_json(cfg));
    run.log(fmt::format(
        "search {} (random): {} architectures of {} choices, each trained {} epochs on {} "
        "samples and validated on {}",
        meta.value("network", std::string("network")), count, groups.size(), base.epochs,
        sd.data.train_indices.size(), sd.data.valid_indices.size()));
  }
  if (cfg.warmup_epochs > 0)
    run.log("note: random search has no warm-up; warmup_epochs is ignored");
  std::filesystem::create_directories(run.path("samples"));

  EventWriter events(dir);
  SearchSummary summary;
  GenotypeInfo best_info;
  if (best >= 0)
    best_info =
        setup.hooks.describe(select_path(ChoiceMode::Sample, groups, uniform, draw_seed, best));
  for (int64_t i = first; i < count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    ChoiceSelection path = select_path(ChoiceMode::Sample, groups, uniform, draw_seed, i);
    GenotypeInfo info = setup.hooks.describe(path);
    Trial t = train_one(setup, sd, path, i, count, out);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (t.valid_acc > best_acc) {
      best_acc = t.valid_acc;
      best = i;
      best_info = info;
    }
    nlohmann::ordered_json rec;
    rec["epoch"] = i + 1;  // the architecture's number (the report's x axis)
    rec["phase"] = "random";
    rec["train_loss"] = t.train_loss;
    rec["train_acc"] = t.train_acc;
    rec["valid_loss"] = t.valid_loss;
    rec["valid_acc"] = t.valid_acc;
    rec["best_valid_acc"] = best_acc;
    rec["genotype"] = info.names;
    rec["params"] = info.params;
    rec["macs"] = info.macs;
    rec["seconds"] = seconds;
    write_epoch_record(run, events, rec, i + 1);
    std::string line = fmt::format(
        "arch {}/{}: train loss {:.4f} acc {:.2f}% | valid loss {:.4f} acc {:.2f}% | {} "
        "params, {} MACs | best so far #{} ({:.2f}%) | {:.1f} s",
        i + 1, count, t.train_loss, 100 * t.train_acc, t.valid_loss, 100 * t.valid_acc,
        with_commas(std::llround(info.params)), human_count(info.macs), best + 1, 100 * best_acc,
        seconds);
    out << line << "\n";
    run.log(line);
    // Every architecture tried, for retraining or inspecting any of them.
    nlohmann::ordered_json tried = info.arch;
    tried["valid_acc"] = t.valid_acc;
    run.write_json(fmt::format("samples/arch_{:03d}.json", i + 1), tried);
    nlohmann::ordered_json arch = best_info.arch;
    arch["valid_acc"] = best_acc;
    arch["sample"] = best + 1;
    run.write_json("arch.json", arch);
    Checkpoint ck;
    ck.epoch = i + 1;
    ck.global_step = i + 1;
    ck.extra = {{"algorithm", "random"}, {"best", best}, {"best_valid_acc", best_acc}};
    save_checkpoint(dir, ck);
    ++summary.epochs_run;
    if (setup.control.on_epoch && !setup.control.on_epoch({i + 1, count, t.train_loss, t.train_acc,
                                                           t.valid_loss, t.valid_acc, seconds})) {
      summary.stopped = true;
      break;
    }
  }
  summary.genotype = best_info;
  summary.valid_accuracy = best_acc;
  if (setup.hooks.finish) setup.hooks.finish(summary.genotype, dir);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_search_report(run, groups, meta, summary, "random");
  run.log(fmt::format("done in {:.0f} s: best architecture #{} ({:.2f}% valid); wrote {}",
                      summary.seconds, best + 1, 100 * best_acc, run.path("arch.json")));
  return summary;
}

}  // namespace nas
