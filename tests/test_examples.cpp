// The example search spaces (examples/*.nas) and the standard library (stdlib/*.nas):
// every example compiles without a diagnostic, and parameter and MAC counts match
// numbers computed independently of nasc (torchvision's MobileNetV2, the DARTS
// supernet as PyTorch builds it in bench/peers/darts_step_torch.py, and hand counts for
// the small examples).
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compiler/analysis/space_stats.h"
#include "compiler/ir/op_registry.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/train/tensor_file.h"
#include "tests/cli_test_util.h"

namespace nas {
namespace {

std::string example_path(const std::string& name) {
  return std::string(NASC_SOURCE_DIR) + "/examples/" + name;
}

Graph compile_example(const std::string& name, const CompileOptions& options = {}) {
  Diagnostics diags;
  Compilation c = compile_file(example_path(name), options, diags);
  INFO(name << ":\n" << diags.render());
  REQUIRE(diags.all().empty());
  REQUIRE(c.supernet);
  return *c.supernet;
}

Graph compile_source(const std::string& text) {
  Diagnostics diags;
  Compilation c = compile_text("t.nas", text, CompileOptions{}, diags);
  INFO(diags.render());
  REQUIRE(diags.all().empty());
  REQUIRE(c.supernet);
  return *c.supernet;
}

int64_t params_of(const Graph& g) {
  return space_stats(g).supernet_params;
}

int count_ops(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op->name == op;
  return n;
}

// The fixed network of an arch file's text; fails the test on any diagnostic.
Graph derive(const Graph& g, const std::string& arch_json) {
  Diagnostics diags;
  std::optional<Selection> sel = parse_arch(g, "arch.json", arch_json, diags);
  INFO(diags.render());
  REQUIRE(sel);
  REQUIRE(diags.all().empty());
  return specialise(g, *sel);
}

// A selection that picks, in every group, the candidate `pick(group)` names.
template <typename Pick>
Selection select_by_name(const Graph& g, Pick pick) {
  Selection sel;
  for (const ArchGroup& group : g.arch) {
    std::string name = pick(group);
    auto it = std::find(group.candidates.begin(), group.candidates.end(), name);
    INFO("group " << group.key << " has no candidate " << name);
    REQUIRE(it != group.candidates.end());
    sel.chosen.push_back({static_cast<int>(it - group.candidates.begin())});
  }
  return sel;
}

const std::vector<std::string> kDartsPrimitives = {"none",         "max_pool_3x3", "avg_pool_3x3",
                                                   "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                                                   "dil_conv_3x3", "dil_conv_5x5"};

// DARTS_V2 (Liu et al. 2019, genotypes.py): two inputs per node, the other edges none.
const std::map<std::string, std::string> kDartsV2 = {
    {"normal/n2_e0", "sep_conv_3x3"}, {"normal/n2_e1", "sep_conv_3x3"},
    {"normal/n3_e0", "sep_conv_3x3"}, {"normal/n3_e1", "sep_conv_3x3"},
    {"normal/n4_e1", "sep_conv_3x3"}, {"normal/n4_e0", "skip_connect"},
    {"normal/n5_e0", "skip_connect"}, {"normal/n5_e2", "dil_conv_3x3"},
    {"reduce/n2_e0", "max_pool_3x3"}, {"reduce/n2_e1", "max_pool_3x3"},
    {"reduce/n3_e2", "skip_connect"}, {"reduce/n3_e1", "max_pool_3x3"},
    {"reduce/n4_e0", "max_pool_3x3"}, {"reduce/n4_e2", "skip_connect"},
    {"reduce/n5_e2", "skip_connect"}, {"reduce/n5_e1", "max_pool_3x3"}};

// The arch file of DARTS_V2 for a network with darts.nas' keys: `none` on every key the
// genotype does not list.
std::string darts_v2_arch(const Graph& g) {
  std::string json = R"({"network": "darts", "choices": {)";
  bool first = true;
  for (const ArchGroup& group : g.arch) {
    auto it = kDartsV2.find(group.key);
    json += std::string(first ? "" : ", ") + "\"" + group.key + "\": \"" +
            (it == kDartsV2.end() ? "none" : it->second) + "\"";
    first = false;
  }
  return json + "}}";
}

// DARTS_V2's operations in one cell of `kind` ("normal" or "reduce") that are not an
// identity: a skip_connect is one at stride 1, i.e. everywhere but on a reduction cell's
// edges from its two inputs (e0, e1), where it is a factorized_reduce.
int darts_v2_non_identity_ops(const std::string& kind) {
  int n = 0;
  for (const auto& [key, op] : kDartsV2) {
    if (key.rfind(kind + "/", 0) != 0) continue;
    const std::string edge = key.substr(key.size() - 3);
    const bool strided = kind == "reduce" && (edge == "_e0" || edge == "_e1");
    n += op != "skip_connect" || strided;
  }
  return n;
}

// Batch norms that read a max_pool or avg_pool directly.
int batchnorms_after_pools(const Graph& g) {
  int n = 0;
  for (const Node& node : g.nodes)
    if (node.op->name == "batchnorm") {
      const std::string& in = g.nodes[node.inputs[0]].op->name;
      n += in == "max_pool" || in == "avg_pool";
    }
  return n;
}

// The 1-based number of the first line of `path` that contains `text` (0 if none).
int line_of(const std::string& path, const std::string& text) {
  std::ifstream in(path);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find(text) != std::string::npos) return n;
  return 0;
}

CompileOptions with_params(std::vector<std::pair<std::string, std::string>> params) {
  CompileOptions o;
  o.elaborate.overrides = std::move(params);
  return o;
}

}  // namespace

TEST_CASE("every example compiles without diagnostics", "[examples]") {
  std::set<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(example_path("")))
    if (entry.path().extension() == ".nas") found.insert(entry.path().filename().string());
  for (const char* name : {"tiny.nas", "zero_join.nas", "darts.nas", "darts_fmnist.nas",
                           "mobilenet.nas", "mobilenet_v2.nas", "zoph.nas", "random_wired.nas",
                           "mobilenet_v3_fmnist.nas", "convnet_fmnist.nas"})
    CHECK(found.count(name) == 1);
  for (const std::string& name : found) {
    Graph g = compile_example(name);
    CHECK(g.output >= 0);
    CHECK(params_of(g) > 0);
  }
}

