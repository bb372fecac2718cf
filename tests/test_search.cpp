// Search: genotype derivation against hand-computed probabilities (the top-2 rule, Zero
// excluded, shared keys, joins), the search config, a planted problem DARTS must solve,
// and `nasc search` end to end with bad input.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/lowering/compile_plan.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/genotype.h"
#include "compiler/passes/pipeline.h"
#include "runtime/report/tfevents.h"
#include "runtime/search/search_config.h"
#include "runtime/search/searcher.h"
#include "tests/cli_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;

namespace {

Graph compile_source(const std::string& text) {
  Diagnostics diags;
  Compilation c = compile_text("space.nas", text, {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  return *c.supernet;
}

std::string chosen(const Graph& g, const Selection& s, const std::string& key) {
  for (size_t i = 0; i < g.arch.size(); ++i)
    if (g.arch[i].key == key) {
      std::string out;
      for (int c : s.chosen[i]) out += (out.empty() ? "" : "+") + g.arch[i].candidates[c];
      return out;
    }
  FAIL("no key " << key);
  return "";
}

// One DARTS-like node summing three edges (e0, e1, e2), each {conv, pool, none}; then an
// op choice without Zero, and a join.
const char* kSpace = R"(
module edge(x: tensor, key: string) {
  return choice(key=key) {
    conv: conv(x, 4, kernel=3, pad=1),
    pool: max_pool(x, 3, stride=1, pad=1),
    none: zero(x),
  };
}
network g(x: tensor[4, 8, 8]) {
  let n = sum([edge(x, "e0"), edge(x, "e1"), edge(x, "e2")]);
  let m = choice "op" { a: relu(n), b: sigmoid(n) };
  let j = join(k=2, key="j") { p: m, q: relu(m), r: mul(m, 2.0) };
  return linear(global_avg_pool(j), 3);
}
)";

int group(const Graph& g, const std::string& key) {
  for (size_t i = 0; i < g.arch.size(); ++i)
    if (g.arch[i].key == key) return static_cast<int>(i);
  return -1;
}

}  // namespace

TEST_CASE("genotype: top-2 edges per node by their best non-zero candidate", "[search][genotype]") {
  Graph g = compile_source(kSpace);
  std::vector<std::vector<double>> p(g.arch.size());
  // e0: none is the largest (0.5) but does not count; its best non-zero is pool 0.3.
  p[group(g, "e0")] = {0.2, 0.3, 0.5};
  // e1: conv 0.6, the strongest edge.
  p[group(g, "e1")] = {0.6, 0.1, 0.3};
  // e2: conv 0.25 < e0's 0.3: dropped (selects none).
  p[group(g, "e2")] = {0.25, 0.2, 0.55};
  p[group(g, "op")] = {0.4, 0.6};
  p[group(g, "j")] = {0.2, 0.5, 0.3};
  Selection s = derive_genotype(g, p);
  CHECK(chosen(g, s, "e0") == "pool");
  CHECK(chosen(g, s, "e1") == "conv");
  CHECK(chosen(g, s, "e2") == "none");
  CHECK(chosen(g, s, "op") == "b");
  CHECK(chosen(g, s, "j") == "q+r");
  CHECK(zero_candidate(g, group(g, "e0")) == 2);
  CHECK(zero_candidate(g, group(g, "op")) == -1);
  // With 3 edges kept, nothing is dropped.
  GenotypeOptions keep3;
  keep3.edges_per_node = 3;
  CHECK(chosen(g, derive_genotype(g, p, keep3), "e2") == "conv");
  // Malformed probabilities are refused.
  p[0].pop_back();
  CHECK_THROWS_WITH(derive_genotype(g, p), Contains("probabilities"));
}

TEST_CASE("genotype: the DARTS space keeps two edges per node and no none", "[search][genotype]") {
  Diagnostics diags;
  Compilation c =
      compile_file(std::string(NASC_SOURCE_DIR) + "/examples/darts_fmnist.nas", {}, diags);
  REQUIRE(c.supernet);
  const Graph& g = *c.supernet;
  std::vector<std::vector<double>> uniform;
  for (const ArchGroup& a : g.arch)
    uniform.push_back(std::vector<double>(a.candidates.size(), 0.125));
  Selection s = derive_genotype(g, uniform);
  int dropped = 0;
  for (size_t i = 0; i < g.arch.size(); ++i) {
    int z = zero_candidate(g, static_cast<int>(i));
    REQUIRE(z >= 0);
    if (s.chosen[i][0] == z) ++dropped;
  }
  // 3 nodes per cell type: node k has k + 2 edges and keeps 2 -> 0 + 1 + 2 dropped, x2 types.
  CHECK(dropped == 6);
  // The result is a valid arch file for the space.
  CHECK(parse_arch(g, "a.json", arch_to_json(g, s), diags));
}

TEST_CASE("search config: defaults, overrides and errors", "[search]") {
  SearchConfig d = default_search_config();
  CHECK(d.base.data.train_portion == 0.5);
  CHECK(d.valid.name == "adam");
  CHECK(d.base.optimizer.lr == 0.025);
  SearchConfig c = parse_search_config(
      nlohmann::json::parse(R"({"epochs": 4, "warmup_epochs": 1, "data": {"batch_size": 32}})"),
      "s.json");
  CHECK(c.base.epochs == 4);
  CHECK(c.warmup_epochs == 1);
  CHECK(c.base.data.batch_size == 32);
  CHECK(c.base.data.train_portion == 0.5);  // other data keys keep the search defaults
  CHECK(parse_search_config(nlohmann::json::parse(search_config_to_json(c).dump()), "").base ==
        c.base);
  CHECK_THROWS_WITH(
      parse_search_config(nlohmann::json::parse(R"({"train": {"lr": "x"}})"), "s.json"),
      Contains("train") && Contains("lr"));
  CHECK_THROWS_WITH(
      parse_search_config(nlohmann::json::parse(R"({"valid": {"nam": "adam"}})"), "s.json"),
      Contains("valid") && Contains("nam"));
  CHECK_THROWS_WITH(
      parse_search_config(nlohmann::json::parse(R"({"epochs": 2, "warmup_epochs": 2})"), "s.json"),
      Contains("warmup_epochs (2) must be fewer than epochs (2)"));
  CHECK_THROWS_WITH(parse_search_config(nlohmann::json::parse(R"({"epoch": 2})"), "s.json"),
                    Contains("epoch"));
}

TEST_CASE("search: DARTS finds the planted candidate", "[search][planted]") {
  // One candidate carries the input's information (a learnable conv); the two others
  // carry none (zero, and a scaling by 0), so only the conv can lower the validation
  // loss and DARTS must move alpha to it.
  Graph g = compile_source(R"(
network planted(x: tensor[4, 12, 12]) {
  let h = choice "op" { zero: zero(x), conv: conv(x, 4, kernel=3, pad=1), mute: mul(x, 0.0) };
  h = relu(h);
  return linear(flatten(max_pool(h, 4)), 4);
}
)");
  SearchConfig cfg = parse_search_config(nlohmann::json::parse(R"({
    "epochs": 4, "seed": 3, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 1024, "synthetic_classes": 4,
             "synthetic_shape": [4, 12, 12], "batch_size": 32},
    "valid": {"name": "adam", "lr": 0.05, "betas": [0.5, 0.999]}})"),
                                         "planted.json");
  SearchSetup setup;
  setup.config = cfg;
  PlanOptions w, a;
  w.batch = a.batch = 32;
  w.training = a.training = true;
  a.arch_grads = true;
  a.weight_grads = false;
  setup.weight_plan = compile_plan(g, w);
  setup.alpha_plan = compile_plan(g, a);
  setup.hooks.derive = [&g](const std::vector<std::vector<double>>& probs) {
    GenotypeInfo info;
    Selection s = derive_genotype(g, probs);
    info.names["op"] = g.arch[0].candidates[s.chosen[0][0]];
    info.arch = nlohmann::ordered_json::parse(arch_to_json(g, s));
    return info;
  };
  std::string dir = "/tmp/nasc_planted_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::ostringstream out;
  SearchSummary s = run_search(setup, dir, false, out);
  INFO(out.str());
  CHECK(s.genotype.names["op"] == "conv");
  CHECK(s.probs[0][1] > 0.5);  // conv's probability, from 1/3
  std::filesystem::remove_all(dir);
}

