// `-a evolution` (SPOS): the architecture operators keep joins valid, batch-norm
// recalibration against a float64 reference, planted spaces where evolution must find the
// best candidate with and without a bound that excludes it, the config's errors, and
// `nasc search -a evolution` end to end (files, a latency bound with the measured
// latency, a killed supernet resumed to the same evolution). Deterministic: fixed seeds,
// one thread, synthetic data.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/analysis/space_stats.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/genotype.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/search/evolution.h"
#include "runtime/search/search_config.h"
#include "runtime/search/searcher.h"
#include "support/errors.h"
#include "support/rng.h"
#include "tests/cli_test_util.h"
#include "tests/ir_test_util.h"
#include "tests/search_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using nas::test::compile_source;
using nas::test::make_search_setup;
using nas::test::spec;

namespace {

// Only the path that keeps the input through "a" and "b" (identity, not a scaling by 0)
// carries information; "c" may add a conv, the only candidate with parameters of its own.
const char* kPlanted = R"(
network planted(x: tensor[4, 12, 12]) {
  let h = choice "a" { mute: mul(x, 0.0), id: identity(x), mute2: mul(x, 0.0) };
  h = choice "b" { mute: mul(h, 0.0), mute2: mul(h, 0.0), id: identity(h) };
  h = choice "c" { mute: mul(h, 0.0), id: identity(h), conv: conv(h, 4, kernel=3, pad=1) };
  return linear(flatten(max_pool(h, 4)), 4);
}
)";

const char* kPlantedConfig = R"({
  "epochs": 40, "seed": 3, "threads": 1,
  "data": {"name": "synthetic", "synthetic_samples": 1024, "synthetic_classes": 4,
           "synthetic_shape": [4, 12, 12], "batch_size": 32},
  "train": {"name": "sgd", "lr": 0.02, "momentum": 0.9},
  "evolution": {"population": 4, "generations": 4, "parents": 2, "mutation_prob": 0.3,
                "bn_batches": 2, "valid_batches": 8}})";

}  // namespace

TEST_CASE("evolution operators: random, mutated and crossed architectures keep joins valid",
          "[evolution]") {
  const std::vector<ArchSpec> groups = {spec("a", 3), spec("j", 4, 2), spec("s", 5, 3)};
  Rng rng(7);
  bool mutated_join = false;
  for (int i = 0; i < 500; ++i) {
    ChoiceSelection x = random_architecture(groups, rng), y = random_architecture(groups, rng);
    REQUIRE(is_valid_selection(x, groups));
    ChoiceSelection m = mutate_architecture(x, groups, 0.5, rng);
    REQUIRE(is_valid_selection(m, groups));
    mutated_join = mutated_join || m[1] != x[1];
    ChoiceSelection c = cross_architectures(x, y, groups, rng);
    REQUIRE(is_valid_selection(c, groups));
    for (size_t g = 0; g < groups.size(); ++g) CHECK((c[g] == x[g] || c[g] == y[g]));
    // Probability 0 keeps the parent; 1 changes every single choice.
    CHECK(mutate_architecture(x, groups, 0.0, rng) == x);
    CHECK(mutate_architecture(x, groups, 1.0, rng)[0] != x[0]);
  }
  CHECK(mutated_join);
  // What is not a selection of these groups.
  CHECK_FALSE(is_valid_selection({{0}, {1, 1}, {0, 1, 2}}, groups));  // a join's repeat
  CHECK_FALSE(is_valid_selection({{3}, {0, 1}, {0, 1, 2}}, groups));  // out of range
  CHECK_FALSE(is_valid_selection({{0}, {0}, {0, 1, 2}}, groups));     // too few picks
  CHECK_FALSE(is_valid_selection({{0}, {0, 1}}, groups));             // a group missing
  CHECK_THROWS_AS(mutate_architecture({{0}, {1, 1}, {0, 1, 2}}, groups, 0.5, rng), InternalError);
}

