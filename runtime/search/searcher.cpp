#include "runtime/search/searcher.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "runtime/cpu/threads.h"
#include "runtime/data/loader.h"
#include "runtime/dist/replicas.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/choice_weights.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/report/report_html.h"
#include "runtime/search/evolution.h"
#include "runtime/search/rerank.h"
#include "runtime/search/search_algorithm.h"
#include "runtime/search/search_run.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/epoch_driver.h"
#include "runtime/train/progress.h"
#include "runtime/train/trainer.h"
#include "support/errors.h"
#include "support/format.h"
#include "support/json_file.h"
#include "support/little_endian.h"
#include "support/rng.h"

namespace nas {

std::vector<std::vector<double>> arch_probabilities(const ParamStore& store) {
  std::vector<std::vector<double>> out;
  for (const StoredArch& a : store.arch()) {
    const std::vector<float> p = choice_softmax(store.read(a.alpha));
    out.emplace_back(p.begin(), p.end());
  }
  return out;
}

// The mean entropy of the first `groups` probability vectors (the choices; PC-DARTS'
// edge weights follow them).
double mean_entropy(const std::vector<std::vector<double>>& probs, size_t groups) {
  groups = std::min(groups, probs.size());
  if (groups == 0) return 0;
  double total = 0;
  for (size_t g = 0; g < groups; ++g)
    for (double v : probs[g])
      if (v > 0) total -= v * std::log(v);
  return total / static_cast<double>(groups);
}

std::vector<char> active_weight_slots(const ExecPlan& plan, const ParamStore& store,
                                      const std::vector<char>& live) {
  std::vector<int> slot_of(store.params().size(), -1);
  int slots = 0;
  for (size_t i = 0; i < store.params().size(); ++i)
    if (store.params()[i].spec.trainable) slot_of[i] = slots++;
  std::vector<char> active(static_cast<size_t>(slots), 0);
  for (const Step& s : plan.steps) {
    if (s.node >= plan.forward_nodes) break;  // forward steps come first
    if (!live.empty() && s.guard >= 0 && s.guard < plan.forward_nodes && !live[s.guard]) continue;
    for (int p : {s.weight, s.bias}) {
      if (p < 0) continue;
      const int at = store.find(plan.params[p].name);
      if (at >= 0 && slot_of[at] >= 0) active[slot_of[at]] = 1;
    }
  }
  return active;
}

std::vector<char> either(const std::vector<char>& a, const std::vector<char>& b) {
  if (a.empty() || b.empty()) return {};
  NAS_CHECK(a.size() == b.size(),
            "either: " + std::to_string(a.size()) + " flags against " + std::to_string(b.size()));
  std::vector<char> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] || b[i] ? 1 : 0;
  return out;
}

std::vector<DeviceBuffer*> flagged(const std::vector<DeviceBuffer*>& all,
                                   const std::vector<char>& flags) {
  if (flags.empty()) return all;
  NAS_CHECK(all.size() == flags.size(), "flagged: " + std::to_string(flags.size()) + " flags for " +
                                            std::to_string(all.size()));
  std::vector<DeviceBuffer*> out;
  for (size_t i = 0; i < all.size(); ++i)
    if (flags[i]) out.push_back(all[i]);
  return out;
}

double cost_in(const ArchCost& cost, const std::string& estimator) {
  if (estimator == "macs") return cost.macs;
  if (estimator == "latency") return cost.latency_ms;
  return cost.params;
}

const char* cost_unit(const std::string& estimator) {
  return estimator == "macs" ? "MACs" : estimator == "latency" ? "ms" : "params";
}

void throw_no_draw_within_bound(const RegularizerConfig& reg, double cheapest) {
  throw ConfigError("", "regularizer.bound",
                    fmt::format("no architecture of {} random draws is within the {} bound {} {} "
                                "(the cheapest drawn: {:.6g} {}); raise the bound",
                                kMaxBoundDraws, reg.estimator, reg.bound, cost_unit(reg.estimator),
                                cheapest, cost_unit(reg.estimator)));
}

