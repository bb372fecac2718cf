#include "runtime/train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <ostream>
#include <stdexcept>

#include "runtime/cpu/threads.h"
#include "runtime/data/loader.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/kill_points.h"
#include "runtime/train/progress.h"
#include "runtime/train/tensor_file.h"
#include "support/errors.h"
#include "support/rng.h"

namespace nas {
namespace {

// A stratified subset of `limit` samples of `indices` (all of them when limit is 0 or
// larger than the set).
std::vector<size_t> limit_to(const Dataset& data, std::vector<size_t> indices, int64_t limit,
                             uint64_t seed) {
  if (limit <= 0 || static_cast<size_t>(limit) >= indices.size()) return indices;
  Dataset view;  // split_stratified works on a whole data set: split the index list instead
  view.labels.reserve(indices.size());
  for (size_t i : indices) view.labels.push_back(data.labels[i]);
  view.num_classes = data.num_classes;
  auto [keep, rest] = split_stratified(
      view, static_cast<double>(limit) / static_cast<double>(indices.size()), seed);
  std::vector<size_t> out;
  for (size_t k : keep) out.push_back(indices[k]);
  return out;
}

std::vector<size_t> all_indices(const Dataset& d) {
  std::vector<size_t> v(d.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = i;
  return v;
}

}  // namespace

EvalResult evaluate(Executor& ex, Loader& loader) {
  loader.start_epoch(0);
  Batch b;
  const int64_t per =
      static_cast<int64_t>(ex.plan().values[ex.plan().input].elements / ex.plan().batch);
  std::vector<float> images(static_cast<size_t>(ex.batch() * per), 0.0f);
  std::vector<int32_t> labels(static_cast<size_t>(ex.batch()), 0);
  double loss = 0;
  int64_t correct = 0, n = 0;
  while (loader.next(b)) {
    const int64_t count = static_cast<int64_t>(b.size());
    std::copy(b.images.begin(), b.images.end(), images.begin());
    std::copy(b.labels.begin(), b.labels.end(), labels.begin());
    RunResult r = ex.run(images.data(), labels.data(), count);
    loss += r.loss_sum;
    correct += r.correct;
    n += count;
  }
  if (n == 0) return {};
  return {loss / n, static_cast<double>(correct) / n};
}

TensorFile params_to_file(const ParamStore& store, const nlohmann::json& meta) {
  TensorFile f;
  f.meta = meta;
  for (const StoredParam& p : store.params())
    f.tensors.push_back({p.spec.name, p.spec.shape, store.read(p.value)});
  return f;
}

void params_from_file(ParamStore& store, const TensorFile& f, const std::string& what) {
  for (StoredParam& p : store.params()) {
    const NamedTensor* t = f.find(p.spec.name);
    if (t == nullptr)
      throw DataFileError(what,
                          "has no tensor `" + p.spec.name + "`: it was saved from another network");
    if (t->shape != p.spec.shape)
      throw DataFileError(what, "tensor `" + p.spec.name + "` is " + shape_text(t->shape) +
                                    ", the network needs " + shape_text(p.spec.shape));
    store.write(p.value, t->data);
  }
}

TrainData load_train_data(const DataConfig& cfg, uint64_t seed,
                          const std::vector<int64_t>& input_shape, int64_t classes) {
  TrainData d;
  if (cfg.name == "fashion-mnist") {
    d.train = load_fashion_mnist(true, cfg.dir);
    d.test = load_fashion_mnist(false, cfg.dir);
  } else if (cfg.name == "cifar10") {
    d.train = read_cifar10(cfg.dir, true);
    d.test = read_cifar10(cfg.dir, false);
  } else if (cfg.name == "synthetic") {
    NAS_CHECK(!cfg.synthetic_shape.empty() && cfg.synthetic_classes > 0,
              "synthetic data used before resolve_synthetic_data");
    // One data set split 80/20, so train and test share the class prototypes.
    size_t total = static_cast<size_t>(cfg.synthetic_samples + cfg.synthetic_samples / 4);
    Dataset all =
        make_synthetic(total, cfg.synthetic_shape, static_cast<int>(cfg.synthetic_classes), seed);
    auto [train, test] = split_stratified(all, 0.8, derive_seed(seed, 17));
    d.train = all;
    d.test = all;
    d.train_indices = train;
    d.test_indices = test;
  } else {
    internal_error(__FILE__, __LINE__,
                   "unknown data set `" + cfg.name + "` (the config parser refuses it)");
  }
  if (d.train_indices.empty()) d.train_indices = all_indices(d.train);
  if (d.test_indices.empty()) d.test_indices = all_indices(d.test);
  if (d.train.sample_shape != input_shape)
    // The data set is the config's choice, so its key locates the mismatch.
    throw ConfigError("", "data.name",
                      "the " + cfg.name + " samples are " + shape_text(d.train.sample_shape) +
                          " but the network's input is " + shape_text(input_shape) +
                          " (`nasc check FILE` shows the network's parameters; one of them "
                          "may set its input)");
  if (d.train.num_classes > classes)
    throw ConfigError("", "data.name",
                      fmt::format("{} has {} classes but the network returns {} logits", cfg.name,
                                  d.train.num_classes, classes));
  // The limit picks a stratified subset first; train_portion then splits it into the
  // training part and the validation part (which only search uses).
  d.train_indices = limit_to(d.train, d.train_indices, cfg.limit_train, derive_seed(seed, 29));
  d.test_indices = limit_to(d.test, d.test_indices, cfg.limit_test, derive_seed(seed, 31));
  if (cfg.train_portion < 1.0) {
    Dataset view;
    for (size_t i : d.train_indices) view.labels.push_back(d.train.labels[i]);
    view.num_classes = d.train.num_classes;
    auto [keep, valid] = split_stratified(view, cfg.train_portion, derive_seed(seed, 23));
    std::vector<size_t> kept, held;
    for (size_t k : keep) kept.push_back(d.train_indices[k]);
    for (size_t k : valid) held.push_back(d.train_indices[k]);
    d.train_indices = kept;
    d.valid_indices = held;
  }
  return d;
}

LoaderOptions training_loader_options(const DataConfig& cfg, const TrainData& data, int64_t batch,
                                      uint64_t seed) {
  LoaderOptions lo;
  lo.batch_size = static_cast<size_t>(batch);
  lo.shuffle = true;
  lo.drop_last = true;
  lo.seed = seed;
  lo.augment = cfg.augment;
  if (cfg.normalize) {
    auto [mean, stdev] = channel_stats(data.train, data.train_indices);
    for (size_t c = 0; c < stdev.size(); ++c)
      if (!(stdev[c] > 0))
        throw ConfigError("", "data.augment.normalize",
                          fmt::format("channel {} of the training images is constant, so "
                                      "normalizing would divide by 0; set it to false",
                                      c));
    lo.augment.mean = mean;
    lo.augment.std = stdev;
  }
  return lo;
}

TrainSummary train_network(TrainerSetup setup, const std::string& dir, bool resume,
                           std::ostream& out) {
  resolve_synthetic_data(setup.config.data, setup.train_plan.input_shape, setup.train_plan.classes,
                         setup.config.source);
  const TrainConfig& cfg = setup.config;
  const auto start = std::chrono::steady_clock::now();
  set_cpu_threads(cfg.threads);
  RunDir run(dir, !resume);
  TrainData data =
      load_train_data(cfg.data, cfg.seed, setup.train_plan.input_shape, setup.train_plan.classes);

  const int64_t mini = cfg.data.effective_mini_batch();
  const int64_t accum = cfg.data.batch_size / mini;
  if (data.train_indices.size() < static_cast<size_t>(cfg.data.batch_size))
    throw ConfigError("", "data.batch_size",
                      fmt::format("the training set has {} samples, fewer than one batch of {}",
                                  data.train_indices.size(), cfg.data.batch_size));

  ParamStore store(make_backend(setup.backend));
  Executor trainer(std::move(setup.train_plan), store, cfg.seed);
  Executor evaluator(std::move(setup.eval_plan), store, cfg.seed);
  std::unique_ptr<Optimizer> opt =
      make_optimizer(cfg.optimizer, store.backend(), store.weight_slots());
  std::vector<DeviceBuffer*> grads = store.weight_grads();

  LoaderOptions lo = training_loader_options(cfg.data, data, mini, cfg.seed);
  Loader train_loader(data.train, data.train_indices, lo);
  LoaderOptions eo = lo;
  eo.batch_size = static_cast<size_t>(cfg.data.eval_batch_size);
  eo.shuffle = false;
  eo.drop_last = false;
  eo.train = false;
  Loader test_loader(data.test, data.test_indices, eo);

  const int64_t steps_per_epoch = static_cast<int64_t>(train_loader.batches_per_epoch()) / accum;
  const int64_t total_steps = steps_per_epoch * cfg.epochs;
  std::unique_ptr<LrSchedule> schedule =
      make_schedule(cfg.optimizer.schedule, cfg.optimizer.lr, steps_per_epoch);

  nlohmann::json meta = setup.network_meta;
  int64_t first_epoch = 0, global_step = 0;
  std::optional<Checkpoint> ck;
  if (resume) ck = load_checkpoint(dir);
  if (ck) {
    params_from_file(store, ck->params, run.path(kCheckpointFileName));
    opt->load_state(ck->optimizer_state, run.path(kCheckpointFileName));
    first_epoch = ck->epoch;
    global_step = ck->global_step;
    run.truncate_metrics_after(first_epoch);
    run.log(fmt::format("resumed after epoch {} (step {})", first_epoch, global_step));
    out << "resuming after epoch " << first_epoch << "\n";
  } else if (resume) {
    run.start_over();
    out << kStartingOver << "\n";
  } else {
    run.write_json("config.json", train_config_to_json(cfg));
    run.log(fmt::format("train {}: {} training / {} test samples, {} parameters, arena {} MB",
                        meta.value("network", std::string("network")), data.train_indices.size(),
                        data.test_indices.size(), store.trainable_count(),
                        trainer.arena_bytes() / 1048576));
  }

  TrainSummary summary;
  const bool tty = stdout_is_terminal();
  Batch b;
  for (int64_t epoch = first_epoch; epoch < cfg.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    train_loader.start_epoch(epoch);
    ProgressOptions po;
    po.tty = tty;
    po.plain_every = cfg.log_every;
    Progress bar(out, fmt::format("epoch {}/{}", epoch + 1, cfg.epochs), steps_per_epoch * accum,
                 po);
    double loss_sum = 0, lr = opt->lr();
    int64_t correct = 0, seen = 0, mini_step = 0;
    store.zero_grads();
    while (train_loader.next(b)) {
      if (mini_step / accum >= steps_per_epoch) break;
      trainer.set_dropout_seed(
          derive_seed(cfg.seed, static_cast<uint64_t>(global_step * accum + mini_step % accum)));
      RunResult r = trainer.run(b.images.data(), b.labels.data(), mini);
      if (!std::isfinite(r.loss_sum))
        throw ConfigError("", "optimizer.lr",
                          fmt::format("the training loss became {} at epoch {} step {}; lower the "
                                      "learning rate",
                                      r.loss_sum, epoch + 1, global_step + 1));
      loss_sum += r.loss_sum;
      correct += r.correct;
      seen += mini;
      ++mini_step;
      if (mini_step % accum == 0) {
        if (accum > 1)
          for (DeviceBuffer* g : grads) store.backend().scale(*g, 1.0f / static_cast<float>(accum));
        if (cfg.optimizer.grad_clip > 0)
          clip_grad_norm(store.backend(), grads, cfg.optimizer.grad_clip);
        lr = schedule->lr_at(global_step, total_steps);
        opt->set_lr(lr);
        opt->step();
        store.zero_grads();
        ++global_step;
        kill_point_after_step(global_step);
        if (setup.control.on_step &&
            !setup.control.on_step({epoch + 1, cfg.epochs, mini_step / accum, steps_per_epoch,
                                    global_step, loss_sum / seen,
                                    static_cast<double>(correct) / seen, lr}))
          summary.stopped = true;
      }
      bar.update(mini_step, seen, loss_sum / seen, static_cast<double>(correct) / seen);
      if (summary.stopped) break;
    }
    EvalResult test = evaluate(evaluator, test_loader);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    summary.train_loss = loss_sum / std::max<int64_t>(1, seen);
    summary.train_accuracy = static_cast<double>(correct) / std::max<int64_t>(1, seen);
    summary.test_loss = test.loss;
    summary.test_accuracy = test.accuracy;
    std::string line = fmt::format(
        "epoch {}/{}: train loss {:.4f} acc {:.2f}% | test loss {:.4f} acc {:.2f}% | lr {:.5f} | "
        "{:.1f} s, {:.0f} img/s",
        epoch + 1, cfg.epochs, summary.train_loss, 100 * summary.train_accuracy, test.loss,
        100 * test.accuracy, lr, seconds, seen / seconds);
    if (summary.stopped) {  // a partial epoch: no record, the last whole epoch's checkpoint
      bar.finish(line + " | stopped at step " + std::to_string(global_step));
      run.log(line + " | stopped at step " + std::to_string(global_step));
      break;
    }
    bar.finish(line);
    run.log(line);
    nlohmann::ordered_json rec;
    rec["epoch"] = epoch + 1;
    rec["train_loss"] = summary.train_loss;
    rec["train_acc"] = summary.train_accuracy;
    rec["test_loss"] = test.loss;
    rec["test_acc"] = test.accuracy;
    rec["lr"] = lr;
    rec["seconds"] = seconds;
    rec["images_per_s"] = seen / seconds;
    run.metrics(rec);
    ++summary.epochs_run;
    if (setup.control.on_epoch &&
        !setup.control.on_epoch({epoch + 1, cfg.epochs, summary.train_loss, summary.train_accuracy,
                                 test.loss, test.accuracy, seconds}))
      summary.stopped = true;
    if ((epoch + 1) % cfg.checkpoint_every == 0 || epoch + 1 == cfg.epochs || summary.stopped) {
      Checkpoint ck;
      ck.epoch = epoch + 1;
      ck.global_step = global_step;
      ck.params = params_to_file(store, meta);
      ck.optimizer_state = opt->save_state();
      save_checkpoint(dir, ck);
    }
    if (summary.stopped) break;
  }
  nlohmann::json wmeta = meta;
  wmeta["test_accuracy"] = summary.test_accuracy;
  wmeta["epochs"] = cfg.epochs;
  if (summary.stopped) wmeta["stopped"] = true;
  write_tensor_file(run.path("weights"), params_to_file(store, wmeta));
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.log(fmt::format("done: test accuracy {:.2f}% after {} epochs; wrote {}",
                      100 * summary.test_accuracy, cfg.epochs, run.path("weights")));
  return summary;
}

}  // namespace nas
