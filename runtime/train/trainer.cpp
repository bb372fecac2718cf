#include "runtime/train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <ostream>
#include <stdexcept>

#include "runtime/cpu/threads.h"
#include "runtime/data/loader.h"
#include "runtime/data/user_data.h"
#include "runtime/dist/replicas.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/epoch_driver.h"
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

double scheduled_drop_path_prob(double final_prob, int64_t epoch, int64_t epochs) {
  NAS_CHECK(epochs > 0 && epoch >= 0 && epoch < epochs, "drop path schedule: epoch out of range");
  return final_prob * static_cast<double>(epoch) / static_cast<double>(epochs);
}

bool plan_reads_drop_path_prob(const ExecPlan& plan) {
  for (const Step& s : plan.steps)
    if (s.kind == StepKind::DropPath && s.float_attr("p") < 0) return true;
  return false;
}

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
    if (count == 0) continue;  // a shard of a last batch smaller than the rank count
    std::copy(b.images.begin(), b.images.end(), images.begin());
    std::copy(b.labels.begin(), b.labels.end(), labels.begin());
    RunResult r = ex.run(images.data(), labels.data(), count);
    loss += r.loss_sum;
    correct += r.correct;
    n += count;
  }
  if (ex.collectives() != nullptr) {
    double sums[3] = {loss, static_cast<double>(correct), static_cast<double>(n)};
    ex.collectives()->sum(sums, 3, "evaluation reduction");
    loss = sums[0];
    correct = static_cast<int64_t>(sums[1]);
    n = static_cast<int64_t>(sums[2]);
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
  // Every tensor is checked before any is written: a file of another network leaves the
  // store as it was.
  std::vector<const NamedTensor*> tensors;
  for (const StoredParam& p : store.params()) {
    const NamedTensor* t = f.find(p.spec.name);
    if (t == nullptr)
      throw DataFileError(what,
                          "has no tensor `" + p.spec.name + "`: it was saved from another network");
    if (t->shape != p.spec.shape)
      throw DataFileError(what, "tensor `" + p.spec.name + "` is " + shape_text(t->shape) +
                                    ", the network needs " + shape_text(p.spec.shape));
    tensors.push_back(t);
  }
  size_t i = 0;
  for (StoredParam& p : store.params()) store.write(p.value, tensors[i++]->data);
}

