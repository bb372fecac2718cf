// The epoch driver that train, search and random search share (runtime/train/epoch_driver.h),
// on a counting task: fresh runs, resume from a checkpoint (and without one), stops from
// on_step and on_epoch with the stop rule (no record, no checkpoint for a partial epoch);
// then through libnasc, random search's on_step and the same rule for a gradient search.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "file_test_util.h"
#include "nasc/nasc.h"
#include "runtime/train/epoch_driver.h"

using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using nas::Checkpoint;
using nas::EpochDriver;
using nas::EpochEnd;
using nas::EpochLoopOptions;
using nas::RunControl;
using nas::RunDir;

namespace {

// A run whose training adds 1 per step to a counter, which its checkpoint keeps.
class CountingTask final : public nas::EpochTask {
 public:
  explicit CountingTask(int64_t epochs) : epochs_(epochs) {}

  void start_fresh(RunDir& run) override {
    calls.push_back("fresh");
    run.write_json("config.json", {{"epochs", epochs_}});
  }
  void restore(const Checkpoint& ck, const std::string& what) override {
    calls.push_back("restore " + std::to_string(ck.epoch));
    if (!ck.extra.contains("value")) throw nas::DataFileError(what, "not a counting checkpoint");
    value = ck.extra["value"].get<int64_t>();
    global_step_ = ck.global_step;
  }
  void run_epoch(int64_t epoch, EpochDriver& driver) override {
    calls.push_back("epoch " + std::to_string(epoch + 1));
    for (int64_t s = 0; s < kSteps; ++s) {
      ++value;
      ++global_step_;
      if (!driver.after_step({epoch + 1, epochs_, s + 1, kSteps, global_step_, 0.5, 0.25, 0.1}))
        return;
    }
  }
  EpochEnd end_epoch(int64_t epoch, bool whole, RunDir&) override {
    calls.push_back("end " + std::to_string(epoch + 1) + (whole ? " whole" : " partial"));
    EpochEnd end;
    end.line = "epoch " + std::to_string(epoch + 1) + ": value " + std::to_string(value);
    end.record = {{"epoch", epoch + 1}, {"value", value}};
    end.report = {epoch + 1, epochs_, 1.5, 0.5, 2.5, 0.75, 0.0};
    return end;
  }
  void fill_checkpoint(Checkpoint& ck) override {
    ck.global_step = global_step_;
    ck.extra = {{"value", value}};
  }

  static constexpr int64_t kSteps = 4;
  std::vector<std::string> calls;
  int64_t value = 0;

