// Robust DARTS (docs/search.md#robust-darts): parameter-free candidates found by their
// estimated parameters (not their names), cells from the key prefixes, the P-DARTS cap
// on a planted genotype (exactly the weakest replaced, by their edge's best candidate with
// parameters), the DARTS+ early stop (a clean stop, recorded and resumed as finished),
// the cap inside a search, and the config's errors with their key paths.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/analysis/space_stats.h"
#include "compiler/estimate/param_free.h"
#include "compiler/ir/op_registry.h"
#include "compiler/passes/genotype.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/search/search_config.h"
#include "runtime/search/searcher.h"
#include "tests/cli_test_util.h"
#include "tests/ir_test_util.h"
#include "tests/search_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using nas::test::compile_source;
using nas::test::make_search_setup;

namespace {

// Cells "a" (two nodes, four edges, all kept), "b" (one node) and "c" (one edge with no
// candidate that has parameters), and an activation choice without a cell prefix. Two
// candidates' names lie about them: `proj_skip` is a 1x1 conv (parameters), `conv_free`
// an average pool (none).
const char* kCells = R"(
module edge(x: tensor, key: string) {
  return choice(key=key) {
    none: zero(x),
    skip: identity(x),
    pool: max_pool(x, 3, stride=1, pad=1),
    conv: conv(x, 4, kernel=3, pad=1),
    proj_skip: conv(x, 4, kernel=1),
    conv_free: avg_pool(x, 3, stride=1, pad=1),
  };
}
module free_edge(x: tensor, key: string) {
  return choice(key=key) { none: zero(x), skip: identity(x), pool: max_pool(x, 3, stride=1, pad=1) };
}
network cells(x: tensor[4, 8, 8]) {
  let a1 = sum([edge(x, "a/e0"), edge(x, "a/e1")]);
  let a2 = sum([edge(a1, "a/e2"), edge(x, "a/e3")]);
  let b = sum([edge(a2, "b/e0"), edge(a2, "b/e1")]);
  let c = sum([free_edge(b, "c/e0"), edge(b, "c/e1")]);
  let h = choice "act" { r: relu(c), s: sigmoid(c) };
  return linear(global_avg_pool(h), 3);
}
)";

// Candidate order of `edge`: none skip pool conv proj_skip conv_free.
enum Edge { kNone, kSkip, kPool, kConv, kProj, kFree };

int group(const Graph& g, const std::string& key) {
  for (size_t i = 0; i < g.arch.size(); ++i)
    if (g.arch[i].key == key) return static_cast<int>(i);
  FAIL("no choice " << key);
  return -1;
}

std::string picked(const Graph& g, const Selection& s, const std::string& key) {
  return g.arch[group(g, key)].candidates[s.chosen[group(g, key)][0]];
}

int cell(const ParamFreeCells& cells, const std::string& name) {
  for (size_t i = 0; i < cells.names.size(); ++i)
    if (cells.names[i] == name) return static_cast<int>(i);
  FAIL("no cell " << name);
  return -1;
}

// The planted probabilities: cell a picks skip (0.5), pool (0.3), conv_free (0.4) and
// conv (0.6), three of them parameter-free; cell c picks skip (0.4) on c/e0, which has
// nothing with parameters, and pool (0.5) on c/e1.
std::vector<std::vector<double>> planted(const Graph& g) {
  std::vector<std::vector<double>> p(g.arch.size());
  const std::vector<double> conv_wins = {0.05, 0.05, 0.05, 0.7, 0.1, 0.05};
  for (size_t i = 0; i < g.arch.size(); ++i)
    p[i] = g.arch[i].candidates.size() == 6 ? conv_wins : std::vector<double>{0.5, 0.5};
  p[group(g, "a/e0")] = {0.1, 0.5, 0.1, 0.1, 0.1, 0.1};
  p[group(g, "a/e1")] = {0.1, 0.05, 0.3, 0.25, 0.2, 0.1};  // pool; best with params: conv
  p[group(g, "a/e2")] = {0.05, 0.1, 0.1, 0.15, 0.2, 0.4};  // conv_free; then proj_skip
  p[group(g, "a/e3")] = {0.1, 0.1, 0.1, 0.6, 0.05, 0.05};  // conv
  p[group(g, "c/e0")] = {0.3, 0.4, 0.3};                   // skip, and no conv to turn to
  p[group(g, "c/e1")] = {0.1, 0.1, 0.5, 0.1, 0.15, 0.05};  // pool (0.5): stronger
  return p;
}

}  // namespace