TEST_CASE("tiny: mixed op over conv, max-pool and identity", "[examples]") {
  Graph g = compile_example("tiny.nas");
  REQUIRE(g.arch.size() == 1);
  CHECK(g.arch[0].key == "op");
  CHECK(g.arch[0].candidates == StringList{"conv", "max_pool", "identity"});
  SpaceStats s = space_stats(g);
  // stem conv 1->8 3x3: 72; candidate conv 8->8 3x3: 576; linear 8->10 with bias: 90.
  CHECK(s.supernet_params == 72 + 576 + 90);
  CHECK(s.extremes_exact);
  CHECK(s.largest.params == 72 + 576 + 90);
  CHECK(s.smallest.params == 72 + 90);
}

TEST_CASE("zero_join: selecting zero prunes conv1 and conv2", "[examples]") {
  Graph g = compile_example("zero_join.nas");
  REQUIRE(g.arch.size() == 1);
  CHECK(count_ops(g, "conv") == 3);

  Graph zero = derive(g, R"({"choices": {"edge": "zero"}})");
  CHECK(count_ops(zero, "conv") == 1);  // conv3 only
  CHECK(count_ops(zero, "choice") == 0);
  CHECK(params_of(zero) == 8 * 8 * 9);

  Graph conv2 = derive(g, R"({"choices": {"edge": "conv2"}})");
  CHECK(count_ops(conv2, "conv") == 3);
  CHECK(count_ops(conv2, "zero") == 0);
  CHECK(params_of(conv2) == 3 * 8 * 9 + 2 * 8 * 8 * 9);
}

TEST_CASE("darts: the DARTS supernet of bench/peers/darts_step_torch.py", "[examples][darts]") {
  Graph g = compile_example("darts.nas");
  SpaceStats s = space_stats(g);
  CHECK(s.supernet_params == 1930618);  // weights of darts_step_torch.Supernet() (alphas aside)
  REQUIRE(g.arch.size() == 28);
  std::set<std::string> keys;
  for (const ArchGroup& group : g.arch) {
    keys.insert(group.key);
    CHECK(group.candidates == kDartsPrimitives);
    CHECK(group.k == 1);
    // 8 cells: 6 normal, 2 reduction; every cell uses each key of its type once.
    CHECK(group.nodes.size() == (group.key.rfind("normal/", 0) == 0 ? 6u : 2u));
  }
  for (const char* kind : {"normal", "reduce"})
    for (int node = 2; node < 6; ++node)
      for (int j = 0; j < node; ++j)
        CHECK(keys.count(std::string(kind) + "/n" + std::to_string(node) + "_e" +
                         std::to_string(j)) == 1);
  REQUIRE(g.nodes[g.output].shape == Shape{10});
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.nodes[g.inputs[0]].shape == Shape{3, 32, 32});

  // Every edge sep_conv_5x5: the largest sub-network (counted by hand from darts_step_torch.py).
  CHECK(params_of(specialise(
            g, select_by_name(g, [](const ArchGroup&) { return "sep_conv_5x5"; }))) == 767866);
  // Every edge `none`: everything is cut but the classifier (256 -> 10).
  CHECK(params_of(specialise(g, select_by_name(g, [](const ArchGroup&) { return "none"; }))) ==
        256 * 10 + 10);
}

