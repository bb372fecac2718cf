// libnasc's public API (include/nasc): compile with structured diagnostics, choices and
// statistics, fixing architectures and its errors, static estimates, a model trained a
// few steps on the caller's buffers, callbacks that stop train and search, and what the
// CLI's other commands call: DOT text, the pipeline's stages and passes on textual IR,
// latency tables measured and whole network estimates.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <functional>
#include <sstream>
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
  // A training model's batch-norm statistics are over its whole batch: a partial one is the
  // caller's mistake, said as such (it was an internal check), and the model still runs.
  for (const auto& partial : std::vector<std::function<void()>>{
           [&] { model.forward(images.data(), labels.data(), 8); },
           [&] { model.forward_backward(images.data(), labels.data(), 8); },
           [&] { model.train_step(images.data(), labels.data(), 8); }}) {
    const nasc::Error e = error_of(partial);
    CHECK(e.is_user_error());
    CHECK_THAT(std::string(e.what()), Contains("whole batches of 16 samples, got 8"));
  }
  CHECK(model.forward(images.data(), labels.data(), 16).loss == Approx(after));
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

TEST_CASE("api: weights saved and loaded, nasc train's weights served, and files refused",
          "[api]") {
  nas::test::TempDir dir;
  nasc::Space space = nasc::Space::compile_file(kTiny);
  nasc::ModelOptions mo;
  mo.batch = 8;
  mo.threads = 1;
  mo.learning_rate = 0.1;
  std::vector<float> images(8 * 28 * 28);
  std::vector<int32_t> labels(8);
  for (int i = 0; i < 8; ++i) {
    labels[i] = i % 3;
    for (int p = 0; p < 28 * 28; ++p) images[i * 28 * 28 + p] = (p % 3 == labels[i]) ? 1.f : 0.f;
  }
  nasc::Model trained = nasc::Model::build(space.fix({{0}}), mo);
  for (int step = 0; step < 5; ++step) trained.train_step(images.data(), labels.data(), 8);
  const double trained_loss = trained.forward(images.data(), labels.data(), 8).loss;
  const std::string weights = dir / "conv.weights";
  trained.save_weights(weights);

  // A model with other initial weights computes what the trained one does once loaded.
  nasc::ModelOptions other = mo;
  other.seed = 7;
  nasc::Model served = nasc::Model::build(space.fix({{0}}), other);
  CHECK(served.forward(images.data(), labels.data(), 8).loss != trained_loss);
  served.load_weights(weights);
  CHECK(served.forward(images.data(), labels.data(), 8).loss == trained_loss);

  // Another network's weights (the pool candidate has no conv in the choice): refused,
  // naming the file and the tensor, and the model keeps its weights.
  nasc::Model pool = nasc::Model::build(space.fix({{1}}), mo);
  const std::string pool_weights = dir / "pool.weights";
  pool.save_weights(pool_weights);
  nasc::Error e = error_of([&] { served.load_weights(pool_weights); });
  CHECK(e.is_user_error());
  CHECK_THAT(std::string(e.what()), Contains(pool_weights) && Contains("another network"));
  CHECK(served.forward(images.data(), labels.data(), 8).loss == trained_loss);
  // Not a weights file, and no file at all.
  const std::string junk = dir / "junk";
  nas::test::write_bytes(junk, "{\"choices\": {}}");
  CHECK_THAT(std::string(error_of([&] { served.load_weights(junk); }).what()), Contains(junk));
  CHECK(error_of([&] { served.load_weights(dir / "missing"); }).is_user_error());
  CHECK(error_of([&] { trained.save_weights(dir / "no/such/folder/w"); }).is_user_error());

  // The weights `nasc train` leaves serve an evaluation model of the same architecture.
  nasc::RunOptions o;
  o.space_file = kTiny;
  o.arch_file = NASC_SOURCE_DIR "/examples/tiny_conv.json";
  o.config_json = R"({"epochs": 1, "seed": 1, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 64, "batch_size": 32}})";
  o.output_dir = dir / "run";
  nasc::TrainResult r = nasc::train(o);
  nasc::ModelOptions eval = mo;
  eval.mode = nasc::Mode::Eval;
  nasc::Model evaluator = nasc::Model::build(space.fix_file(o.arch_file), eval);
  const double fresh = evaluator.forward(images.data(), labels.data(), 8).loss;
  evaluator.load_weights(r.weights_file);
  CHECK(evaluator.forward(images.data(), labels.data(), 8).loss != fresh);
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
  o.algorithm = "dartz";  // the CLI checks -a; a library caller gets the same user error
  const nasc::Error unknown = error_of([&] { nasc::search(o); });
  CHECK(unknown.is_user_error());
  CHECK_THAT(std::string(unknown.what()),
             Contains("unknown search algorithm `dartz`; did you mean `darts`?"));
  o.algorithm = "darts";
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

namespace {

// An IR text with two equal relu nodes, which cse merges.
const char* kTwoRelus = R"(network net() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]
  %1 = relu(%0) : [2,4,4]
  %2 = relu(%0) : [2,4,4]
  %3 = add(%1, %2) : [2,4,4]
  %4 = global_avg_pool(%3) : [2]
  return %4
}
)";

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// Measurement settings fast enough for a test: one sample per signature.
nasc::MeasureOptions quick_settings() {
  nasc::MeasureOptions m;
  m.warmup = 0;
  m.repetitions = 1;
  return m;
}

}  // namespace