 private:
  int64_t epochs_;
  int64_t global_step_ = 0;
};

EpochLoopOptions loop(int64_t epochs, int64_t checkpoint_every) {
  EpochLoopOptions o;
  o.epochs = epochs;
  o.checkpoint_every = checkpoint_every;
  return o;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

using Calls = std::vector<std::string>;

}  // namespace

TEST_CASE("epoch driver: a fresh run records every epoch and checkpoints when due",
          "[train][driver]") {
  nas::test::TempDir tmp;
  const std::string dir = tmp / "run";
  std::ostringstream out;
  CountingTask task(3);
  EpochDriver driver(dir, false, loop(3, 2), RunControl(), out);
  driver.run(task);
  CHECK(task.calls == Calls{"fresh", "epoch 1", "end 1 whole", "epoch 2", "end 2 whole", "epoch 3",
                            "end 3 whole"});
  CHECK(driver.epochs_run() == 3);
  CHECK_FALSE(driver.stopped());
  const auto records = lines_of(dir + "/metrics.jsonl");
  REQUIRE(records.size() == 3);
  CHECK(records[2] == R"({"epoch":3,"value":12})");
  // Due at epoch 2 and written again after the last one.
  std::optional<Checkpoint> ck = nas::load_checkpoint(dir);
  REQUIRE(ck);
  CHECK(ck->epoch == 3);
  CHECK(ck->global_step == 12);
  CHECK(ck->extra["value"] == 12);
  CHECK(out.str() == "epoch 1: value 4\nepoch 2: value 8\nepoch 3: value 12\n");
  CHECK(lines_of(dir + "/log.txt").back() == "epoch 3: value 12");
}

TEST_CASE("epoch driver: --resume continues after the checkpoint's epoch", "[train][driver]") {
  nas::test::TempDir tmp;
  const std::string dir = tmp / "run";
  std::ostringstream first_out;
  CountingTask first(2);
  EpochDriver(dir, false, loop(2, 1), RunControl(), first_out).run(first);
  // A record of an epoch the checkpoint does not cover, as a crash leaves it.
  std::ofstream(dir + "/metrics.jsonl", std::ios::app) << R"({"epoch":3,"value":99})"
                                                       << "\n";

  std::ostringstream out;
  CountingTask task(4);
  EpochDriver driver(dir, true, loop(4, 1), RunControl(), out);
  driver.run(task);
  CHECK(task.calls == Calls{"restore 2", "epoch 3", "end 3 whole", "epoch 4", "end 4 whole"});
  CHECK(driver.first_epoch() == 2);
  CHECK(driver.epochs_run() == 2);
  CHECK(task.value == 16);
  CHECK_THAT(out.str(), Contains("resuming after epoch 2\n"));
  const auto log = lines_of(dir + "/log.txt");
  CHECK(std::find(log.begin(), log.end(), "resumed after epoch 2 (step 8)") != log.end());
  const auto records = lines_of(dir + "/metrics.jsonl");
  REQUIRE(records.size() == 4);
  CHECK(records[2] == R"({"epoch":3,"value":12})");  // the crash's record was dropped
  CHECK(nas::load_checkpoint(dir)->epoch == 4);

  SECTION("a checkpoint the task refuses is reported at the checkpoint's path") {
    nas::Checkpoint foreign;
    foreign.epoch = 1;
    nas::save_checkpoint(dir, foreign);
    CountingTask again(4);
    EpochDriver resumed(dir, true, loop(4, 1), RunControl(), out);
    try {
      resumed.run(again);
      FAIL("no error");
    } catch (const nas::DataFileError& e) {
      CHECK_THAT(std::string(e.what()), Contains(dir + "/checkpoint"));
      CHECK_THAT(std::string(e.what()), Contains("not a counting checkpoint"));
    }
  }
}

TEST_CASE("epoch driver: resume without a checkpoint starts over, random search's wording",
          "[train][driver]") {
  nas::test::TempDir tmp;
  const std::string dir = tmp / "run";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << "{}\n";
  std::ostringstream out;
  CountingTask task(1);
  EpochDriver(dir, true, loop(1, 1), RunControl(), out).run(task);
  CHECK(task.calls == Calls{"epoch 1", "end 1 whole"});  // neither fresh nor restored
  CHECK_THAT(out.str(), Contains(nas::kStartingOver));

  EpochLoopOptions architectures = loop(2, 1);
  architectures.unit = "architecture";
  architectures.resume_line_names_step = false;
  std::ostringstream again;
  CountingTask resumed(2);
  EpochDriver(dir, true, architectures, RunControl(), again).run(resumed);
  CHECK_THAT(again.str(), Contains("resuming after architecture 1\n"));
  CHECK(lines_of(dir + "/log.txt").at(2) == "resumed after architecture 1");
}

TEST_CASE("epoch driver: on_step stops mid-epoch without a record or a checkpoint of it",
          "[train][driver]") {
  nas::test::TempDir tmp;
  const std::string dir = tmp / "run";
  RunControl control;
  std::vector<int64_t> seen;
  control.on_step = [&](const nas::StepReport& s) {
    seen.push_back(s.global_step);
    CHECK(s.step == (s.global_step - 1) % CountingTask::kSteps + 1);
    return s.global_step < 6;  // step 2 of epoch 2
  };
  std::ostringstream out;
  CountingTask task(3);
  EpochDriver driver(dir, false, loop(3, 1), control, out);
  driver.run(task);
  CHECK(driver.stopped());
  CHECK(driver.epochs_run() == 1);
  CHECK(seen == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  CHECK(task.value == 6);
  CHECK(task.calls == Calls{"fresh", "epoch 1", "end 1 whole", "epoch 2", "end 2 partial"});
  CHECK(lines_of(dir + "/metrics.jsonl").size() == 1);
  CHECK(lines_of(dir + "/log.txt").back() == "epoch 2: value 6 | stopped at step 6");
  CHECK_THAT(out.str(), EndsWith("epoch 2: value 6 | stopped at step 6\n"));
  std::optional<Checkpoint> ck = nas::load_checkpoint(dir);
  REQUIRE(ck);
  CHECK(ck->epoch == 1);
  CHECK(ck->extra["value"] == 4);

  // The resume continues from the last whole epoch, as after a crash.
  CountingTask resumed(3);
  EpochDriver again(dir, true, loop(3, 1), RunControl(), out);
  again.run(resumed);
  CHECK(resumed.value == 12);
  CHECK(lines_of(dir + "/metrics.jsonl").size() == 3);
}

TEST_CASE("epoch driver: on_epoch stops after its epoch, checkpointed even when not due",
          "[train][driver]") {
  nas::test::TempDir tmp;
  const std::string dir = tmp / "run";
  RunControl control;
  std::vector<nas::EpochReport> reports;
  control.on_epoch = [&](const nas::EpochReport& e) {
    reports.push_back(e);
    return e.epoch < 2;
  };
  std::ostringstream out;
  CountingTask task(5);
  EpochDriver driver(dir, false, loop(5, 10), control, out);
  driver.run(task);
  CHECK(driver.stopped());
  CHECK(driver.epochs_run() == 2);
  REQUIRE(reports.size() == 2);
  CHECK(reports[1].epoch == 2);
  CHECK(reports[1].epochs == 5);
  CHECK(reports[1].eval_accuracy == 0.75);  // the task's report, passed on
  CHECK(lines_of(dir + "/metrics.jsonl").size() == 2);
  CHECK(lines_of(dir + "/log.txt").back() == "epoch 2: value 8");
  std::optional<Checkpoint> ck = nas::load_checkpoint(dir);
  REQUIRE(ck);
  CHECK(ck->epoch == 2);
  CHECK(ck->global_step == 8);
}

namespace {

const std::string kTiny = NASC_SOURCE_DIR "/examples/tiny.nas";

// Small and single-threaded: three architectures, each trained 2 epochs.
const char* kRandomConfig = R"({"epochs": 2, "seed": 1, "threads": 1, "random": {"samples": 3},
  "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 32}})";

nasc::RunOptions random_search(const std::string& dir) {
  nasc::RunOptions o;
  o.space_file = kTiny;
  o.config_json = kRandomConfig;
  o.algorithm = "random";
  o.output_dir = dir;
  return o;
}

}  // namespace

TEST_CASE("random search: on_step after each step of an architecture's training",
          "[search][api][driver]") {
  nas::test::TempDir tmp;
  nasc::RunOptions o = random_search(tmp / "whole");
  std::vector<nasc::StepInfo> steps;
  o.callbacks.on_step = [&](const nasc::StepInfo& s) {
    steps.push_back(s);
    return true;
  };
  nasc::SearchResult whole = nasc::search(o);
  CHECK_FALSE(whole.stopped);
  REQUIRE(!steps.empty());
  const int64_t per_arch = steps[0].steps;  // both training epochs' steps
  REQUIRE(per_arch >= 4);                   // so that step 2 is in an architecture's epoch 1
  CHECK(static_cast<int64_t>(steps.size()) == 3 * per_arch);
  for (size_t i = 0; i < steps.size(); ++i) {
    INFO("call " << i);
    const int64_t arch = static_cast<int64_t>(i) / per_arch;
    CHECK(steps[i].epoch == arch + 1);  // the architecture, as on_epoch counts
    CHECK(steps[i].epochs == 3);
    CHECK(steps[i].step == static_cast<int64_t>(i) % per_arch + 1);
    CHECK(steps[i].steps == per_arch);
    CHECK(steps[i].global_step == static_cast<int64_t>(i) + 1);
    CHECK(steps[i].learning_rate > 0);
    CHECK(steps[i].loss > 0);
  }

  // Stopped in the second architecture: it is not counted (no record, no sample file,
  // arch.json keeps the first), and --resume retrains it to the uninterrupted end.
  const std::string cut = tmp / "cut";
  o = random_search(cut);
  o.callbacks.on_step = [&](const nasc::StepInfo& s) { return s.global_step < per_arch + 2; };
  nasc::SearchResult stopped = nasc::search(o);
  CHECK(stopped.stopped);
  CHECK(stopped.epochs_run == 1);
  CHECK(lines_of(cut + "/metrics.jsonl").size() == 1);
  CHECK_FALSE(std::filesystem::exists(cut + "/samples/arch_002.json"));
  CHECK(nlohmann::json::parse(nas::test::read_bytes(cut + "/arch.json"))["sample"] == 1);
  const auto log = lines_of(cut + "/log.txt");
  bool marked = false;
  for (const std::string& line : log)
    marked |= line.rfind("arch 2/3 epoch 1/2: train loss", 0) == 0 &&
              line.find("| not counted | stopped at step " + std::to_string(per_arch + 2)) !=
                  std::string::npos;
  CHECK(marked);
  o.callbacks.on_step = nullptr;
  o.resume = true;
  nasc::SearchResult resumed = nasc::search(o);
  CHECK_FALSE(resumed.stopped);
  CHECK(resumed.epochs_run == 2);
  CHECK(resumed.arch_json == whole.arch_json);
  CHECK(lines_of(cut + "/metrics.jsonl").size() == 3);

  // Stopped in the first architecture: there is no result yet.
  o = random_search(tmp / "first");
  o.callbacks.on_step = [](const nasc::StepInfo& s) { return s.global_step < 2; };
  nasc::SearchResult none = nasc::search(o);
  CHECK(none.stopped);
  CHECK(none.epochs_run == 0);
  CHECK(none.choices.empty());
  CHECK(none.valid_accuracy == 0);
  CHECK_FALSE(std::filesystem::exists(tmp / "first/arch.json"));
}

TEST_CASE("darts: a step stop records no partial epoch, as train does", "[search][api][driver]") {
  nas::test::TempDir tmp;
  nasc::RunOptions o;
  o.space_file = kTiny;
  o.config_json = R"({"epochs": 3, "seed": 1, "threads": 1, "warmup_epochs": 0,
    "data": {"name": "synthetic", "synthetic_samples": 512, "batch_size": 32}})";
  o.algorithm = "darts";
  o.output_dir = tmp / "search";
  int64_t steps_per_epoch = 0;
  o.callbacks.on_step = [&](const nasc::StepInfo& s) {
    steps_per_epoch = s.steps;
    return s.epoch < 2 || s.step < 2;  // step 2 of epoch 2
  };
  nasc::SearchResult r = nasc::search(o);
  CHECK(r.stopped);
  CHECK(r.epochs_run == 1);
  const auto records = lines_of(tmp / "search/metrics.jsonl");
  REQUIRE(records.size() == 1);
  CHECK_THAT(records[0], Contains(R"({"epoch":1,)"));
  const auto log = lines_of(tmp / "search/log.txt");
  const auto epoch2 = std::find_if(log.begin(), log.end(), [](const std::string& line) {
    return line.rfind("epoch 2/3: ", 0) == 0;
  });
  REQUIRE(epoch2 != log.end());
  CHECK_THAT(*epoch2, EndsWith("| stopped at step " + std::to_string(steps_per_epoch + 2)));
  CHECK(nas::load_checkpoint(tmp / "search")->epoch == 1);
  CHECK(std::filesystem::exists(r.arch_file));  // from the alphas it has
}