TEST_CASE("darts: a genotype is an arch file with `none` on the dropped edges",
          "[examples][darts]") {
  Graph g = compile_example("darts.nas");
  Graph fixed = derive(g, darts_v2_arch(g));
  CHECK(count_ops(fixed, "choice") == 0);
  CHECK(count_ops(fixed, "zero") == 0);
  // Per normal cell: 5 sep_conv_3x3 (2 depthwise convs each) + 1 dil_conv_3x3.
  CHECK(count_ops(fixed, "dwconv") == 6 * 11);
  CHECK(count_ops(fixed, "max_pool") == 2 * 5);
  // The search network (affine=false) with these ops, counted by hand from darts_step_torch.py.
  CHECK(params_of(fixed) == 239898);
  // model_search.py's MixedOp: a plain batch norm after every pool; no drop path.
  CHECK(batchnorms_after_pools(fixed) == 2 * 5);
  CHECK(count_ops(fixed, "drop_path") == 0);
}

TEST_CASE("darts_fmnist: the small DARTS space for Fashion-MNIST", "[examples][darts]") {
  Graph g = compile_example("darts_fmnist.nas");
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.nodes[g.inputs[0]].shape == Shape{1, 28, 28});
  CHECK(g.arch.size() == 18);  // 3 nodes: 2 + 3 + 4 = 9 edges per cell type
  for (const ArchGroup& group : g.arch) CHECK(group.candidates == kDartsPrimitives);
  // darts_step_torch.Supernet(c=8, cells=5, nodes=3, in_channels=1): the same weights.
  CHECK(params_of(g) == 256066);
}

TEST_CASE("darts: evaluation=true is DARTS' evaluation network of a searched genotype",
          "[examples][darts]") {
  // The genotype as a search on the search network writes it: its keys are the search's.
  const Graph search = compile_example("darts.nas");
  const std::string arch = darts_v2_arch(search);
  const Graph net = compile_example(
      "darts.nas", with_params({{"C", "36"}, {"layers", "20"}, {"evaluation", "true"}}));
  REQUIRE(net.arch.size() == search.arch.size());
  for (size_t i = 0; i < net.arch.size(); ++i) {
    CHECK(net.arch[i].key == search.arch[i].key);
    CHECK(net.arch[i].candidates == search.arch[i].candidates);
  }
  Graph fixed = derive(net, arch);
  // NetworkCIFAR(36, 10, 20, auxiliary=False, DARTS_V2) of DARTS' model.py: the reference
  // count (its pools have no batch norm, the search network's had one without weights).
  CHECK(params_of(fixed) == 3349342);
  for (const Node& n : fixed.nodes)
    if (n.op->name == "batchnorm") CHECK(n.bool_attr("affine"));
  CHECK(count_ops(fixed, "max_pool") == 2 * 5);
  CHECK(batchnorms_after_pools(fixed) == 0);
  // drop_path on every chosen op but an identity, with the run's probability: 18 normal
  // cells of 6 such ops and 2 reduction cells of 5, 118 in all.
  CHECK(darts_v2_non_identity_ops("normal") == 6);
  CHECK(darts_v2_non_identity_ops("reduce") == 5);
  CHECK(count_ops(fixed, "drop_path") == 18 * 6 + 2 * 5);
  for (const Node& n : fixed.nodes)
    if (n.op->name == "drop_path") {
      CHECK(n.float_attr("p") == -1.0);
      CHECK(fixed.nodes[n.inputs[0]].op->name != "identity");
    }
  CHECK(count_ops(fixed, "aux_loss") == 0);

  // The search network at the same size keeps its pools' batch norms and drops nothing.
  Graph same_size =
      derive(compile_example("darts.nas", with_params({{"C", "36"}, {"layers", "20"}})), arch);
  CHECK(batchnorms_after_pools(same_size) == 2 * 5);
  CHECK(count_ops(same_size, "drop_path") == 0);

  // auxiliary=true: AuxiliaryHeadCIFAR(576, 10) on the output of cell 2*20/3 = 13, the
  // second reduction cell (4 * 144 = 576 channels, 8x8). Its weights: conv 1x1 576 -> 128
  // without bias (73,728), batch norm 128 (256), conv 2x2 128 -> 768 without bias
  // (393,216), batch norm 768 (1,536), linear 768 -> 10 (7,690): 476,426.
  Graph aux = derive(compile_example("darts.nas", with_params({{"C", "36"},
                                                               {"layers", "20"},
                                                               {"evaluation", "true"},
                                                               {"auxiliary", "true"}})),
                     arch);
  const int64_t head = 576 * 128 + 2 * 128 + 128 * 768 * 2 * 2 + 2 * 768 + 768 * 10 + 10;
  CHECK(head == 476426);
  CHECK(params_of(aux) == 3349342 + head);
  REQUIRE(count_ops(aux, "aux_loss") == 1);
  for (const Node& n : aux.nodes) {
    if (n.op->name == "aux_loss") {
      CHECK(n.float_attr("weight") == Approx(0.4));
      const Node& features = aux.nodes[n.inputs[0]];
      CHECK(features.name == "darts/darts_cell_13/concat");
      CHECK(features.shape == Shape{576, 8, 8});
      CHECK(aux.nodes[n.inputs[1]].shape == Shape{10});
    }
    if (n.op->name == "avg_pool" && n.name.find("darts_aux_head") != std::string::npos) {
      CHECK(n.int_attr("kernel") == 5);
      CHECK(n.int_attr("stride") == 3);
      CHECK(n.int_attr("pad") == 0);
      CHECK_FALSE(n.bool_attr("count_include_pad"));
      CHECK(n.shape == Shape{576, 2, 2});
    }
  }
}

