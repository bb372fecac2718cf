// --rerank K (docs/search.md#re-ranking): a darts search steered off the only informative
// candidate by a strong params regularizer, re-ranked from the command line, keeps that
// candidate after all (the planted validation score); random search and evolution hand
// over their best by their own scores; names back to selections; the config's and the
// flag's errors.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/pipeline/pipeline.h"
#include "runtime/search/rerank.h"
#include "runtime/search/search_config.h"
#include "runtime/search/searcher.h"
#include "tests/cli_test_util.h"
#include "tests/ir_test_util.h"
#include "tests/search_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using nas::test::compile_source;
using nas::test::slurp;

namespace {

// Only `conv` carries the input's information; `mute` (a scaling by 0) and `zero` carry
// none, so trained from scratch, conv scores far above them on the validation split.
// `mute` comes before `conv`, so that a tie of the genotype rule picks it.
const char* kPlanted = R"(
network planted(x: tensor[4, 12, 12]) {
  let h = choice "op" { zero: zero(x), mute: mul(x, 0.0), conv: conv(x, 4, kernel=3, pad=1) };
  h = relu(h);
  return linear(flatten(max_pool(h, 4)), 4);
}
)";

const char* kData = R"("seed": 3, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 1024, "synthetic_classes": 4,
             "synthetic_shape": [4, 12, 12], "batch_size": 32})";

}  // namespace

TEST_CASE("nasc search --rerank: the planted best of the candidates wins over the search's pick",
          "[rerank][cli]") {
  using namespace nas::test;
  const std::string space = scratch_path("rerank_planted.nas");
  std::ofstream(space) << kPlanted;
  const std::string cfg = scratch_path("rerank.json");
  // A params regularizer this strong makes darts give the conv up (test_search_algorithms).
  std::ofstream(cfg) << "{\"epochs\": 3, " << kData << R"(,
    "valid": {"name": "adam", "lr": 0.05, "betas": [0.5, 0.999]},
    "regularizer": {"estimator": "params", "bound": 100, "weight": 4}})";
  const std::string dir = scratch_path("rerank_run");
  std::filesystem::remove_all(dir);
  CliResult r = run_nasc("search " + space + " -c " + cfg + " --rerank 3 -o " + dir);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  // The search's own pick: the last epoch's genotype.
  std::string last;
  std::istringstream lines(slurp(dir + "/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) last = line;
  const std::string searched = nlohmann::json::parse(last)["genotype"]["op"];
  REQUIRE(searched == "mute");

  // Two distinct architectures exist (the genotype never picks zero), so two candidates,
  // the search's pick first; conv scores higher and is kept.
  const nlohmann::json rr = nlohmann::json::parse(slurp(dir + "/rerank.json"));
  CHECK(rr["k"] == 3);
  CHECK(rr["epochs"] == 1);
  REQUIRE(rr["candidates"].size() == 2);
  CHECK(rr["candidates"][0]["choices"]["op"] == "mute");
  CHECK(rr["candidates"][0]["source"] == "epoch 3");
  CHECK(rr["candidates"][1]["choices"]["op"] == "conv");
  CHECK(rr["candidates"][0]["search_score"].is_null());
  CHECK(rr["candidates"][1]["valid_acc"].get<double>() >
        rr["candidates"][0]["valid_acc"].get<double>() + 0.2);
  CHECK(rr["kept"] == 2);
  const nlohmann::json arch = nlohmann::json::parse(slurp(dir + "/arch.json"));
  CHECK(arch["choices"]["op"] == "conv");
  CHECK(arch["rerank"]["candidate"] == 2);
  CHECK(arch["rerank"]["valid_acc"] == rr["candidates"][1]["valid_acc"]);
  CHECK(nlohmann::json::parse(slurp(dir + "/config.json"))["rerank"] == 3);
  // Progress: a line per candidate and the verdict, on the terminal and in the log.
  for (const std::string& text : {r.out, slurp(dir + "/log.txt")}) {
    CHECK_THAT(text, Contains("rerank: 2 candidates, each trained 1 epoch from scratch"));
    CHECK_THAT(text, Contains("rerank 1/2: valid loss"));
    CHECK_THAT(text, Contains("rerank 2/2: valid loss"));
    CHECK_THAT(text, Contains("rerank: kept candidate 2 of 2 ("));
  }
  CHECK_THAT(r.out, Contains("rerank 1/2 epoch 1/1"));  // the training's bar
  // It retrains.
  CHECK(run_nasc("check " + space + " --arch " + dir + "/arch.json").status == 0);
  // A resume of the finished search redoes the re-ranking (config.json keeps rerank) to the
  // same outcome: the same candidates from the records and the restored probabilities.
  const std::string first = slurp(dir + "/rerank.json");
  CliResult resumed = run_nasc("search " + space + " --resume -o " + dir);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK(slurp(dir + "/rerank.json") == first);

  // --rerank 1 trains the search's pick alone and keeps it.
  const std::string one = scratch_path("rerank_one");
  std::filesystem::remove_all(one);
  CliResult r1 = run_nasc("search " + space + " -c " + cfg + " --rerank 1 -o " + one);
  REQUIRE(r1.status == 0);
  CHECK(nlohmann::json::parse(slurp(one + "/rerank.json"))["candidates"].size() == 1);
  CHECK(nlohmann::json::parse(slurp(one + "/arch.json"))["choices"]["op"] == "mute");
  // Without it, no rerank.json.
  const std::string none = scratch_path("rerank_none");
  std::filesystem::remove_all(none);
  REQUIRE(run_nasc("search " + space + " -c " + cfg + " -o " + none).status == 0);
  CHECK_FALSE(std::filesystem::exists(none + "/rerank.json"));

  // Bad flags and keys, located.
  CliResult bad = run_nasc("search " + space + " -c " + cfg + " --rerank x -o " + dir + "_b");
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Contains("--rerank needs a count in 0..1000, got \"x\""));
  CliResult train = run_nasc("train examples/fmnist_cnn.nas --rerank 2 -o " + dir + "_t");
  CHECK(train.status == 1);
  CHECK_THAT(train.err, Contains("--rerank does not apply to `nasc train`"));
  std::ofstream(cfg) << R"({"rerank_epochs": 0})";
  CliResult epochs = run_nasc("search " + space + " -c " + cfg + " -o " + dir + "_e");
  CHECK(epochs.status == 1);
  CHECK_THAT(epochs.err, Contains(cfg + ": rerank_epochs:"));
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(one);
  std::filesystem::remove_all(none);
}

