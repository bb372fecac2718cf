// nasc search --retrain (docs/search.md#retrain): the search, then the found architecture
// trained as the config's "retrain" section says, in one command: the section's defaults
// and errors, the test split read once at the very end, result.json and the report's
// summary, the evaluation network's parameters on top of the search's, mistakes caught
// before the search runs, and a run killed in the search or in the retrain that resumes
// to the bytes of an uninterrupted one.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nasc/nasc.h"
#include "runtime/search/search_config.h"
#include "support/errors.h"
#include "tests/cli_test_util.h"
#include "tests/retrain_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using nas::test::CliResult;
using nas::test::kWidenableSpace;
using nas::test::run_nasc;
using nas::test::scratch_path;
using nas::test::slurp;
using nas::test::write_scratch_file;

namespace {

// 1024 samples, 80% for training: the search's 4 + 4 steps of 32 + 32 per epoch (half
// trains the weights, half the architecture); the retrain's 24 steps of 32 per epoch.
const char* kConfig = R"({"epochs": 2, "seed": 3, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 1024, "synthetic_classes": 4,
             "synthetic_shape": [4, 12, 12], "batch_size": 32, "limit_train": 256},
    "retrain": {"epochs": 3, "network": {"width": 6}, "data": {"batch_size": 32,
                "limit_train": 0, "train_portion": 0.75}}})";

SearchConfig parse(const std::string& text) {
  return parse_search_config(nlohmann::json::parse(text), "cfg.json");
}

// The metrics records of a run folder, parsed.
std::vector<nlohmann::json> records(const std::string& dir) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(slurp(dir + "/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("search config retrain: the search's data, seed and threads, the test split at the end",
          "[retrain][config]") {
  SearchConfig c = parse(R"({"seed": 7, "threads": 2,
      "data": {"name": "synthetic", "synthetic_samples": 512, "limit_train": 100,
               "augment": {"cutout": 4}},
      "retrain": {"epochs": 5, "network": {"C": 16, "evaluation": true}}})");
  REQUIRE(c.retrain);
  const TrainConfig& r = *c.retrain;
  CHECK(r.epochs == 5);
  CHECK(r.seed == 7);
  CHECK(r.threads == 2);
  CHECK(r.data.name == "synthetic");
  CHECK(r.data.synthetic_samples == 512);
  CHECK(r.data.limit_train == 100);
  CHECK(r.data.augment.cutout == 4);
  // Its own batch size and the whole training split, not the search's 64 and half.
  CHECK(r.data.batch_size == default_train_config().data.batch_size);
  CHECK(r.data.train_portion == 1.0);
  CHECK(r.optimizer.lr == default_train_config().optimizer.lr);
  CHECK_FALSE(r.test_every_epoch);
  CHECK(r.network ==
        std::vector<std::pair<std::string, std::string>>{{"C", "16"}, {"evaluation", "true"}});
  // Written back whole and read again: the same config (a resume reads config.json).
  CHECK(parse(search_config_to_json(c).dump()).retrain == c.retrain);
  CHECK_FALSE(parse("{}").retrain);
  CHECK_FALSE(parse(R"({"retrain": false})").retrain);
  REQUIRE(parse(R"({"retrain": true})").retrain);
  CHECK(parse(R"({"retrain": true})").retrain == parse(R"({"retrain": {}})").retrain);
  // A section naming its own data set takes none of the search's data keys.
  SearchConfig own = parse(R"({"data": {"name": "synthetic", "limit_train": 100},
      "retrain": {"data": {"name": "fashion-mnist", "limit_test": 50}}})");
  CHECK(own.retrain->data.name == "fashion-mnist");
  CHECK(own.retrain->data.limit_train == 0);
  CHECK(own.retrain->data.limit_test == 50);
}