TEST_CASE("darts_fmnist: the evaluation network and its auxiliary head on 7x7 features",
          "[examples][darts]") {
  const Graph search = compile_example("darts_fmnist.nas");
  const Graph affine = compile_example("darts_fmnist.nas", with_params({{"affine", "true"}}));
  const Graph net = compile_example("darts_fmnist.nas", with_params({{"evaluation", "true"}}));
  const Graph aux = compile_example("darts_fmnist.nas",
                                    with_params({{"evaluation", "true"}, {"auxiliary", "true"}}));
  for (const Graph* g : {&net, &aux}) {
    REQUIRE(g->arch.size() == search.arch.size());
    for (size_t i = 0; i < g->arch.size(); ++i) {
      CHECK(g->arch[i].key == search.arch[i].key);
      CHECK(g->arch[i].candidates == search.arch[i].candidates);
    }
  }
  CHECK(params_of(search) == 256066);  // unchanged by the new parameters' defaults
  CHECK(count_ops(search, "drop_path") == 0);
  CHECK(params_of(net) == params_of(affine));
  CHECK(batchnorms_after_pools(net) == 0);
  CHECK(batchnorms_after_pools(search) ==
        count_ops(search, "max_pool") + count_ops(search, "avg_pool"));
  // Every candidate but `none` and a stride-1 skip: 6 per edge, 7 on a reduction cell's 6
  // edges from its inputs (skip_connect is a factorized_reduce there). 3 normal cells and
  // 2 reduction cells of 9 edges.
  CHECK(count_ops(net, "drop_path") == 3 * 9 * 6 + 2 * (6 * 7 + 3 * 6));
  // The head reads cell 2*5/3 = 3, the second reduction cell: 3 * 32 = 96 channels at 7x7,
  // pooled 5x5 with stride 2 to 2x2. Weights as in AuxiliaryHeadCIFAR(96, 10).
  CHECK(params_of(aux) ==
        params_of(net) + 96 * 128 + 2 * 128 + 128 * 768 * 2 * 2 + 2 * 768 + 768 * 10 + 10);
  REQUIRE(count_ops(aux, "aux_loss") == 1);
  for (const Node& n : aux.nodes) {
    if (n.op->name == "aux_loss") {
      CHECK(aux.nodes[n.inputs[0]].name == "darts_fmnist/darts_cell_3/concat");
      CHECK(aux.nodes[n.inputs[0]].shape == Shape{96, 7, 7});
    }
    if (n.op->name == "avg_pool" && n.name.find("darts_aux_head") != std::string::npos) {
      CHECK(n.int_attr("stride") == 2);
      CHECK(n.shape == Shape{96, 2, 2});
    }
  }
}

TEST_CASE("darts: auxiliary=true without evaluation=true is an error at the assert",
          "[examples][darts][diagnostics]") {
  for (const char* name : {"darts.nas", "darts_fmnist.nas"}) {
    INFO(name);
    Diagnostics diags;
    compile_file(example_path(name), with_params({{"auxiliary", "true"}}), diags);
    REQUIRE(diags.all().size() == 1);
    const Diagnostic& d = diags.all()[0];
    CHECK(d.message ==
          "assertion failed: auxiliary=true is the evaluation network's head: set "
          "evaluation=true too");
    CHECK(d.loc.line == line_of(example_path(name), "assert evaluation or not auxiliary"));
    CHECK(d.loc.col == 3);
  }
}

