#include "runtime/search/scratch_trial.h"

#include <fmt/format.h>

#include <cmath>

#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "support/rng.h"

namespace nas {

ScratchTrial train_from_scratch(const ScratchTraining& t, const ChoiceSelection& path,
                                int64_t epochs, const std::string& label, const std::string& what,
                                TrialProgress& progress) {
  const TrainConfig& base = t.config.base;
  ScratchTrial trial;
  ParamStore store(make_backend(t.backend));
  Executor weights(t.weight_plan, store, base.seed);
  Executor eval(t.eval_plan, store, base.seed);
  Executor::share_arena(weights, eval);
  const std::vector<char> mask = t.hooks.live_mask(path);
  for (Executor* ex : {&weights, &eval}) {
    ex->use_selection(path);
    ex->set_live_mask(mask);
  }
  std::unique_ptr<Optimizer> opt =
      make_optimizer(base.optimizer, store.backend(), store.weight_slots());
  opt->set_active(active_weight_slots(weights.plan(), store, mask));  // only this architecture's
  std::vector<DeviceBuffer*> grads = store.weight_grads();
  Loader train_loader(t.data.data.train, t.data.data.train_indices, t.data.train_options);
  const int64_t steps = static_cast<int64_t>(train_loader.batches_per_epoch());
  const int64_t trial_steps = epochs * steps;
  std::unique_ptr<LrSchedule> schedule =
      make_schedule(base.optimizer.schedule, base.optimizer.lr, steps);
  Batch b;
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    ProgressOptions po;
    po.tty = stdout_is_terminal();
    po.plain_every = base.log_every;
    progress.epoch_label = fmt::format("{} epoch {}/{}", label, epoch + 1, epochs);
    progress.bar.emplace(t.out, progress.epoch_label, steps, po);
    train_loader.start_epoch(epoch);
    double loss = 0;
    int64_t correct = 0, seen = 0;
    bool go_on = true;
    for (int64_t s = 0; s < steps && go_on && train_loader.next(b); ++s, ++step) {
      store.zero_grads();
      weights.set_dropout_seed(derive_seed(base.seed, static_cast<uint64_t>(step)));
      RunResult r = weights.run(b.images.data(), b.labels.data(), t.data.batch);
      if (!std::isfinite(r.loss_sum))
        throw ConfigError("", "train.lr",
                          fmt::format("the training loss of {} became {}; lower the learning rate",
                                      what, r.loss_sum));
      loss += r.loss_sum;
      correct += r.correct;
      seen += t.data.batch;
      if (base.optimizer.grad_clip > 0)
        clip_grad_norm(store.backend(), grads, base.optimizer.grad_clip);
      const double lr = schedule->lr_at(step, trial_steps);
      opt->set_lr(lr);
      opt->step();
      const double mean_loss = loss / seen, accuracy = static_cast<double>(correct) / seen;
      if (progress.on_step)
        go_on = progress.on_step(step + 1, trial_steps, mean_loss, accuracy, lr);
      progress.bar->update(s + 1, seen, mean_loss, accuracy);
    }
    trial.train_loss = loss / static_cast<double>(std::max<int64_t>(1, seen));
    trial.train_acc =
        static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, seen));
    if (!go_on) {
      trial.stopped = true;
      return trial;  // the caller finishes the bar with the stop
    }
    progress.bar->finish(fmt::format("{}: train loss {:.4f} acc {:.2f}%", progress.epoch_label,
                                     trial.train_loss, 100 * trial.train_acc));
    progress.bar.reset();
  }
  LoaderOptions vo = t.data.valid_options;
  vo.shuffle = false;
  vo.drop_last = false;
  vo.train = false;
  Loader valid_loader(t.data.data.train, t.data.data.valid_indices, vo);
  EvalResult v = evaluate(eval, valid_loader);
  trial.valid_loss = v.loss;
  trial.valid_acc = v.accuracy;
  return trial;
}

}  // namespace nas
