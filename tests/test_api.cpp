// libnasc's public API (include/nasc): compile with structured diagnostics, choices and
// statistics, fixing architectures and its errors, static estimates, a model trained a
// few steps on the caller's buffers, and callbacks that stop train and search.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <vector>

#include "cli_test_util.h"
#include "file_test_util.h"
#include "nasc/nasc.h"

using Catch::Matchers::Contains;

namespace {

const std::string kTiny = NASC_SOURCE_DIR "/examples/tiny.nas";

// The run config of the stop tests: synthetic data, small and single-threaded.
const char* kRunConfig = R"({"epochs": 3, "seed": 1, "threads": 1,
  "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 32}})";
const char* kSearchConfig = R"({"epochs": 3, "seed": 1, "threads": 1, "warmup_epochs": 0,
  "data": {"name": "synthetic", "synthetic_samples": 512, "batch_size": 32}})";

template <typename F>
nasc::Error error_of(F&& f) {
  try {
    f();
  } catch (const nasc::Error& e) {
    return e;
  }
  FAIL("no nasc::Error thrown");
  return nasc::Error(nasc::Error::Kind::Internal, "unreachable");
}

}  // namespace

TEST_CASE("api: a syntax error comes back as a located diagnostic", "[api]") {
  const std::string text =
      "network broken(x: tensor[1, 8, 8]) {\n  let h = relu(x;\n  return h;\n}\n";
  nasc::Error e = error_of([&] { nasc::Space::compile_string("broken.nas", text); });
  CHECK(e.is_user_error());
  REQUIRE_FALSE(e.diagnostics().empty());
  const nasc::Diagnostic& d = e.diagnostics().front();
  CHECK(d.severity == nasc::Severity::Error);
  CHECK(d.location.file == "broken.nas");
  CHECK(d.location.line == 2);
  CHECK(d.location.column == 17);
  CHECK_FALSE(d.message.empty());
  CHECK_THAT(d.rendered, Contains("broken.nas:2:17: error:"));
  CHECK_THAT(std::string(e.what()), Contains("broken.nas:2:17"));
}

TEST_CASE("api: choices, statistics and the network's shapes", "[api]") {
  nasc::Space space = nasc::Space::compile_file(kTiny);
  CHECK(space.name() == "tiny");
  CHECK(space.input_shape() == std::vector<int64_t>{1, 28, 28});
  CHECK(space.output_shape() == std::vector<int64_t>{10});
  REQUIRE(space.choices().size() == 1);
  const nasc::Choice& op = space.choices()[0];
  CHECK(op.key == "op");
  CHECK(op.candidates == std::vector<std::string>{"conv", "max_pool", "identity"});
  CHECK(op.k == 1);
  nasc::SpaceStatistics s = space.statistics();
  CHECK(s.choices == 1);
  CHECK(std::abs(s.log10_size - std::log10(3.0)) < 1e-9);
  CHECK(s.largest_params > s.smallest_params);
  CHECK(s.extremes_exact);
  // --set style overrides reach the network.
  nasc::CompileOptions wide;
  wide.overrides = {{"width", "16"}};
  CHECK(nasc::Space::compile_file(kTiny, wide).statistics().supernet_params > s.supernet_params);
}

TEST_CASE("api: fixing an architecture, and its errors", "[api]") {
  nasc::Space space = nasc::Space::compile_file(kTiny);
  nasc::Architecture a = space.fix_json(R"({"choices": {"op": "max_pool"}})");
  CHECK(a.chosen() == std::vector<std::vector<int>>{{1}});
  CHECK(a.describe() == "op=max_pool");
  CHECK(space.fix({{2}}).names().at("op") == "identity");
  CHECK(space.fix_json(a.to_json()).chosen() == a.chosen());

  nasc::Error bad_key =
      error_of([&] { space.fix_json(R"({"choices": {"opp": "conv"}})", "mine.json"); });
  CHECK(bad_key.is_user_error());
  CHECK_THAT(std::string(bad_key.what()), Contains("mine.json"));
  CHECK_THAT(std::string(bad_key.what()), Contains("opp"));
  REQUIRE_FALSE(bad_key.diagnostics().empty());
  CHECK(bad_key.diagnostics()[0].location.file == "mine.json");
  CHECK(bad_key.diagnostics()[0].location.line == 1);
  CHECK(bad_key.diagnostics()[0].location.column == 14);
  CHECK_THAT(bad_key.diagnostics()[0].message, Contains("choice `opp`"));
  nasc::Error bad_index = error_of([&] { space.fix({{3}}); });
  CHECK(bad_index.is_user_error());
  CHECK_THAT(std::string(bad_index.what()),
             Contains("choice `op`: candidate index 3 is out of range"));
  CHECK(error_of([&] { space.fix({}); }).is_user_error());
}