TEST_CASE("nasc train: darts_fmnist's evaluation network with drop path and the auxiliary head",
          "[examples][darts][train][cli]") {
  // A genotype with every kind of kept op: pools, skips at stride 1 and 2, convolutions.
  const std::string arch = test::scratch_path("eval_arch.json");
  std::ofstream(arch) << R"({"network": "darts_fmnist", "choices": {
    "normal/n2_e0": "sep_conv_3x3", "normal/n2_e1": "skip_connect", "normal/n3_e0": "none",
    "normal/n3_e1": "max_pool_3x3", "normal/n3_e2": "dil_conv_3x3", "normal/n4_e0": "avg_pool_3x3",
    "normal/n4_e1": "none", "normal/n4_e2": "none", "normal/n4_e3": "skip_connect",
    "reduce/n2_e0": "skip_connect", "reduce/n2_e1": "max_pool_3x3", "reduce/n3_e0": "none",
    "reduce/n3_e1": "sep_conv_3x3", "reduce/n3_e2": "skip_connect", "reduce/n4_e0": "avg_pool_3x3",
    "reduce/n4_e1": "none", "reduce/n4_e2": "none", "reduce/n4_e3": "dil_conv_3x3"}})";
  const std::string cfg = test::scratch_path("eval_cfg.json");
  std::ofstream(cfg) << R"({"epochs": 2, "seed": 3, "threads": 1, "drop_path_prob": 0.2,
    "data": {"name": "synthetic", "synthetic_samples": 64, "batch_size": 16}})";
  const std::string dir = test::scratch_path("eval_run");
  test::CliResult r =
      test::run_nasc("train examples/darts_fmnist.nas --arch " + arch +
                     " --set evaluation=true --set auxiliary=true -c " + cfg + " -o " + dir);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  // The schedule reached the cells' drop_path(x): 0.2 * epoch / 2.
  std::ifstream metrics(dir + "/metrics.jsonl");
  std::vector<double> probs;
  for (std::string line; std::getline(metrics, line);)
    probs.push_back(nlohmann::json::parse(line).at("drop_path_prob"));
  REQUIRE(probs.size() == 2);
  CHECK(probs[0] == 0.0);
  CHECK(probs[1] == Approx(0.1));
  // The head was trained and saved with the network.
  const nas::TensorFile weights = nas::read_tensor_file(dir + "/weights");
  const nas::NamedTensor* head = weights.find("darts_fmnist/darts_aux_head/conv_1.weight");
  REQUIRE(head != nullptr);
  CHECK(head->shape == std::vector<int64_t>{768, 128, 2, 2});

  // The search network of the same genotype has no drop_path(x): the schedule is refused.
  const std::string refused = test::scratch_path("eval_refused");
  test::CliResult bad = test::run_nasc("train examples/darts_fmnist.nas --arch " + arch + " -c " +
                                       cfg + " -o " + refused);
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains(cfg + ": drop_path_prob: the network has no drop_path(x)"));
}

TEST_CASE("mobilenet_v2: torchvision's MobileNetV2", "[examples][mobilenet]") {
  Graph g = compile_example("mobilenet_v2.nas");
  CHECK(g.arch.empty());
  SpaceStats s = space_stats(g);
  CHECK(s.supernet_params == 3504872);  // torchvision.models.mobilenet_v2()
  // Multiply-adds of the convolutions and the classifier at 224x224 (~300M, as published).
  CHECK(s.supernet_macs == 300774272);
  CHECK(count_ops(g, "add") == 10);  // residual blocks: 1 + 2 + 3 + 2 + 2 (of 17 blocks)
  CHECK(count_ops(g, "dwconv") == 17);
}

TEST_CASE("mobilenet: one choice per searchable layer, skip only where legal",
          "[examples][mobilenet]") {
  Graph g = compile_example("mobilenet.nas");
  const std::vector<std::pair<int, int>> stages = {{0, 4}, {1, 4}, {2, 4},
                                                   {3, 4}, {4, 4}, {5, 1}};  // (row, n)
  const StringList blocks = {"mb3_k3", "mb3_k5", "mb3_k7", "mb6_k3", "mb6_k5", "mb6_k7"};
  size_t expected_groups = 0;
  for (auto [row, n] : stages) {
    for (int i = 0; i < n; ++i) {
      std::string key = "stage" + std::to_string(row) + "/layer" + std::to_string(i);
      const ArchGroup* group = g.find_group(key);
      INFO(key);
      REQUIRE(group);
      CHECK(group->nodes.size() == 1);
      StringList want = blocks;
      if (i > 0) want.push_back("skip");  // stride 1 and same width: depth can shrink
      CHECK(group->candidates == want);
      ++expected_groups;
    }
  }
  CHECK(g.arch.size() == expected_groups);

  // Extremes counted independently: all skip (first layers MB3 3x3), all MB6 7x7.
  Graph smallest =
      specialise(g, select_by_name(g, [](const ArchGroup& group) {
                   return group.key.find("/layer0") != std::string::npos ? "mb3_k3" : "skip";
                 }));
  CHECK(params_of(smallest) == 793490);
  CHECK(count_ops(smallest, "dwconv") == 1 + 6);  // the fixed block + one per stage
  Graph largest = specialise(g, select_by_name(g, [](const ArchGroup&) { return "mb6_k7"; }));
  CHECK(params_of(largest) == 3072266);
  CHECK(space_stats(largest).supernet_macs == 10720832);
}

