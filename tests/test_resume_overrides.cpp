// A run folder remembers the network it trains: `--set` values go into its config.json
// "network" section, so `nasc train --resume` and `nasc search --resume` (and the retrain
// of `nasc search --retrain`) rebuild the same network without the flags and end with
// the bytes of an uninterrupted run; a resume given other network parameters, which
// would continue the checkpoint's weights in another network (silently, when the shapes
// match), is refused with the parameter, its recorded value and the given one.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/cli_test_util.h"
#include "tests/retrain_test_util.h"

using Catch::Matchers::Contains;
using nas::test::CliResult;
using nas::test::kWidenableSpace;
using nas::test::run_nasc;
using nas::test::scratch_path;
using nas::test::slurp;
using nas::test::write_scratch_file;

namespace {

// `gain` changes no shape: a checkpoint of gain=0.5 loads into a gain=2.0 network.
const char* kFixed = R"(
network scaled(x: tensor[4, 12, 12], gain: float = 1.0, width: int = 4) {
  let h = relu(conv(x, width, kernel=3, pad=1));
  return linear(flatten(max_pool(mul(h, gain), 4)), 4);
}
)";

// 160 samples in batches of 32 (5 steps per epoch), a checkpoint after each epoch.
const char* kTrainConfig = R"({"epochs": 2, "seed": 3, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 160, "synthetic_classes": 4,
             "synthetic_shape": [4, 12, 12], "batch_size": 32, "eval_batch_size": 32},
    "network": {"width": 4}})";

// The search's 4 + 4 steps per epoch (steps 1..8), then the retrain's 24 per epoch,
// counted from 1 again: step 30 is in the retrain's second epoch.
const char* kSearchConfig = R"({"epochs": 2, "seed": 3, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 1024, "synthetic_classes": 4,
             "synthetic_shape": [4, 12, 12], "batch_size": 32, "limit_train": 256},
    "retrain": {"epochs": 2, "network": {"width": 6}, "data": {"batch_size": 32,
                "limit_train": 0, "train_portion": 0.75}}})";

nlohmann::json recorded_network(const std::string& dir) {
  return nlohmann::json::parse(slurp(dir + "/config.json"))["network"];
}

// A refused resume leaves the run folder as it was.
void check_refused(const std::string& args, const std::string& dir, const std::string& message) {
  const std::string log = slurp(dir + "/log.txt"), checkpoint = slurp(dir + "/checkpoint");
  CliResult r = run_nasc(args);
  INFO(r.err << r.out);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("error: " + dir + "/config.json: " + message));
  CHECK(slurp(dir + "/log.txt") == log);
  CHECK(slurp(dir + "/checkpoint") == checkpoint);
}

}  // namespace

TEST_CASE("nasc train --set: recorded in config.json, a resume needs no flags and takes no others",
          "[resume][train][cli]") {
  const std::string space = write_scratch_file("setpersist.nas", kFixed);
  const std::string cfg = write_scratch_file("setpersist.json", kTrainConfig);
  const std::string args = "train " + space + " -c " + cfg + " --set gain=2.0 --set gain=0.5 -o ";
  const std::string whole = scratch_path("setpersist_whole");
  REQUIRE(run_nasc(args + whole).status == 0);
  // The config's width and the last --set of gain, as a config's network section.
  CHECK(recorded_network(whole) == nlohmann::json{{"gain", 0.5}, {"width", 4}});
  const std::vector<std::string> files = {"weights", "checkpoint", "config.json"};

  SECTION("resumed without --set: the uninterrupted run's bytes") {
    const std::string dir = scratch_path("setpersist_plain");
    nas::test::run_nasc_killed_at(args + dir, "step:6");
    CliResult r = run_nasc("train " + space + " --resume -o " + dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.out, Contains("resuming after epoch 1"));
    CHECK(nas::test::run_outcome(dir, files) == nas::test::run_outcome(whole, files));
  }
  SECTION("resumed with other network parameters: refused, naming them") {
    const std::string dir = scratch_path("setpersist_other");
    nas::test::run_nasc_killed_at(args + dir, "step:6");
    const std::string resume = "train " + space + " --resume -o " + dir;
    check_refused(resume + " --set gain=2.0", dir,
                  "network.gain: this run was started with gain=0.5, but is resumed with "
                  "gain=2.0 (--set), which would continue its weights in another network; "
                  "resume without --set gain: the run folder keeps the values it was started "
                  "with");
    // The config it was started with lacks the --set value.
    check_refused(resume + " -c " + cfg, dir,
                  "network.gain: this run was started with gain=0.5, but is resumed with the "
                  "network's default (" +
                      cfg +
                      " sets no gain), which would continue its weights in another network; "
                      "resume without -c: the run folder's config.json is the run's config");
    // The same values again, spelled otherwise, are the same network.
    CliResult r = run_nasc(resume + " --set gain=0.50 --set width=4");
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(nas::test::run_outcome(dir, files) == nas::test::run_outcome(whole, files));
  }
  SECTION("started without --set, resumed with one: refused") {
    const std::string dir = scratch_path("setpersist_unset");
    nas::test::run_nasc_killed_at("train " + space + " -c " + cfg + " -o " + dir, "step:6");
    check_refused("train " + space + " --resume --set gain=1.0 -o " + dir, dir,
                  "network.gain: this run was started without gain (the network's default), "
                  "but is resumed with gain=1.0 (--set), which would continue its weights in "
                  "another network; resume without --set gain");
  }
}