TEST_CASE("api: static estimates of architectures", "[api]") {
  nasc::Space space = nasc::Space::compile_file(kTiny);
  nasc::StaticEstimate conv = space.estimate(space.fix({{0}}), 32);
  nasc::StaticEstimate pool = space.estimate(space.fix({{1}}), 32);
  CHECK(conv.params > pool.params);  // the candidate conv's weights
  CHECK(conv.macs > pool.macs);
  CHECK(conv.param_bytes == 4 * conv.params);
  CHECK(conv.activation_bytes > 0);
  CHECK(conv.train_batch == 32);
  CHECK(conv.train_activation_bytes > conv.activation_bytes);
  CHECK(conv.train_not_applicable.empty());
  CHECK(space.estimate_supernet().params >= conv.params);
}

TEST_CASE("api: latency from a table nasc profile wrote, and a table that does not fit", "[api]") {
  nas::test::TempDir dir;
  const std::string lut = dir / "lut.json";
  nas::test::CliResult p =
      nas::test::run_nasc("profile " + kTiny + " -o " + lut + " --warmup 1 --repetitions 3");
  INFO(p.err);
  REQUIRE(p.status == 0);
  nasc::LatencyTable table = nasc::LatencyTable::load(lut);
  CHECK(table.batch() == 1);
  CHECK(table.entries() > 0);
  nasc::Space space = nasc::Space::compile_file(kTiny);
  nasc::LatencyEstimator latency(space, table);
  CHECK(latency.warning().empty());  // measured here
  nasc::LatencyEstimate conv = latency.estimate(space.fix({{0}}));
  CHECK(conv.fused_ms > 0);
  CHECK(conv.accumulated_ms > 0);
  CHECK(latency.estimate_supernet().accumulated_ms > 0);

  nasc::CompileOptions wide;
  wide.overrides = {{"width", "16"}};
  nasc::Space other = nasc::Space::compile_file(kTiny, wide);
  nasc::Error missing = error_of([&] { nasc::LatencyEstimator(other, table); });
  CHECK(missing.is_user_error());
  CHECK_THAT(std::string(missing.what()), Contains("the latency table " + lut));
  CHECK_THAT(std::string(missing.what()), Contains("nasc profile"));
  nasc::Error unreadable = error_of([&] { nasc::LatencyTable::load(dir / "none.json"); });
  CHECK(unreadable.is_user_error());
  CHECK_THAT(std::string(unreadable.what()), Contains("none.json"));
}

TEST_CASE("api: a few optimizer steps on the caller's buffers lower the loss", "[api]") {
  nasc::Space space = nasc::Space::compile_file(kTiny);
  nasc::ModelOptions mo;
  mo.batch = 16;
  mo.threads = 1;
  mo.learning_rate = 0.1;
  nasc::Model model = nasc::Model::build(space.fix({{0}}), mo);
  REQUIRE(model.input_size() == 28 * 28);
  REQUIRE(model.classes() == 10);
  CHECK(model.parameter_count() > 0);
  // A fixed batch whose class is written into the image: learnable in a few steps.
  std::vector<float> images(16 * model.input_size());
  std::vector<int32_t> labels(16);
  for (int i = 0; i < 16; ++i) {
    labels[i] = i % 4;
    for (int64_t p = 0; p < model.input_size(); ++p)
      images[i * model.input_size() + p] = (p % 4 == labels[i]) ? 1.0f : -0.5f;
  }
  const double before = model.forward(images.data(), labels.data(), 16).loss;
  double last = before;
  for (int step = 0; step < 10; ++step)
    last = model.train_step(images.data(), labels.data(), 16).loss;
  const double after = model.forward(images.data(), labels.data(), 16).loss;
  INFO("before " << before << ", last step " << last << ", after " << after);
  CHECK(after < before);
  std::vector<float> logits(16 * 10);
  model.forward(images.data(), labels.data(), 16, logits.data());
  CHECK(std::isfinite(logits[0]));

  CHECK(error_of([&] { model.forward(images.data(), labels.data(), 17); }).is_user_error());
  nasc::ModelOptions eval = mo;
  eval.mode = nasc::Mode::Eval;
  nasc::Model evaluator = nasc::Model::build(space.fix({{0}}), eval);
  CHECK(error_of([&] { evaluator.optimizer_step(); }).is_user_error());
  std::vector<float> eval_logits(16 * 10, NAN);
  nasc::StepResult unlabelled = evaluator.forward(images.data(), nullptr, 16, eval_logits.data());
  CHECK(unlabelled.loss == 0);
  CHECK(std::isfinite(eval_logits[16 * 10 - 1]));
  CHECK(evaluator.forward(images.data(), labels.data(), 16).loss > 0);
  nasc::ModelOptions unknown = mo;
  unknown.backend = "cpux";
  CHECK_THAT(std::string(error_of([&] { nasc::Model::build(space.fix({{0}}), unknown); }).what()),
             Contains("cpux"));
}