TEST_CASE("api: what nasc check prints: inputs, a fixed network's size, the arch's file", "[api]") {
  nasc::Space space = nasc::Space::compile_file(kTiny);
  REQUIRE(space.inputs().size() == 1);
  CHECK(space.inputs()[0].name == "x");
  CHECK(space.inputs()[0].shape == std::vector<int64_t>{1, 28, 28});
  nasc::SpaceStatistics s = space.statistics();
  CHECK(s.nodes > 0);
  CHECK_FALSE(s.search_truncated);  // tiny's extremes are enumerated
  nasc::NetworkSize conv = space.fix({{0}}).size();
  nasc::NetworkSize identity = space.fix({{2}}).size();
  CHECK(conv.params == space.estimate(space.fix({{0}})).params);
  CHECK(conv.macs == space.estimate(space.fix({{0}})).macs);
  CHECK(conv.params > identity.params);
  CHECK(conv.nodes < s.nodes);  // pruned
  CHECK(space.fix_file(NASC_SOURCE_DIR "/examples/tiny_conv.json").file() == NASC_SOURCE_DIR
        "/examples/tiny_conv.json");
  CHECK(space.fix_json(R"({"choices": {"op": "conv"}})", "mine.json").file() == "mine.json");
  CHECK(space.sample(1).file().empty());
}

TEST_CASE("api: DOT text of a space and of an architecture, written and drawn", "[api]") {
  nasc::Space space = nasc::Space::compile_file(kTiny);
  const std::string supernet = space.to_dot();
  const std::string fixed = space.fix({{0}}).to_dot();
  CHECK_THAT(supernet, Contains("digraph \"tiny\""));
  CHECK_THAT(supernet, Contains("cluster"));  // the choice's candidates are grouped
  CHECK_THAT(supernet, Contains("max_pool"));
  CHECK_THAT(fixed, !Contains("max_pool"));  // the candidates not picked are pruned

  nas::test::TempDir dir;
  nasc::GraphFile dot = nasc::write_graph(fixed, dir / "net.gv");
  CHECK(dot.path == dir / "net.gv");
  CHECK_FALSE(dot.rendered);
  CHECK(dot.warnings.empty());
  CHECK(nas::test::read_bytes(dir / "net.gv") == fixed);

  nasc::Error format = error_of([&] { nasc::write_graph(fixed, dir / "net.jpg"); });
  CHECK(format.is_user_error());
  REQUIRE(format.diagnostics().size() == 1);
  CHECK(format.diagnostics()[0].location.file.empty());  // no place in a file: the path says
  CHECK_THAT(std::string(format.what()),
             Contains("cannot tell the output format from \"" + dir / "net.jpg" + "\""));
  nasc::Error unwritable = error_of([&] { nasc::write_graph(fixed, dir / "no_such_dir/net.dot"); });
  CHECK(unwritable.is_user_error());
  CHECK_THAT(std::string(unwritable.what()), Contains("cannot write \"" + dir / "no_such_dir"));
}

