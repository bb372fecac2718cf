// The estimators in-process: static costs against hand-computed values and MobileNetV2's
// published counts; latency units; the masked latency sum against the pruned network's
// own plan (Zero cuts its branch); profiling fills a complete table with positive times;
// the latency table's reader refuses malformed files.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <sstream>

#include "compiler/estimate/estimator.h"
#include "compiler/estimate/latency_units.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/estimate/profiler.h"
#include "runtime/estimate/signature.h"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

using namespace nas;

Graph compile(const std::string& example,
              std::vector<std::pair<std::string, std::string>> set = {}) {
  Diagnostics diags;
  CompileOptions copt;
  copt.elaborate.overrides = std::move(set);
  Compilation c = compile_file(std::string(NASC_SOURCE_DIR) + "/examples/" + example, copt, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  return *c.supernet;
}

Selection arch(const Graph& g, const std::string& json) {
  Diagnostics diags;
  auto sel = parse_arch(g, "arch.json", json, diags);
  INFO(diags.render());
  REQUIRE(sel);
  return *sel;
}

// A table with every signature of `space` (and of its units), each a distinct value;
// units get the sum of their steps, so the fused and accumulated estimates must agree.
LatencyTable synthetic_table(const SpaceLatency& space) {
  LatencyTable t;
  t.device = current_device();
  double v = 0.001;
  std::map<std::string, double> step_ms;
  for (const ProfileJob& j : space.jobs(nullptr, t.device.backend)) {
    if (j.unit) continue;
    LutEntry e;
    e.ms = v;
    v *= 1.37;
    t.entries[j.signature] = e;
  }
  for (const ProfileJob& j : space.jobs(nullptr, t.device.backend)) {
    if (!j.unit) continue;
    LutEntry e;
    e.kind = "unit";
    for (int s : j.steps)
      if (step_has_cost(space.plan().steps[s]))
        e.ms +=
            t.entries.at(step_signature(t.device.backend, space.plan(), space.plan().steps[s])).ms;
    t.entries[j.signature] = e;
  }
  return t;
}

// The sum of a table's entries over a fixed network's own inference plan.
// The fixed network's own plan as latency tables cost it (estimator.cpp): conv epilogues,
// no elementwise regions.
double plan_sum(const Graph& fixed, const LatencyTable& t) {
  PlanOptions as_tables;
  as_tables.fusion_kinds.elementwise = false;
  ExecPlan plan = compile_plan(fixed, as_tables);
  double sum = 0;
  for (const Step& s : plan.steps)
    if (step_has_cost(s)) sum += t.entries.at(step_signature(t.device.backend, plan, s)).ms;
  return sum;
}

}  // namespace

TEST_CASE("static estimate: tiny with the conv candidate, by hand", "[estimate]") {
  Graph g = compile("tiny.nas");
  Graph fixed = specialise(g, arch(g, R"({"choices": {"op": "conv"}})"));
  StaticEstimate s = static_estimate(fixed, 4);
  // stem conv 1->8 3x3: 72 weights; candidate conv 8->8 3x3: 576; linear 8->10: 90.
  CHECK(s.params == 72 + 576 + 90);
  CHECK(s.param_bytes == 4 * s.params);
  // MACs per sample over 28x28 outputs: 72*784 + 576*784 + 80.
  CHECK(s.macs == 72 * 784 + 576 * 784 + 80);
  // Inference at batch 1: two [8,28,28] float buffers live at once (conv out + relu in).
  CHECK(s.activation_bytes == 2 * 8 * 28 * 28 * 4);
  CHECK(s.train_batch == 4);
  // What `nasc train` allocates: the arena of the training plan at that batch.
  PlanOptions training;
  training.batch = 4;
  training.training = true;
  CHECK(s.train_activation_bytes == compile_plan(fixed, training).arena_bytes);
  CHECK(s.train_activation_bytes > 4 * s.activation_bytes);
  // The max-pool candidate has no weights.
  StaticEstimate pool =
      static_estimate(specialise(g, arch(g, R"({"choices": {"op": "max_pool"}})")), 4);
  CHECK(pool.params == 72 + 90);
  CHECK(pool.macs == 72 * 784 + 80);
}