TEST_CASE("param-free: candidates by their estimated parameters, cells by key prefix",
          "[robust][param_free]") {
  Graph g = compile_source(kCells);
  ParamFreeCells cells = param_free_cells(g);
  const int e0 = group(g, "a/e0");
  CHECK(cells.zero[e0] == kNone);
  CHECK(cells.param_free[e0] == std::vector<char>{0, 1, 1, 0, 0, 1});  // Zero is not counted
  CHECK(cells.param_free[group(g, "c/e0")] == std::vector<char>{0, 1, 1});
  CHECK(cells.param_free[group(g, "act")] == std::vector<char>{1, 1});
  CHECK(cells.names == std::vector<std::string>{"a", "b", "c", ""});
  CHECK(cells.cell[e0] == cell(cells, "a"));
  CHECK(cells.cell[group(g, "b/e1")] == cell(cells, "b"));
  CHECK(cells.cell[group(g, "act")] == cell(cells, ""));

  const std::vector<std::vector<double>> p = planted(g);
  Selection s = derive_genotype(g, p);
  CHECK(count_param_free(cells, s) == std::vector<int64_t>{3, 0, 2, 1});
}

TEST_CASE("param-free cap: the weakest parameter-free picks turn to their best with parameters",
          "[robust][param_free]") {
  Graph g = compile_source(kCells);
  const ParamFreeCells cells = param_free_cells(g);
  const std::vector<std::vector<double>> p = planted(g);

  // Cap 1. Cell a: pool (0.3) and conv_free (0.4) go, skip (0.5) stays. Cell c: its
  // weakest, c/e0, has nothing with parameters and keeps skip, so the stronger pool of
  // c/e1 goes instead. The activation (cell "") has one pick.
  CappedGenotype one = derive_capped_genotype(g, cells, p, 1);
  CHECK(one.param_free == std::vector<int64_t>{3, 0, 2, 1});  // counted before the cap
  CHECK(picked(g, one.selection, "a/e0") == "skip");
  CHECK(picked(g, one.selection, "a/e1") == "conv");
  CHECK(picked(g, one.selection, "a/e2") == "proj_skip");
  CHECK(picked(g, one.selection, "a/e3") == "conv");
  CHECK(picked(g, one.selection, "c/e0") == "skip");
  CHECK(picked(g, one.selection, "c/e1") == "proj_skip");
  CHECK(picked(g, one.selection, "act") == "r");
  CHECK(one.replaced == std::vector<int>{group(g, "a/e1"), group(g, "a/e2"), group(g, "c/e1")});
  CHECK(count_param_free(cells, one.selection) == std::vector<int64_t>{1, 0, 1, 1});

  // Cap 0: skip goes too (conv and proj_skip tie at 0.1: the lower index); the
  // activation has no candidate with parameters.
  CappedGenotype zero = derive_capped_genotype(g, cells, p, 0);
  CHECK(picked(g, zero.selection, "a/e0") == "conv");
  CHECK(picked(g, zero.selection, "c/e0") == "skip");
  CHECK(picked(g, zero.selection, "act") == "r");
  CHECK(count_param_free(cells, zero.selection) == std::vector<int64_t>{0, 0, 1, 1});

  // A cap the genotype keeps changes nothing; no cap (-1) neither.
  for (int64_t cap : {3, -1}) {
    CappedGenotype same = derive_capped_genotype(g, cells, p, cap);
    CHECK(same.replaced.empty());
    CHECK(same.selection.chosen == derive_genotype(g, p).chosen);
  }
}

