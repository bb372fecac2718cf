// The search algorithms: the choice modes (sample frequencies, max, FairNAS coverage,
// the REINFORCE log-probability gradient against finite differences), the second-order
// DARTS architecture gradient against a finite difference of the unrolled objective,
// and a planted problem that darts, darts2 and pnas must each solve (deterministic:
// fixed seed, one thread).
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "compiler/analysis/space_stats.h"
#include "compiler/estimate/expected_cost_terms.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/genotype.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/cpu/threads.h"
#include "runtime/optim/optim_config.h"
#include "runtime/search/choice_modes.h"
#include "runtime/search/expected_cost.h"
#include "runtime/search/search_algorithm.h"
#include "runtime/search/search_config.h"
#include "runtime/search/search_run.h"
#include "runtime/search/searcher.h"
#include "support/rng.h"
#include "tests/cli_test_util.h"
#include "tests/ir_test_util.h"
#include "tests/search_test_util.h"

using namespace nas;
using nas::test::compile_source;
using nas::test::make_search_setup;
using nas::test::spec;

namespace {

int group_index(const Graph& g, const std::string& key) {
  for (size_t i = 0; i < g.arch.size(); ++i)
    if (g.arch[i].key == key) return static_cast<int>(i);
  FAIL("no choice " << key);
  return -1;
}

// One candidate carries the input's information (a learnable conv); the two others carry
// none (zero, and a scaling by 0), so only the conv can lower the validation loss or
// raise the validation accuracy.
const char* kPlanted = R"(
network planted(x: tensor[4, 12, 12]) {
  let h = choice "op" { zero: zero(x), conv: conv(x, 4, kernel=3, pad=1), mute: mul(x, 0.0) };
  h = relu(h);
  return linear(flatten(max_pool(h, 4)), 4);
}
)";

// kPlanted's training plan at batch 4.
ExecPlan planted_training_plan(const Graph& g) {
  PlanOptions w;
  w.batch = 4;
  w.training = true;
  return compile_plan(g, w);
}

// A batch of 4 images for kPlanted, uniform in [0, 1) from `seed`.
std::vector<float> planted_images(uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(4 * 4 * 12 * 12);
  for (float& v : x) v = rng.uniform_float();
  return x;
}

}  // namespace

TEST_CASE("choice modes: names, max, sample frequencies, fair coverage", "[search][choice]") {
  CHECK(parse_choice_mode("fair") == ChoiceMode::Fair);
  CHECK(std::string(choice_mode_name(ChoiceMode::Sample)) == "sample");
  CHECK_THROWS_WITH(parse_choice_mode("greedy"),
                    Catch::Matchers::Contains("full, sample, max, fair"));

  std::vector<ArchSpec> groups = {spec("a", 3), spec("j", 4, 2)};
  std::vector<std::vector<double>> probs = {{0.2, 0.5, 0.3}, {0.1, 0.4, 0.1, 0.4}};
  // max: the argmax; a join its k most probable, ties to the lower index.
  ChoiceSelection m = select_path(ChoiceMode::Max, groups, probs, 0, 0);
  CHECK(m[0] == std::vector<int>{1});
  CHECK(m[1] == std::vector<int>{1, 3});
  CHECK_THROWS(select_path(ChoiceMode::Full, groups, probs, 0, 0));
  CHECK_THROWS(select_path(ChoiceMode::Sample, groups, {{0.5, 0.5}}, 0, 0));

  // sample: frequencies within 4 standard deviations of the probabilities; a join draws
  // distinct candidates; the same (seed, step) draws the same path.
  const int n = 20000;
  std::vector<int> count(3, 0);
  for (int step = 0; step < n; ++step) {
    ChoiceSelection s = select_path(ChoiceMode::Sample, groups, probs, 7, step);
    ++count[s[0][0]];
    REQUIRE(s[1].size() == 2);
    CHECK(s[1][0] != s[1][1]);
  }
  for (int c = 0; c < 3; ++c) {
    const double p = probs[0][c], sd = std::sqrt(p * (1 - p) / n);
    CHECK(std::abs(count[c] / double(n) - p) < 4 * sd);
  }
  CHECK(select_path(ChoiceMode::Sample, groups, probs, 7, 11) ==
        select_path(ChoiceMode::Sample, groups, probs, 7, 11));
  // A candidate with probability 0 is never drawn.
  for (int step = 0; step < 200; ++step)
    CHECK(select_path(ChoiceMode::Sample, {spec("z", 3)}, {{0.5, 0.0, 0.5}}, 1, step)[0][0] != 1);

  // fair: every window of n steps (aligned) trains every candidate of an n-way choice once,
  // in a different order per window; a 2-of-4 join covers all four in 2 steps.
  for (int cycle = 0; cycle < 5; ++cycle) {
    std::vector<int> seen(3, 0), seen_join(4, 0);
    for (int t = 0; t < 3; ++t)
      ++seen[select_path(ChoiceMode::Fair, groups, {}, 5, cycle * 3 + t)[0][0]];
    for (int t = 0; t < 2; ++t) {
      ChoiceSelection s = select_path(ChoiceMode::Fair, groups, {}, 5, cycle * 2 + t);
      for (int c : s[1]) ++seen_join[c];
    }
    CHECK(seen == std::vector<int>{1, 1, 1});
    CHECK(seen_join == std::vector<int>{1, 1, 1, 1});
  }
}