TEST_CASE("rerank: random and evolution hand over their best by their own scores", "[rerank]") {
  Graph g = compile_source(kPlanted);
  auto exec = std::make_shared<Graph>(execution_graph(g));
  for (const char* algorithm : {"random", "evolution"}) {
    DYNAMIC_SECTION(algorithm) {
      SearchConfig cfg =
          parse_search_config(nlohmann::json::parse(std::string("{\"epochs\": 1, ") + kData + R"(,
            "random": {"samples": 4},
            "evolution": {"population": 3, "generations": 2, "parents": 2},
            "rerank": 2, "rerank_epochs": 2})"),
                              "rerank.json");
      const std::string dir = nas::test::scratch_path(std::string("rerank_") + algorithm);
      std::filesystem::remove_all(dir);
      std::ostringstream out;
      SearchSummary s =
          run_search(nas::test::make_search_setup(g, algorithm, cfg, exec), dir, false, out);
      INFO(out.str());
      const nlohmann::json rr = nlohmann::json::parse(slurp(dir + "/rerank.json"));
      REQUIRE(rr["candidates"].size() == 2);
      CHECK(rr["epochs"] == 2);
      CHECK_THAT(out.str(), Contains("rerank 1/2 epoch 2/2"));
      // Best first by the search's score, and distinct.
      const nlohmann::json& a = rr["candidates"][0];
      const nlohmann::json& b = rr["candidates"][1];
      CHECK(a["search_score"].get<double>() >= b["search_score"].get<double>());
      CHECK(a["choices"] != b["choices"]);
      CHECK_THAT(a["source"].get<std::string>(),
                 Contains(std::string(algorithm) == "random" ? "sample " : "evolution #1"));
      // The result is the kept candidate, with its re-ranking score.
      const size_t kept = rr["kept"].get<size_t>() - 1;
      CHECK(rr["candidates"][kept]["valid_acc"].get<double>() ==
            std::max(a["valid_acc"].get<double>(), b["valid_acc"].get<double>()));
      CHECK(s.valid_accuracy == rr["candidates"][kept]["valid_acc"].get<double>());
      CHECK(nlohmann::json(s.genotype.names["op"]) == rr["candidates"][kept]["choices"]["op"]);
      std::filesystem::remove_all(dir);
    }
  }
}

TEST_CASE("rerank: arch names back to a selection", "[rerank]") {
  std::vector<ArchSpec> groups = {nas::test::spec("op", 3), nas::test::spec("j", 4, 2)};
  CHECK(selection_from_names(groups, {{"op", "c2"}, {"j", "c3+c1"}}) ==
        ChoiceSelection{{2}, {1, 3}});
  CHECK(selection_from_names(groups, {{"op", "c5"}, {"j", "c3+c1"}}).empty());  // no such name
  CHECK(selection_from_names(groups, {{"op", "c0"}}).empty());                  // a key missing
  CHECK(selection_from_names(groups, {{"op", "c0"}, {"j", "c1"}}).empty());     // k picks
}

TEST_CASE("search config: rerank and rerank_epochs", "[rerank][config]") {
  auto parse = [](const char* text) {
    return parse_search_config(nlohmann::json::parse(text), "s.json");
  };
  CHECK(default_search_config().rerank == 0);
  CHECK(default_search_config().rerank_epochs == 1);
  SearchConfig c = parse(R"({"rerank": 4, "rerank_epochs": 2})");
  CHECK(c.rerank == 4);
  CHECK(c.rerank_epochs == 2);
  SearchConfig back =
      parse_search_config(nlohmann::json::parse(search_config_to_json(c).dump()), "");
  CHECK(back.rerank == 4);
  CHECK(back.rerank_epochs == 2);
  CHECK_THROWS_WITH(parse(R"({"rerank": -1})"), Contains("s.json: rerank:"));
  CHECK_THROWS_WITH(parse(R"({"rerank": "3"})"),
                    Contains("s.json: rerank: expected an integer, got string"));
  CHECK_THROWS_WITH(parse(R"({"rerank_epochs": 0})"), Contains("s.json: rerank_epochs:"));
  CHECK_THROWS_WITH(parse(R"({"rerank_epoch": 2})"),
                    Contains("s.json: rerank_epoch: unknown key (did you mean rerank_epochs?)"));
}