TEST_CASE("static estimate: MobileNetV2 matches torchvision", "[estimate]") {
  StaticEstimate s = static_estimate(compile("mobilenet_v2.nas"), 64);
  CHECK(s.params == 3504872);
  CHECK(s.macs == 300774272);  // "about 300M" multiply-adds at 3x224x224
  CHECK(s.activation_bytes > 0);
  CHECK(s.train_activation_bytes > 64 * s.activation_bytes / 4);
}

TEST_CASE("latency units: one unit per candidate block of mobilenet", "[estimate]") {
  Graph g = compile("mobilenet.nas", {{"settings", "[[24, 2, 2]]"}});
  SpaceLatency space(g, 1);
  const std::vector<int>& units = space.units();
  REQUIRE(units.size() == space.plan().steps.size());
  std::map<int, std::vector<int>> members;
  for (size_t i = 0; i < units.size(); ++i) {
    const Step& s = space.plan().steps[i];
    if (s.kind == StepKind::Choice || s.kind == StepKind::Input) CHECK(units[i] == -1);
    if (units[i] >= 0) members[units[i]].push_back(static_cast<int>(i));
  }
  // Stem chain, 6 candidates of layer 0, 6 mbconv candidates of layer 1 (skip is a lone
  // view: no unit), head chain.
  CHECK(members.size() == 1 + 6 + 6 + 1);
  for (const auto& [u, steps] : members) {
    for (size_t k = 1; k < steps.size(); ++k) CHECK(steps[k] == steps[k - 1] + 1);  // consecutive
    // A candidate unit stays inside one candidate's instance path (".../layer0/mb3_k5").
    auto candidate = [](const std::string& name) {
      size_t at = name.find("/layer");
      if (at == std::string::npos) return std::string();
      size_t end = name.find('/', name.find('/', at + 1) + 1);
      return name.substr(0, end);
    };
    std::string first = candidate(space.plan().steps[steps.front()].name);
    for (int s : steps) CHECK(candidate(space.plan().steps[s].name) == first);
  }
}

TEST_CASE("latency estimate: the masked sum is the pruned network's own sum", "[estimate]") {
  Graph g = compile("mobilenet.nas", {{"settings", "[[24, 2, 2], [32, 2, 2]]"}});
  SpaceLatency space(g, 1);
  LatencyTable t = synthetic_table(space);
  ArchEstimator est(g, t);
  REQUIRE(est.missing(nullptr).empty());
  for (int pick = 0; pick < 6; ++pick) {
    Selection sel;
    for (const ArchGroup& a : g.arch)
      sel.chosen.push_back({(pick + 1) % static_cast<int>(a.candidates.size())});
    if (pick == 5) sel.chosen[1] = {6};  // skip
    LatencyEstimate e = est.estimate(sel);
    CHECK(e.accumulated_ms == Approx(plan_sum(specialise(g, sel), t)).epsilon(1e-12));
    CHECK(e.fused_ms == Approx(e.accumulated_ms).epsilon(1e-12));
  }
  // The supernet in full mode costs more than any sub-network: every candidate runs.
  CHECK(est.estimate_full().accumulated_ms > est.estimate(first_candidates(g)).accumulated_ms);
}

TEST_CASE("latency estimate: Zero cuts its branch", "[estimate]") {
  Diagnostics diags;
  Compilation c = compile_text("zj.nas", R"(network zj(x: tensor[3, 8, 8]) {
  let a = conv(x, 4, kernel=3, pad=1);
  let b = choice "edge" { zero: zero(a), conv2: conv(a, 4, kernel=3, pad=1) };
  return linear(global_avg_pool(conv(b, 4, kernel=3, pad=1)), 2);
})",
                               {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  const Graph& g = *c.supernet;
  SpaceLatency space(g, 1);
  LatencyTable t = synthetic_table(space);
  ArchEstimator est(g, t);
  Selection zero = arch(g, R"({"choices": {"edge": "zero"}})");
  Selection conv = arch(g, R"({"choices": {"edge": "conv2"}})");
  // With zero: everything but the first conv (only the Zero read it) and conv2; the
  // choice forwards its one candidate (free).
  double expected = 0;
  for (const Step& s : space.plan().steps)
    if (step_has_cost(s) && s.name != "zj/conv" && s.name != "zj/edge/conv2/conv" &&
        s.kind != StepKind::Choice)
      expected += t.entries.at(step_signature(t.device.backend, space.plan(), s)).ms;
  CHECK(est.estimate(zero).accumulated_ms == Approx(expected).epsilon(1e-12));
  CHECK(est.estimate(conv).accumulated_ms ==
        Approx(plan_sum(specialise(g, conv), t)).epsilon(1e-12));
  CHECK(est.estimate(conv).accumulated_ms > est.estimate(zero).accumulated_ms);
}