TEST_CASE("mobilenet_v3_fmnist: kernels, expansions and squeeze-and-excitation per layer",
          "[examples][mobilenet]") {
  Graph g = compile_example("mobilenet_v3_fmnist.nas");
  CHECK(g.nodes[g.inputs[0]].shape == Shape{1, 28, 28});
  const StringList blocks = {"k3_e3", "k3_e3_se", "k3_e6", "k3_e6_se",
                             "k5_e3", "k5_e3_se", "k5_e6", "k5_e6_se"};
  REQUIRE(g.arch.size() == 7);  // stages of 1, 2, 2, 2 layers
  for (const ArchGroup& group : g.arch) {
    INFO(group.key);
    StringList want = blocks;
    if (group.key.find("/layer0") == std::string::npos) want.push_back("skip");
    CHECK(group.candidates == want);
  }
  // Every layer with squeeze-and-excitation: one per-channel mul (x * gate) per layer.
  Graph se = specialise(g, select_by_name(g, [](const ArchGroup&) { return "k3_e3_se"; }));
  CHECK(count_ops(se, "mul") == 7);
  CHECK(count_ops(se, "hard_sigmoid") == 7);
  for (const Node& n : se.nodes)
    if (n.op->name == "mul") {
      REQUIRE(n.inputs.size() == 2);
      CHECK(se.nodes[n.inputs[1]].shape == Shape{n.shape[0]});
    }
  // The stages' activations: relu, relu, silu, hard_swish (and the stem's and head's).
  CHECK(count_ops(se, "silu") == 2 * 2);  // expansion and depthwise, 2 layers
  Graph plain = specialise(g, select_by_name(g, [](const ArchGroup&) { return "k3_e3"; }));
  CHECK(count_ops(plain, "mul") == 0);
  CHECK(params_of(se) > params_of(plain));
}

TEST_CASE("convnet_fmnist: searched plain, dilated and residual 3x3/5x5 layers",
          "[examples][convnet]") {
  Graph g = compile_example("convnet_fmnist.nas");
  REQUIRE(g.arch.size() == 9);  // 3 stages of 3 slots
  for (const ArchGroup& group : g.arch) {
    INFO(group.key);
    CHECK(group.candidates == StringList{"conv3", "conv5", "dil3", "res3", "skip"});
  }
  CHECK(g.arch[4].key == "stage1/layer1");
  // Every slot skipped: stem conv 1->32 (288) + BN (64), the stride-2 convs 32->64 (18,432
  // + 128) and 64->128 (73,728 + 256), the classifier 128->10 (1,290).
  const int64_t fixed = 288 + 64 + 18432 + 128 + 73728 + 256 + 1290;
  Graph skipped = specialise(g, select_by_name(g, [](const ArchGroup&) { return "skip"; }));
  CHECK(params_of(skipped) == fixed);
  CHECK(space_stats(g).smallest.params == fixed);
  // The network docs/results.md's run A found: 7 convolutions of 9c^2 + 2c params and
  // 7,225,344 MACs each (28x28x32, 14x14x64 and 7x7x128 outputs of 3x3 kernels).
  Graph found = derive(g, R"({"choices": {
      "stage0/layer0": "conv3", "stage0/layer1": "conv3", "stage0/layer2": "skip",
      "stage1/layer0": "dil3", "stage1/layer1": "skip", "stage1/layer2": "conv3",
      "stage2/layer0": "dil3", "stage2/layer1": "dil3", "stage2/layer2": "conv3"}})");
  CHECK(params_of(found) ==
        fixed + 2 * (9 * 32 * 32 + 64) + 2 * (9 * 64 * 64 + 128) + 3 * (9 * 128 * 128 + 256));
  CHECK(params_of(found) == 629866);
  const int64_t fixed_macs = 784 * 288 + 196 * 18432 + 49 * 73728 + 1280;
  CHECK(space_stats(found).supernet_macs == fixed_macs + 7 * 7225344);
  // A residual block per slot: two convolutions and one add each.
  Graph res = specialise(g, select_by_name(g, [](const ArchGroup&) { return "res3"; }));
  CHECK(count_ops(res, "conv") == 3 + 2 * 9);
  CHECK(count_ops(res, "add") == 9);
  CHECK(params_of(res) == fixed + 3 * 2 * (9 * 32 * 32 + 64) + 3 * 2 * (9 * 64 * 64 + 128) +
                              3 * 2 * (9 * 128 * 128 + 256));
}