namespace {

// Two optimizer blobs in one: uint64 size of the first, the first, the second.
std::vector<uint8_t> pack(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  std::vector<uint8_t> out;
  put_le(out, a.size(), 8);
  out.insert(out.end(), a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> unpack(const std::vector<uint8_t>& blob,
                                                             const std::string& what) {
  if (blob.size() < 8) throw DataFileError(what, "optimizer state is truncated");
  const uint64_t n = get_le(blob.data(), 8);
  if (n > blob.size() - 8) throw DataFileError(what, "optimizer state is truncated");
  return {{blob.begin() + 8, blob.begin() + 8 + static_cast<int64_t>(n)},
          {blob.begin() + 8 + static_cast<int64_t>(n), blob.end()}};
}

const char* kAlphaPrefix = "#alpha/";

double number_or_nan(const nlohmann::json& rec, const char* key) {
  auto it = rec.find(key);
  return it != rec.end() && it->is_number() ? it->get<double>() : NAN;
}

// evolution's pareto.json for the report; none (or a damaged file) gives no plot.
ReportPareto read_pareto(const std::string& path) {
  ReportPareto p;
  std::ifstream in(path);
  if (!in) return p;
  std::stringstream text;
  text << in.rdbuf();
  std::optional<nlohmann::json> j = try_parse_json(text.str());
  if (!j || !j->is_object()) return p;
  p.cost = j->value("cost", std::string("params"));
  p.bound = number_or_nan(*j, "bound");
  auto pair_of = [](const nlohmann::json& v) {
    return v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number();
  };
  if (j->contains("points") && (*j)["points"].is_array())
    for (const nlohmann::json& v : (*j)["points"])
      if (pair_of(v)) p.points.emplace_back(v[0].get<double>(), v[1].get<double>());
  const std::string cost_key = p.cost;
  if (j->contains("front") && (*j)["front"].is_array())
    for (const nlohmann::json& e : (*j)["front"])
      if (e.is_object())
        p.front.emplace_back(number_or_nan(e, cost_key.c_str()), number_or_nan(e, "valid_acc"));
  return p;
}

// A run folder's metrics.jsonl as report epochs; a damaged line (a crash mid-append) is
// left out of the report, not an error, and a missing file gives none.
std::vector<ReportEpoch> read_report_epochs(const std::string& path) {
  std::vector<ReportEpoch> out;
  std::ifstream metrics(path);
  std::string line;
  while (std::getline(metrics, line)) {
    std::optional<nlohmann::json> parsed = try_parse_json(line);
    if (!parsed || !parsed->is_object()) continue;
    const nlohmann::json& rec = *parsed;
    ReportEpoch e;
    e.epoch = rec.value("epoch", int64_t{0});
    e.train_loss = number_or_nan(rec, "train_loss");
    e.train_acc = number_or_nan(rec, "train_acc");
    e.valid_loss = number_or_nan(rec, "valid_loss");
    e.valid_acc = number_or_nan(rec, "valid_acc");
    e.params = number_or_nan(rec, "params");
    e.macs = number_or_nan(rec, "macs");
    e.latency_ms = number_or_nan(rec, "latency_ms");
    e.activation_bytes = number_or_nan(rec, "activation_bytes");
    if (rec.contains("probabilities") && rec["probabilities"].is_object())
      for (const auto& [k, v] : rec["probabilities"].items())
        if (v.is_array()) e.probs[k] = v.get<std::vector<double>>();
    if (rec.contains("genotype") && rec["genotype"].is_object())
      for (const auto& [k, v] : rec["genotype"].items())
        if (v.is_string()) e.genotype[k] = v.get<std::string>();
    out.push_back(std::move(e));
  }
  return out;
}

// "C=16, evaluation=true" from a retrain's network parameters.
std::string network_text(const nlohmann::ordered_json& network) {
  std::string text;
  for (auto it = network.begin(); it != network.end(); ++it)
    text += (text.empty() ? "" : ", ") + it.key() + "=" + it->dump();
  return text;
}

// report.html from the run folder's own records (so a resumed run reports every epoch).
void write_search_report(RunDir& run, const std::vector<ArchSpec>& groups,
                         const nlohmann::json& meta, const SearchSummary& summary,
                         const std::string& algorithm) {
  ReportInput in;
  in.title =
      "nasc search: " + meta.value("network", std::string("network")) + " (" + algorithm + ")";
  in.algorithm = algorithm;
  in.space_file = meta.value("file", std::string());
  in.command_line = meta.value("command", std::string());
  for (const ArchSpec& a : groups) in.candidates[a.key] = a.candidates;
  in.epochs = read_report_epochs(run.path("metrics.jsonl"));
  std::ifstream svg(run.path("arch.svg"));
  if (svg) {
    std::stringstream text;
    text << svg.rdbuf();
    in.arch_svg = text.str();
  }
  in.final_arch = summary.genotype.arch;
  in.final_params = summary.genotype.params;
  in.final_macs = summary.genotype.macs;
  in.final_latency_ms = summary.genotype.latency_ms;
  in.final_activation_bytes = summary.genotype.activation_bytes;
  in.final_measured_latency_ms = summary.genotype.measured_latency_ms;
  in.pareto = read_pareto(run.path("pareto.json"));
  in.seconds = summary.seconds;
  if (summary.retrain) {
    const RetrainOutcome& r = *summary.retrain;
    ReportRetrain rr;
    rr.network = network_text(r.network);
    rr.params = r.params;
    rr.macs = r.macs;
    rr.epochs = r.epochs;
    rr.curve = read_report_epochs((std::filesystem::path(r.dir) / "metrics.jsonl").string());
    rr.test_accuracy = r.test_accuracy;
    rr.test_loss = r.test_loss;
    rr.search_seconds = summary.search_seconds;
    rr.seconds = r.seconds;
    rr.stopped = r.stopped;
    in.retrain = rr;
  }
  write_report_html(run.path("report.html"), in);
}

// result.json: the search's and the retrain's numbers in one machine-readable file.
void write_search_result(RunDir& run, const SearchSummary& summary, const std::string& algorithm) {
  nlohmann::ordered_json j;
  j["algorithm"] = algorithm;
  j["arch_file"] = "arch.json";
  j["arch"] = summary.genotype.names;
  j["params"] = summary.genotype.params;
  j["macs"] = summary.genotype.macs;
  if (!std::isnan(summary.genotype.latency_ms)) j["latency_ms"] = summary.genotype.latency_ms;
  if (!std::isnan(summary.genotype.measured_latency_ms))
    j["measured_latency_ms"] = summary.genotype.measured_latency_ms;
  j["valid_accuracy"] = summary.valid_accuracy;
  j["search_seconds"] = summary.search_seconds;
  if (summary.retrain) {
    const RetrainOutcome& r = *summary.retrain;
    nlohmann::ordered_json rj;
    rj["dir"] = "retrain";
    rj["network"] = r.network;
    rj["params"] = r.params;
    rj["macs"] = r.macs;
    rj["epochs"] = r.epochs;
    rj["train_accuracy"] = r.train_accuracy;
    if (!std::isnan(r.test_accuracy)) {
      rj["test_loss"] = r.test_loss;
      rj["test_accuracy"] = r.test_accuracy;
    }
    rj["seconds"] = r.seconds;
    rj["stopped"] = r.stopped;
    j["retrain"] = rj;
    if (!std::isnan(r.test_accuracy)) j["test_accuracy"] = r.test_accuracy;
  }
  j["seconds"] = summary.seconds;
  j["stopped"] = summary.stopped;
  run.write_json("result.json", j);
}

// --retrain: the hook on the final genotype, its outcome in the summary and the log.
void retrain_found(const SearchHooks& hooks, SearchSummary& summary, RunDir& run) {
  if (!hooks.retrain || summary.stopped) return;
  run.log("retraining the found architecture into " + run.path("retrain"));
  summary.retrain = hooks.retrain(summary.genotype, run.dir());
  const RetrainOutcome& r = *summary.retrain;
  if (r.stopped) {
    summary.stopped = true;
    run.log(fmt::format("retrain: stopped after {} of {} epochs (--resume continues it)",
                        r.epochs_run, r.epochs));
  } else {
    run.log(
        fmt::format("retrain: test accuracy {:.2f}% after {} epochs ({:.0f} s; {} params, {} "
                    "MACs); wrote {}",
                    100 * r.test_accuracy, r.epochs, r.seconds, with_commas(std::llround(r.params)),
                    human_count(r.macs), run.path("retrain/weights")));
  }
}

}  // namespace

void finish_search(const SearchHooks& hooks, SearchSummary& summary, RunDir& run,
                   const std::vector<ArchSpec>& groups, const nlohmann::json& meta,
                   const std::string& algorithm, std::chrono::steady_clock::time_point start,
                   bool found) {
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  summary.search_seconds = elapsed();
  if (found) retrain_found(hooks, summary, run);
  summary.seconds = elapsed();
  write_search_report(run, groups, meta, summary, algorithm);
  write_search_result(run, summary, algorithm);
}

void write_epoch_record(RunDir& run, EventWriter& events, const nlohmann::ordered_json& rec,
                        int64_t step) {
  run.metrics(rec);
  for (auto it = rec.begin(); it != rec.end(); ++it)
    if (it->is_number() && it.key() != "epoch")
      events.scalar("search/" + it.key(), it->get<double>(), step);
  events.flush();
}

SearchData load_search_data(const SearchConfig& cfg, const ExecPlan& plan) {
  const TrainConfig& base = cfg.base;
  SearchData d;
  d.data = load_train_data(base.data, base.seed, plan.input_shape, plan.classes);
  if (d.data.valid_indices.empty())
    throw ConfigError(
        "", "data.train_portion",
        "search needs a validation split for the architecture: set data.train_portion below 1");
  d.batch = base.data.effective_mini_batch();
  if (base.data.mini_batch != base.data.batch_size)
    throw ConfigError("", "data.mini_batch",
                      "search does not accumulate gradients: use mini_batch = batch_size");
  for (const auto* part : {&d.data.train_indices, &d.data.valid_indices})
    if (part->size() < static_cast<size_t>(d.batch))
      throw ConfigError(
          "", "data.batch_size",
          fmt::format(
              "the training and validation splits ({} and {} samples) must each hold one batch "
              "of {}",
              d.data.train_indices.size(), d.data.valid_indices.size(), d.batch));
  d.train_options = training_loader_options(base.data, d.data, d.batch, base.seed);
  d.valid_options = d.train_options;
  d.valid_options.seed = derive_seed(base.seed, 101);  // another order than the training batches
  return d;
}

namespace {

// The optimizers a gradient search steps: the weights' (warm-up and search) and the
// architecture's.
struct SearchOptimizers {
  std::unique_ptr<Optimizer> weights, warmup, arch;
};

// darts, darts2 and pnas epochs for the epoch driver: per step an architecture step (not
// during warm-up) and a weight step; per epoch the probabilities, the genotype and its
// cost, arch.json; alphas, both optimizers' state and the algorithm's own in the
// checkpoint.
class SearchEpochs final : public EpochTask {
 public:
  SearchEpochs(const SearchSetup& setup, const SearchData& sd, const std::string& algorithm,
               const nlohmann::json& meta, ParamStore& store, Executor& weights,
               SearchAlgorithm& algo, SearchOptimizers& opts, std::ostream& out)
      : cfg_(setup.config),
        parallel_(setup.parallel),
        base_(setup.config.base),
        sd_(sd),
        algorithm_(algorithm),
        meta_(meta),
        store_(store),
        weights_(weights),
        algo_(algo),
        opts_(opts),
        out_(out),
        grads_(store.weight_grads()),
        train_loader_(sd.data.train, sd.data.train_indices,
                      rank_share(sd.train_options, parallel_)),
        valid_loader_(sd.data.train, sd.data.valid_indices,
                      rank_share(sd.valid_options, parallel_)),
        steps_(static_cast<int64_t>(
            std::min(train_loader_.batches_per_epoch(), valid_loader_.batches_per_epoch()))),
        schedule_(make_schedule(base_.optimizer.schedule, base_.optimizer.lr, steps_)),
        warm_schedule_(make_schedule(cfg_.warmup.schedule, cfg_.warmup.lr, steps_)),
        choices_(store.arch().size() - setup.edge_weight_groups),
        tty_(stdout_is_terminal()) {}

  void start_fresh(RunDir& run) override {
    run.write_json("config.json", search_config_to_json(cfg_));
    run.log(fmt::format(
        "search {} ({}): {} choices, {} weights, {} training / {} validation samples, {} "
        "steps per epoch, arena {} MB",
        meta_.value("network", std::string("network")), algorithm_, choices_,
        store_.trainable_count(), sd_.data.train_indices.size(), sd_.data.valid_indices.size(),
        steps_, weights_.arena_bytes() / 1048576));
  }

  void restore(const Checkpoint& ck, const std::string& what) override;

  // TensorBoard scalars (docs/search.md): one event file per process, in the run folder.
  void before_epochs(RunDir& run) override {
    events_.emplace(run.dir());
    if (parallel_.ranks() > 1) {
      const std::string line = data_parallel_line(store_, parallel_, algo_.derives_architecture());
      run.log(line);
      out_ << line << "\n";
    }
  }

  void run_epoch(int64_t epoch, EpochDriver& driver) override;
  EpochEnd end_epoch(int64_t epoch, bool whole, RunDir& run) override;

  void write_record(RunDir& run, const nlohmann::ordered_json& record, int64_t epoch) override {
    write_epoch_record(run, *events_, record, epoch);
  }

  void fill_checkpoint(Checkpoint& ck) override;
  bool finished() const override { return !summary.early_stop.empty(); }

  SearchSummary summary;

 private:
  std::string epoch_line(int64_t epoch) const;
  // Why the search stops after this epoch (darts.stop_at_param_free), or "".
  std::string early_stop_reason(bool warming) const;

  const SearchConfig& cfg_;
  const DataParallel parallel_;
  const TrainConfig& base_;
  const SearchData& sd_;
  const std::string& algorithm_;
  const nlohmann::json& meta_;
  ParamStore& store_;
  Executor& weights_;
  SearchAlgorithm& algo_;
  SearchOptimizers& opts_;
  std::ostream& out_;
  std::vector<DeviceBuffer*> grads_;
  std::vector<char> written_;  // the weights whose gradients the last step wrote; empty: all
  Loader train_loader_, valid_loader_;
  const int64_t steps_;
  std::unique_ptr<LrSchedule> schedule_, warm_schedule_;
  const size_t choices_;  // the groups that are choices (PC-DARTS' edge weights follow)
  const bool tty_;
  std::optional<EventWriter> events_;
  int64_t global_step_ = 0;
  // The current epoch's.
  std::chrono::steady_clock::time_point epoch_start_;
  std::optional<Progress> bar_;
  Batch train_batch_, valid_batch_;
  StepTotals totals_;
  double lr_ = 0;
};

void SearchEpochs::restore(const Checkpoint& ck, const std::string& what) {
  if (ck.extra.value("algorithm", algorithm_) != algorithm_)
    throw DataFileError(what, "the checkpoint is from a `" +
                                  ck.extra.value("algorithm", std::string()) + "` search, not `" +
                                  algorithm_ + "`");
  params_from_file(store_, ck.params, what);
  for (StoredArch& a : store_.arch()) {
    const NamedTensor* t = ck.params.find(kAlphaPrefix + a.spec.key);
    if (t == nullptr || t->data.size() != a.alpha.size())
      throw DataFileError(
          what, "no alpha for choice `" + a.spec.key + "`: it was saved from another search space");
    store_.write(a.alpha, t->data);
  }
  auto [wblob, ablob] = unpack(ck.optimizer_state, what);
  if (ck.epoch <= cfg_.warmup_epochs)
    opts_.warmup->load_state(wblob, what);
  else
    opts_.weights->load_state(wblob, what);
  opts_.arch->load_state(ablob, what);
  algo_.load_state(ck.extra.value("state", nlohmann::json::object()));
  global_step_ = ck.global_step;
  summary.early_stop = ck.extra.value("early_stop", std::string());
  // The result as it stands, for a resume that has no epoch left to run.
  summary.probs = arch_probabilities(store_);
  if (algo_.derives_architecture()) summary.genotype = algo_.genotype(summary.probs);
}

std::string SearchEpochs::early_stop_reason(bool warming) const {
  const int64_t limit = cfg_.darts.stop_at_param_free;
  if (warming || limit < 1) return {};
  for (const auto& [cell, count] : summary.genotype.param_free)
    if (count >= limit)
      return fmt::format(
          "the genotype has {} parameter-free operations in {} (darts.stop_at_param_free = {})",
          count, cell.empty() ? std::string("its cell") : "cell `" + cell + "`", limit);
  return {};
}

void SearchEpochs::run_epoch(int64_t epoch, EpochDriver& driver) {
  const bool warming = epoch < cfg_.warmup_epochs;
  epoch_start_ = std::chrono::steady_clock::now();
  train_loader_.start_epoch(epoch);
  valid_loader_.start_epoch(epoch);
  ProgressOptions po;
  po.tty = tty_;
  po.plain_every = base_.log_every;
  bar_.emplace(out_,
               fmt::format("{} {}/{}", warming ? "warm-up" : "epoch", epoch + 1, base_.epochs),
               steps_, po);
  totals_ = StepTotals();
  lr_ = 0;
  const int64_t search_epochs = base_.epochs - cfg_.warmup_epochs;
  Optimizer& opt = warming ? *opts_.warmup : *opts_.weights;
  for (int64_t s = 0; s < steps_; ++s) {
    if (!train_loader_.next(train_batch_) || !valid_loader_.next(valid_batch_)) break;
    const int64_t local = warming ? epoch * steps_ + s : (epoch - cfg_.warmup_epochs) * steps_ + s;
    lr_ = warming ? warm_schedule_->lr_at(local, cfg_.warmup_epochs * steps_)
                  : schedule_->lr_at(local, search_epochs * steps_);
    if (!warming) algo_.arch_step(train_batch_, valid_batch_, global_step_, lr_, totals_);
    algo_.prepare_weight_step(global_step_, warming);
    // A sampled path (ProxylessNAS, evolution) writes only its own weights' gradients, so
    // only those the last step wrote and this one will write need zeroing: every other
    // weight's gradient is still 0. Clipping, too, need only read these.
    const std::vector<char> active = algo_.active_slots();  // empty: every weight
    store_.zero_grads(either(written_, active));
    written_ = active;
    weights_.set_dropout_seed(derive_seed(base_.seed, 2 * static_cast<uint64_t>(global_step_) + 1));
    RunResult r =
        weights_.run(train_batch_.images.data(), train_batch_.labels.data(), weights_.batch());
    if (!std::isfinite(r.loss_sum))
      throw ConfigError("", warming ? "warmup.lr" : "train.lr",
                        fmt::format("the training loss became {} at epoch {} step {}; lower "
                                    "the learning rate",
                                    r.loss_sum, epoch + 1, s + 1));
    totals_.train_loss += r.loss_sum;
    totals_.train_correct += r.correct;
    totals_.train_seen += r.samples;
    const double clip = warming ? cfg_.warmup.grad_clip : base_.optimizer.grad_clip;
    if (clip > 0) clip_grad_norm(store_.backend(), flagged(grads_, active), clip);
    opt.set_active(active);  // a sampled path updates only its own weights
    opt.set_lr(lr_);
    opt.step();
    ++global_step_;
    const double seen = static_cast<double>(totals_.train_seen);
    const bool go_on =
        driver.after_step({epoch + 1, base_.epochs, s + 1, steps_, global_step_,
                           totals_.train_loss / seen, totals_.train_correct / seen, lr_});
    bar_->update(s + 1, totals_.train_seen, totals_.train_loss / seen,
                 totals_.train_correct / seen);
    if (!go_on) break;
  }
}

EpochEnd SearchEpochs::end_epoch(int64_t epoch, bool whole, RunDir& run) {
  const bool warming = epoch < cfg_.warmup_epochs;
  average_running_statistics(store_, parallel_);
  check_replicas_agree(store_, parallel_);
  const bool derives = algo_.derives_architecture();
  summary.probs = arch_probabilities(store_);
  if (derives) summary.genotype = algo_.genotype(summary.probs);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  const double n = static_cast<double>(std::max<int64_t>(1, totals_.train_seen));
  const double nv = static_cast<double>(std::max<int64_t>(1, totals_.valid_seen));
  if (!warming) summary.valid_accuracy = totals_.valid_correct / nv;
  EpochEnd end;
  end.bar = &*bar_;
  end.line = epoch_line(epoch) + fmt::format(" | {:.1f} s", seconds);
  if (!whole) {  // its results from the state it has; no record (epoch_driver.h)
    if (derives) run.write_json("arch.json", summary.genotype.arch);
    return end;
  }
  nlohmann::ordered_json& rec = end.record;
  rec["epoch"] = epoch + 1;
  rec["phase"] = warming ? "warmup" : derives ? "search" : "supernet";
  rec["train_loss"] = totals_.train_loss / n;
  rec["train_acc"] = totals_.train_correct / n;
  if (!warming && totals_.valid_seen > 0) {
    rec["valid_loss"] = totals_.valid_loss / nv;
    rec["valid_acc"] = totals_.valid_correct / nv;
    if (totals_.rewards > 0) rec["reward"] = totals_.reward / static_cast<double>(totals_.rewards);
  }
  rec["lr"] = lr_;
  if (!derives) {  // weights only: the architecture comes from the evolution
    rec["seconds"] = seconds;
    end.report = {epoch + 1, base_.epochs, totals_.train_loss / n, totals_.train_correct / n, 0,
                  0,         seconds};
    return end;
  }
  rec["alpha_entropy"] = mean_entropy(summary.probs, choices_);
  nlohmann::ordered_json probs = nlohmann::ordered_json::object();
  for (size_t g = 0; g < store_.arch().size(); ++g)
    probs[store_.arch()[g].spec.key] = summary.probs[g];
  rec["probabilities"] = probs;
  rec["genotype"] = summary.genotype.names;
  rec["params"] = summary.genotype.params;
  rec["macs"] = summary.genotype.macs;
  if (!std::isnan(summary.genotype.latency_ms)) rec["latency_ms"] = summary.genotype.latency_ms;
  if (!std::isnan(summary.genotype.activation_bytes))
    rec["activation_bytes"] = summary.genotype.activation_bytes;
  if (!summary.genotype.param_free.empty()) rec["param_free"] = summary.genotype.param_free;
  if (!summary.genotype.param_free_replaced.empty())
    rec["param_free_replaced"] = summary.genotype.param_free_replaced;
  summary.early_stop = early_stop_reason(warming);
  if (!summary.early_stop.empty()) rec["early_stop"] = summary.early_stop;
  end.stop_early = summary.early_stop;
  if (totals_.expected_costs > 0)
    rec["expected_" + cfg_.regularizer.estimator] =
        totals_.expected_cost / static_cast<double>(totals_.expected_costs);
  rec["seconds"] = seconds;
  nlohmann::ordered_json arch = summary.genotype.arch;
  arch["probabilities"] = probs;
  arch["epoch"] = epoch + 1;
  if (!summary.genotype.param_free_replaced.empty())
    arch["param_free_replaced"] = summary.genotype.param_free_replaced;
  run.write_json("arch.json", arch);
  end.report = {epoch + 1,
                base_.epochs,
                totals_.train_loss / n,
                totals_.train_correct / n,
                totals_.valid_loss / nv,
                totals_.valid_correct / nv,
                seconds};
  return end;
}

std::string SearchEpochs::epoch_line(int64_t epoch) const {
  const bool warming = epoch < cfg_.warmup_epochs;
  const double n = static_cast<double>(std::max<int64_t>(1, totals_.train_seen));
  const double nv = static_cast<double>(std::max<int64_t>(1, totals_.valid_seen));
  if (!algo_.derives_architecture())
    return fmt::format("{} {}/{}: train loss {:.4f} acc {:.2f}% (single paths)",
                       warming ? "warm-up" : "supernet", epoch + 1, base_.epochs,
                       totals_.train_loss / n, 100 * totals_.train_correct / n);
  return fmt::format(
      "{} {}/{}: train loss {:.4f} acc {:.2f}%{}{} | alpha entropy {:.3f} | genotype {} "
      "params, {} MACs{}",
      warming ? "warm-up" : "epoch", epoch + 1, base_.epochs, totals_.train_loss / n,
      100 * totals_.train_correct / n,
      warming ? std::string()
              : fmt::format(" | valid loss {:.4f} acc {:.2f}%", totals_.valid_loss / nv,
                            100 * totals_.valid_correct / nv),
      totals_.rewards > 0 ? fmt::format(" | reward {:.4f}", totals_.reward / totals_.rewards)
                          : std::string(),
      mean_entropy(summary.probs, choices_), with_commas(std::llround(summary.genotype.params)),
      human_count(summary.genotype.macs),
      std::isnan(summary.genotype.latency_ms)
          ? std::string()
          : fmt::format(", {:.3f} ms", summary.genotype.latency_ms));
}

void SearchEpochs::fill_checkpoint(Checkpoint& ck) {
  ck.global_step = global_step_;
  ck.params = params_to_file(store_, meta_);
  for (const StoredArch& a : store_.arch())
    ck.params.tensors.push_back(
        {kAlphaPrefix + a.spec.key, {static_cast<int64_t>(a.alpha.size())}, store_.read(a.alpha)});
  Optimizer& current = ck.epoch <= cfg_.warmup_epochs ? *opts_.warmup : *opts_.weights;
  ck.optimizer_state = pack(current.save_state(), opts_.arch->save_state());
  ck.extra = {{"algorithm", algorithm_}, {"state", algo_.save_state()}};
  if (!summary.early_stop.empty()) ck.extra["early_stop"] = summary.early_stop;
}

}  // namespace

SearchSummary run_search(SearchSetup setup, const std::string& dir, bool resume,
                         std::ostream& out) {
  resolve_synthetic_data(setup.config.base.data, setup.weight_plan.input_shape,
                         setup.weight_plan.classes, setup.config.base.source);
  const std::string algorithm = setup.algorithm;
  if (algorithm == "random") return run_random_search(std::move(setup), dir, resume, out);
  // -a and the config's "algorithm" accept only these.
  NAS_CHECK(algorithm == "darts" || algorithm == "darts2" || algorithm == "pnas" ||
                algorithm == "evolution",
            "search algorithm `" + algorithm + "` is not available");
  const bool evolution = algorithm == "evolution";
  const SearchConfig& cfg = setup.config;
  const TrainConfig& base = cfg.base;
  const auto start = std::chrono::steady_clock::now();
  set_cpu_threads(base.threads);
  EpochLoopOptions loop;
  loop.epochs = base.epochs;
  loop.checkpoint_every = base.checkpoint_every;
  EpochDriver driver(dir, resume, loop, setup.control, out);
  SearchData sd = load_search_data(cfg, setup.weight_plan);
  const std::vector<ArchSpec> groups = setup.weight_plan.arch;

  ParamStore store(make_backend(setup.backend));
  Executor weights(std::move(setup.weight_plan), store, base.seed);
  std::unique_ptr<Executor> alphas;  // darts, darts2 (pnas rewards run on `weights`)
  if (algorithm == "darts" || algorithm == "darts2") {
    alphas = std::make_unique<Executor>(std::move(setup.alpha_plan), store, base.seed);
    Executor::share_arena(weights, *alphas);
  }
  std::unique_ptr<Executor> eval;  // evolution's scores
  if (evolution) {
    eval = std::make_unique<Executor>(std::move(setup.eval_plan), store, base.seed);
    Executor::share_arena(weights, *eval);
  }
  weights.set_collectives(setup.parallel.collectives, setup.parallel.sync_batchnorm);
  if (alphas) alphas->set_collectives(setup.parallel.collectives, setup.parallel.sync_batchnorm);
  for (size_t g = 0; g < groups.size(); ++g)
    NAS_CHECK(g < store.arch().size() && store.arch()[g].spec.key == groups[g].key,
              "the store's choices are not in plan order");
  Backend& backend = store.backend();
  SearchOptimizers opts{make_optimizer(base.optimizer, backend, store.weight_slots()),
                        make_optimizer(cfg.warmup, backend, store.weight_slots()),
                        make_optimizer(cfg.valid, backend, store.arch_slots())};
  SearchContext ctx{cfg,          setup.hooks, setup.cost_terms, store,         weights,
                    alphas.get(), *opts.arch,  weights.batch(),  setup.parallel};
  std::unique_ptr<SearchAlgorithm> algo = algorithm == "pnas" ? make_proxyless_search(ctx)
                                          : evolution
                                              ? make_evolution_supernet(ctx)
                                              : make_darts_search(ctx, algorithm == "darts2");
  nlohmann::json meta = setup.meta;
  meta["algorithm"] = algorithm;

  SearchEpochs epochs(setup, sd, algorithm, meta, store, weights, *algo, opts, out);
  driver.run(epochs);
  SearchSummary summary = epochs.summary;
  summary.epochs_run = driver.epochs_run();
  summary.stopped = driver.stopped();
  // Evolution runs after the supernet's last epoch (a resume from it redoes the evolution);
  // a supernet stopped by a callback has no architecture yet.
  const bool evolved = evolution && !summary.stopped;
  std::vector<RerankCandidate> rerank_from;  // --rerank's, best first by the search's ranking
  if (evolved) {
    std::optional<Executor> recalibration;  // over several ranks: at the whole batch
    if (!setup.recalibration_plan.steps.empty())
      recalibration.emplace(std::move(setup.recalibration_plan), store, base.seed);
    EvolutionResult found =
        run_evolution({cfg, setup.hooks, store, recalibration ? *recalibration : weights, *eval, sd,
                       driver.run_dir(), out, setup.parallel});
    summary.genotype = found.best;
    summary.valid_accuracy = found.valid_accuracy;
    for (size_t r = 0; r < found.ranked.size() && static_cast<int64_t>(r) < cfg.rerank; ++r)
      rerank_from.push_back(
          {found.ranked[r].path,
           fmt::format("evolution #{} (generation {})", r + 1, found.ranked[r].generation + 1),
           found.ranked[r].valid_acc});
  }
  if (cfg.rerank > 0 && !summary.stopped) {
    // The space's choices (PC-DARTS' edge weights follow them in the plans).
    const std::vector<ArchSpec> choices(groups.begin(), groups.end() - setup.edge_weight_groups);
    if (!evolution)
      rerank_from = genotype_candidates(
          driver.run_dir().path("metrics.jsonl"), choices, summary.probs,
          [&](const std::vector<std::vector<double>>& p) { return algo->genotype(p); }, cfg.rerank,
          base.seed);
    const ExecPlan& eval_plan = eval ? eval->plan() : setup.eval_plan;
    NAS_CHECK(!eval_plan.steps.empty(), "--rerank needs the search's evaluation plan");
    const ExecPlan& trial_plan =
        setup.scratch_plan.steps.empty() ? weights.plan() : setup.scratch_plan;
    const ScratchTraining training{cfg, trial_plan, eval_plan, setup.hooks, setup.backend, sd, out};
    const RerankResult kept = rerank(training, rerank_from, driver.run_dir());
    summary.genotype = kept.genotype;
    summary.valid_accuracy = kept.valid_accuracy;
    if (evolution && setup.hooks.measure_latency)
      summary.genotype.measured_latency_ms =
          setup.hooks.measure_latency(rerank_from[kept.kept].path);
  }
  if (setup.hooks.finish && (!evolution || evolved)) setup.hooks.finish(summary.genotype, dir);
  finish_search(setup.hooks, summary, driver.run_dir(), groups, meta, algorithm, start,
                !evolution || evolved);
  if (evolution && !evolved) {
    driver.run_dir().log(
        fmt::format("done in {:.0f} s: stopped in the supernet phase, before "
                    "the evolution",
                    summary.seconds));
    return summary;
  }
  driver.run_dir().log(fmt::format("done in {:.0f} s{}: wrote {}", summary.seconds,
                                   summary.early_stop.empty() ? "" : " (stopped early)",
                                   driver.run_dir().path("arch.json")));
  return summary;
}

}  // namespace nas