TEST_CASE("evolution: batch-norm recalibration gives the cumulative batch statistics",
          "[evolution][bn]") {
  // "bn" normalises the input itself, so its batch statistics are the images'; "conv" has
  // a batch-norm of its own, off the path, that must be left alone.
  Graph g = compile_source(R"(
network bnnet(x: tensor[3, 5, 5]) {
  let h = choice "op" { bn: batchnorm(x), conv: batchnorm(conv(x, 3, kernel=1)) };
  return linear(flatten(h), 4);
}
)");
  Graph exec = execution_graph(g);
  PlanOptions w;
  w.batch = 8;
  w.training = true;
  ParamStore store;
  Executor training(compile_plan(g, w), store, 1);
  const ChoiceSelection path = {{0}};
  const std::vector<char> live = live_mask(exec, Selection{path});
  training.use_selection(path);
  training.set_live_mask(live);
  // Per channel a different mean and spread, three full batches (training runs need them).
  const int64_t c_n = 3, hw = 25;
  Rng rng(11);
  std::vector<Batch> batches;
  for (int64_t n : {8, 8, 8}) {
    Batch b;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t c = 0; c < c_n; ++c)
        for (int64_t p = 0; p < hw; ++p)
          b.images.push_back(static_cast<float>(c - 1) +
                             (0.5f + static_cast<float>(c)) * rng.uniform_float());
      b.labels.push_back(static_cast<int32_t>(i % 4));
    }
    b.shape = {n, c_n, 5, 5};
    batches.push_back(std::move(b));
  }
  // The float64 reference: per batch, the mean and unbiased variance; then their mean.
  std::vector<double> ref_mean(c_n, 0), ref_var(c_n, 0);
  for (const Batch& b : batches) {
    const int64_t n = static_cast<int64_t>(b.size());
    for (int64_t c = 0; c < c_n; ++c) {
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < hw; ++p) sum += b.images[(i * c_n + c) * hw + p];
      const double mean = sum / static_cast<double>(n * hw);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < hw; ++p) {
          const double d = b.images[(i * c_n + c) * hw + p] - mean;
          sq += d * d;
        }
      ref_mean[c] += mean / static_cast<double>(batches.size());
      ref_var[c] += sq / static_cast<double>(n * hw - 1) / static_cast<double>(batches.size());
    }
  }
  // The running statistics of both batch-norms, in plan order, and which one is live.
  const ExecPlan& plan = training.plan();
  std::vector<std::pair<int, int>> stats;  // store indices of mean and var
  int on_path = -1;
  for (const Step& s : plan.steps) {
    if (s.node >= plan.forward_nodes || s.running_mean < 0) continue;
    if (s.guard < 0 || live[s.guard]) on_path = static_cast<int>(stats.size());
    stats.emplace_back(store.find(plan.params[s.running_mean].name),
                       store.find(plan.params[s.running_var].name));
  }
  REQUIRE(stats.size() == 2);
  REQUIRE(on_path >= 0);
  // Stale values, as a supernet leaves them.
  for (auto [m, v] : stats) {
    store.write(store.params()[m].value, std::vector<float>(c_n, 5.0f));
    store.write(store.params()[v].value, std::vector<float>(c_n, 9.0f));
  }
  recalibrate_batch_norm(training, store, live, batches);
  for (size_t k = 0; k < stats.size(); ++k) {
    const std::vector<float> mean = store.read(store.params()[stats[k].first].value);
    const std::vector<float> var = store.read(store.params()[stats[k].second].value);
    for (int64_t c = 0; c < c_n; ++c) {
      if (static_cast<int>(k) == on_path) {
        CHECK(mean[c] == Approx(ref_mean[c]).margin(1e-5));
        CHECK(var[c] == Approx(ref_var[c]).epsilon(1e-5));
      } else {
        CHECK(mean[c] == 5.0f);
        CHECK(var[c] == 9.0f);
      }
    }
  }
  // No batches: nothing changes.
  recalibrate_batch_norm(training, store, live, {});
  CHECK(store.read(store.params()[stats[on_path].first].value)[0] ==
        Approx(ref_mean[0]).margin(1e-5));
}