TEST_CASE("choice modes: the REINFORCE gradient of log P(picks) matches finite differences",
          "[search][choice]") {
  // log P of an ordered draw without replacement (Plackett-Luce) from softmax(alpha).
  auto log_prob = [](const std::vector<double>& alpha, const std::vector<int>& picks) {
    std::vector<bool> used(alpha.size(), false);
    double lp = 0;
    for (int p : picks) {
      double z = 0;
      for (size_t c = 0; c < alpha.size(); ++c)
        if (!used[c]) z += std::exp(alpha[c]);
      lp += alpha[p] - std::log(z);
      used[p] = true;
    }
    return lp;
  };
  std::vector<double> alpha = {0.3, -0.2, 1.1, 0.0};
  for (const std::vector<int>& picks : {std::vector<int>{2}, std::vector<int>{1, 3}}) {
    double z = 0;
    for (double a : alpha) z += std::exp(a);
    std::vector<double> probs;
    for (double a : alpha) probs.push_back(std::exp(a) / z);
    std::vector<double> g = log_prob_gradient(probs, picks);
    for (size_t j = 0; j < alpha.size(); ++j) {
      std::vector<double> up = alpha, down = alpha;
      up[j] += 1e-5;
      down[j] -= 1e-5;
      CHECK(g[j] == Approx((log_prob(up, picks) - log_prob(down, picks)) / 2e-5).margin(1e-6));
    }
  }
}

