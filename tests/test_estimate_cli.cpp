// `nasc profile` and `nasc estimate` end to end on tiny networks: the table covers the
// space, a rerun resumes (measured entries kept, only missing ones measured), the JSON
// keys, --measure, and bad input: a table from another space, one missing signatures
// (listed, or measured with --profile-missing), a corrupt file, another device, flags.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/cli_test_util.h"

using Catch::Matchers::Contains;
using Json = nlohmann::ordered_json;

namespace {

using nas::test::run_nasc;
using nas::test::slurp;

const char* kFast = " --warmup 1 --repetitions 3";

// A profiled table of examples/tiny.nas, made once per test process.
std::string tiny_lut() {
  static std::string path;
  if (path.empty()) {
    path = nas::test::scratch_path("tiny_lut.json");
    auto r = run_nasc("profile examples/tiny.nas -o " + path + kFast);
    INFO(r.err);
    REQUIRE(r.status == 0);
  }
  return path;
}

std::string copy_of(const std::string& from, const std::string& name) {
  std::string to = nas::test::scratch_path(name);
  nas::test::write_bytes(to, slurp(from));
  return to;
}

}  // namespace

TEST_CASE("nasc profile: a table for every candidate, then a resume", "[estimate][cli]") {
  std::string lut = tiny_lut();
  Json j = Json::parse(slurp(lut));
  CHECK(j["format"] == 1);
  CHECK(j["batch"] == 1);
  CHECK(j["network"] == "tiny");
  CHECK(j["device"]["threads"] == 1);
  CHECK(j["settings"]["repetitions"] == 3);
  int units = 0;
  for (const auto& [key, e] : j["entries"].items()) {
    CHECK(e["ms"].get<double>() > 0);
    units += e["kind"] == "unit";
  }
  CHECK(units == 4);
  const size_t total = j["entries"].size();
  CHECK(total >= 11);

  // Drop two entries (one step, one unit) and rerun: only those two are measured.
  std::string resumed = copy_of(lut, "resumed.json");
  Json edited = j;
  std::string dropped_step, dropped_unit, kept;
  for (const auto& [key, e] : j["entries"].items()) {
    if (e["kind"] == "unit" && dropped_unit.empty())
      dropped_unit = key;
    else if (key.find(" conv ") != std::string::npos && dropped_step.empty())
      dropped_step = key;
    else
      kept = key;
  }
  edited["entries"].erase(dropped_step);
  edited["entries"].erase(dropped_unit);
  nas::test::write_bytes(resumed, edited.dump());
  auto r = run_nasc("profile examples/tiny.nas -o " + resumed + kFast);
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("profiling 1 signature (" + std::to_string(total - 1) +
                             " already in the table)"));
  CHECK_THAT(r.out, Contains("measured now"));
  CHECK_THAT(r.out, Contains("2 measured now"));
  Json back = Json::parse(slurp(resumed));
  CHECK(back["entries"].size() == total);
  CHECK(back["entries"][kept] == j["entries"][kept]);  // kept, not re-measured
  CHECK(back["entries"].contains(dropped_step));
  CHECK(back["entries"].contains(dropped_unit));

  // Nothing left to do; the calibration from the last run holds.
  r = run_nasc("profile examples/tiny.nas -o " + resumed + kFast);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Contains("0 measured now"));
  CHECK_THAT(r.out, Contains("calibration: kept (x") || Contains("calibration 5/5: measured"));
}

