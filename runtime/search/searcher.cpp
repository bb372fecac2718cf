#include "runtime/search/searcher.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "runtime/cpu/threads.h"
#include "runtime/data/loader.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/choice_weights.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/report/report_html.h"
#include "runtime/search/search_algorithm.h"
#include "runtime/search/search_run.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/kill_points.h"
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

double mean_entropy(const std::vector<std::vector<double>>& probs) {
  if (probs.empty()) return 0;
  double total = 0;
  for (const auto& p : probs)
    for (double v : p)
      if (v > 0) total -= v * std::log(v);
  return total / static_cast<double>(probs.size());
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

}  // namespace

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
  std::ifstream metrics(run.path("metrics.jsonl"));
  std::string line;
  while (std::getline(metrics, line)) {
    // A damaged line (a crash mid-append) is left out of the report, not an error.
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
    in.epochs.push_back(std::move(e));
  }
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
  in.seconds = summary.seconds;
  write_report_html(run.path("report.html"), in);
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

SearchSummary run_search(SearchSetup setup, const std::string& dir, bool resume,
                         std::ostream& out) {
  resolve_synthetic_data(setup.config.base.data, setup.weight_plan.input_shape,
                         setup.weight_plan.classes, setup.config.base.source);
  const std::string algorithm = setup.algorithm;
  if (algorithm == "random") return run_random_search(std::move(setup), dir, resume, out);
  // -a and the config's "algorithm" accept only these.
  NAS_CHECK(algorithm == "darts" || algorithm == "darts2" || algorithm == "pnas",
            "search algorithm `" + algorithm + "` is not available");
  const SearchConfig& cfg = setup.config;
  const TrainConfig& base = cfg.base;
  const auto start = std::chrono::steady_clock::now();
  set_cpu_threads(base.threads);
  RunDir run(dir, !resume);
  SearchData sd = load_search_data(cfg, setup.weight_plan);
  const int64_t batch = sd.batch;
  const std::vector<ArchSpec> groups = setup.weight_plan.arch;

  ParamStore store(make_backend(setup.backend));
  Executor weights(std::move(setup.weight_plan), store, base.seed);
  std::unique_ptr<Executor> alphas;  // darts, darts2 (pnas rewards run on `weights`)
  if (algorithm != "pnas") {
    alphas = std::make_unique<Executor>(std::move(setup.alpha_plan), store, base.seed);
    Executor::share_arena(weights, *alphas);
  }
  for (size_t g = 0; g < groups.size(); ++g)
    NAS_CHECK(g < store.arch().size() && store.arch()[g].spec.key == groups[g].key,
              "the store's choices are not in plan order");
  Backend& backend = store.backend();
  std::unique_ptr<Optimizer> w_opt = make_optimizer(base.optimizer, backend, store.weight_slots());
  std::unique_ptr<Optimizer> warm_opt = make_optimizer(cfg.warmup, backend, store.weight_slots());
  std::unique_ptr<Optimizer> a_opt = make_optimizer(cfg.valid, backend, store.arch_slots());
  std::vector<DeviceBuffer*> grads = store.weight_grads();
  SearchContext ctx{cfg,     setup.hooks,  setup.cost_terms, store,
                    weights, alphas.get(), *a_opt,           batch};
  std::unique_ptr<SearchAlgorithm> algo = algorithm == "pnas"
                                              ? make_proxyless_search(ctx)
                                              : make_darts_search(ctx, algorithm == "darts2");

  Loader train_loader(sd.data.train, sd.data.train_indices, sd.train_options);
  Loader valid_loader(sd.data.train, sd.data.valid_indices, sd.valid_options);
  const int64_t steps = static_cast<int64_t>(
      std::min(train_loader.batches_per_epoch(), valid_loader.batches_per_epoch()));
  const int64_t search_epochs = base.epochs - cfg.warmup_epochs;
  std::unique_ptr<LrSchedule> schedule =
      make_schedule(base.optimizer.schedule, base.optimizer.lr, steps);
  std::unique_ptr<LrSchedule> warm_schedule =
      make_schedule(cfg.warmup.schedule, cfg.warmup.lr, steps);

  nlohmann::json meta = setup.meta;
  meta["algorithm"] = algorithm;
  int64_t first_epoch = 0, global_step = 0;
  std::optional<Checkpoint> ck;
  if (resume) ck = load_checkpoint(dir);
  if (ck) {
    const std::string what = run.path(kCheckpointFileName);
    if (ck->extra.value("algorithm", algorithm) != algorithm)
      throw DataFileError(what, "the checkpoint is from a `" +
                                    ck->extra.value("algorithm", std::string()) +
                                    "` search, not `" + algorithm + "`");
    params_from_file(store, ck->params, what);
    for (StoredArch& a : store.arch()) {
      const NamedTensor* t = ck->params.find(kAlphaPrefix + a.spec.key);
      if (t == nullptr || t->data.size() != a.alpha.size())
        throw DataFileError(what, "no alpha for choice `" + a.spec.key +
                                      "`: it was saved from another search space");
      store.write(a.alpha, t->data);
    }
    auto [wblob, ablob] = unpack(ck->optimizer_state, what);
    if (ck->epoch <= cfg.warmup_epochs)
      warm_opt->load_state(wblob, what);
    else
      w_opt->load_state(wblob, what);
    a_opt->load_state(ablob, what);
    algo->load_state(ck->extra.value("state", nlohmann::json::object()));
    first_epoch = ck->epoch;
    global_step = ck->global_step;
    run.truncate_metrics_after(first_epoch);
    run.log(fmt::format("resumed after epoch {} (step {})", first_epoch, global_step));
    out << "resuming after epoch " << first_epoch << "\n";
  } else if (resume) {
    run.start_over();
    out << kStartingOver << "\n";
  } else {
    run.write_json("config.json", search_config_to_json(cfg));
    run.log(fmt::format(
        "search {} ({}): {} choices, {} weights, {} training / {} validation samples, {} "
        "steps per epoch, arena {} MB",
        meta.value("network", std::string("network")), algorithm, store.arch().size(),
        store.trainable_count(), sd.data.train_indices.size(), sd.data.valid_indices.size(), steps,
        weights.arena_bytes() / 1048576));
  }

  // TensorBoard scalars (docs/search.md): one event file per process, in the run folder.
  EventWriter events(dir);
  SearchSummary summary;
  const bool tty = stdout_is_terminal();
  Batch tb, vb;
  for (int64_t epoch = first_epoch; epoch < base.epochs; ++epoch) {
    const bool warming = epoch < cfg.warmup_epochs;
    const auto epoch_start = std::chrono::steady_clock::now();
    train_loader.start_epoch(epoch);
    valid_loader.start_epoch(epoch);
    ProgressOptions po;
    po.tty = tty;
    po.plain_every = base.log_every;
    Progress bar(out,
                 fmt::format("{} {}/{}", warming ? "warm-up" : "epoch", epoch + 1, base.epochs),
                 steps, po);
    StepTotals totals;
    double lr = 0;
    Optimizer& opt = warming ? *warm_opt : *w_opt;
    for (int64_t s = 0; s < steps; ++s) {
      if (!train_loader.next(tb) || !valid_loader.next(vb)) break;
      const int64_t local = warming ? epoch * steps + s : (epoch - cfg.warmup_epochs) * steps + s;
      lr = warming ? warm_schedule->lr_at(local, cfg.warmup_epochs * steps)
                   : schedule->lr_at(local, search_epochs * steps);
      if (!warming) algo->arch_step(tb, vb, global_step, lr, totals);
      algo->prepare_weight_step(global_step, warming);
      store.zero_grads();
      weights.set_dropout_seed(derive_seed(base.seed, 2 * static_cast<uint64_t>(global_step) + 1));
      RunResult r = weights.run(tb.images.data(), tb.labels.data(), batch);
      if (!std::isfinite(r.loss_sum))
        throw ConfigError("", warming ? "warmup.lr" : "train.lr",
                          fmt::format("the training loss became {} at epoch {} step {}; lower "
                                      "the learning rate",
                                      r.loss_sum, epoch + 1, s + 1));
      totals.train_loss += r.loss_sum;
      totals.train_correct += r.correct;
      totals.train_seen += batch;
      const double clip = warming ? cfg.warmup.grad_clip : base.optimizer.grad_clip;
      if (clip > 0) clip_grad_norm(backend, grads, clip);
      opt.set_active(algo->active_slots());  // a sampled path updates only its own weights
      opt.set_lr(lr);
      opt.step();
      ++global_step;
      kill_point_after_step(global_step);
      const double seen = static_cast<double>(totals.train_seen);
      bar.update(s + 1, totals.train_seen, totals.train_loss / seen, totals.train_correct / seen);
      if (setup.control.on_step &&
          !setup.control.on_step({epoch + 1, base.epochs, s + 1, steps, global_step,
                                  totals.train_loss / seen, totals.train_correct / seen, lr})) {
        summary.stopped = true;
        break;
      }
    }
    summary.probs = arch_probabilities(store);
    summary.genotype = algo->genotype(summary.probs);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    const double n = static_cast<double>(std::max<int64_t>(1, totals.train_seen));
    const double nv = static_cast<double>(std::max<int64_t>(1, totals.valid_seen));
    nlohmann::ordered_json rec;
    rec["epoch"] = epoch + 1;
    rec["phase"] = warming ? "warmup" : "search";
    rec["train_loss"] = totals.train_loss / n;
    rec["train_acc"] = totals.train_correct / n;
    if (!warming) {
      rec["valid_loss"] = totals.valid_loss / nv;
      rec["valid_acc"] = totals.valid_correct / nv;
      summary.valid_accuracy = totals.valid_correct / nv;
      if (totals.rewards > 0) rec["reward"] = totals.reward / static_cast<double>(totals.rewards);
    }
    rec["lr"] = lr;
    rec["alpha_entropy"] = mean_entropy(summary.probs);
    nlohmann::ordered_json probs = nlohmann::ordered_json::object();
    for (size_t g = 0; g < store.arch().size(); ++g)
      probs[store.arch()[g].spec.key] = summary.probs[g];
    rec["probabilities"] = probs;
    rec["genotype"] = summary.genotype.names;
    rec["params"] = summary.genotype.params;
    rec["macs"] = summary.genotype.macs;
    if (!std::isnan(summary.genotype.latency_ms)) rec["latency_ms"] = summary.genotype.latency_ms;
    if (!std::isnan(summary.genotype.activation_bytes))
      rec["activation_bytes"] = summary.genotype.activation_bytes;
    if (totals.expected_costs > 0)
      rec["expected_" + cfg.regularizer.estimator] =
          totals.expected_cost / static_cast<double>(totals.expected_costs);
    rec["seconds"] = seconds;
    write_epoch_record(run, events, rec, epoch + 1);
    std::string line = fmt::format(
        "{} {}/{}: train loss {:.4f} acc {:.2f}%{}{} | alpha entropy {:.3f} | genotype {} "
        "params, {} MACs{} | {:.1f} s",
        warming ? "warm-up" : "epoch", epoch + 1, base.epochs, totals.train_loss / n,
        100 * totals.train_correct / n,
        warming ? std::string()
                : fmt::format(" | valid loss {:.4f} acc {:.2f}%", totals.valid_loss / nv,
                              100 * totals.valid_correct / nv),
        totals.rewards > 0 ? fmt::format(" | reward {:.4f}", totals.reward / totals.rewards)
                           : std::string(),
        mean_entropy(summary.probs), with_commas(std::llround(summary.genotype.params)),
        human_count(summary.genotype.macs),
        std::isnan(summary.genotype.latency_ms)
            ? std::string()
            : fmt::format(", {:.3f} ms", summary.genotype.latency_ms),
        seconds);
    if (summary.stopped) {  // a partial epoch: recorded, but no checkpoint (a resume drops it)
      bar.finish(line + " | stopped at step " + std::to_string(global_step));
      run.log(line + " | stopped at step " + std::to_string(global_step));
      run.write_json("arch.json", summary.genotype.arch);
      break;
    }
    bar.finish(line);
    run.log(line);
    nlohmann::ordered_json arch = summary.genotype.arch;
    arch["probabilities"] = probs;
    arch["epoch"] = epoch + 1;
    run.write_json("arch.json", arch);
    ++summary.epochs_run;
    if (setup.control.on_epoch &&
        !setup.control.on_epoch({epoch + 1, base.epochs, totals.train_loss / n,
                                 totals.train_correct / n, totals.valid_loss / nv,
                                 totals.valid_correct / nv, seconds}))
      summary.stopped = true;
    if ((epoch + 1) % base.checkpoint_every == 0 || epoch + 1 == base.epochs || summary.stopped) {
      Checkpoint ck;
      ck.epoch = epoch + 1;
      ck.global_step = global_step;
      ck.params = params_to_file(store, meta);
      for (const StoredArch& a : store.arch())
        ck.params.tensors.push_back({kAlphaPrefix + a.spec.key,
                                     {static_cast<int64_t>(a.alpha.size())},
                                     store.read(a.alpha)});
      Optimizer& current = epoch + 1 <= cfg.warmup_epochs ? *warm_opt : *w_opt;
      ck.optimizer_state = pack(current.save_state(), a_opt->save_state());
      ck.extra = {{"algorithm", algorithm}, {"state", algo->save_state()}};
      save_checkpoint(dir, ck);
    }
    if (summary.stopped) break;
  }
  if (setup.hooks.finish) setup.hooks.finish(summary.genotype, dir);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_search_report(run, groups, meta, summary, algorithm);
  run.log(fmt::format("done in {:.0f} s: wrote {}", summary.seconds, run.path("arch.json")));
  return summary;
}

}  // namespace nas