TEST_CASE("latency estimate: a missing signature is reported, not guessed", "[estimate]") {
  Graph g = compile("tiny.nas");
  SpaceLatency space(g, 1);
  LatencyTable t = synthetic_table(space);
  std::string conv_sig;
  for (const Step& s : space.plan().steps)
    if (s.name == "tiny/op/conv/conv") conv_sig = step_signature(t.device.backend, space.plan(), s);
  REQUIRE(t.entries.erase(conv_sig) == 1);
  ArchEstimator est(g, t);
  Selection pool = arch(g, R"({"choices": {"op": "max_pool"}})");
  Selection conv = arch(g, R"({"choices": {"op": "conv"}})");
  CHECK(est.missing(&pool).empty());
  CHECK(est.missing(&conv) == std::vector<std::string>{conv_sig});
  CHECK(std::isnan(est.estimate(conv).accumulated_ms));
}

namespace {

// An empty table for this machine at `batch`, measured briefly (tests check structure, not
// times).
LatencyTable quick_table(int64_t batch) {
  LatencyTable t;
  t.device = current_device();
  t.batch = batch;
  t.settings.warmup = 1;
  t.settings.repetitions = 3;
  t.settings.min_sample_us = 1;
  return t;
}

}  // namespace

TEST_CASE("profiling tiny fills a complete table with positive times", "[estimate]") {
  Graph g = compile("tiny.nas");
  SpaceLatency space(g, 2);
  LatencyTable t = quick_table(2);
  ProfileStats s = profile_space(t, space, nullptr, "", nullptr);
  std::vector<ProfileJob> jobs = space.jobs(nullptr, t.device.backend);
  CHECK(s.measured == static_cast<int>(jobs.size()));
  CHECK(t.entries.size() == jobs.size());
  int units = 0;
  for (const ProfileJob& j : jobs) {
    const LutEntry& e = t.entries.at(j.signature);
    CHECK(e.ms > 0);
    CHECK(e.min_ms <= e.ms);
    CHECK(e.ms <= e.max_ms);
    CHECK(e.samples >= 3);
    if (j.unit) {
      ++units;
      CHECK(e.kind == "unit");
      CHECK(e.in_network);  // every candidate of tiny runs in some context round
    }
  }
  CHECK(units == 4);  // stem conv, the conv and max-pool candidates, relu..loss head
  // Batch 2 is in every signature.
  CHECK_THAT(jobs.front().signature, Contains("[2,"));
  ArchEstimator est(g, t);
  CHECK(est.missing(nullptr).empty());
  CHECK(est.estimate(first_candidates(g)).fused_ms > 0);
  // A second pass measures nothing.
  CHECK(profile_space(t, space, nullptr, "", nullptr).measured == 0);
}

TEST_CASE("profiling in rounds keeps each signature's fastest entry", "[estimate]") {
  Graph g = compile("tiny.nas");
  SpaceLatency space(g, 2);
  LatencyTable t = quick_table(2);
  const std::vector<ProfileJob> jobs = space.jobs(nullptr, t.device.backend);
  // One signature resumed from an earlier table, with a time no round can beat: the rounds
  // measure what this call measures, and leave what it reused alone.
  LutEntry resumed;
  resumed.ms = resumed.min_ms = resumed.median_ms = resumed.mean_ms = resumed.max_ms = 1e9;
  resumed.samples = 1;
  t.entries[jobs.front().signature] = resumed;
  std::ostringstream log;
  ProfileStats s = profile_space(t, space, nullptr, "", &log, 3);
  CHECK(s.measured == static_cast<int>(jobs.size()) - 1);
  CHECK(s.skipped == 1);
  CHECK(t.entries.at(jobs.front().signature).ms == 1e9);
  CHECK_THAT(log.str(), Contains("round 2/3: ") && Contains("round 3/3: ") &&
                            Contains(" of " + std::to_string(s.measured) + " signatures"));
  // Each kept entry is one round's whole entry (its statistic within its own samples).
  for (const ProfileJob& j : jobs) {
    const LutEntry& e = t.entries.at(j.signature);
    CHECK(e.ms > 0);
    CHECK(e.min_ms <= e.ms);
    CHECK(e.ms <= e.max_ms);
  }
  CHECK_THROWS_AS(profile_space(t, space, nullptr, "", nullptr, 0), InternalError);
}