TEST_CASE("api: the pipeline's stages and a space's text at each", "[api][pipeline]") {
  std::vector<std::string> names;
  for (const nasc::StageDescription& s : nasc::pipeline_stages()) names.push_back(s.name);
  CHECK(names == std::vector<std::string>{"load", "elaborate", "shapes", "dce", "partial-channels",
                                          "zero-prune", "cse", "autodiff", "remat", "fusion",
                                          "memory-plan", "lower"});
  CHECK(count_of(nasc::describe_pipeline(), "\n") == names.size());

  nasc::IrOptions o;
  nasc::IrText dce = nasc::stage_text(kTiny, o);
  CHECK_THAT(dce.text, Contains("network tiny(") && Contains("@tiny.nas:"));
  CHECK(dce.warnings.empty());
  o.dump.locations = false;
  CHECK_THAT(nasc::stage_text(kTiny, o).text, !Contains("@tiny.nas:"));

  // The training plan of the fixed network, with a dump of cse on the way.
  std::ostringstream dumps;
  o.stage = "lower";
  o.training = true;
  o.arch_file = NASC_SOURCE_DIR "/examples/tiny_conv.json";
  o.batch = 4;
  o.dump.after = {"cse"};
  o.dump.out = &dumps;
  nasc::IrText plan = nasc::stage_text(kTiny, o);
  CHECK_THAT(plan.text, Contains("plan batch=4 mode=training"));
  CHECK_THAT(dumps.str(), Contains("after cse"));

  o.stage = "lowr";
  nasc::Error stage = error_of([&] { nasc::stage_text(kTiny, o); });
  CHECK(stage.is_user_error());
  CHECK_THAT(std::string(stage.what()),
             Contains("IrOptions::stage: unknown stage `lowr`; did you mean `lower`?"));
  o.stage = "dce";
  o.dump.after = {"cee"};
  CHECK_THAT(std::string(error_of([&] { nasc::stage_text(kTiny, o); }).what()),
             Contains("IrOptions::dump.after: unknown stage `cee`"));

  nas::test::TempDir dir;
  const std::string broken = dir / "broken.nas";
  nas::test::write_bytes(broken, "network n(x: tensor[1, 8, 8]) {\n  return relu(y);\n}\n");
  nasc::Error compile = error_of([&] { nasc::stage_text(broken, nasc::IrOptions{}); });
  CHECK(compile.is_user_error());
  REQUIRE_FALSE(compile.diagnostics().empty());
  CHECK(compile.diagnostics()[0].location.file == broken);
  CHECK(compile.diagnostics()[0].location.line == 2);
}

TEST_CASE("api: passes on textual IR, and IR, pass lists and files that fail", "[api][pipeline]") {
  nasc::PassOptions o;
  CHECK(count_of(nasc::run_passes("two.ir", kTwoRelus, o).text, "= relu(") == 2);  // as parsed
  o.passes = {"cse"};
  nasc::IrText merged = nasc::run_passes("two.ir", kTwoRelus, o);
  CHECK(count_of(merged.text, "= relu(") == 1);
  o.passes = {"cse", "autodiff", "memory-plan", "lower"};
  o.batch = 2;
  CHECK_THAT(nasc::run_passes("two.ir", kTwoRelus, o).text, Contains("plan batch=2"));

  // Bad IR: located at the line and column of the unknown value.
  const std::string bad =
      "network broken() {\n  %0 = input() {shape=[4]} : [4]\n"
      "  %1 = relu(%7) : [4]\n  return %1\n}\n";
  o.passes = {"cse"};
  nasc::Error parse = error_of([&] { nasc::run_passes("broken.ir", bad, o); });
  CHECK(parse.is_user_error());
  REQUIRE_FALSE(parse.diagnostics().empty());
  const nasc::Diagnostic& d = parse.diagnostics()[0];
  CHECK(d.location.file == "broken.ir");
  CHECK(d.location.line == 3);
  CHECK(d.location.column == 13);
  CHECK_THAT(d.message, Contains("%7"));

  o.passes = {"cse", "dcee"};
  nasc::Error unknown = error_of([&] { nasc::run_passes("two.ir", kTwoRelus, o); });
  CHECK(unknown.is_user_error());
  CHECK_THAT(std::string(unknown.what()),
             Contains("PassOptions::passes: unknown pass `dcee`; did you mean `dce`? (passes: "
                      "shapes, dce,"));
  o.passes = {"elaborate"};  // reads .nas source, not IR
  CHECK_THAT(std::string(error_of([&] { nasc::run_passes("two.ir", kTwoRelus, o); }).what()),
             Contains("PassOptions::passes: unknown pass `elaborate`"));
  o.passes = {"lower"};
  CHECK_THAT(std::string(error_of([&] { nasc::run_passes("two.ir", kTwoRelus, o); }).what()),
             Contains("PassOptions::passes: lower lowers a memory plan"));
  o.passes = {"memory-plan", "cse"};
  CHECK_THAT(std::string(error_of([&] { nasc::run_passes("two.ir", kTwoRelus, o); }).what()),
             Contains("PassOptions::passes: cse runs on a graph, but memory-plan ends"));

  nas::test::TempDir dir;
  o.passes = {"cse"};
  nas::test::write_bytes(dir / "two.ir", kTwoRelus);
  CHECK(nasc::run_passes_on_file(dir / "two.ir", o).text == merged.text);
  nasc::Error missing = error_of([&] { nasc::run_passes_on_file(dir / "none.ir", o); });
  CHECK(missing.is_user_error());
  CHECK_THAT(std::string(missing.what()), Contains("cannot read \"" + dir / "none.ir" + "\""));
}