TEST_CASE("nasc profile --calibrate: whole networks scale the estimates", "[estimate][cli]") {
  // Microsecond networks on a shared machine: one may be left out as noise (beyond 4x),
  // so the counts are bounds; the log lines and the arithmetic are exact.
  auto ratios_of = [](const Json& lut) {
    return lut.contains("calibration") ? lut["calibration"]["ratios"].size() : size_t{0};
  };
  Json j = Json::parse(slurp(tiny_lut()));  // the default: 5 networks
  CHECK(ratios_of(j) <= 5);
  if (j.contains("calibration")) {
    const double scale = j["calibration"]["scale"].get<double>();
    CHECK(scale >= 0.25);
    CHECK(scale <= 4);
  }

  const std::string two = nas::test::scratch_path("tiny_cal2.json");
  auto r = run_nasc("profile examples/tiny.nas -o " + two + kFast + " --calibrate 2");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("calibration 1/2: measured") && Contains("calibration 2/2: measured"));
  CHECK_THAT(r.out, Contains("calibration: estimates x") || Contains("the table is uncalibrated"));
  CHECK(ratios_of(Json::parse(slurp(two))) <= 2);
  // Asking for more networks than the table holds calibrates again.
  r = run_nasc("profile examples/tiny.nas -o " + two + kFast + " --calibrate 3");
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Contains("calibration 3/3: measured"));

  const std::string none = nas::test::scratch_path("tiny_cal0.json");
  r = run_nasc("profile examples/tiny.nas -o " + none + kFast + " --calibrate 0");
  CHECK(r.status == 0);
  CHECK_FALSE(Contains("calibration").match(r.out));
  CHECK_FALSE(Json::parse(slurp(none)).contains("calibration"));

  // nasc estimate says it and applies it.
  // A table with a calibration written in (the scale is the median of its ratios).
  Json calibrated = Json::parse(slurp(none));
  calibrated["calibration"] = {{"scale", 1.5}, {"ratios", {1.4, 1.5, 1.7}}};
  nas::test::write_bytes(two, calibrated.dump());
  r = run_nasc("estimate examples/tiny.nas --lut " + two + " --json");
  REQUIRE(r.status == 0);
  CHECK(Json::parse(r.out)["latency_calibration"].get<double>() == 1.5);
  const double scaled = Json::parse(r.out)["latency_ms"].get<double>();
  r = run_nasc("estimate examples/tiny.nas --lut " + none + " --json");
  CHECK(Json::parse(r.out)["latency_calibration"] == 1);
  CHECK(scaled == Approx(1.5 * Json::parse(r.out)["latency_ms"].get<double>()));
  r = run_nasc("estimate examples/tiny.nas --lut " + two);
  CHECK_THAT(r.out, Contains(", calibrated x1.500"));

  CHECK_THAT(run_nasc("profile examples/tiny.nas -o x.json --calibrate -1").err,
             Contains("--calibrate needs a count in 0..1000, got \"-1\""));
  CHECK_THAT(run_nasc("estimate examples/tiny.nas --calibrate 2").err,
             Contains("--calibrate does not apply to `nasc estimate`"));
}

TEST_CASE("nasc profile --rounds: the signatures measured again, the fastest kept",
          "[estimate][cli]") {
  const std::string lut = nas::test::scratch_path("tiny_rounds.json");
  auto r = run_nasc("profile examples/tiny.nas -o " + lut + kFast + " --calibrate 0 --rounds 2");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("round 2/2: ") && Contains(" signatures measured faster"));
  CHECK_FALSE(Contains("round 3/").match(r.out));
  // The default is 3 rounds; a resumed table with nothing new measures no round again.
  r = run_nasc("profile examples/tiny.nas -o " + lut + kFast + " --calibrate 0");
  CHECK(r.status == 0);
  CHECK_FALSE(Contains("round 2/").match(r.out));
  for (const char* bad : {"0", "101", "x", "-2"}) {
    INFO(bad);
    r = run_nasc("profile examples/tiny.nas -o x.json --rounds " + std::string(bad));
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains("--rounds needs a count in 1..100, got \"" + std::string(bad)));
  }
  CHECK_THAT(run_nasc("estimate examples/tiny.nas --rounds 2").err,
             Contains("--rounds does not apply to `nasc estimate`"));
}

TEST_CASE("nasc profile --arch measures one architecture only", "[estimate][cli]") {
  std::string lut = nas::test::scratch_path("arch_lut.json");
  auto r = run_nasc("profile examples/tiny.nas --arch examples/tiny_conv.json -o " + lut + kFast);
  INFO(r.err);
  REQUIRE(r.status == 0);
  Json j = Json::parse(slurp(lut));
  for (const auto& [key, e] : j["entries"].items())
    CHECK(key.find("max_pool") == std::string::npos);
  // Enough for that architecture, not for another.
  r = run_nasc("estimate examples/tiny.nas --arch examples/tiny_conv.json --lut " + lut);
  CHECK(r.status == 0);
  std::string pool = nas::test::scratch_path("pool.json");
  nas::test::write_bytes(pool, R"({"choices": {"op": "max_pool"}})");
  r = run_nasc("estimate examples/tiny.nas --arch " + pool + " --lut " + lut);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("lacks 2 of the") && Contains("jit max_pool in=[1,8,28,28]") &&
                        Contains("--profile-missing"));
}

