// Search: genotype derivation against hand-computed probabilities (the top-2 rule, Zero
// excluded, shared keys, joins), the search config, and `nasc search` end to end with bad
// input, killed searches resumed (at exact steps, through NASC_TEST_KILL_AT) and the
// resume property over every step of a small DARTS search. The algorithms themselves are
// tested in test_search_algorithms.cpp.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/passes/derive_arch.h"
#include "compiler/passes/genotype.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/report/tfevents.h"
#include "runtime/search/search_config.h"
#include "runtime/search/searcher.h"
#include "runtime/train/checkpoint.h"
#include "tests/cli_test_util.h"
#include "tests/ir_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using nas::test::compile_source;

namespace {

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

// `nasc ARGS` fails as a user error (exit 1) whose message contains `fragment`.
void fails(const std::string& args, const std::string& fragment) {
  nas::test::CliResult r = nas::test::run_nasc(args);
  INFO(args << "\n" << r.err);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains(fragment));
}

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
      Catch::Matchers::Equals("s.json: warmup_epochs: must be fewer than epochs (2), got 2"));
  CHECK_THROWS_WITH(parse_search_config(nlohmann::json::parse(R"({"epoch": 2})"), "s.json"),
                    Contains("epoch"));
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

  // Killed 12 steps into its third epoch of 24 steps (warm-up, then two of search).
  run_nasc_killed_at(args + cut, "step:60");
  CHECK(count_lines(cut + "/metrics.jsonl") == 2);
  CliResult resumed = run_nasc("search examples/tiny.nas --resume -o " + cut);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  auto a = nlohmann::json::parse(slurp(whole + "/arch.json"));
  auto b = nlohmann::json::parse(slurp(cut + "/arch.json"));
  CHECK(a["choices"] == b["choices"]);
  CHECK(a["probabilities"] == b["probabilities"]);  // bit-identical alphas

  // The search's arch file belongs to its space: another network refuses it.
  CliResult other = run_nasc("train examples/fmnist_cnn.nas --data synthetic --arch " + whole +
                             "/arch.json -o " + scratch_path("other"));
  CHECK(other.status == 1);
  CHECK_THAT(other.err, Contains("arch file is for network \"tiny\", not `fmnist_cnn`"));

  std::string dir = scratch_path("bad");
  fails("search examples/fmnist_cnn.nas -o " + dir, "has no choices");
  fails("search examples/tiny.nas -a evolve -o " + dir,
        "-a takes darts, darts2, pnas, random or evolution");
  fails("search examples/tiny.nas --resume", "--resume needs -o DIR, the run folder to continue");
  std::ofstream(cfg) << R"({"valid": {"name": "adam", "lr": -1}})";
  fails("search examples/tiny.nas --data synthetic -c " + cfg + " -o " + dir, "valid");
  std::ofstream(cfg) << R"({"data": {"train_portion": 1.0, "name": "synthetic"}})";
  fails("search examples/tiny.nas -c " + cfg + " -o " + dir, "train_portion below 1");
  std::ofstream(cfg) << R"({"pnas": {"sample": 4}})";
  fails("search examples/tiny.nas -a pnas -c " + cfg + " -o " + dir,
        "pnas.sample: unknown key (did you mean samples?)");
  std::ofstream(cfg) << R"({"pnas": {"samples": "4"}})";
  fails("search examples/tiny.nas -a pnas -c " + cfg + " -o " + dir,
        "pnas.samples: expected an integer, got string");
  std::ofstream(cfg) << R"({"pnas": {"path": "greedy"}})";
  fails("search examples/tiny.nas -a pnas -c " + cfg + " -o " + dir,
        "pnas.path: expected one of sample, fair, got \"greedy\"");
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "params"}})";
  fails("search examples/tiny.nas -a pnas -c " + cfg + " -o " + dir,
        "regularizer.bound: a params regularizer needs a bound > 0");
  std::ofstream(cfg) << R"({"constraint": {"estimator": "macs", "bound": 1e5}})";
  fails("search examples/tiny.nas --data synthetic -c " + cfg + " -o " + dir,
        "constraint: unknown key (expected one of:");
  std::ofstream(cfg) << R"({"random": {"samples": 0}})";
  fails("search examples/tiny.nas -a random -c " + cfg + " -o " + dir, "random.samples");
  std::ofstream(cfg) << R"({"pnas": {"samples": 2}, "epoch": 3})";
  fails("search examples/tiny.nas -c " + cfg + " -o " + dir,
        "epoch: unknown key (did you mean epochs?)");
  fails("search examples/tiny.nas --data cifar10:/nonexistent -o " + dir, "/nonexistent");
}