TEST_CASE("summarise: trims both ends, min, median or trimmed mean", "[estimate]") {
  MeasureSettings s;
  s.trim = 0.2;
  s.statistic = "median";
  LutEntry e = summarise({5, 1, 2, 3, 100, 4, 3, 2, 3, 1000}, s);
  CHECK(e.median_ms == 3);  // kept: 2 3 3 3 4 5
  CHECK(e.mean_ms == Approx(20.0 / 6));
  CHECK(e.min_ms == 1);
  CHECK(e.max_ms == 1000);
  CHECK(e.samples == 10);
  CHECK(e.ms == e.median_ms);
  s.statistic = "trimmed_mean";
  CHECK(summarise({1, 2, 9}, s).ms == 4);  // 3 samples: floor(0.6) = 0 dropped
  s.statistic = "min";                     // the default
  CHECK(summarise({5, 1, 2, 3, 100, 4, 3, 2, 3, 1000}, s).ms == 1);
  CHECK(MeasureSettings().statistic == "min");
}

TEST_CASE("latency table: round trip and malformed files", "[estimate]") {
  LatencyTable t;
  t.device = current_device();
  t.batch = 3;
  t.network = "n";
  LutEntry e;
  e.ms = e.median_ms = e.mean_ms = e.min_ms = e.max_ms = 0.5;
  e.samples = 4;
  t.entries["cpu relu in=[3,4] out=[3,4]"] = e;
  LatencyTable back = parse_lut(lut_to_json(t), "t.json");
  CHECK(back.device == t.device);
  CHECK(back.batch == 3);
  CHECK(back.entries.at("cpu relu in=[3,4] out=[3,4]").ms == 0.5);
  CHECK(lut_to_json(back) == lut_to_json(t));

  auto fails = [](const std::string& text, const std::string& message) {
    try {
      parse_lut(text, "bad.json");
      FAIL("accepted: " << text);
    } catch (const UserError& e) {
      CHECK_THAT(e.what(), StartsWith("bad.json") && Contains(message));
    }
  };
  std::string good = lut_to_json(t);
  fails("{\"format\": 1, ", "bad.json:1:15: invalid JSON");
  fails("[1, 2]", "bad.json: not a latency table: the top level must be an object");
  fails("{}", "bad.json: the table has no \"format\"");
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  fails(edit("\"format\": 1", "\"format\": 7"), "format 7 is not supported");
  fails(edit("\"batch\": 3", "\"batch\": 0"), "\"batch\" must be an integer in 1..");
  fails(edit("\"ms\": 0.5", "\"ms\": -1"),
        "bad.json: entry \"cpu relu in=[3,4] out=[3,4]\": \"ms\" must be a number in 0..");
  try {  // the entry is named in the error, for tools as well as in the text
    parse_lut(edit("\"samples\": 4", "\"samples\": 0"), "bad.json");
    FAIL("a sample count of 0 was accepted");
  } catch (const LutEntryError& e) {
    CHECK(e.file() == "bad.json");
    CHECK(e.entry() == "cpu relu in=[3,4] out=[3,4]");
    CHECK(e.message() == "\"samples\" must be an integer in 1..1000000, got 0");
  }
  fails(edit("\"samples\": 4", "\"samples\": \"4\""), "\"samples\" must be an integer");
  fails(edit("\"kind\": \"step\"", "\"kind\": \"fused\""), "\"kind\" must be \"step\" or \"unit\"");
  fails(edit("\"statistic\": \"min\"", "\"statistic\": \"mode\""), "\"statistic\" must be");
  fails(edit("\"cpu_model\"", "\"cpu\""), "bad.json: \"device\" has no \"cpu_model\"");
  fails(edit("\"ms\": 0.5", "\"ms\": 1e999999"), "bad.json:");
  fails(edit("\"ms\": 0.5", "\"ms\": 1e999999"), "number 1e999999 is too large");
  CHECK_THROWS_WITH(load_lut("/nonexistent/lut.json"),
                    StartsWith("/nonexistent/lut.json: cannot read: No such file"));

  // The calibration: its scale is the median of its ratios.
  t.calibration = calibration_from({1.2, 0.9, 1.1, 1.0});
  CHECK(t.calibration->scale == Approx(1.05));
  CHECK(calibration_from({1.3, 0.8, 1.1}).scale == Approx(1.1));
  const std::string calibrated = lut_to_json(t);
  LatencyTable again = parse_lut(calibrated, "t.json");
  REQUIRE(again.calibration);
  CHECK(again.calibration->scale == Approx(1.05));
  CHECK(again.calibration->ratios == std::vector<double>{1.2, 0.9, 1.1, 1.0});
  CHECK(lut_to_json(again) == calibrated);
  good = calibrated;
  fails(edit("\"calibration\": {", "\"calibration\": [], \"x\": {"),
        "bad.json: \"calibration\" must be an object, got []");
  fails(edit("\"scale\": 1.05", "\"scale\": 1.1"),
        "\"calibration\" \"scale\" 1.1 is not the median of its ratios (1.05)");
  fails(edit("\"scale\": 1.05", "\"scale\": -1"),
        "bad.json: \"scale\" must be a number in 0.25..4, got -1");
  fails(edit("\"scale\": 1.05", "\"scale\": \"1\""), "\"scale\" must be a number");
  fails(edit("\"scale\": 1.05,", ""), "bad.json: \"calibration\" has no \"scale\"");
  fails(edit("\"ratios\": [", "\"ratios\": [\"x\", "),
        "\"calibration\" \"ratios\" must be numbers in 0.25..4, got \"x\"");
  fails(edit("\"ratios\": [", "\"ratios\": [9, "), "must be numbers in 0.25..4, got 9");
  fails(edit("\"ratios\": [", "\"ratios\": 1, \"y\": ["),
        "\"calibration\" \"ratios\" must be a list of 1 to 10000 numbers");
}