TEST_CASE("nasc estimate --json: stable keys, --measure and its error", "[estimate][cli]") {
  auto r = run_nasc("estimate examples/tiny.nas --arch examples/tiny_conv.json --lut " +
                    tiny_lut() + " --measure --json --batch 8");
  INFO(r.err);
  REQUIRE(r.status == 0);
  Json j = Json::parse(r.out);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"network", "arch", "mode", "params", "param_bytes", "macs",
                                         "activation_bytes", "train_batch",
                                         "train_activation_bytes", "train_not_applicable", "lut",
                                         "latency_batch", "latency_ms", "latency_ms_accumulated",
                                         "latency_ms_fused", "latency_ms_measured", "latency_error",
                                         "latency_error_accumulated", "latency_calibration"});
  CHECK(j["mode"] == "arch");
  CHECK(j["params"] == 738);
  CHECK(j["macs"] == 508112);
  CHECK(j["activation_bytes"] == 50176);
  CHECK(j["train_batch"] == 8);
  CHECK(j["train_activation_bytes"].get<int64_t>() > 0);
  CHECK(j["train_not_applicable"].is_null());
  CHECK(j["latency_ms"] == j["latency_ms_fused"]);
  double measured = j["latency_ms_measured"], est = j["latency_ms"];
  CHECK(measured > 0);
  CHECK(j["latency_error"].get<double>() == Approx((est - measured) / measured));

  // Without a table: the latency keys are null; the supernet counts in full mode.
  r = run_nasc("estimate examples/tiny.nas --json");
  REQUIRE(r.status == 0);
  j = Json::parse(r.out);
  CHECK(j["mode"] == "supernet");
  CHECK(j["train_batch"] == 64);
  CHECK(j["latency_ms"].is_null());
  CHECK(j["latency_ms_measured"].is_null());
  CHECK(j["latency_error"].is_null());
  // --profile-missing without --lut profiles now.
  r = run_nasc(std::string("estimate examples/tiny.nas --profile-missing --json") + kFast);
  REQUIRE(r.status == 0);
  CHECK(Json::parse(r.out)["latency_ms"].get<double>() > 0);
}

TEST_CASE("nasc estimate: a table from another space", "[estimate][cli]") {
  auto r = run_nasc("estimate examples/fmnist_cnn.nas --lut " + tiny_lut());
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("was profiled for another search space or input size (network "
                             "`tiny`, batch 1): only 1 of the 9 signatures `fmnist_cnn` needs"));
  // Another input size is another space too.
  r = run_nasc("estimate examples/tiny.nas --set width=4 --lut " + tiny_lut());
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("only 1 of the 11 signatures `tiny` needs"));
}

TEST_CASE("nasc estimate: missing signatures are listed or measured", "[estimate][cli]") {
  std::string lut = copy_of(tiny_lut(), "missing.json");
  Json j = Json::parse(slurp(lut));
  std::string gone;
  for (const auto& [key, e] : j["entries"].items())
    // The default backend's pool, which computes the ReLU before it (a fused region).
    if (key.find("jit global_avg_pool ") == 0) gone = key;
  REQUIRE(!gone.empty());
  j["entries"].erase(gone);
  nas::test::write_bytes(lut, j.dump());
  auto r = run_nasc("estimate examples/tiny.nas --arch examples/tiny_conv.json --lut " + lut);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("lacks 1 of the") && Contains("missing:\n  " + gone) &&
                        Contains("nasc profile examples/tiny.nas -o " + lut));
  r = run_nasc(
      "estimate examples/tiny.nas --arch examples/tiny_conv.json --profile-missing --lut " + lut);
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Contains("ms fused"));
  CHECK(Json::parse(slurp(lut))["entries"].contains(gone));  // written back
}

TEST_CASE("nasc estimate and profile: corrupt and foreign tables", "[estimate][cli]") {
  std::string bad = nas::test::scratch_path("corrupt.json");
  nas::test::write_bytes(bad, "{\"format\": 1, \"entries\": {");
  auto r = run_nasc("estimate examples/tiny.nas --lut " + bad);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("error: " + bad + ":1:27: invalid JSON: syntax error"));
  r = run_nasc("profile examples/tiny.nas -o " + bad + kFast);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains(bad + ":1:27: invalid JSON") && Contains("is not a latency table"));
  r = run_nasc("estimate examples/tiny.nas --lut /nonexistent/lut.json");
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("error: /nonexistent/lut.json: cannot read: No such file"));

  // Another device: a warning naming both fingerprints, and the estimate still comes.
  std::string other = copy_of(tiny_lut(), "other_device.json");
  Json j = Json::parse(slurp(other));
  j["device"]["cpu_model"] = "Imaginary CPU 9000";
  nas::test::write_bytes(other, j.dump());
  r = run_nasc("estimate examples/tiny.nas --arch examples/tiny_conv.json --lut " + other);
  CHECK(r.status == 0);
  CHECK_THAT(r.err, Contains("warning: the latency table " + other +
                             " was measured on another device: jit, Imaginary CPU 9000,") &&
                        Contains("; this machine: jit, "));
  // ... and profile refuses to mix devices, batches or settings in one table.
  r = run_nasc("profile examples/tiny.nas -o " + other + kFast);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("was measured on another device or thread count"));
  r = run_nasc("profile examples/tiny.nas --batch 2 -o " + copy_of(tiny_lut(), "b.json") + kFast);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("holds batch 1 measurements; this run is --batch 2"));
  r = run_nasc("profile examples/tiny.nas --repetitions 5 -o " + copy_of(tiny_lut(), "s.json"));
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("was measured with --warmup 1 --repetitions 3"));
}