namespace {

// A conv stem, then one node over two edges that offer only parameter-free candidates:
// every genotype has 2 parameter-free operations in cell "cell".
const char* kAllFree = R"(
module free_edge(x: tensor, key: string) {
  return choice(key=key) { none: zero(x), skip: identity(x), pool: max_pool(x, 3, stride=1, pad=1) };
}
module edge(x: tensor, key: string) {
  return choice(key=key) { none: zero(x), skip: identity(x), conv: conv(x, 4, kernel=3, pad=1) };
}
network free(x: tensor[4, 8, 8]) {
  let h = relu(conv(x, 4, kernel=3, pad=1));
  let n = sum([free_edge(h, "cell/e0"), free_edge(h, "cell/e1")]);
  let m = sum([edge(n, "top/e0"), edge(h, "top/e1")]);
  return linear(global_avg_pool(m), 4);
}
)";

SearchConfig small_search(const std::string& darts_section) {
  return parse_search_config(nlohmann::json::parse(R"({
    "epochs": 4, "warmup_epochs": 1, "seed": 3, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 512, "synthetic_classes": 4,
             "synthetic_shape": [4, 8, 8], "batch_size": 32},
    "darts": )" + darts_section + "}"),
                             "robust.json");
}

}  // namespace

TEST_CASE("darts.stop_at_param_free: the search stops after the first epoch that reaches it",
          "[robust][early_stop]") {
  using nas::test::count_lines;
  using nas::test::slurp;
  Graph g = compile_source(kAllFree);
  auto exec = std::make_shared<Graph>(execution_graph(g));
  const std::string dir = nas::test::scratch_path("robust_stop");
  std::filesystem::remove_all(dir);
  std::ostringstream out;
  SearchSummary s =
      run_search(make_search_setup(g, "darts", small_search(R"({"stop_at_param_free": 2})"), exec),
                 dir, false, out);
  INFO(out.str());
  // The warm-up epoch does not count; the first search epoch's genotype has 2.
  CHECK(s.epochs_run == 2);
  CHECK_FALSE(s.stopped);
  CHECK(s.early_stop ==
        "the genotype has 2 parameter-free operations in cell `cell` "
        "(darts.stop_at_param_free = 2)");
  CHECK_THAT(out.str(), Contains("stopping early: the genotype has 2"));
  CHECK_THAT(slurp(dir + "/log.txt"), Contains("stopping early: the genotype has 2"));
  CHECK_THAT(slurp(dir + "/log.txt"), Contains("(stopped early)"));
  REQUIRE(count_lines(dir + "/metrics.jsonl") == 2);
  std::istringstream lines(slurp(dir + "/metrics.jsonl"));
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  CHECK_FALSE(nlohmann::json::parse(first).contains("early_stop"));
  nlohmann::json rec = nlohmann::json::parse(second);
  CHECK(rec["early_stop"] == s.early_stop);
  CHECK(rec["param_free"]["cell"] == 2);
  CHECK(nlohmann::json::parse(slurp(dir + "/arch.json"))["epoch"] == 2);

  // Resumed, the run is finished: no epoch runs, and the result is the stopped one's.
  std::ostringstream again;
  SearchSummary r =
      run_search(make_search_setup(g, "darts", small_search(R"({"stop_at_param_free": 2})"), exec),
                 dir, true, again);
  CHECK(r.epochs_run == 0);
  CHECK(r.early_stop == s.early_stop);
  CHECK(r.genotype.names == s.genotype.names);
  CHECK(count_lines(dir + "/metrics.jsonl") == 2);

  // A limit the genotype never reaches runs every epoch.
  std::filesystem::remove_all(dir);
  SearchSummary all =
      run_search(make_search_setup(g, "darts", small_search(R"({"stop_at_param_free": 3})"), exec),
                 dir, false, out);
  CHECK(all.epochs_run == 4);
  CHECK(all.early_stop.empty());
  std::filesystem::remove_all(dir);
}