// pnas and random from the command line: the run folder, their own records, and a killed
// search resumed to the same genotype (pnas: the same alphas and reward baseline).
TEST_CASE("nasc search -a pnas|random: run folder and resume", "[search][cli][resume]") {
  using namespace nas::test;
  std::string cfg = scratch_path("pnas.json");
  std::ofstream(cfg) << R"({"epochs": 3, "seed": 5, "threads": 1, "warmup_epochs": 1,
    "pnas": {"samples": 2, "path": "fair"}, "random": {"samples": 3},
    "regularizer": {"estimator": "params", "bound": 400, "weight": 0.5},
    "data": {"name": "synthetic", "synthetic_samples": 1536, "batch_size": 64}})";
  std::string whole = scratch_path("pnas_whole"), cut = scratch_path("pnas_cut");
  std::string args = "search examples/tiny.nas -a pnas -c " + cfg + " -o ";
  CliResult r = run_nasc(args + whole);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  CHECK_THAT(slurp(whole + "/metrics.jsonl"), Contains("\"reward\":"));
  CHECK_THAT(slurp(whole + "/log.txt"), Contains("(pnas)"));
  run_nasc_killed_at(args + cut, "step:30");  // 6 steps into the third epoch of 12 steps
  CHECK(count_lines(cut + "/metrics.jsonl") == 2);
  CliResult resumed =
      run_nasc("search examples/tiny.nas --resume -o " + cut);  // pnas, from config.json
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  auto a = nlohmann::json::parse(slurp(whole + "/arch.json"));
  auto b = nlohmann::json::parse(slurp(cut + "/arch.json"));
  CHECK(a["choices"] == b["choices"]);
  CHECK(a["probabilities"] == b["probabilities"]);
  // A checkpoint of one algorithm does not resume another.
  CliResult wrong = run_nasc("search examples/tiny.nas -a random --resume -o " + cut);
  CHECK(wrong.status == 1);
  CHECK_THAT(wrong.err, Contains(cut + "/config.json: algorithm: this run is a `pnas` search; "
                                       "resume it without -a (or with -a pnas)"));

  std::ofstream(cfg) << R"({"epochs": 3, "seed": 5, "threads": 1, "random": {"samples": 3},
    "data": {"name": "synthetic", "synthetic_samples": 1536, "batch_size": 64}})";
  std::string rnd = scratch_path("random"), rnd_cut = scratch_path("random_cut");
  std::string rargs = "search examples/tiny.nas -a random -c " + cfg + " -o ";
  CliResult rr = run_nasc(rargs + rnd);
  INFO(rr.err << rr.out);
  REQUIRE(rr.status == 0);
  CHECK(count_lines(rnd + "/metrics.jsonl") == 3);
  CHECK_THAT(rr.out, Contains("arch 3/3:"));
  auto best = nlohmann::json::parse(slurp(rnd + "/arch.json"));
  CHECK(best.contains("valid_acc"));
  for (const char* f :
       {"arch.svg", "report.html", "checkpoint", "samples/arch_001.json", "samples/arch_003.json"})
    CHECK(std::filesystem::exists(rnd + "/" + f));
  // Each architecture trains 3 epochs of 12 steps: step 50 is inside the second one.
  run_nasc_killed_at(rargs + rnd_cut, "step:50");
  CHECK(count_lines(rnd_cut + "/metrics.jsonl") == 1);
  CliResult rres = run_nasc("search examples/tiny.nas -a random --resume -o " + rnd_cut);
  INFO(rres.err);
  REQUIRE(rres.status == 0);
  CHECK(nlohmann::json::parse(slurp(rnd_cut + "/arch.json")) == best);
  CHECK(count_lines(rnd_cut + "/metrics.jsonl") == 3);

  // With a bound every architecture is within it (over-bound draws are redrawn), where the
  // same seed's unbounded draws are not (seed 0 draws the 738-param conv 3 times in 6).
  auto drawn_params = [&](const std::string& regularizer, const std::string& dir) {
    std::ofstream(cfg) << R"({"epochs": 1, "seed": 0, "threads": 1, "random": {"samples": 6},
      "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 64})" +
                              regularizer + "}";
    CliResult run = run_nasc("search examples/tiny.nas -a random -c " + cfg + " -o " + dir);
    INFO(run.err);
    REQUIRE(run.status == 0);
    std::vector<double> params;
    std::istringstream records(slurp(dir + "/metrics.jsonl"));
    for (std::string line; std::getline(records, line);)
      params.push_back(nlohmann::json::parse(line)["params"].get<double>());
    return params;
  };
  const std::vector<double> unbounded = drawn_params("", scratch_path("random_unbounded"));
  std::string bounded_dir = scratch_path("random_bounded");
  const std::vector<double> bounded =
      drawn_params(R"(, "regularizer": {"estimator": "params", "bound": 400})", bounded_dir);
  REQUIRE(bounded.size() == 6);
  CHECK(*std::max_element(unbounded.begin(), unbounded.end()) > 400);
  CHECK(*std::max_element(bounded.begin(), bounded.end()) <= 400);
  CHECK_THAT(slurp(bounded_dir + "/log.txt"), Contains("within the params bound 400 params"));
}