TEST_CASE("evolution: finds the planted path, and respects a bound that excludes the winner",
          "[evolution][planted]") {
  Graph g = compile_source(kPlanted);
  auto exec = std::make_shared<Graph>(execution_graph(g));
  SECTION("no bound") {
    SearchConfig cfg = parse_search_config(nlohmann::json::parse(kPlantedConfig), "planted.json");
    std::string dir = nas::test::scratch_path("evolution_planted");
    std::ostringstream out;
    SearchSummary s = run_search(make_search_setup(g, "evolution", cfg, exec), dir, false, out);
    INFO(out.str());
    CHECK(s.genotype.names["a"] == "id");
    CHECK(s.genotype.names["b"] == "id");
    CHECK(s.genotype.names["c"] != "mute");
    CHECK(s.valid_accuracy > 0.6);  // chance is 0.25
    CHECK(nas::test::count_lines(dir + "/evolution.jsonl") == 4);
    auto pareto = nlohmann::json::parse(nas::test::slurp(dir + "/pareto.json"));
    CHECK(pareto["cost"] == "params");
    CHECK(pareto["bound"].is_null());
    REQUIRE(!pareto["front"].empty());
    // The front is sorted by cost, and the most accurate candidate ends it.
    double last_cost = -1, best_acc = 0;
    for (const auto& e : pareto["front"]) {
      CHECK(e["params"].get<double>() > last_cost);
      last_cost = e["params"].get<double>();
      best_acc = std::max(best_acc, e["valid_acc"].get<double>());
    }
    CHECK(best_acc == s.valid_accuracy);
    std::filesystem::remove_all(dir);
  }
  SECTION("a params bound that rules out the conv") {
    nlohmann::json j = nlohmann::json::parse(kPlantedConfig);
    NodeCosts costs = node_costs(*exec);
    const double without_conv =
        static_cast<double>(masked_sum(costs.params, live_mask(*exec, Selection{{{1}, {2}, {1}}})));
    j["regularizer"] = {{"estimator", "params"}, {"bound", without_conv}};
    SearchConfig cfg = parse_search_config(j, "bounded.json");
    std::string dir = nas::test::scratch_path("evolution_bounded");
    std::ostringstream out;
    SearchSummary s = run_search(make_search_setup(g, "evolution", cfg, exec), dir, false, out);
    INFO(out.str());
    CHECK(s.genotype.names["c"] == "id");  // the conv is over the bound
    CHECK(s.genotype.names["a"] == "id");
    CHECK(s.genotype.names["b"] == "id");
    CHECK(s.genotype.params <= without_conv);
    CHECK_THAT(out.str(), Contains("over the bound"));
    auto pareto = nlohmann::json::parse(nas::test::slurp(dir + "/pareto.json"));
    CHECK(pareto["bound"] == without_conv);
    for (const auto& e : pareto["front"]) CHECK(e["params"].get<double>() <= without_conv);
    std::filesystem::remove_all(dir);

    // A bound no architecture meets: a located error naming it.
    j["regularizer"]["bound"] = 1;
    SearchConfig none = parse_search_config(j, "bounded.json");
    std::ostringstream quiet;
    CHECK_THROWS_WITH(
        run_search(make_search_setup(g, "evolution", none, exec), dir, false, quiet),
        Contains("regularizer.bound: no architecture of 20000 random draws is within the params "
                 "bound 1 params"));
    std::filesystem::remove_all(dir);
  }
}