TEST_CASE("darts.max_param_free: the search's genotypes keep the cap", "[robust][param_free]") {
  Graph g = compile_source(kAllFree);
  auto exec = std::make_shared<Graph>(execution_graph(g));
  const std::string dir = nas::test::scratch_path("robust_cap");
  std::filesystem::remove_all(dir);
  std::ostringstream out;
  SearchSummary s =
      run_search(make_search_setup(g, "darts", small_search(R"({"max_param_free": 0})"), exec), dir,
                 false, out);
  INFO(out.str());
  // Cell "top" can turn to conv; cell "cell" has nothing with parameters.
  CHECK(s.genotype.names["top/e0"] == "conv");
  CHECK(s.genotype.names["top/e1"] == "conv");
  CHECK(s.genotype.names["cell/e0"] != "conv");
  CHECK(s.genotype.param_free["cell"] == 2);
  const nlohmann::json arch = nlohmann::json::parse(nas::test::slurp(dir + "/arch.json"));
  CHECK(arch["choices"]["top/e0"] == "conv");
  std::filesystem::remove_all(dir);
}

TEST_CASE("darts spaces: affine=false keeps the cells' batch norms plain, true gives them weights",
          "[robust][affine]") {
  auto compile = [](const char* affine) {
    Diagnostics diags;
    CompileOptions options;
    options.elaborate.overrides = {{"affine", affine}};
    Compilation c =
        compile_file(std::string(NASC_SOURCE_DIR) + "/examples/darts_fmnist.nas", options, diags);
    REQUIRE(c.supernet);
    return std::move(*c.supernet);
  };
  auto weights = [](const Graph& g) {
    return masked_sum(node_costs(g).params, std::vector<char>(g.nodes.size(), 1));
  };
  const Graph plain = compile("false"), affine = compile("true");
  CHECK(weights(plain) == 256066);  // the default, as docs/cli.md and the file's header say
  CHECK(weights(affine) == 268290);
  auto affine_norms = [](const Graph& g) {
    int count = 0;
    for (const Node& n : g.nodes) count += n.op->name == "batchnorm" && n.bool_attr("affine");
    return count;
  };
  CHECK(affine_norms(plain) == 1);  // the stem's
  CHECK(affine_norms(affine) > 1);
  // The pools' batch norms stay plain: the same candidates are parameter-free either way.
  // Normal cells: the pools and the skip; reduction edges from the inputs (stride 2):
  // the pools only (their skip is a factorized reduce); later edges: the skip too.
  const std::vector<char> pools_and_skip = {0, 1, 1, 1, 0, 0, 0, 0},
                          pools = {0, 1, 1, 0, 0, 0, 0, 0};
  for (const Graph* g : {&plain, &affine}) {
    const ParamFreeCells cells = param_free_cells(*g);
    CHECK(cells.names == std::vector<std::string>{"normal", "reduce"});
    CHECK(cells.param_free[group(*g, "normal/n2_e0")] == pools_and_skip);
    CHECK(cells.param_free[group(*g, "reduce/n2_e0")] == pools);
    CHECK(cells.param_free[group(*g, "reduce/n4_e3")] == pools_and_skip);
  }
}

