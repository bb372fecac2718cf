// PC-DARTS (compiler/passes/partial_channels.h): the transform on the DARTS space, its
// gradients against finite differences (weights, alpha and the edge weights beta), the
// genotype's edge-weighted ranking, the errors, the search config and the CLI. The IR-in,
// IR-out test is tests/filecheck/partial_channels.ir.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "compiler/analysis/space_stats.h"
#include "compiler/passes/genotype.h"
#include "compiler/passes/partial_channels.h"
#include "compiler/pipeline/pipeline.h"
#include "nasc/pipeline.h"
#include "runtime/exec/executor.h"
#include "runtime/search/search_config.h"
#include "tests/cli_test_util.h"
#include "tests/cpu_test_util.h"
#include "tests/gradient_check_util.h"
#include "tests/ir_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using nas::test::compile_source;

namespace {

Graph darts_fmnist() {
  Diagnostics diags;
  Compilation c =
      compile_file(std::string(NASC_SOURCE_DIR) + "/examples/darts_fmnist.nas", {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  return *c.supernet;
}

int64_t total_params(const Graph& g) {
  int64_t sum = 0;
  for (int64_t p : node_costs(g).params) sum += p;
  return sum;
}

// Two edges into a DARTS node (edge normalisation), then a strided choice (the bypass is
// pooled), on 8 channels of 6x6.
const char* kCell = R"(
network pc_cell(x: tensor[3, 6, 6]) {
  let h = conv(x, 8, kernel=3, pad=1);
  let a = choice(key="e0") {
    none: zero(h),
    conv: relu(conv(h, 8, kernel=3, pad=1)),
    pool: max_pool(h, 3, stride=1, pad=1),
    skip: identity(h),
  };
  let b = choice(key="e1") {
    none: zero(h),
    sep: conv(dwconv(relu(h), 3, pad=1), 8, kernel=1),
    avg: avg_pool(h, 3, stride=1, pad=1),
  };
  let n = sum([a, b]);
  let r = choice(key="r") {
    conv: batchnorm(conv(relu(n), 8, kernel=3, stride=2, pad=1)),
    pool: max_pool(n, 2, stride=2),
  };
  return linear(global_avg_pool(r), 5);
}
)";

// The transformed graph's gradients in full mode against central differences: weights,
// alpha and beta (check_store_gradients checks every architecture entry).
void check_transformed_gradients(const Graph& g) {
  PlanOptions o;
  o.batch = 4;
  o.training = true;
  o.arch_grads = true;
  ParamStore store;
  Executor ex(compile_plan(g, o), store, 3);
  std::mt19937 rng(11);
  for (StoredArch& a : store.arch()) {  // away from the uniform point
    std::vector<float> alpha(a.alpha.size());
    for (float& v : alpha) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    store.write(a.alpha, alpha);
  }
  const int64_t per = shape_numel(ex.plan().input_shape);
  const std::vector<float> images = test::random_floats(4 * per, rng);
  const std::vector<int32_t> labels = {0, 3, 1, 4};
  auto loss = [&] { return ex.run(images.data(), labels.data(), 4).loss_sum / 4; };
  test::check_store_gradients(store, loss, rng, 4);
}

}  // namespace

TEST_CASE("partial channels: the DARTS space on 1/4 of the channels, with edge weights",
          "[partial_channels]") {
  const Graph g = darts_fmnist();
  Diagnostics diags;
  std::optional<PartialChannelsResult> pc = partially_connect(g, {4, true}, diags);
  INFO(diags.render());
  REQUIRE(pc);
  CHECK_FALSE(diags.has_errors());
  CHECK(pc->narrowed == 45);  // every edge of the 5 cells
  CHECK(pc->kept_whole.empty());
  // One beta per intermediate node of each cell type (3 normal, 3 reduce), after the 18
  // groups of the space, which keep their places.
  REQUIRE(pc->edge_weights.size() == 6);
  CHECK(pc->edge_weights[0] == "edges:normal/n2_e0,normal/n2_e1");
  REQUIRE(pc->graph.arch.size() == g.arch.size() + 6);
  for (size_t i = 0; i < g.arch.size(); ++i) {
    const ArchGroup& before = g.arch[i];
    const ArchGroup& after = pc->graph.arch[i];
    CHECK(after.key == before.key);
    CHECK(after.candidates == before.candidates);
    REQUIRE(after.nodes.size() == before.nodes.size());
    for (size_t j = 0; j < before.nodes.size(); ++j) {  // each choice on a quarter
      const Shape& whole = g.nodes[before.nodes[j]].shape;
      const Shape& part = pc->graph.nodes[after.nodes[j]].shape;
      CHECK(part == Shape{whole[0] / 4, whole[1], whole[2]});
    }
  }
  const ArchGroup& beta = pc->graph.arch[g.arch.size() + 2];
  CHECK(beta.key == "edges:normal/n4_e0,normal/n4_e1,normal/n4_e2,normal/n4_e3");
  CHECK(beta.k == 4);
  CHECK(beta.nodes.size() == 3);  // shared by the 3 normal cells
  CHECK(pc->graph.nodes[pc->graph.output].shape == g.nodes[g.output].shape);
  // Candidates on 1/4 of the channels: convolutions keep 1/16 of their weights.
  const int64_t before = total_params(g), after = total_params(pc->graph);
  INFO("params " << before << " -> " << after);
  CHECK(after < before / 2);

  // Edge normalisation alone leaves the channels whole.
  std::optional<PartialChannelsResult> en = partially_connect(g, {1, true}, diags);
  REQUIRE(en);
  CHECK(en->narrowed == 0);
  CHECK(en->edge_weights.size() == 6);
  CHECK(total_params(en->graph) == before);
}

TEST_CASE("partial channels: weight, alpha and beta gradients against finite differences",
          "[partial_channels][grad]") {
  const Graph g = compile_source(kCell);
  for (int64_t k : {2, 4}) {
    for (bool edges : {false, true}) {
      DYNAMIC_SECTION("1/" << k << (edges ? " with edge weights" : "")) {
        Diagnostics diags;
        std::optional<PartialChannelsResult> pc = partially_connect(g, {k, edges}, diags);
        INFO(diags.render());
        REQUIRE(pc);
        CHECK(pc->narrowed == 3);
        CHECK(pc->edge_weights.size() == (edges ? 1u : 0u));
        check_transformed_gradients(pc->graph);
      }
    }
  }
}

TEST_CASE("partial channels: the genotype ranks edges by edge weight times probability",
          "[partial_channels][genotype]") {
  const Graph g = compile_source(R"(
network node3(x: tensor[4, 4, 4]) {
  let e0 = choice(key="n/e0") { none: zero(x), conv: conv(x, 4, kernel=1) };
  let e1 = choice(key="n/e1") { none: zero(x), conv: conv(x, 4, kernel=1) };
  let e2 = choice(key="n/e2") { none: zero(x), conv: conv(x, 4, kernel=1) };
  return linear(global_avg_pool(sum([e0, e1, e2])), 2);
}
)");
  const std::vector<std::vector<double>> probs = {{0.1, 0.9}, {0.2, 0.8}, {0.3, 0.7}};
  // Probabilities alone keep e0 and e1 (DARTS' 2 edges per node).
  Selection plain = derive_genotype(g, probs);
  CHECK(plain.chosen == std::vector<std::vector<int>>{{1}, {1}, {0}});
  // Edge weights 0.2, 0.3, 0.5 give strengths 0.18, 0.24, 0.35: e2 and e1.
  GenotypeOptions options;
  options.edge_weights[edge_weights_key({"n/e0", "n/e1", "n/e2"})] = {0.2, 0.3, 0.5};
  Selection weighted = derive_genotype(g, probs, options);
  CHECK(weighted.chosen == std::vector<std::vector<int>>{{0}, {1}, {1}});
  CHECK(edge_weights_key({"n/e0", "n/e1", "n/e2"}) == "edges:n/e0,n/e1,n/e2");
}

TEST_CASE("partial channels: spaces it cannot transform are located errors",
          "[partial_channels][errors]") {
  SECTION("no choice keeps its channel count") {
    const Graph g = compile_source(R"(
network widen(x: tensor[4, 4, 4]) {
  let h = choice(key="w") { a: conv(x, 8, kernel=1), b: conv(x, 8, kernel=3, pad=1) };
  return linear(global_avg_pool(h), 2);
}
)");
    Diagnostics diags;
    CHECK_FALSE(partially_connect(g, {2, false}, diags));
    CHECK_THAT(diags.render(), Contains("partial channels (1/2): no choice of `widen` qualifies"));
    CHECK_THAT(diags.render(), Contains("w: its candidates change the channels (4 to 8)"));
    // Edge normalisation alone has nothing to weigh either, but is no error.
    Diagnostics none;
    std::optional<PartialChannelsResult> en = partially_connect(g, {1, true}, none);
    REQUIRE(en);
    CHECK(en->edge_weights.empty());
  }
  SECTION("a candidate whose channel counts do not divide") {
    const Graph g = compile_source(R"(
network odd(x: tensor[4, 4, 4]) {
  let h = choice(key="e") {
    bottleneck: conv(conv(x, 3, kernel=1), 4, kernel=1),
    skip: identity(x),
  };
  return linear(global_avg_pool(h), 2);
}
)");
    Diagnostics diags;
    CHECK_FALSE(partially_connect(g, {2, false}, diags));
    CHECK_THAT(diags.render(),
               Contains("space.nas:4:22: error: partial channels: choice `e` rebuilt on 2 of its 4 "
                        "channels: `conv` cannot run on 1/2 of its channels: its out=3 is not "
                        "a multiple of 2"));
  }
  SECTION("channels that are not a multiple of k, and a candidate reading two tensors") {
    const Graph g = compile_source(R"(
network mixed(x: tensor[6, 4, 4]) {
  let y = relu(x);
  let a = choice(key="six") { c: conv(x, 6, kernel=1), s: identity(x) };
  let b = choice(key="two") { sum: x + y, s: identity(x) };
  return linear(global_avg_pool(a + b + y), 2);
}
)");
    Diagnostics diags;
    CHECK_FALSE(partially_connect(g, {4, false}, diags));
    const std::string text = diags.render();
    CHECK_THAT(text, Contains("six: its 6 channels are not a multiple of 4"));
    CHECK_THAT(text, Contains("two: its candidates read 2 tensors from outside the choice"));
  }
  SECTION("an edge-weight key the space already uses") {
    const Graph g = compile_source(R"(
network clash(x: tensor[4, 4, 4]) {
  let e0 = choice(key="n/e0") { none: zero(x), conv: conv(x, 4, kernel=1) };
  let e1 = choice(key="n/e1") { none: zero(x), conv: conv(x, 4, kernel=1) };
  let w = choice(key="edges:n/e0,n/e1") { a: relu(x), b: identity(x) };
  return linear(global_avg_pool(sum([e0, e1]) + w), 2);
}
)");
    Diagnostics diags;
    CHECK_FALSE(partially_connect(g, {1, true}, diags));
    CHECK_THAT(diags.render(), Contains("would be keyed `edges:n/e0,n/e1`, which a choice of the "
                                        "space already uses"));
  }
}

TEST_CASE("search config: darts.partial_channels and darts.edge_normalization",
          "[partial_channels][config]") {
  auto parse = [](const char* text) {
    return parse_search_config(nlohmann::json::parse(text), "s.json");
  };
  const SearchConfig d = default_search_config();
  CHECK(d.darts.partial_channels == 1);
  CHECK_FALSE(d.darts.edge_normalization);
  const SearchConfig pc = parse(R"({"darts": {"partial_channels": 4}})");
  CHECK(pc.darts.partial_channels == 4);
  CHECK(pc.darts.edge_normalization);  // PC-DARTS pairs them
  const SearchConfig alone = parse(R"({"darts": {"partial_channels": 4, "edge_normalization":
                                   false}})");
  CHECK_FALSE(alone.darts.edge_normalization);
  CHECK(parse(R"({"darts": {"edge_normalization": true}})").darts.edge_normalization);
  // The round trip keeps both.
  const SearchConfig back =
      parse_search_config(nlohmann::json::parse(search_config_to_json(alone).dump()), "");
  CHECK(back.darts.partial_channels == 4);
  CHECK_FALSE(back.darts.edge_normalization);
  CHECK_THROWS_WITH(parse(R"({"darts": {"partial_channels": 0}})"),
                    Contains("s.json: darts.partial_channels:"));
  CHECK_THROWS_WITH(parse(R"({"darts": {"partial_channels": 4096}})"),
                    Contains("s.json: darts.partial_channels:"));
  CHECK_THROWS_WITH(parse(R"({"darts": {"partial_channels": "4"}})"),
                    Contains("s.json: darts.partial_channels:"));
  CHECK_THROWS_WITH(parse(R"({"darts": {"edge_normalization": 1}})"),
                    Contains("s.json: darts.edge_normalization:"));
}