TEST_CASE("latency calibration: whole networks against the estimate, applied to it",
          "[estimate][calibration]") {
  Graph g = compile("tiny.nas");
  SpaceLatency space(g, 1);
  LatencyTable t;
  t.device = current_device();
  t.settings.warmup = 1;
  t.settings.repetitions = 3;
  t.settings.min_sample_us = 1;
  profile_space(t, space, nullptr, "", nullptr);
  ArchEstimator raw(g, t);
  const Selection sel = first_candidates(g);
  const double before = raw.estimate(sel).fused_ms;
  CHECK(raw.calibration() == 1);

  // Timings of microsecond networks on a shared machine: a network may be left out as
  // noise (beyond 4x), so the counts are bounded, not exact; the arithmetic is exact.
  std::ostringstream log;
  const std::string problem = calibrate_table(t, g, nullptr, 3, 7, &log);
  CHECK_THAT(log.str(),
             Contains("calibration 1/3: measured") && Contains("calibration 3/3: measured"));
  if (problem.empty()) {
    REQUIRE(t.calibration);
    CHECK(t.calibration->ratios.size() >= 1);
    CHECK(t.calibration->ratios.size() <= 3);
    for (double r : t.calibration->ratios) CHECK((r >= 0.25 && r <= 4));
    CHECK(t.calibration->scale == calibration_from(t.calibration->ratios).scale);
  } else {
    CHECK_FALSE(t.calibration);
    CHECK_THAT(problem, Contains("the table is uncalibrated"));
    WARN(problem);
    t.calibration = calibration_from({1.5});
  }
  // Estimates are the raw ones times the scale; the calibration timed them uncalibrated.
  ArchEstimator calibrated(g, t);
  CHECK(calibrated.calibration() == t.calibration->scale);
  CHECK(calibrated.estimate(sel).fused_ms == Approx(before * t.calibration->scale));
  CHECK(calibrated.node_ms()[1] == Approx(raw.node_ms()[1] * t.calibration->scale));
  // One architecture: it alone, once.
  std::ostringstream one;
  const std::string alone = calibrate_table(t, g, &sel, 3, 7, &one);
  CHECK_THAT(one.str(), Contains("calibration 1/1: measured"));
  CHECK_FALSE(Contains("calibration 2/").match(one.str()));
  CHECK((alone.empty() ? t.calibration->ratios.size() == 1 : !t.calibration));
}