TEST_CASE("darts2: the unrolled architecture gradient matches finite differences",
          "[search][darts2]") {
  set_cpu_threads(1);
  Graph g = compile_source(kPlanted);
  SearchConfig cfg = default_search_config();
  const int64_t batch = 8;
  PlanOptions w, a;
  w.batch = a.batch = batch;
  w.training = a.training = true;
  a.arch_grads = true;
  ParamStore store;
  Executor weights(compile_plan(g, w), store, 4);
  Executor alphas(compile_plan(g, a), store, 4);
  Executor::share_arena(weights, alphas);
  store.write(store.arch()[0].alpha, {0.1f, -0.3f, 0.2f});
  OptimizerConfig sgd;
  sgd.name = "sgd";
  sgd.lr = 1;
  sgd.momentum = 0;
  sgd.weight_decay = 0;
  std::unique_ptr<Optimizer> arch_opt = make_optimizer(sgd, store.backend(), store.arch_slots());
  SearchHooks hooks;
  std::vector<CostTerm> no_terms;
  SearchContext ctx{cfg, hooks, no_terms, store, weights, &alphas, *arch_opt, batch};
  std::unique_ptr<SearchAlgorithm> darts2 = make_darts_search(ctx, true);

  Rng rng(9);
  Batch train, valid;
  for (Batch* b : {&train, &valid}) {
    b->images.resize(batch * 4 * 12 * 12);
    for (float& v : b->images) v = rng.uniform_float() - 0.5f;
    for (int i = 0; i < batch; ++i) b->labels.push_back(static_cast<int32_t>(rng.uniform(4)));
  }
  const double xi = 0.1, wd = cfg.base.optimizer.weight_decay;
  std::vector<std::vector<float>> w0;
  for (const StoredParam& p : store.params()) w0.push_back(store.read(p.value));
  const std::vector<float> alpha0 = store.read(store.arch()[0].alpha);
  auto restore_weights = [&] {
    for (size_t i = 0; i < w0.size(); ++i) store.write(store.params()[i].value, w0[i]);
  };

  // L_val(w - xi * (dL_train/dw + wd w), alpha), in double where it matters.
  auto unrolled_loss = [&](const std::vector<float>& alpha) {
    restore_weights();
    store.write(store.arch()[0].alpha, alpha);
    store.zero_grads();
    weights.run(train.images.data(), train.labels.data(), batch);
    for (ParamSlot& s : store.weight_slots()) {
      std::vector<float> value = store.read(*s.value);
      const std::vector<float> grad = store.read(*s.grad);
      for (size_t i = 0; i < value.size(); ++i)
        value[i] -= static_cast<float>(xi * (grad[i] + (s.decay ? wd * value[i] : 0.0)));
      store.write(*s.value, value);
    }
    alphas.set_gradients(false, false);
    double loss = alphas.run(valid.images.data(), valid.labels.data(), batch).loss_sum / batch;
    alphas.set_gradients(true, true);
    return loss;
  };
  std::vector<double> numeric;
  for (size_t j = 0; j < alpha0.size(); ++j) {
    std::vector<float> up = alpha0, down = alpha0;
    up[j] += 0.02f;
    down[j] -= 0.02f;
    numeric.push_back((unrolled_loss(up) - unrolled_loss(down)) / 0.04);
  }
  restore_weights();
  store.write(store.arch()[0].alpha, alpha0);

  StepTotals totals;
  darts2->arch_step(train, valid, 0, xi, totals);
  // SGD with lr 1: the step moved alpha by minus the gradient; the weights are restored.
  const std::vector<float> alpha1 = store.read(store.arch()[0].alpha);
  for (size_t j = 0; j < alpha0.size(); ++j) {
    const double analytic = alpha0[j] - alpha1[j];
    INFO("alpha " << j << ": darts2 " << analytic << ", finite differences " << numeric[j]);
    CHECK(analytic == Approx(numeric[j]).margin(2e-3).epsilon(0.05));
  }
  for (size_t i = 0; i < w0.size(); ++i)
    if (store.params()[i].spec.trainable) CHECK(store.read(store.params()[i].value) == w0[i]);
  CHECK(totals.valid_seen == batch);
}

TEST_CASE("search: darts, darts2 and pnas each find the planted candidate", "[search][planted]") {
  Graph g = compile_source(kPlanted);
  auto exec = std::make_shared<Graph>(execution_graph(g));
  for (const char* algorithm : {"darts", "darts2", "pnas"}) {
    DYNAMIC_SECTION(algorithm) {
      SearchConfig cfg = parse_search_config(nlohmann::json::parse(R"({
        "epochs": 4, "seed": 3, "threads": 1,
        "data": {"name": "synthetic", "synthetic_samples": 1024, "synthetic_classes": 4,
                 "synthetic_shape": [4, 12, 12], "batch_size": 32},
        "valid": {"name": "adam", "lr": 0.05, "betas": [0.5, 0.999]}})"),
                                             "planted.json");
      SearchSetup setup = make_search_setup(g, algorithm, cfg, exec);
      std::string dir = nas::test::scratch_path(std::string("planted_") + algorithm);
      std::filesystem::remove_all(dir);
      std::ostringstream out;
      SearchSummary s = run_search(setup, dir, false, out);
      INFO(out.str());
      CHECK(s.genotype.names["op"] == "conv");
      CHECK(s.probs[0][1] > 0.5);  // conv's probability, from 1/3
      std::filesystem::remove_all(dir);
    }
  }
}

TEST_CASE("pnas: a sampled path's weight step updates only that path's weights", "[search][pnas]") {
  Graph g = compile_source(kPlanted);
  Graph exec = execution_graph(g);
  ParamStore store;
  Executor weights(planted_training_plan(g), store, 1);
  auto slot_names = [&store] {
    std::vector<std::string> names;
    for (const StoredParam& p : store.params())
      if (p.spec.trainable) names.push_back(p.spec.name);
    return names;
  };
  const std::vector<std::string> names = slot_names();
  auto active_names = [&](int candidate) {
    std::vector<char> active =
        active_weight_slots(weights.plan(), store, live_mask(exec, Selection{{{candidate}}}));
    std::string out;
    for (size_t i = 0; i < active.size(); ++i)
      if (active[i]) out += names[i].substr(0, names[i].find('.')) + " ";
    return out;
  };
  const std::string with_conv = active_names(1), with_zero = active_names(0);
  INFO("conv path: " << with_conv << "| zero path: " << with_zero);
  CHECK(with_conv.size() > with_zero.size());
  CHECK(with_zero.find("conv") == std::string::npos);  // the zero path leaves the conv alone
  CHECK(with_conv.find("conv") != std::string::npos);
  CHECK(with_zero.find("linear") != std::string::npos);
}