TensorFile init_tensors_for(const TensorFile& f, const ExecPlan& plan, const std::string& what) {
  TensorFile out;
  out.meta = f.meta;
  for (const ParamSpec& p : plan.params) {
    const NamedTensor* t = f.find(p.name);
    if (t == nullptr)
      throw TensorFileError(
          what, fmt::format("has no tensor `{}` ({}), which the network needs: the file holds {} "
                            "tensors of another network, or of an architecture that does not "
                            "use this layer (`nasc train --init` takes the weights or checkpoint "
                            "of the same network, or a search's checkpoint of its space)",
                            p.name, shape_text(p.shape), f.tensors.size()));
    if (t->shape != p.shape)
      throw TensorFileError(what, "tensor `" + p.name + "` is " + shape_text(t->shape) +
                                      ", the network needs " + shape_text(p.shape) +
                                      " (was the file saved with other network parameters?)");
    out.tensors.push_back(*t);
  }
  return out;
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
  } else if (cfg.name == "npy" || cfg.name == "images") {
    UserData u = cfg.name == "npy" ? read_npy_folder(cfg.dir, input_shape)
                                   : read_image_folder(cfg.dir, input_shape);
    if (u.test) {
      d.train = std::move(u.train);
      d.test = std::move(*u.test);
    } else {
      // No test split of its own: a stratified fifth of the data is held out as the test
      // set, the same for a given seed (docs/data.md).
      auto [train, test] = split_stratified(u.train, 0.8, derive_seed(seed, 17));
      d.test = u.train;
      d.train = std::move(u.train);
      d.train_indices = train;
      d.test_indices = test;
    }
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
    throw ConfigError(
        "", "data.name",
        fmt::format("{}{} has {} classes but the network returns {} logits", cfg.name,
                    cfg.dir.empty() || cfg.name == "fashion-mnist" ? "" : ":" + cfg.dir,
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

LoaderOptions rank_share(LoaderOptions options, const DataParallel& parallel) {
  options.shard = parallel.rank();
  options.shards = parallel.ranks();
  return options;
}

namespace {

// nasc train's epochs for the epoch driver: mini-batches with gradient accumulation and
// clipping, the schedule, the test (or validation) split after each epoch, and weights +
// optimizer state in the checkpoint.
class TrainEpochs final : public EpochTask {
 public:
  // `epoch_eval_loader` is what each epoch ends with: the test split, the validation
  // split (test_every_epoch false), or null (neither).
  TrainEpochs(const TrainerSetup& setup, const TrainData& data, ParamStore& store,
              Executor& trainer, Executor& evaluator, Optimizer& opt, Loader& train_loader,
              Loader* epoch_eval_loader, std::ostream& out)
      : cfg_(setup.config),
        parallel_(setup.parallel),
        data_(data),
        meta_(setup.network_meta),
        store_(store),
        trainer_(trainer),
        evaluator_(evaluator),
        opt_(opt),
        train_loader_(train_loader),
        epoch_eval_(epoch_eval_loader),
        out_(out),
        grads_(store.weight_grads()),
        mini_(cfg_.data.effective_mini_batch()),
        accum_(cfg_.data.batch_size / mini_),
        steps_per_epoch_(static_cast<int64_t>(train_loader.batches_per_epoch()) / accum_),
        schedule_(make_schedule(cfg_.optimizer.schedule, cfg_.optimizer.lr, steps_per_epoch_)),
        tty_(stdout_is_terminal()) {}

  void start_fresh(RunDir& run) override {
    run.write_json("config.json", train_config_to_json(cfg_));
    run.log(fmt::format("train {}: {} training / {} test samples, {} parameters, arena {} MB",
                        meta_.value("network", std::string("network")), data_.train_indices.size(),
                        data_.test_indices.size(), store_.trainable_count(),
                        trainer_.arena_bytes() / 1048576));
  }

  void before_epochs(RunDir& run) override {
    if (parallel_.ranks() == 1) return;
    const std::string line = data_parallel_line(store_, parallel_, false);
    run.log(line);
    out_ << line << "\n";
  }

  void restore(const Checkpoint& ck, const std::string& what) override {
    params_from_file(store_, ck.params, what);
    opt_.load_state(ck.optimizer_state, what);
    global_step_ = ck.global_step;
  }

  void run_epoch(int64_t epoch, EpochDriver& driver) override;
  EpochEnd end_epoch(int64_t epoch, bool whole, RunDir& run) override;

  void fill_checkpoint(Checkpoint& ck) override {
    ck.global_step = global_step_;
    ck.params = params_to_file(store_, meta_);
    ck.optimizer_state = opt_.save_state();
  }

  TrainSummary summary;

 private:
  const TrainConfig& cfg_;
  const DataParallel parallel_;
  const TrainData& data_;
  const nlohmann::json& meta_;
  ParamStore& store_;
  Executor &trainer_, &evaluator_;
  Optimizer& opt_;
  Loader& train_loader_;
  Loader* epoch_eval_;
  std::ostream& out_;
  std::vector<DeviceBuffer*> grads_;
  const int64_t mini_, accum_, steps_per_epoch_;
  std::unique_ptr<LrSchedule> schedule_;
  const bool tty_;
  int64_t global_step_ = 0;
  // The current epoch's.
  std::chrono::steady_clock::time_point epoch_start_;
  std::optional<Progress> bar_;
  Batch batch_;
  double loss_sum_ = 0, lr_ = 0, drop_path_prob_ = 0;
  int64_t correct_ = 0, seen_ = 0;
};

void TrainEpochs::run_epoch(int64_t epoch, EpochDriver& driver) {
  epoch_start_ = std::chrono::steady_clock::now();
  train_loader_.start_epoch(epoch);
  ProgressOptions po;
  po.tty = tty_;
  po.plain_every = cfg_.log_every;
  bar_.emplace(out_, fmt::format("epoch {}/{}", epoch + 1, cfg_.epochs), steps_per_epoch_ * accum_,
               po);
  loss_sum_ = 0;
  lr_ = opt_.lr();
  correct_ = seen_ = 0;
  int64_t mini_step = 0;
  const int64_t total_steps = steps_per_epoch_ * cfg_.epochs;
  drop_path_prob_ = scheduled_drop_path_prob(cfg_.drop_path_prob, epoch, cfg_.epochs);
  trainer_.set_drop_path_prob(drop_path_prob_);
  store_.zero_grads();
  while (train_loader_.next(batch_)) {
    if (mini_step / accum_ >= steps_per_epoch_) break;
    trainer_.set_dropout_seed(
        derive_seed(cfg_.seed, static_cast<uint64_t>(global_step_ * accum_ + mini_step % accum_)));
    trainer_.set_gradient_sync(mini_step % accum_ == accum_ - 1);
    RunResult r = trainer_.run(batch_.images.data(), batch_.labels.data(), trainer_.batch());
    if (!std::isfinite(r.loss_sum))
      throw ConfigError("", "optimizer.lr",
                        fmt::format("the training loss became {} at epoch {} step {}; lower the "
                                    "learning rate",
                                    r.loss_sum, epoch + 1, global_step_ + 1));
    loss_sum_ += r.loss_sum;
    correct_ += r.correct;
    seen_ += r.samples;
    ++mini_step;
    bool go_on = true;
    if (mini_step % accum_ == 0) {
      if (accum_ > 1)
        for (DeviceBuffer* g : grads_)
          store_.backend().scale(*g, 1.0f / static_cast<float>(accum_));
      if (cfg_.optimizer.grad_clip > 0)
        clip_grad_norm(store_.backend(), grads_, cfg_.optimizer.grad_clip);
      lr_ = schedule_->lr_at(global_step_, total_steps);
      opt_.set_lr(lr_);
      opt_.step();
      store_.zero_grads();
      ++global_step_;
      go_on = driver.after_step({epoch + 1, cfg_.epochs, mini_step / accum_, steps_per_epoch_,
                                 global_step_, loss_sum_ / seen_,
                                 static_cast<double>(correct_) / seen_, lr_});
    }
    bar_->update(mini_step, seen_, loss_sum_ / seen_, static_cast<double>(correct_) / seen_);
    if (!go_on) break;
  }
}

EpochEnd TrainEpochs::end_epoch(int64_t epoch, bool /*whole*/, RunDir& /*run*/) {
  // A partial epoch is evaluated too: the weights file it leaves says how good it is.
  const bool on_test = cfg_.test_every_epoch;
  average_running_statistics(store_, parallel_);
  check_replicas_agree(store_, parallel_);
  std::optional<EvalResult> eval;
  if (epoch_eval_ != nullptr) eval = evaluate(evaluator_, *epoch_eval_);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  summary.train_loss = loss_sum_ / std::max<int64_t>(1, seen_);
  summary.train_accuracy = static_cast<double>(correct_) / std::max<int64_t>(1, seen_);
  if (eval && on_test) {
    summary.test_loss = eval->loss;
    summary.test_accuracy = eval->accuracy;
  }
  const char* split = on_test ? "test" : "valid";
  EpochEnd end;
  end.bar = &*bar_;
  end.line = fmt::format(
      "epoch {}/{}: train loss {:.4f} acc {:.2f}%{} | lr {:.5f} | {:.1f} s, {:.0f} img/s",
      epoch + 1, cfg_.epochs, summary.train_loss, 100 * summary.train_accuracy,
      eval ? fmt::format(" | {} loss {:.4f} acc {:.2f}%", split, eval->loss, 100 * eval->accuracy)
           : std::string(),
      lr_, seconds, seen_ / seconds);
  end.record["epoch"] = epoch + 1;
  end.record["train_loss"] = summary.train_loss;
  end.record["train_acc"] = summary.train_accuracy;
  if (eval) {
    end.record[std::string(split) + "_loss"] = eval->loss;
    end.record[std::string(split) + "_acc"] = eval->accuracy;
  }
  end.record["lr"] = lr_;
  if (cfg_.drop_path_prob > 0) end.record["drop_path_prob"] = drop_path_prob_;
  end.record["seconds"] = seconds;
  end.record["images_per_s"] = seen_ / seconds;
  end.report = {epoch + 1,
                cfg_.epochs,
                summary.train_loss,
                summary.train_accuracy,
                eval ? eval->loss : 0,
                eval ? eval->accuracy : 0,
                seconds};
  return end;
}

}  // namespace

TrainSummary train_network(TrainerSetup setup, const std::string& dir, bool resume,
                           std::ostream& out) {
  resolve_synthetic_data(setup.config.data, setup.train_plan.input_shape, setup.train_plan.classes,
                         setup.config.source);
  const TrainConfig& cfg = setup.config;
  // Before the run folder: a refused config leaves nothing behind.
  if (cfg.drop_path_prob > 0 && !plan_reads_drop_path_prob(setup.train_plan))
    throw ConfigError(cfg.source, "drop_path_prob",
                      "the network has no drop_path(x) that takes the run's probability (one "
                      "without its own p), so the schedule would change nothing");
  // Before the run folder too: a file that does not fit leaves nothing behind.
  std::optional<TensorFile> init;
  if (!setup.init_weights.empty())
    init = init_tensors_for(read_tensor_file(setup.init_weights), setup.train_plan,
                            setup.init_weights);
  const auto start = std::chrono::steady_clock::now();
  set_cpu_threads(cfg.threads);
  EpochLoopOptions loop;
  loop.epochs = cfg.epochs;
  loop.checkpoint_every = cfg.checkpoint_every;
  EpochDriver driver(dir, resume, loop, setup.control, out);
  RunDir& run = driver.run_dir();
  TrainData data =
      load_train_data(cfg.data, cfg.seed, setup.train_plan.input_shape, setup.train_plan.classes);

  const int64_t mini = cfg.data.effective_mini_batch();
  if (data.train_indices.size() < static_cast<size_t>(cfg.data.batch_size))
    throw ConfigError("", "data.batch_size",
                      fmt::format("the training set has {} samples, fewer than one batch of {}",
                                  data.train_indices.size(), cfg.data.batch_size));

  ParamStore store(make_backend(setup.backend));
  Executor trainer(std::move(setup.train_plan), store, cfg.seed);
  trainer.set_label_smoothing(cfg.label_smoothing);
  Executor evaluator(std::move(setup.eval_plan), store, cfg.seed);
  trainer.set_collectives(setup.parallel.collectives, setup.parallel.sync_batchnorm);
  evaluator.set_collectives(setup.parallel.collectives, false);
  std::unique_ptr<Optimizer> opt =
      make_optimizer(cfg.optimizer, store.backend(), store.weight_slots());
  // A checkpoint, when the run resumes from one, replaces these again.
  if (init) {
    params_from_file(store, *init, setup.init_weights);
    run.log(fmt::format("initial weights: {} tensors from {}", init->tensors.size(),
                        setup.init_weights));
  }

  // The test and validation loaders below are cut the same way: each rank evaluates its share.
  const LoaderOptions lo =
      rank_share(training_loader_options(cfg.data, data, mini, cfg.seed), setup.parallel);
  Loader train_loader(data.train, data.train_indices, lo);
  LoaderOptions eo = lo;
  eo.batch_size = static_cast<size_t>(cfg.data.eval_batch_size);
  eo.shuffle = false;
  eo.drop_last = false;
  eo.train = false;
  Loader test_loader(data.test, data.test_indices, eo);
  std::optional<Loader> valid_loader;
  if (!cfg.test_every_epoch && !data.valid_indices.empty())
    valid_loader.emplace(data.train, data.valid_indices, eo);
  Loader* epoch_eval = cfg.test_every_epoch ? &test_loader
                       : valid_loader       ? &*valid_loader
                                            : nullptr;

  TrainEpochs epochs(setup, data, store, trainer, evaluator, *opt, train_loader, epoch_eval, out);
  driver.run(epochs);
  TrainSummary summary = epochs.summary;
  summary.epochs_run = driver.epochs_run();
  summary.stopped = driver.stopped();
  const bool complete = !summary.stopped && driver.first_epoch() + summary.epochs_run == cfg.epochs;
  // A resume of a finished run trains nothing; its result is the finished weights'.
  const bool nothing_ran = summary.epochs_run == 0 && !summary.stopped;
  if (!cfg.test_every_epoch || nothing_ran) {
    // The held-out test split, read once: after the last epoch (or, on a resume of a
    // finished run, the same weights read again).
    summary.test_loss = summary.test_accuracy = NAN;
    if (complete) {
      const EvalResult test = evaluate(evaluator, test_loader);
      summary.test_loss = test.loss;
      summary.test_accuracy = test.accuracy;
    }
  }
  nlohmann::json wmeta = setup.network_meta;
  if (init) wmeta["init"] = setup.init_weights;
  if (!std::isnan(summary.test_accuracy)) wmeta["test_accuracy"] = summary.test_accuracy;
  wmeta["epochs"] = cfg.epochs;
  if (summary.stopped) wmeta["stopped"] = true;
  // What every image went through before the network saw it: `nasc export` puts it in
  // front of the ONNX model, so that the model takes images as the data set holds them.
  if (!lo.augment.mean.empty())
    wmeta["input_normalization"] = {{"mean", lo.augment.mean}, {"std", lo.augment.std}};
  write_tensor_file(run.path("weights"), params_to_file(store, wmeta));
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (std::isnan(summary.test_accuracy))
    run.log(
        fmt::format("done: stopped before the last epoch; the test split is read only "
                    "after it (test_every_epoch false); wrote {}",
                    run.path("weights")));
  else
    run.log(fmt::format("done: test accuracy {:.2f}% after {} epochs; wrote {}",
                        100 * summary.test_accuracy, cfg.epochs, run.path("weights")));
  return summary;
}

}  // namespace nas