TEST_CASE("zoph: choice blocks join 2 earlier states and choose an op", "[examples][zoph]") {
  Graph g = compile_example("zoph.nas");
  int ops = 0, joins = 0;
  for (const ArchGroup& group : g.arch) {
    if (group.key.size() > 3 && group.key.compare(group.key.size() - 3, 3, "/op") == 0) {
      ++ops;
      CHECK(group.k == 1);
      CHECK(group.candidates.size() == 8);
      CHECK(group.candidates.back() == "zero");
    } else {
      ++joins;
      CHECK(group.k == 2);
    }
  }
  CHECK(ops == 3 * 4);    // 3 cells of 4 blocks
  CHECK(joins == 3 * 3);  // block 0 of a cell reads both inputs without a choice
  const ArchGroup* last = g.find_group("cell2/block3/inputs");
  REQUIRE(last);
  CHECK(last->candidates == StringList{"s0", "s1", "s2", "s3", "s4"});
  // The head reads the last cell's concatenation: (2 inputs + 4 blocks) x 128 channels.
  const Node& out = g.nodes[g.output];
  REQUIRE(out.op->name == "linear");
  CHECK(g.nodes[out.inputs[0]].shape == Shape{6 * 128});
}

TEST_CASE("random_wired: the graph comes from the seed", "[examples][random_wired]") {
  auto signature = [](const Graph& g) {
    std::string s;
    for (const Node& n : g.nodes) {
      s += n.op->name + "(";
      for (int i : n.inputs) s += std::to_string(i) + ",";
      s += ");";
    }
    return s;
  };
  Graph one = compile_example("random_wired.nas");
  CHECK(one.arch.empty());
  CHECK(signature(compile_example("random_wired.nas")) == signature(one));  // deterministic
  CompileOptions seed2;
  seed2.elaborate.overrides = {{"seed", "2"}};
  Graph two = compile_example("random_wired.nas", seed2);
  CHECK(signature(two) != signature(one));
  CHECK(count_ops(one, "add") > 0);
  // 3 stages of 12 nodes, one separable convolution (depthwise + 1x1) per node.
  CHECK(count_ops(one, "dwconv") == 36);
  CHECK(count_ops(two, "dwconv") == 36);
}