// The hardware regularizer from the command line: a latency table drives the pnas reward
// and the per-epoch latency record; bad regularizer configs and tables are refused.
TEST_CASE("nasc search: regularizer config, latency tables and bad input",
          "[search][cli][regularizer]") {
  using namespace nas::test;
  std::string lut = scratch_path("search_tiny_lut.json");
  CliResult prof = run_nasc("profile examples/tiny.nas --warmup 1 --repetitions 3 -o " + lut);
  INFO(prof.err);
  REQUIRE(prof.status == 0);
  std::string cfg = scratch_path("reg.json");
  std::ofstream(cfg) << R"({"epochs": 2, "seed": 1, "threads": 1,
    "pnas": {"samples": 2},
    "data": {"name": "synthetic", "synthetic_samples": 768, "batch_size": 64},
    "regularizer": {"estimator": "latency", "bound": 0.01, "weight": 1, "lut": ")" +
                            lut + R"("}})";
  for (const char* algorithm : {"pnas", "darts"}) {
    std::string dir = scratch_path(std::string("reg_") + algorithm);
    CliResult r = run_nasc("search examples/tiny.nas -a " + std::string(algorithm) + " -c " + cfg +
                           " -o " + dir);
    INFO(r.err << r.out);
    REQUIRE(r.status == 0);
    std::string metrics = slurp(dir + "/metrics.jsonl");
    CHECK_THAT(metrics, Contains("\"latency_ms\":"));
    CHECK_THAT(metrics, Contains("\"activation_bytes\":"));
    if (std::string(algorithm) == "darts") CHECK_THAT(metrics, Contains("\"expected_latency\":"));
    CHECK_THAT(slurp(dir + "/report.html"), Contains("latency (ms)"));
    CHECK_THAT(slurp(dir + "/config.json"),
               Contains(std::string(algorithm) == "pnas" ? "\"bound\"" : "\"linear\""));
  }

  // --lut without a regularizer: the genotype's latency is recorded, nothing steers.
  std::string plain = scratch_path("reg_lut_only");
  CliResult lut_only = run_nasc("search examples/tiny.nas --data synthetic --epochs 1 --lut " +
                                lut + " -o " + plain);
  INFO(lut_only.err);
  REQUIRE(lut_only.status == 0);
  CHECK_THAT(slurp(plain + "/metrics.jsonl"), Contains("\"latency_ms\":"));
  CHECK_THAT(slurp(plain + "/config.json"), Contains(lut));

  std::string dir = scratch_path("reg_bad");
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "latency", "bound": 2}})";
  fails("search examples/tiny.nas -c " + cfg + " -o " + dir,
        "regularizer.lut: a latency regularizer needs the latency table");
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "flops", "bound": 2}})";
  fails("search examples/tiny.nas -c " + cfg + " -o " + dir,
        "regularizer.estimator: expected one of none, params, macs, latency");
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "macs", "bound": 2, "form": "cubic"}})";
  fails("search examples/tiny.nas -c " + cfg + " -o " + dir, "regularizer.form");
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "macs", "bound": 1e5, "form": "bound"}})";
  fails("search examples/tiny.nas --data synthetic -c " + cfg + " -o " + dir,
        "darts adds the expected cost to its loss");
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "macs", "bound": 1e5, "form": "linear"}})";
  fails("search examples/tiny.nas -a pnas --data synthetic -c " + cfg + " -o " + dir,
        "pnas bounds its reward");
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "macs", "bound": 1e5, "form": "linear"}})";
  fails("search examples/tiny.nas -a random --data synthetic -c " + cfg + " -o " + dir,
        "regularizer.form: random keeps only architectures within the bound");
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "params", "bound": 1}})";
  fails("search examples/tiny.nas -a random --data synthetic -c " + cfg + " -o " + dir,
        "regularizer.bound: no architecture of 20000 random draws is within the params bound 1 "
        "params (the cheapest drawn: 162 params); raise the bound");
  std::ofstream(cfg)
      << R"({"regularizer": {"estimator": "params", "bound": 1, "form": "mul#log"}})";
  fails("search examples/tiny.nas -c " + cfg + " -o " + dir, "cannot be 1");
  // Tables: missing, corrupt, or from another space.
  std::ofstream(cfg)
      << R"({"regularizer": {"estimator": "latency", "bound": 2, "lut": "/nonexistent/lut.json"}})";
  fails("search examples/tiny.nas --data synthetic -c " + cfg + " -o " + dir,
        "/nonexistent/lut.json");
  std::string corrupt = scratch_path("corrupt_lut.json");
  std::ofstream(corrupt) << "{\"entries\": [1, 2";
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "latency", "bound": 2, "lut": ")" +
                            corrupt + R"("}})";
  fails("search examples/tiny.nas --data synthetic -c " + cfg + " -o " + dir, "corrupt_lut.json");
  std::ofstream(cfg) << R"({"regularizer": {"estimator": "latency", "bound": 2, "lut": ")" + lut +
                            R"("}})";
  fails("search examples/tiny.nas --set width=4 --data synthetic -c " + cfg + " -o " + dir,
        "was profiled for another search space or input size");
}