TEST_CASE("nasc profile and estimate: bad flags", "[estimate][cli]") {
  struct Case {
    std::string args, message;
  };
  for (const Case& c : std::vector<Case>{
           {"profile examples/tiny.nas", "`nasc profile` needs -o LUT.json"},
           {"profile examples/tiny.nas -o x.json --all-candidates --arch examples/tiny_conv.json",
            "--all-candidates and --arch exclude each other"},
           {"profile examples/tiny.nas -o x.json --lut y.json",
            "--lut does not apply to `nasc profile`"},
           {"profile examples/tiny.nas -o x.json --batch 0", "--batch needs a positive integer"},
           {"profile examples/tiny.nas -o x.json --warmup -1",
            "--warmup needs an integer in 0..100000"},
           {"profile examples/tiny.nas -o x.json --repetitions 0",
            "--repetitions needs an integer in 1..100000"},
           {"profile examples/tiny.nas -o x.json --trim 0.5",
            "--trim needs a fraction in [0, 0.5)"},
           {"profile examples/tiny.nas -o x.json --trim abc", "--trim needs a fraction"},
           {"profile examples/tiny.nas -o x.json --statistic mode",
            "--statistic takes min, median or trimmed_mean"},
           {"profile examples/tiny.nas -o x.json --measure", "--measure does not apply"},
           {"estimate examples/tiny.nas -o x.json", "-o does not apply to `nasc estimate`"},
           {"estimate examples/tiny.nas --all-candidates", "--all-candidates does not apply"},
           {"estimate examples/tiny.nas --lut", "--lut needs a value"},
           {"estimate examples/tiny.nas --lut x.json --repetitions 3",
            "measurement settings come from the --lut table"},
           {"check examples/tiny.nas --profile-missing", "--profile-missing does not apply"},
           {"check examples/tiny.nas --warmup 2", "does not apply to `nasc check`"},
       }) {
    auto r = run_nasc(c.args);
    INFO(c.args);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(c.message));
  }
  // A bad arch file is located, as for every command.
  std::string bad = nas::test::scratch_path("bad_arch.json");
  nas::test::write_bytes(bad, R"({"choices": {"op": "conv9"}})");
  auto r = run_nasc("estimate examples/tiny.nas --arch " + bad);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("conv9"));
}

// Params, MACs, inference memory and latency need no loss: a network whose output is not
// 1-D logits is estimated, profiled and measured; only training memory is not applicable,
// and the output says why.
TEST_CASE("nasc estimate: a network that returns no logits", "[estimate][cli]") {
  std::string net = nas::test::scratch_path("feature_map.nas");
  nas::test::write_bytes(net, R"(network feature_map(x: tensor[3, 16, 16]) {
  return relu(conv(relu(conv(x, 4, kernel=3, pad=1)), 4, kernel=1));
})");
  auto r = run_nasc("estimate " + net + " --json --profile-missing --measure" + kFast);
  INFO(r.err);
  REQUIRE(r.status == 0);
  Json j = Json::parse(r.out);
  CHECK(j["params"] == 3 * 4 * 9 + 4 * 4);  // conv has no bias by default
  CHECK(j["macs"] == (3 * 4 * 9 + 4 * 4) * 16 * 16);
  // The first conv's output (the second's input; the output is the caller's buffer).
  CHECK(j["activation_bytes"].get<int64_t>() > 0);
  CHECK(j["train_activation_bytes"].is_null());
  CHECK(j["train_not_applicable"] ==
        "`feature_map` returns [4,16,16], not 1-D logits [classes], so it has no training loss");
  CHECK(j["latency_ms"].get<double>() > 0);
  CHECK(j["latency_ms_measured"].get<double>() > 0);

  r = run_nasc("estimate " + net);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("training: not applicable (`feature_map` returns [4,16,16]"));
  std::string lut = nas::test::scratch_path("feature_map_lut.json");
  r = run_nasc("profile " + net + " -o " + lut + kFast);
  INFO(r.err);
  CHECK(r.status == 0);
}