// Under a latency bound the estimate decides feasibility, and the found network is then
// timed whole: while the best candidates run over the bound as measured, the next ones are
// timed, and the first within the bound is the result.
TEST_CASE("evolution: a latency bound is kept as measured, not only as estimated",
          "[evolution][planted][latency]") {
  Graph g = compile_source(kPlanted);
  auto exec = std::make_shared<Graph>(execution_graph(g));
  nlohmann::json j = nlohmann::json::parse(kPlantedConfig);
  j["regularizer"] = {{"estimator", "latency"}, {"bound", 2.0}, {"lut", "unused.json"}};
  SearchConfig cfg = parse_search_config(j, "latency.json");
  SearchSetup setup = make_search_setup(g, "evolution", cfg, exec);
  const auto cost = setup.hooks.cost;
  setup.hooks.cost = [cost](const ChoiceSelection& path) {
    ArchCost c = cost(path);
    c.latency_ms = 1.0;  // every architecture within the bound by the table
    return c;
  };
  std::vector<double> timed;
  SECTION("the two best run over the bound: the third is kept") {
    setup.hooks.measure_latency = [&timed](const ChoiceSelection&) {
      timed.push_back(timed.size() < 2 ? 3.5 : 1.5);
      return timed.back();
    };
    std::string dir = nas::test::scratch_path("evolution_measured");
    std::ostringstream out;
    SearchSummary s = run_search(std::move(setup), dir, false, out);
    INFO(out.str());
    CHECK(timed == std::vector<double>{3.5, 3.5, 1.5});
    CHECK(s.genotype.measured_latency_ms == 1.5);
    CHECK_THAT(out.str(), Contains("timed: candidate 1 of the ranking"));
    CHECK_THAT(out.str(), Contains("runs in 3.5000 ms, over the 2 ms bound; timing the next"));
    CHECK_THAT(out.str(), Contains("timed: candidate 2 of the ranking"));
    CHECK_THAT(out.str(), !Contains("timed: candidate 3"));
    auto arch = nlohmann::json::parse(nas::test::slurp(dir + "/arch.json"));
    CHECK(arch["measured_latency_ms"] == 1.5);
    std::filesystem::remove_all(dir);
  }
  SECTION("none of the 10 best within the bound: the best, with a note") {
    setup.hooks.measure_latency = [&timed](const ChoiceSelection&) {
      timed.push_back(4.0 + static_cast<double>(timed.size()));
      return timed.back();
    };
    std::string dir = nas::test::scratch_path("evolution_measured_none");
    std::ostringstream out;
    SearchSummary s = run_search(std::move(setup), dir, false, out);
    INFO(out.str());
    CHECK(timed.size() == 10);  // 16 candidates scored (4 generations of 4), 10 timed
    CHECK(s.genotype.measured_latency_ms == 4.0);
    CHECK_THAT(out.str(), Contains("note: none of the 10 best candidates runs within the bound 2 "
                                   "ms as measured (the best: 4.0000 ms)"));
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("evolution config: defaults, ranges and unknown keys located", "[evolution][config]") {
  SearchConfig d = default_search_config();
  CHECK(d.evolution.population == 20);
  CHECK(d.evolution.path == "uniform");
  SearchConfig c = parse_search_config(
      nlohmann::json::parse(R"({"algorithm": "evolution", "evolution": {"path": "fair",
        "population": 8, "parents": 3, "seed": 4}})"),
      "e.json");
  CHECK(c.algorithm == "evolution");
  CHECK(c.evolution.path == "fair");
  CHECK(c.evolution.population == 8);
  CHECK(c.evolution.generations == 10);  // merged key by key
  CHECK(parse_search_config(nlohmann::json(search_config_to_json(c)), "x").evolution.seed == 4);
  auto fails = [](const char* text, const std::string& message) {
    CHECK_THROWS_WITH(parse_search_config(nlohmann::json::parse(text), "e.json"),
                      Contains(message));
  };
  fails(R"({"evolution": {"popsize": 3}})", "e.json: evolution.popsize: unknown key");
  fails(R"({"evolution": {"population": 0}})", "e.json: evolution.population:");
  fails(R"({"evolution": {"mutation_prob": 1.5}})", "e.json: evolution.mutation_prob:");
  fails(R"({"evolution": {"crossover": -0.1}})", "e.json: evolution.crossover:");
  fails(R"({"evolution": {"path": "sample"}})", "e.json: evolution.path:");
  fails(R"({"evolution": {"population": 4, "parents": 5}})",
        "e.json: evolution.parents: must be at most population (4), got 5");
  fails(R"({"evolution": {"seed": -2}})", "e.json: evolution.seed:");
  fails(R"({"evolution": 3})", "e.json: evolution:");
}