// The resume property for a DARTS search, as for training (test_train_cli.cpp): killed
// after any step, warm-up or search, or while writing a checkpoint, the resumed search
// ends with the same alphas, arch.json, checkpoint and metrics, byte for byte.
TEST_CASE("nasc search: killed at every step or checkpoint write, resumed bit-identically",
          "[search][cli][resume][property]") {
  using namespace nas::test;
  // 128 training samples, split per class into 70 for the weights and 60 for the alphas,
  // in batches of 16: 3 steps per epoch; one warm-up epoch, one search epoch.
  std::string cfg = scratch_path("search_small.json");
  std::ofstream(cfg) << R"({"epochs": 2, "seed": 3, "threads": 1, "warmup_epochs": 1,
    "data": {"name": "synthetic", "synthetic_samples": 128, "batch_size": 16}})";
  const std::string args = "search examples/tiny.nas -c " + cfg + " -o ";
  const std::vector<std::string> files = {"arch.json", "checkpoint"};
  const std::string whole = scratch_path("search_small_whole");
  CliResult r = run_nasc(args + whole);
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto expected = run_outcome(whole, files);
  auto resume = [&](const std::string& dir) {
    CliResult resumed = run_nasc("search examples/tiny.nas --resume -o " + dir);
    INFO(resumed.err);
    REQUIRE(resumed.status == 0);
    CHECK_FALSE(std::filesystem::exists(dir + "/checkpoint.tmp"));
    return resumed.out;
  };
  const int64_t steps = nas::load_checkpoint(whole)->global_step;
  REQUIRE(steps == 6);
  for (int step = 1; step <= steps; ++step) {
    INFO("killed after step " << step);
    std::string dir = scratch_path("search_small_step" + std::to_string(step));
    run_nasc_killed_at(args + dir, "step:" + std::to_string(step));
    const bool has_checkpoint = step > steps / 2;
    CHECK(std::filesystem::exists(dir + "/checkpoint") == has_checkpoint);
    CHECK_THAT(resume(dir), Contains(has_checkpoint ? "resuming after epoch 1"
                                                    : "no checkpoint yet: starting the run over"));
    CHECK(run_outcome(dir, files) == expected);
  }
  for (int write_number = 1; write_number <= 2; ++write_number) {
    INFO("killed while writing checkpoint " << write_number);
    std::string dir = scratch_path("search_small_write" + std::to_string(write_number));
    run_nasc_killed_at(args + dir, "checkpoint-write:" + std::to_string(write_number));
    CHECK(std::filesystem::exists(dir + "/checkpoint.tmp"));
    CHECK(std::filesystem::exists(dir + "/checkpoint") == (write_number == 2));
    resume(dir);
    CHECK(run_outcome(dir, files) == expected);
  }
}