TEST_CASE("search config retrain: mistakes name the key under retrain", "[retrain][config]") {
  auto error_of = [](const std::string& text) {
    try {
      parse(text);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of(R"({"retrain": {"epoch": 3}})"),
             Contains("cfg.json: retrain.epoch: unknown key") && Contains("epochs"));
  CHECK_THAT(error_of(R"({"retrain": {"data": {"batch_size": 0}}})"),
             Contains("cfg.json: retrain.data.batch_size"));
  CHECK_THAT(error_of(R"({"retrain": {"optimizer": {"lr": -1}}})"),
             Contains("cfg.json: retrain.optimizer.lr"));
  CHECK_THAT(error_of(R"({"retrain": 3})"),
             Contains("cfg.json: retrain: expected an object") && Contains("or true"));
  CHECK_THAT(error_of(R"({"retrain": {"test_every_epoch": true}})"),
             Contains("cfg.json: retrain.test_every_epoch: the retrain reads the test split once"));
  // The search itself still refuses the recipe's keys at its top level.
  CHECK_THAT(error_of(R"({"test_every_epoch": false})"),
             Contains("cfg.json: test_every_epoch: unknown key"));
}

TEST_CASE("nasc search --retrain: search, retrain, the test split read once at the end",
          "[retrain][cli]") {
  const std::string space = write_scratch_file("retrain_space.nas", kWidenableSpace);
  const std::string cfg = write_scratch_file("retrain.json", kConfig);
  const std::string dir = scratch_path("retrain_run");
  CliResult r = run_nasc("search " + space + " -c " + cfg + " -o " + dir);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("retrain: widenable (with {\"width\":6}, "));
  CHECK_THAT(r.out, Contains("retrained: test accuracy "));

  // The retrain's own run folder, with the evaluation network's parameter on top.
  const nlohmann::json rcfg = nlohmann::json::parse(slurp(dir + "/retrain/config.json"));
  CHECK(rcfg["network"]["width"] == 6);
  CHECK(rcfg["test_every_epoch"] == false);
  CHECK(rcfg["epochs"] == 3);
  const nlohmann::json arch = nlohmann::json::parse(slurp(dir + "/arch.json"));
  CHECK(std::filesystem::exists(dir + "/retrain/weights"));

  // Never the test split during the epochs: the validation split (train_portion 0.75).
  const std::vector<nlohmann::json> epochs = records(dir + "/retrain");
  REQUIRE(epochs.size() == 3);
  for (const nlohmann::json& e : epochs) {
    CHECK_FALSE(e.contains("test_acc"));
    CHECK_FALSE(e.contains("test_loss"));
    CHECK(e.contains("valid_acc"));
  }
  CHECK_THAT(slurp(dir + "/retrain/log.txt"), !Contains("| test loss"));
  CHECK_THAT(slurp(dir + "/retrain/log.txt"), Contains("done: test accuracy "));

  const nlohmann::json result = nlohmann::json::parse(slurp(dir + "/result.json"));
  CHECK(result["algorithm"] == "darts");
  CHECK(result["arch"]["op"] == arch["choices"]["op"]);
  REQUIRE(result.contains("test_accuracy"));
  const double test_acc = result["test_accuracy"].get<double>();
  CHECK(test_acc > 0.0);
  CHECK(test_acc <= 1.0);
  CHECK(result["retrain"]["test_accuracy"] == result["test_accuracy"]);
  CHECK(result["retrain"]["network"]["width"] == 6);
  CHECK(result["retrain"]["epochs"] == 3);
  CHECK(result["retrain"]["stopped"] == false);
  CHECK(result["seconds"].get<double>() >= result["search_seconds"].get<double>());
  // The retrained network is the wider one (the 1x1 conv gives 6 channels, not 4).
  if (arch["choices"]["op"] != "zero")
    CHECK(result["retrain"]["params"].get<double>() > result["params"].get<double>());

  const std::string report = slurp(dir + "/report.html");
  CHECK_THAT(report, Contains("<h2>Search and retrain</h2>"));
  CHECK_THAT(report, Contains("<h2>Retrain curves</h2>"));
  CHECK_THAT(report, Contains("<code>width=6</code>"));
  char pct[32];
  std::snprintf(pct, sizeof pct, "<b>%.2f%%</b>", 100 * test_acc);
  CHECK_THAT(report, Contains(pct));
  CHECK_THAT(slurp(dir + "/log.txt"), Contains("retrain: test accuracy "));
}

TEST_CASE("nasc search --retrain: killed in the search or the retrain, resumed to the same bytes",
          "[retrain][cli][resume]") {
  const std::string space = write_scratch_file("retrain_kill.nas", kWidenableSpace);
  const std::string cfg = write_scratch_file("retrain_kill.json", kConfig);
  const std::string args = "search " + space + " -c " + cfg + " -o ";
  const std::string whole = scratch_path("retrain_whole");
  REQUIRE(run_nasc(args + whole).status == 0);
  // The search's steps are 1..8 (2 epochs of 4); the retrain's count from 1 again, 24 per
  // epoch: step 30 is in the retrain's second epoch. The process writes the search's 2
  // checkpoints, then the retrain's: the 4th is the retrain's second.
  int run = 0;
  for (const char* kill_at : {"step:6", "step:30", "checkpoint-write:4"}) {
    INFO("killed at " << kill_at);
    const std::string dir = scratch_path("retrain_killed_" + std::to_string(++run));
    nas::test::run_nasc_killed_at(args + dir, kill_at);
    CliResult resumed = run_nasc(args + dir + " --resume");
    INFO(resumed.err << resumed.out);
    REQUIRE(resumed.status == 0);
    CHECK_THAT(resumed.out, Contains("retrained: test accuracy "));
    CHECK(nas::test::retrain_run_outcome(dir) == nas::test::retrain_run_outcome(whole));
  }
}