TEST_CASE("search config: darts section and warmup_fraction, errors at their key paths",
          "[robust][config]") {
  auto parse = [](const char* text) {
    return parse_search_config(nlohmann::json::parse(text), "s.json");
  };
  SearchConfig d = default_search_config();
  CHECK(d.darts.max_param_free == -1);
  CHECK(d.darts.stop_at_param_free == -1);
  CHECK(d.warmup_fraction == -1);

  SearchConfig c =
      parse(R"({"epochs": 10, "warmup_fraction": 0.25, "darts": {"max_param_free": 2}})");
  CHECK(c.warmup_epochs == 2);  // floor(0.25 * 10)
  CHECK(c.darts.max_param_free == 2);
  CHECK(c.darts.stop_at_param_free == -1);
  CHECK(warmup_epochs_from_fraction(0.99, 1) == 0);
  // The round trip keeps the fraction (so that --epochs moves the warm-up with it).
  const nlohmann::json j = nlohmann::json::parse(search_config_to_json(c).dump());
  CHECK(j["warmup_fraction"] == 0.25);
  CHECK_FALSE(j.contains("warmup_epochs"));
  SearchConfig back = parse_search_config(j, "");
  CHECK(back.warmup_epochs == 2);
  CHECK(back.darts.max_param_free == 2);

  CHECK_THROWS_WITH(parse(R"({"warmup_epochs": 1, "warmup_fraction": 0.5})"),
                    Equals("s.json: warmup_fraction: give either warmup_epochs or "
                           "warmup_fraction, not both (warmup_epochs is 1)"));
  CHECK_THROWS_WITH(parse(R"({"warmup_fraction": 1})"),
                    Equals("s.json: warmup_fraction: must be below 1: the search needs epochs "
                           "after the warm-up"));
  CHECK_THROWS_WITH(parse(R"({"warmup_fraction": -0.5})"), Contains("s.json: warmup_fraction:"));
  CHECK_THROWS_WITH(parse(R"({"warmup_fraction": "half"})"),
                    Contains("s.json: warmup_fraction: expected a number"));
  CHECK_THROWS_WITH(parse(R"({"darts": {"max_param_free": -2}})"),
                    Contains("s.json: darts.max_param_free:"));
  CHECK_THROWS_WITH(parse(R"({"darts": {"stop_at_param_free": 0}})"),
                    Contains("s.json: darts.stop_at_param_free: 0 would stop"));
  CHECK_THROWS_WITH(parse(R"({"darts": {"max_skip": 2}})"),
                    Contains("s.json: darts.max_skip: unknown key"));
  CHECK_THROWS_WITH(parse(R"({"darts": 2})"), Contains("s.json: darts:"));
}

TEST_CASE("nasc search: warmup_fraction follows --epochs, darts.* only for darts",
          "[robust][cli]") {
  using namespace nas::test;
  const std::string cfg = scratch_path("robust_cli.json");
  std::ofstream(cfg) << R"({"epochs": 4, "warmup_fraction": 0.5, "seed": 1, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 512, "batch_size": 64}})";
  const std::string dir = scratch_path("robust_cli");
  std::filesystem::remove_all(dir);
  CliResult r = run_nasc("search examples/tiny.nas -c " + cfg + " --epochs 2 -o " + dir);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  // floor(0.5 * 2) = 1 warm-up epoch of 2.
  const std::string metrics = slurp(dir + "/metrics.jsonl");
  CHECK_THAT(metrics, Contains("\"phase\":\"warmup\""));
  CHECK_THAT(metrics, Contains("\"phase\":\"search\""));
  CHECK(count_lines(dir + "/metrics.jsonl") == 2);
  CHECK(nlohmann::json::parse(slurp(dir + "/config.json"))["warmup_fraction"] == 0.5);

  std::ofstream(cfg) << R"({"darts": {"max_param_free": 1}})";
  CliResult pnas = run_nasc("search examples/tiny.nas -a pnas -c " + cfg + " -o " + dir + "_x");
  CHECK(pnas.status == 1);
  CHECK_THAT(pnas.err, Contains(cfg + ": darts.max_param_free: applies to darts and darts2"));
  std::filesystem::remove_all(dir);
}