TEST_CASE("api: a latency table measured, resumed, saved, and its errors", "[api][estimate]") {
  nasc::Space space = nasc::Space::compile_file(kTiny);
  nas::test::TempDir dir;
  nasc::ProfileOptions o;
  o.settings = quick_settings();
  o.arch = space.fix({{0}});
  o.output = dir / "lut.json";
  std::ostringstream log;
  o.log = &log;
  nasc::ProfileReport first;
  nasc::LatencyTable table = nasc::LatencyTable::measure(space, o, &first);
  // Calibrated (by default) on the architecture itself, or, when its single cold-ish run
  // is too far off, left uncalibrated with the reason.
  CHECK((first.calibration.has_value() != !first.calibration_problem.empty()));
  CHECK(first.measured > 0);
  CHECK(first.reused == 0);
  CHECK(table.entries() == static_cast<size_t>(first.measured));
  CHECK(table.path() == o.output);
  CHECK_THAT(log.str(),
             Contains("profiling tiny at batch 1 on ") && Contains("(architecture op=conv)"));
  // The whole space resumes the file: the conv architecture's signatures are reused.
  o.arch.reset();
  nasc::ProfileReport second;
  nasc::LatencyTable all = nasc::LatencyTable::measure(space, o, &second);
  CHECK(second.reused > 0);
  CHECK(all.entries() > table.entries());
  CHECK(nasc::LatencyTable::load(o.output).entries() == all.entries());
  CHECK_NOTHROW(nasc::LatencyEstimator(space, all));
  all.save(dir / "copy.json");
  CHECK(nasc::LatencyTable::load(dir / "copy.json").entries() == all.entries());

  // Resuming at another batch size, or a file that is no table, is refused.
  o.batch = 2;
  nasc::Error batch = error_of([&] { nasc::LatencyTable::measure(space, o); });
  CHECK(batch.is_user_error());
  CHECK_THAT(std::string(batch.what()), Contains(o.output + " holds batch 1 measurements"));
  nas::test::write_bytes(dir / "not_a_table.json", "[1, 2]");
  o.output = dir / "not_a_table.json";
  nasc::Error foreign = error_of([&] { nasc::LatencyTable::measure(space, o); });
  CHECK_THAT(std::string(foreign.what()),
             Contains(o.output) && Contains("the -o file exists but is not a latency table"));

  o.backend = "cpx";
  nasc::Error backend = error_of([&] { nasc::LatencyTable::measure(space, o); });
  CHECK(backend.is_user_error());
  CHECK_THAT(std::string(backend.what()),
             Contains("ProfileOptions::backend: unknown backend `cpx`; did you mean `cpu`?"));
  o.backend.clear();
  o.batch = 0;
  CHECK_THAT(std::string(error_of([&] { nasc::LatencyTable::measure(space, o); }).what()),
             Contains("ProfileOptions::batch: must be >= 1, got 0"));
  o.batch = 1;
  for (int rounds : {0, 101}) {
    o.rounds = rounds;
    nasc::Error bad = error_of([&] { nasc::LatencyTable::measure(space, o); });
    CHECK(bad.is_user_error());
    CHECK_THAT(std::string(bad.what()), Contains("ProfileOptions::rounds: must be in 1..100, got " +
                                                 std::to_string(rounds)));
  }
  o.rounds = 1;
  nasc::Space other = nasc::Space::compile_file(kTiny);
  o.arch = other.fix({{0}});
  CHECK_THAT(std::string(error_of([&] { nasc::LatencyTable::measure(space, o); }).what()),
             Contains("the architecture belongs to another space"));
  CHECK_THAT(std::string(error_of([&] { table.save(dir / "no_such_dir/t.json"); }).what()),
             Contains(dir / "no_such_dir"));
}