TEST_CASE("nasc search: run folder, bad input, and a killed search resumed to the same end",
          "[search][cli][resume]") {
  using namespace nas::test;
  std::string cfg = scratch_path("search.json");
  std::ofstream(cfg) << R"({"epochs": 3, "seed": 2, "threads": 1, "warmup_epochs": 1,
    "data": {"name": "synthetic", "synthetic_samples": 3072, "batch_size": 64}})";
  std::string whole = scratch_path("whole"), cut = scratch_path("cut");
  std::string args = "search examples/tiny.nas -c " + cfg + " -o ";
  CliResult r = run_nasc(args + whole);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  for (const char* f : {"arch.json", "arch.svg", "config.json", "log.txt", "metrics.jsonl",
                        "checkpoint", "report.html"})
    CHECK(std::filesystem::exists(whole + "/" + f));
  CHECK(count_lines(whole + "/metrics.jsonl") == 3);
  CHECK_THAT(slurp(whole + "/metrics.jsonl"), Contains("\"phase\":\"warmup\""));
  CHECK_THAT(r.out, Contains("retrain it: nasc train examples/tiny.nas --arch"));
  // TensorBoard scalars, read back: one train loss per epoch.
  std::string event_file;
  for (const auto& entry : std::filesystem::directory_iterator(whole))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      event_file = entry.path().string();
  REQUIRE_FALSE(event_file.empty());
  nas::EventFile ev = nas::read_event_file(event_file);
  CHECK(ev.file_version == "brain.Event:2");
  int train_losses = 0;
  for (const nas::ScalarEvent& e : ev.scalars) train_losses += e.tag == "search/train_loss";
  CHECK(train_losses == 3);
  // The arch file it wrote drives `nasc train --arch` and `nasc check --arch`.
  CHECK(run_nasc("check examples/tiny.nas --arch " + whole + "/arch.json").status == 0);

  run_nasc_and_kill(args + cut, cut + "/metrics.jsonl", 2, 100);
  CliResult resumed = run_nasc("search examples/tiny.nas --resume -o " + cut);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  auto a = nlohmann::json::parse(slurp(whole + "/arch.json"));
  auto b = nlohmann::json::parse(slurp(cut + "/arch.json"));
  CHECK(a["choices"] == b["choices"]);
  CHECK(a["probabilities"] == b["probabilities"]);  // bit-identical alphas

  auto fails = [](const std::string& args, const std::string& fragment) {
    CliResult r = run_nasc(args);
    INFO(args << "\n" << r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(fragment));
  };
  std::string dir = scratch_path("bad");
  fails("search examples/fmnist_cnn.nas -o " + dir, "has no choices");
  fails("search examples/tiny.nas -a pnas -o " + dir, "not implemented yet");
  fails("search examples/tiny.nas -a evolution -o " + dir, "-a takes");
  fails("search examples/tiny.nas", "needs -o DIR");
  std::ofstream(cfg) << R"({"valid": {"name": "adam", "lr": -1}})";
  fails("search examples/tiny.nas --data synthetic -c " + cfg + " -o " + dir, "valid");
  std::ofstream(cfg) << R"({"data": {"train_portion": 1.0, "name": "synthetic"}})";
  fails("search examples/tiny.nas -c " + cfg + " -o " + dir, "train_portion below 1");
}