TEST_CASE("pnas: a step zeroes only the gradients its path and the last one wrote",
          "[search][pnas]") {
  // The searcher keeps every other weight's gradient at 0 (searcher.cpp): a sampled path
  // writes only its own weights' gradients, so the zero path's step after the conv path's
  // zeroes the conv's gradient from before, and then leaves it at 0.
  Graph g = compile_source(kPlanted);
  Graph exec = execution_graph(g);
  ParamStore store;
  Executor weights(planted_training_plan(g), store, 1);
  const std::vector<float> x = planted_images(5);
  const std::vector<int32_t> y = {0, 1, 2, 3};
  auto sum_of_squares = [&store](bool conv) {
    double sum = 0;
    for (const StoredParam& p : store.params())
      if (p.spec.trainable && (p.spec.name.find("conv") != std::string::npos) == conv)
        for (float v : store.read(p.grad)) sum += double(v) * v;
    return sum;
  };
  std::vector<char> written;
  auto step = [&](int candidate) {
    const Selection path{{{candidate}}};
    const std::vector<char> mask = live_mask(exec, path);
    const std::vector<char> active = active_weight_slots(weights.plan(), store, mask);
    store.zero_grads(either(written, active));
    written = active;
    weights.use_selection(path.chosen);
    weights.set_live_mask(mask);
    weights.run(x.data(), y.data(), 4);
  };
  step(1);  // the conv path
  CHECK(sum_of_squares(true) > 0);
  step(0);  // the zero path: the conv's gradient from before is zeroed
  CHECK(sum_of_squares(true) == 0);
  CHECK(sum_of_squares(false) > 0);
  // Flags that do not match the weights are a bug; either() and flagged() keep "every
  // weight" as the empty set.
  CHECK_THROWS_AS(store.zero_grads(std::vector<char>(written.size() + 1, 1)), InternalError);
  CHECK(either({}, written).empty());
  CHECK(either({1, 0, 0}, {0, 0, 1}) == std::vector<char>{1, 0, 1});
  std::vector<DeviceBuffer*> grads = store.weight_grads();
  CHECK(flagged(grads, {}).size() == grads.size());
  std::vector<char> first_only(grads.size(), 0);
  first_only[0] = 1;
  CHECK(flagged(grads, first_only) == std::vector<DeviceBuffer*>{grads[0]});
}

TEST_CASE("pnas rewards: a forward-only run of the training plan computes the loss, no gradients",
          "[search][pnas]") {
  Graph g = compile_source(kPlanted);
  ParamStore store;
  Executor net(planted_training_plan(g), store, 2);
  const std::vector<float> x = planted_images(3);
  std::vector<int32_t> y = {0, 1, 2, 3};
  store.zero_grads();
  RunResult full = net.run(x.data(), y.data(), 4);
  const int64_t full_steps = net.steps_run();
  store.zero_grads();
  net.set_forward_only(true);
  RunResult fwd = net.run(x.data(), y.data(), 4);
  CHECK(fwd.loss_sum == Approx(full.loss_sum).epsilon(1e-6));
  CHECK(fwd.correct == full.correct);
  CHECK(net.steps_run() < full_steps);
  for (const StoredParam& p : store.params())
    if (!p.grad.empty())
      for (float gv : store.read(p.grad)) REQUIRE(gv == 0.0f);
  for (float ga : store.read(store.arch()[0].alpha_grad)) CHECK(ga == 0.0f);
}

namespace {

// Nested choices whose candidates share nothing but an input that is always needed (the
// stem `a` also feeds the residual sum): E[cost] is then exact.
const char* kNested = R"(
network nest(x: tensor[2, 6, 6]) {
  let a = conv(x, 4, kernel=1);
  let inner = choice "inner" { c3: conv(a, 4, kernel=3, pad=1), c1: conv(a, 4, kernel=1), none: zero(a) };
  let h = choice "outer" { deep: relu(inner), pool: max_pool(a, 3, stride=1, pad=1), none: zero(a) };
  return linear(flatten(sum([h, a])), 3);
}
)";

}  // namespace