TEST_CASE("nasc search -a evolution: run folder, a killed supernet resumed, bad input",
          "[evolution][cli][resume]") {
  using namespace nas::test;
  std::string cfg = scratch_path("evolution.json");
  std::ofstream(cfg) << R"({"epochs": 3, "seed": 5, "threads": 1,
    "evolution": {"population": 2, "generations": 2, "parents": 1, "bn_batches": 2,
                  "valid_batches": 3},
    "data": {"name": "synthetic", "synthetic_samples": 1536, "batch_size": 64}})";
  std::string whole = scratch_path("evolution_whole"), cut = scratch_path("evolution_cut");
  std::string args = "search examples/tiny.nas -a evolution -c " + cfg + " -o ";
  CliResult r = run_nasc(args + whole);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("supernet 3/3: train loss"));
  CHECK_THAT(r.out, Contains("generation 2/2:"));
  CHECK_THAT(r.out, Contains("best: "));
  for (const char* f : {"arch.json", "arch.svg", "pareto.json", "evolution.jsonl", "report.html",
                        "checkpoint", "metrics.jsonl", "config.json"})
    CHECK(std::filesystem::exists(whole + "/" + f));
  const std::string metrics = slurp(whole + "/metrics.jsonl");
  CHECK_THAT(metrics, Contains("\"phase\":\"supernet\""));
  CHECK_FALSE(metrics.find("probabilities") != std::string::npos);
  auto arch = nlohmann::json::parse(slurp(whole + "/arch.json"));
  CHECK(arch["choices"].contains("op"));
  CHECK(arch.contains("valid_acc"));
  CHECK_THAT(slurp(whole + "/report.html"), Contains("Evolution: accuracy against cost"));
  CHECK(nlohmann::json::parse(slurp(whole + "/config.json"))["algorithm"] == "evolution");

  // Killed in the supernet's third epoch (12 steps each): the resume trains on from the
  // second epoch's checkpoint, then evolves to the same architecture.
  run_nasc_killed_at(args + cut, "step:30");
  CHECK(count_lines(cut + "/metrics.jsonl") == 2);
  CHECK_FALSE(std::filesystem::exists(cut + "/arch.json"));
  CliResult resumed = run_nasc("search examples/tiny.nas --resume -o " + cut);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK(nlohmann::json::parse(slurp(cut + "/arch.json")) == arch);
  CHECK(slurp(cut + "/pareto.json") == slurp(whole + "/pareto.json"));
  // A finished run resumed redoes the evolution from its last checkpoint: the same result.
  CliResult again = run_nasc("search examples/tiny.nas --resume -o " + whole);
  REQUIRE(again.status == 0);
  CHECK(nlohmann::json::parse(slurp(whole + "/arch.json")) == arch);
  CHECK(count_lines(whole + "/evolution.jsonl") == 2);

  // Bad input: evolution bounds candidates, it adds no cost to a loss.
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "params", "bound": 100,
    "form": "linear"}})";
  CliResult form = run_nasc("search examples/tiny.nas -a evolution --data synthetic -c " + cfg +
                            " -o " + scratch_path("evolution_bad"));
  CHECK(form.status == 1);
  CHECK_THAT(form.err, Contains(cfg + ": regularizer.form: evolution keeps only architectures "
                                      "within the bound, form \"bound\", not \"linear\""));
  CliResult flag = run_nasc("search examples/tiny.nas -a evolve -o " + scratch_path("x"));
  CHECK(flag.status == 1);
  CHECK_THAT(flag.err, Contains("-a takes darts, darts2, pnas, random or evolution"));
}

// Judging point C: a latency-bounded evolution returns an architecture whose estimate is
// under the bound, with the network's measured latency beside it.
TEST_CASE("nasc search -a evolution: a latency bound, with the measured latency",
          "[evolution][cli][latency]") {
  using namespace nas::test;
  std::string lut = scratch_path("evolution_tiny_lut.json");
  CliResult prof = run_nasc("profile examples/tiny.nas --warmup 1 --repetitions 3 -o " + lut);
  INFO(prof.err);
  REQUIRE(prof.status == 0);
  // The bound: between the cheapest and the dearest architecture's estimate.
  std::vector<double> estimates;
  for (const char* op : {"conv", "max_pool", "identity"}) {
    std::string a = scratch_path(std::string("evolution_arch_") + op + ".json");
    std::ofstream(a) << R"({"network": "tiny", "choices": {"op": ")" << op << "\"}}";
    CliResult e = run_nasc("estimate examples/tiny.nas --arch " + a + " --lut " + lut + " --json");
    INFO(e.err);
    REQUIRE(e.status == 0);
    estimates.push_back(nlohmann::json::parse(e.out)["latency_ms"].get<double>());
  }
  std::sort(estimates.begin(), estimates.end());
  const double bound = 0.5 * (estimates.front() + estimates.back());
  std::string cfg = scratch_path("evolution_latency.json");
  std::ofstream(cfg) << R"({"epochs": 1, "seed": 2, "threads": 1,
    "evolution": {"population": 3, "generations": 2, "parents": 1, "bn_batches": 1,
                  "valid_batches": 2},
    "regularizer": {"estimator": "latency", "bound": )"
                     << bound << R"(, "lut": ")" << lut << R"("},
    "data": {"name": "synthetic", "synthetic_samples": 768, "batch_size": 64}})";
  std::string dir = scratch_path("evolution_latency");
  CliResult r = run_nasc("search examples/tiny.nas -a evolution -c " + cfg + " -o " + dir);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  auto arch = nlohmann::json::parse(slurp(dir + "/arch.json"));
  CHECK(arch["latency_ms"].get<double>() <= bound);
  REQUIRE(arch.contains("measured_latency_ms"));
  CHECK(arch["measured_latency_ms"].get<double>() > 0);
  CHECK_THAT(r.out, Contains(" ms measured"));
  auto pareto = nlohmann::json::parse(slurp(dir + "/pareto.json"));
  CHECK(pareto["cost"] == "latency_ms");
  for (const auto& e : pareto["front"]) CHECK(e["latency_ms"].get<double>() <= bound);
  CHECK_THAT(slurp(dir + "/report.html"), Contains("final latency, measured"));
}