TEST_CASE("nasc search: PC-DARTS from the config, its flags and keys where they apply",
          "[partial_channels][cli]") {
  using namespace nas::test;
  const std::string cfg = scratch_path("pc_cli.json");
  std::ofstream(cfg) << R"({"epochs": 2, "seed": 1, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 32},
    "warmup_epochs": 1, "darts": {"partial_channels": 2}})";
  const std::string dir = scratch_path("pc_cli");
  CliResult r = run_nasc("search examples/darts_fmnist.nas --set C=4 -c " + cfg + " -o " + dir);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("PC-DARTS: 45 of 45 choice nodes see 1/2 of their channels; 6 "
                             "edge-weight groups (beta)"));
  const nlohmann::json arch = nlohmann::json::parse(slurp(dir + "/arch.json"));
  CHECK(arch["choices"].size() == 18);  // the space's choices only
  REQUIRE(arch["probabilities"].contains("edges:normal/n2_e0,normal/n2_e1"));
  CHECK(arch["probabilities"]["edges:normal/n2_e0,normal/n2_e1"].size() == 2);
  // The log counts the space's choices, and alpha_entropy averages over them alone: the
  // warm-up epoch leaves alpha uniform, ln 8 for 8 candidates.
  CHECK_THAT(slurp(dir + "/log.txt"), Contains("(darts): 18 choices"));
  std::istringstream records(slurp(dir + "/metrics.jsonl"));
  std::string first;
  std::getline(records, first);
  CHECK(nlohmann::json::parse(first)["alpha_entropy"].get<double>() ==
        Approx(std::log(8.0)).epsilon(1e-5));
  // The found architecture is one of the space as written.
  CliResult check =
      run_nasc("check examples/darts_fmnist.nas --set C=4 --arch " + dir + "/arch.json");
  CHECK(check.status == 0);
  std::filesystem::remove_all(dir);
  // --rerank trains its candidates as architectures of the space as written.
  CliResult rerank = run_nasc("search examples/darts_fmnist.nas --set C=4 -c " + cfg +
                              " --epochs 2 --rerank 2 -o " + dir);
  INFO(rerank.err << rerank.out);
  REQUIRE(rerank.status == 0);
  CHECK_THAT(rerank.out, Contains("rerank: kept candidate"));
  CHECK(nlohmann::json::parse(slurp(dir + "/arch.json"))["choices"].size() == 18);
  std::filesystem::remove_all(dir);

  CliResult pnas = run_nasc("search examples/tiny.nas -a pnas -c " + cfg + " -o " + dir + "_x");
  CHECK(pnas.status == 1);
  CHECK_THAT(pnas.err, Contains(cfg + ": darts.partial_channels: applies to darts and darts2"));
  std::ofstream(cfg) << R"({"data": {"name": "synthetic"}, "darts": {"partial_channels": 2}})";
  CliResult none =
      run_nasc("search examples/tiny.nas --set width=7 -c " + cfg + " -o " + dir + "_y");
  CHECK(none.status == 1);
  CHECK_THAT(none.err, Contains("no choice of `tiny` qualifies"));

  CliResult ir = run_nasc(
      "ir examples/darts_fmnist.nas --stage partial-channels "
      "--partial-channels 4 --edge-normalization");
  CHECK(ir.status == 0);
  CHECK_THAT(ir.out, Contains("key=\"edges:reduce/n4_e0,reduce/n4_e1,reduce/n4_e2,reduce/n4_e3\""));
  CHECK_THAT(run_nasc("check examples/tiny.nas --partial-channels 2").err,
             Contains("--partial-channels does not apply to `nasc check`"));
  CHECK_THAT(run_nasc("ir examples/tiny.nas --stage lower --partial-channels x").err,
             Contains("--partial-channels needs an integer in 1..1024, got \"x\""));
  CHECK_THAT(run_nasc("ir examples/tiny.nas --stage lower --partial-channels 2 --arch a.json").err,
             Contains("do not combine with --arch"));
  CHECK_THAT(run_nasc("opt tests/filecheck/partial_channels.ir --passes partial-channels").err,
             Contains("--passes partial-channels needs --partial-channels K"));
}

TEST_CASE("api: IrOptions::partial_channels and edge_normalization", "[partial_channels][api]") {
  const std::string space = std::string(NASC_SOURCE_DIR) + "/examples/darts_fmnist.nas";
  nasc::IrOptions o;
  o.stage = "partial-channels";
  o.partial_channels = 4;
  o.edge_normalization = true;
  const nasc::IrText text = nasc::stage_text(space, o);
  CHECK_THAT(text.text, Contains("key=\"edges:normal/n2_e0,normal/n2_e1\""));
  CHECK_THAT(text.text, Contains("= channel_shuffle("));
  o.partial_channels = 0;
  CHECK_THROWS_WITH(nasc::stage_text(space, o),
                    Contains("IrOptions::partial_channels: must be in 1..1024, got 0"));
  o.partial_channels = 2;
  o.stage = "lower";
  o.arch_file = "a.json";
  CHECK_THROWS_WITH(nasc::stage_text(space, o), Contains("does not combine with arch_file"));
}