TEST_CASE("regularizer: the expected cost equals the enumerated expectation, and its gradient",
          "[search][regularizer]") {
  Graph g = compile_source(kNested);
  Graph exec = execution_graph(g);
  NodeCosts costs = node_costs(exec);
  std::vector<double> macs(costs.macs.begin(), costs.macs.end());
  std::vector<CostTerm> terms = expected_cost_terms(exec, macs);
  std::vector<ArchSpec> groups;
  for (const ArchGroup& a : g.arch) groups.push_back({a.key, a.candidates, a.k});
  REQUIRE(groups.size() == 2);
  std::vector<std::vector<double>> alpha = {{0.3, -0.5, 0.1}, {-0.2, 0.4, 0.0}};
  auto softmax = [](const std::vector<std::vector<double>>& a) {
    std::vector<std::vector<double>> p;
    for (const auto& v : a) {
      double z = 0;
      for (double x : v) z += std::exp(x);
      std::vector<double> q;
      for (double x : v) q.push_back(std::exp(x) / z);
      p.push_back(q);
    }
    return p;
  };
  auto enumerated = [&](const std::vector<std::vector<double>>& p) {
    double e = 0;
    for (int i = 0; i < 3; ++i)
      for (int o = 0; o < 3; ++o) {
        Selection sel;
        sel.chosen.resize(2);
        sel.chosen[group_index(g, "inner")] = {i};
        sel.chosen[group_index(g, "outer")] = {o};
        e += p[group_index(g, "inner")][i] * p[group_index(g, "outer")][o] *
             static_cast<double>(masked_sum(costs.macs, live_mask(exec, sel)));
      }
    return e;
  };
  std::vector<std::vector<double>> dalpha;
  const double e = expected_cost(terms, groups, softmax(alpha), &dalpha);
  CHECK(e == Approx(enumerated(softmax(alpha))).epsilon(1e-12));
  for (size_t gi = 0; gi < 2; ++gi)
    for (size_t c = 0; c < 3; ++c) {
      auto up = alpha, down = alpha;
      up[gi][c] += 1e-6;
      down[gi][c] -= 1e-6;
      const double fd = (enumerated(softmax(up)) - enumerated(softmax(down))) / 2e-6;
      CHECK(dalpha[gi][c] == Approx(fd).epsilon(1e-5).margin(1e-3));
    }
}

TEST_CASE("regularizer: a params bound steers darts and pnas off the planted conv",
          "[search][regularizer][planted]") {
  // The conv is the only informative candidate, and the only one with parameters in the
  // choice: a strong params regularizer must make both algorithms give it up.
  Graph g = compile_source(kPlanted);
  auto exec = std::make_shared<Graph>(execution_graph(g));
  NodeCosts costs = node_costs(*exec);
  for (const char* algorithm : {"darts", "pnas"}) {
    DYNAMIC_SECTION(algorithm) {
      nlohmann::json j = nlohmann::json::parse(R"({
        "epochs": 4, "seed": 3, "threads": 1,
        "data": {"name": "synthetic", "synthetic_samples": 1024, "synthetic_classes": 4,
                 "synthetic_shape": [4, 12, 12], "batch_size": 32},
        "valid": {"name": "adam", "lr": 0.05, "betas": [0.5, 0.999]},
        "regularizer": {"estimator": "params", "bound": 100, "weight": 4}})");
      j["regularizer"]["form"] = std::string(algorithm) == "pnas" ? "bound" : "linear";
      SearchConfig cfg = parse_search_config(j, "reg.json");
      SearchSetup setup = make_search_setup(g, algorithm, cfg, exec);
      std::vector<double> params(costs.params.begin(), costs.params.end());
      setup.cost_terms = expected_cost_terms(*exec, params);
      std::string dir = nas::test::scratch_path(std::string("regularized_") + algorithm);
      std::filesystem::remove_all(dir);
      std::ostringstream out;
      SearchSummary s = run_search(setup, dir, false, out);
      INFO(out.str());
      CHECK(s.genotype.names["op"] != "conv");
      CHECK(s.probs[0][1] < 1.0 / 3);  // conv's probability fell from 1/3
      if (std::string(algorithm) == "darts")
        CHECK_THAT(nas::test::slurp(dir + "/metrics.jsonl"),
                   Catch::Matchers::Contains("\"expected_params\":"));
      std::filesystem::remove_all(dir);
    }
  }
}