TEST_CASE("stdlib blocks: shapes and parameter counts", "[stdlib]") {
  SECTION("mbconv: expansion 1 has no expansion conv; residual only when legal") {
    Graph g = compile_source(R"(
import "ops.nas";
network n(x: tensor[16, 8, 8]) {
  let a = mbconv(x, 16, expansion=1, kernel=3);
  let b = mbconv(a, 16, expansion=6, kernel=5);
  return mbconv(b, 24, expansion=6, kernel=3, stride=2);
})");
    CHECK(count_ops(g, "add") == 2);  // a and b; the last changes stride and width
    CHECK(count_ops(g, "conv") == 1 + 2 + 2);
    CHECK(g.nodes[g.output].shape == Shape{24, 4, 4});
    int64_t a = 16 * 9 + 2 * 16 + 16 * 16 + 2 * 16;
    int64_t b = 16 * 96 + 2 * 96 + 96 * 25 + 2 * 96 + 96 * 16 + 2 * 16;
    int64_t c = 16 * 96 + 2 * 96 + 96 * 9 + 2 * 96 + 96 * 24 + 2 * 24;
    CHECK(params_of(g) == a + b + c);
  }
  SECTION("se: a per-channel gate from a bottleneck of linear layers") {
    Graph g = compile_source(R"(
import "ops.nas";
network n(x: tensor[16, 8, 8]) {
  return se(x, reduction=4);
})");
    CHECK(g.nodes[g.output].shape == Shape{16, 8, 8});
    const Node& out = g.nodes[g.output];
    CHECK(out.op->name == "mul");
    REQUIRE(out.inputs.size() == 2);
    CHECK(g.nodes[out.inputs[1]].op->name == "sigmoid");
    CHECK(g.nodes[out.inputs[1]].shape == Shape{16});
    CHECK(params_of(g) == (16 * 4 + 4) + (4 * 16 + 16));
    Diagnostics diags;
    compile_text(
        "t.nas",
        "import \"ops.nas\";\nnetwork n(x: tensor[4, 2, 2]) {\n  return se(x, gate=\"relu\");\n}\n",
        CompileOptions{}, diags);
    CHECK_THAT(diags.render(),
               Catch::Contains("se gate must be sigmoid or hard_sigmoid, got relu"));
  }
  SECTION("DARTS blocks at their affine default") {
    Graph g = compile_source(R"(
import "ops.nas";
network n(x: tensor[8, 16, 16]) {
  let a = relu_conv_bn(x, 12, 1);
  let b = sep_conv(a, 12, 3, stride=2, pad=1);
  let c = dil_conv(b, 12, 5, pad=4, dilation=2);
  return factorized_reduce(c, 12);
})");
    CHECK(g.nodes[g.output].shape == Shape{12, 4, 4});
    int64_t a = 8 * 12 + 2 * 12;
    int64_t b = 2 * (12 * 9 + 12 * 12 + 2 * 12);
    int64_t c = 12 * 25 + 12 * 12 + 2 * 12;
    int64_t d = 2 * 12 * 6 + 2 * 12;
    CHECK(params_of(g) == a + b + c + d);
    // factorized_reduce's second path reads x[:, :, 1:, 1:].
    REQUIRE(count_ops(g, "crop") == 1);
    for (const Node& n : g.nodes)
      if (n.op->name == "crop") {
        CHECK(n.int_attr("top") == 1);
        CHECK(n.int_attr("left") == 1);
        CHECK(n.int_attr("bottom") == 0);
        CHECK(n.int_attr("right") == 0);
      }
  }
  SECTION("darts_op builds every primitive with matching shapes") {
    Graph g = compile_source(R"(
import "darts_ops.nas";
network n(x: tensor[8, 16, 16]) {
  return darts_edge(x, 8, 2, "e");
})");
    REQUIRE(g.arch.size() == 1);
    CHECK(g.arch[0].candidates == kDartsPrimitives);
    CHECK(g.nodes[g.output].shape == Shape{8, 8, 8});
    // skip_connect at stride 2 is factorized_reduce (64), sep 3x3 2*(72+64), sep 5x5
    // 2*(200+64), dil 3x3 72+64, dil 5x5 200+64; batch norms are not affine.
    CHECK(params_of(g) == 64 + 272 + 528 + 136 + 264);
    CHECK(batchnorms_after_pools(g) == 2);
    CHECK(count_ops(g, "drop_path") == 0);
  }
  SECTION("darts_op with evaluation=true: drop_path on all but Zero and an identity") {
    // At stride 2 skip_connect is a factorized_reduce and is dropped too: 7 of 8.
    Graph strided = compile_source(R"(
import "darts_ops.nas";
network n(x: tensor[8, 16, 16]) {
  return darts_edge(x, 8, 2, "e", evaluation=true);
})");
    CHECK(count_ops(strided, "drop_path") == 7);
    CHECK(batchnorms_after_pools(strided) == 0);
    CHECK(params_of(strided) == 64 + 272 + 528 + 136 + 264);  // affine stays the caller's
    Graph plain = compile_source(R"(
import "darts_ops.nas";
network n(x: tensor[8, 16, 16]) {
  return darts_edge(x, 8, 1, "e", evaluation=true);
})");
    CHECK(count_ops(plain, "drop_path") == 6);
    CHECK(count_ops(plain, "identity") == 1);
    for (const Node& n : plain.nodes)
      if (n.op->name == "drop_path") CHECK(plain.nodes[n.inputs[0]].op->name != "identity");
  }
  SECTION("darts_aux_head refuses a pool that does not give 2x2") {
    Diagnostics diags;
    compile_text("t.nas",
                 "import \"darts_ops.nas\";\n"
                 "network n(x: tensor[16, 7, 7]) {\n"
                 "  return darts_aux_head(x, 10);\n"
                 "}\n",
                 CompileOptions{}, diags);
    // The first error is the assert's (the 2x2 convolution then fails on 1x1 too).
    REQUIRE(!diags.all().empty());
    const Diagnostic& d = diags.all()[0];
    CHECK(d.message ==
          "assertion failed: darts_aux_head pools 7x7 with stride 3 to 1x1, not 2x2: pick "
          "pool_stride for this resolution");
    const std::string stdlib = std::string(NASC_SOURCE_DIR) + "/stdlib/darts_ops.nas";
    CHECK(d.loc.line == line_of(stdlib, "assert shape(h)[1] == 2"));
    CHECK(d.loc.col == 3);
  }
}

}  // namespace nas