TEST_CASE("api: a step callback that returns false stops train, with its checkpoint", "[api]") {
  nas::test::TempDir dir;
  nasc::RunOptions o;
  o.space_file = kTiny;
  o.arch_file = NASC_SOURCE_DIR "/examples/tiny_conv.json";
  o.config_json = kRunConfig;
  o.output_dir = dir / "run";
  int64_t steps_seen = 0;
  o.callbacks.on_step = [&](const nasc::StepInfo& s) {
    steps_seen = s.global_step;
    return s.global_step < 10;  // 8 steps per epoch: stop in epoch 2
  };
  nasc::TrainResult r = nasc::train(o);
  CHECK(r.stopped);
  CHECK(steps_seen == 10);
  CHECK(r.epochs_run == 1);
  CHECK(std::filesystem::exists(r.weights_file));
  CHECK(std::filesystem::exists(dir / "run/checkpoint"));  // epoch 1's

  // Resumed without callbacks, it continues from that checkpoint: epochs 2 and 3.
  o.callbacks.on_step = nullptr;
  o.resume = true;
  nasc::TrainResult resumed = nasc::train(o);
  CHECK_FALSE(resumed.stopped);
  CHECK(resumed.epochs_run == 2);
  o.resume = false;

  // An epoch callback stops after its epoch, whose checkpoint is written.
  o.callbacks.on_step = nullptr;
  o.output_dir = dir / "run2";
  o.callbacks.on_epoch = [](const nasc::EpochInfo& e) { return e.epoch < 2; };
  nasc::TrainResult r2 = nasc::train(o);
  CHECK(r2.stopped);
  CHECK(r2.epochs_run == 2);
  CHECK(std::filesystem::exists(dir / "run2/checkpoint"));

  // A config error comes back located.
  o.config_json = R"({"epochs": -1})";
  nasc::Error e = error_of([&] { nasc::train(o); });
  CHECK(e.is_user_error());
  CHECK_THAT(std::string(e.what()), Contains("<config>: epochs"));
}

TEST_CASE("api: callbacks that return false stop a search", "[api]") {
  nas::test::TempDir dir;
  nasc::RunOptions o;
  o.space_file = kTiny;
  o.config_json = kSearchConfig;
  o.algorithm = "darts";
  o.output_dir = dir / "search";
  o.callbacks.on_step = [](const nasc::StepInfo& s) { return s.global_step < 3; };
  nasc::SearchResult r = nasc::search(o);
  CHECK(r.stopped);
  CHECK(r.epochs_run == 0);
  CHECK(std::filesystem::exists(r.arch_file));
  CHECK(r.choices.count("op") == 1);

  o.callbacks.on_step = nullptr;
  o.output_dir = dir / "search2";
  int epochs = 0;
  o.callbacks.on_epoch = [&](const nasc::EpochInfo& e) {
    epochs = static_cast<int>(e.epoch);
    return false;
  };
  nasc::SearchResult r2 = nasc::search(o);
  CHECK(r2.stopped);
  CHECK(r2.epochs_run == 1);
  CHECK(epochs == 1);
  CHECK(std::filesystem::exists(dir / "search2/checkpoint"));

  // Random search asks after each architecture it trained.
  o.algorithm = "random";
  o.config_json = R"({"epochs": 1, "seed": 1, "threads": 1, "random": {"samples": 4},
    "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 32}})";
  o.output_dir = dir / "random";
  epochs = 0;
  o.callbacks.on_epoch = [&](const nasc::EpochInfo& e) {
    epochs = static_cast<int>(e.epoch);
    CHECK(e.epochs == 4);
    return e.epoch < 2;
  };
  nasc::SearchResult r3 = nasc::search(o);
  CHECK(r3.stopped);
  CHECK(r3.epochs_run == 2);
  CHECK(epochs == 2);
}