TEST_CASE("nasc train --resume: a file of several networks needs --network again",
          "[resume][train][cli]") {
  const std::string space = write_scratch_file("setpersist_two.nas", std::string(kFixed) + R"(
network other(x: tensor[4, 12, 12]) {
  return linear(flatten(max_pool(x, 4)), 4);
}
)");
  const std::string cfg = write_scratch_file("setpersist_two.json", kTrainConfig);
  const std::string dir = scratch_path("setpersist_two");
  nas::test::run_nasc_killed_at(
      "train " + space + " --network scaled -c " + cfg + " --set gain=0.5 -o " + dir, "step:6");
  CliResult r = run_nasc("train " + space + " --resume -o " + dir);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains(space + ":7:9: error: this file has 2 networks (scaled, other); "
                                     "pick one with --network NAME"));
  r = run_nasc("train " + space + " --network scaled --resume -o " + dir);
  INFO(r.err);
  CHECK(r.status == 0);
}

TEST_CASE(
    "nasc search --set: recorded in config.json, the search and its retrain resume without it",
    "[resume][search][retrain][cli]") {
  const std::string space = write_scratch_file("setpersist_space.nas", kWidenableSpace);
  const std::string cfg = write_scratch_file("setpersist_search.json", kSearchConfig);
  const std::string args = "search " + space + " -c " + cfg + " --set gain=0.5 -o ";
  const std::string whole = scratch_path("setpersist_search_whole");
  REQUIRE(run_nasc(args + whole).status == 0);
  CHECK(recorded_network(whole) == nlohmann::json{{"gain", 0.5}});
  int run = 0;
  for (const char* kill_at : {"step:6", "step:30"}) {
    INFO("killed at " << kill_at);
    const std::string dir = scratch_path("setpersist_search_" + std::to_string(++run));
    nas::test::run_nasc_killed_at(args + dir, kill_at);
    const std::string resume = "search " + space + " --resume -o " + dir;
    check_refused(resume + " --set gain=2.0", dir,
                  "network.gain: this run was started with gain=0.5, but is resumed with "
                  "gain=2.0 (--set)");
    CliResult r = run_nasc(resume);
    INFO(r.err << r.out);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.out, Contains("retrained: test accuracy "));
    CHECK(nas::test::retrain_run_outcome(dir) == nas::test::retrain_run_outcome(whole));
  }
}

TEST_CASE("nasc check and train: the last --set of a name wins, also over the config's",
          "[resume][cli]") {
  const std::string space = write_scratch_file("setpersist_last.nas", kFixed);
  CliResult r = run_nasc("check " + space + " --set width=8 --set width=2");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("network scaled(gain=1.0, width=2)"));
  // The config's network section has width 4; --set comes after it.
  const std::string cfg = write_scratch_file("setpersist_last.json", kTrainConfig);
  const std::string dir = scratch_path("setpersist_last");
  r = run_nasc("train " + space + " -c " + cfg + " --set width=8 --epochs 1 -o " + dir);
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(recorded_network(dir)["width"] == 8);
  // conv 4 -> 8 (3x3, no bias: 288) and linear 8*3*3 -> 4 (292); width 4 gives 292.
  CHECK_THAT(slurp(dir + "/log.txt"), Contains(", 580 parameters,"));
}