TEST_CASE("api: a network's whole estimate: static, from a table, profiled now, measured",
          "[api][estimate]") {
  nasc::Space space = nasc::Space::compile_file(kTiny);
  nasc::NetworkEstimateOptions o;
  o.arch = space.fix({{0}});
  o.train_batch = 8;
  nasc::NetworkEstimate fixed = nasc::estimate_network(space, o);
  CHECK(fixed.cost.params == space.estimate(*o.arch, 8).params);
  CHECK(fixed.cost.train_batch == 8);
  CHECK_FALSE(fixed.latency);
  CHECK_FALSE(fixed.measured_ms);

  // Profiled now and timed whole.
  o.profile_missing = true;
  o.measure = true;
  o.settings = quick_settings();
  nasc::NetworkEstimate now = nasc::estimate_network(space, o);
  REQUIRE(now.latency);
  CHECK(now.latency->fused_ms > 0);
  CHECK(now.latency->batch == 1);
  REQUIRE(now.measured_ms);
  CHECK(*now.measured_ms > 0);
  CHECK(now.warnings.empty());

  // From a table with this architecture only: enough for it, not for another one.
  nas::test::TempDir dir;
  nasc::ProfileOptions p;
  p.settings = quick_settings();
  p.arch = o.arch;
  nasc::LatencyTable::measure(space, p).save(dir / "conv.json");
  nasc::NetworkEstimateOptions t;
  t.arch = o.arch;
  t.lut = dir / "conv.json";
  CHECK(nasc::estimate_network(space, t).latency);
  t.arch = space.fix({{1}});
  nasc::Error missing = error_of([&] { nasc::estimate_network(space, t); });
  CHECK(missing.is_user_error());
  CHECK_THAT(std::string(missing.what()), Contains("the latency table " + t.lut) &&
                                              Contains("nasc profile " + kTiny + " -o " + t.lut));
  // ...until its missing signatures are measured into it.
  t.profile_missing = true;
  std::ostringstream log;
  t.log = &log;
  CHECK(nasc::estimate_network(space, t).latency);
  CHECK_THAT(log.str(), Contains("measuring ") && Contains(" missing signature"));
  CHECK(nasc::LatencyTable::load(t.lut).entries() > 0);

  t.lut = dir / "none.json";
  nasc::Error unreadable = error_of([&] { nasc::estimate_network(space, t); });
  CHECK(unreadable.is_user_error());
  REQUIRE(unreadable.diagnostics().size() == 1);
  CHECK_THAT(unreadable.diagnostics()[0].message, Contains(t.lut));
  t.lut.clear();
  t.backend = "gpu";
  CHECK_THAT(std::string(error_of([&] { nasc::estimate_network(space, t); }).what()),
             Contains("NetworkEstimateOptions::backend: unknown backend `gpu`"));
}

TEST_CASE("api: a backend that cannot run here is refused where it is named, before any work",
          "[api][gpu]") {
  const std::vector<nasc::BackendDescription> all = nasc::backends();
  if (std::none_of(all.begin(), all.end(), [](const auto& b) { return b.name == "cuda"; })) {
    WARN("skipped: this library was built without the CUDA plugin");
    return;
  }
  std::string device;
  const std::string problem = nasc::backend_problem("cuda", &device);
  if (problem.empty()) {
    WARN("skipped: a GPU is present (" << device << "); the backend tests run on it");
    return;
  }
  CHECK(device.empty());
  nas::test::TempDir dir;
  nasc::RunOptions o;
  o.space_file = kTiny;
  o.arch_file = NASC_SOURCE_DIR "/examples/tiny_conv.json";
  o.output_dir = dir / "run";
  o.backend = "cuda";
  nasc::Error run = error_of([&] { nasc::train(o); });
  CHECK(run.is_user_error());
  CHECK(std::string(run.what()) == "RunOptions::backend: cuda: " + problem);
  CHECK_FALSE(std::filesystem::exists(dir / "run"));
  nasc::Space space = nasc::Space::compile_file(kTiny);
  nasc::ModelOptions mo;
  mo.backend = "cuda";
  nasc::Error model = error_of([&] { nasc::Model::build(space.fix({{0}}), mo); });
  CHECK(model.is_user_error());
  CHECK_THAT(std::string(model.what()), Contains("ModelOptions::backend") && Contains(problem));
}

TEST_CASE("api: backends by name, suggestions and numbers as nasc prints them", "[api]") {
  CHECK_NOTHROW(nasc::check_backend("cpu"));
  nasc::Error e = error_of([] { nasc::check_backend("cpuu"); });
  CHECK(e.is_user_error());
  CHECK_THAT(std::string(e.what()),
             Contains("unknown backend `cpuu`; did you mean `cpu`? (built in: cpu"));
  CHECK(nasc::did_you_mean("lowr", {"load", "lower"}) == "; did you mean `lower`?");
  CHECK(nasc::did_you_mean("xyz", {"load", "lower"}).empty());
  CHECK(nasc::with_commas(1234567) == "1,234,567");
  CHECK(nasc::human_count(268160) == "268K");
}