TEST_CASE("nasc search --retrain: the flag alone, and mistakes found before the search runs",
          "[retrain][cli]") {
  const std::string space = write_scratch_file("retrain_err.nas", kWidenableSpace);
  const std::string data = R"({"epochs": 1, "seed": 3, "threads": 1,
      "data": {"name": "synthetic", "synthetic_samples": 256, "synthetic_shape": [4, 12, 12],
               "batch_size": 32})";

  SECTION("--retrain without a section: the defaults, for the search's data") {
    const std::string cfg = write_scratch_file("retrain_flag.json", data + "}");
    const std::string dir = scratch_path("retrain_flag");
    CliResult r = run_nasc("search " + space + " -c " + cfg + " --epochs 1 --retrain -o " + dir);
    INFO(r.err << r.out);
    REQUIRE(r.status == 0);
    const nlohmann::json rcfg = nlohmann::json::parse(slurp(dir + "/retrain/config.json"));
    CHECK(rcfg["data"]["name"] == "synthetic");
    CHECK(rcfg["data"]["synthetic_samples"] == 256);
    CHECK(rcfg["epochs"] == default_train_config().epochs);
    // No validation split to report: the epochs show training numbers only.
    for (const nlohmann::json& e : records(dir + "/retrain")) {
      CHECK_FALSE(e.contains("test_acc"));
      CHECK_FALSE(e.contains("valid_acc"));
    }
    // The search's own config.json carries the section, so --resume retrains too.
    CHECK(nlohmann::json::parse(slurp(dir + "/config.json")).contains("retrain"));
  }
  SECTION("a network parameter the space does not have") {
    const std::string cfg = write_scratch_file("retrain_badparam.json",
                                               data + R"(, "retrain": {"network": {"depth": 3}}})");
    const std::string dir = scratch_path("retrain_badparam");
    CliResult r = run_nasc("search " + space + " -c " + cfg + " -o " + dir);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains("depth"));
    CHECK_THAT(r.err, Contains(cfg + ": retrain.network: the network to retrain does not compile"));
    CHECK_FALSE(std::filesystem::exists(dir + "/metrics.jsonl"));  // no search ran
  }
  SECTION("a retrain network whose choices differ from the searched one's") {
    const std::string other = write_scratch_file("retrain_other.nas", R"(
network widenable(x: tensor[4, 12, 12], width: int = 4, more: bool = false) {
  let h = more ? choice "op" { zero: zero(x), conv: conv(x, width, kernel=3, pad=1) }
               : choice "op" { zero: zero(x), mute: mul(x, 0.0), conv: conv(x, width, kernel=3, pad=1) };
  h = relu(h);
  return linear(flatten(max_pool(h, 4)), 4);
}
)");
    const std::string cfg = write_scratch_file(
        "retrain_choices.json", data + R"(, "retrain": {"network": {"more": true}}})");
    const std::string dir = scratch_path("retrain_choices");
    CliResult r = run_nasc("search " + other + " -c " + cfg + " -o " + dir);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(cfg + ": retrain.network: the retrained network must have the "
                                     "search network's choices"));
    CHECK_THAT(r.err, Contains("choice `op` differs"));
    CHECK_FALSE(std::filesystem::exists(dir + "/metrics.jsonl"));
  }
  SECTION("drop_path_prob for a network without drop_path") {
    const std::string cfg =
        write_scratch_file("retrain_dp.json", data + R"(, "retrain": {"drop_path_prob": 0.2}})");
    CliResult r = run_nasc("search " + space + " -c " + cfg + " -o " + scratch_path("retrain_dp"));
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(cfg + ": retrain.drop_path_prob: the retrained network has no "
                                     "drop_path(x)"));
  }
  SECTION("--retrain is a search flag") {
    CliResult r = run_nasc("train " + space + " --retrain -o " + scratch_path("retrain_train"));
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains("--retrain") && Contains("`nasc search`"));
  }
}

TEST_CASE("nasc::search with retrain: a callback stops the retrain, a resume finishes it",
          "[retrain][api]") {
  const std::string space = write_scratch_file("retrain_api.nas", kWidenableSpace);
  nasc::RunOptions o;
  o.space_file = space;
  o.config_json = kConfig;
  o.output_dir = scratch_path("retrain_api");
  int calls = 0;  // the search's 2 epochs, then the retrain's first (of 3): stop there
  o.callbacks.on_epoch = [&calls](const nasc::EpochInfo& e) {
    return ++calls < 3 || e.epochs != 3;
  };
  nasc::SearchResult stopped = nasc::search(o);
  CHECK(stopped.stopped);
  REQUIRE(stopped.retrained);
  CHECK(stopped.retrain.stopped);
  CHECK(stopped.retrain.epochs_run == 1);
  CHECK(std::isnan(stopped.retrain.test_accuracy));  // never read: the retrain did not end
  CHECK_FALSE(
      nlohmann::json::parse(slurp(o.output_dir + "/result.json")).contains("test_accuracy"));

  o.callbacks = {};
  o.config_json.clear();  // the run folder's own config.json
  o.resume = true;
  nasc::SearchResult done = nasc::search(o);
  CHECK_FALSE(done.stopped);
  REQUIRE(done.retrained);
  CHECK(done.retrain.epochs == 3);
  CHECK(done.retrain.network.at("width") == "6");
  CHECK(done.retrain.test_accuracy > 0);
  CHECK(std::filesystem::exists(done.retrain.weights_file));
  CHECK(nlohmann::json::parse(slurp(done.result_file))["test_accuracy"].get<double>() ==
        done.retrain.test_accuracy);
}
