// The example search spaces (examples/*.nas) and the standard library (stdlib/*.nas):
// every example compiles without a diagnostic, and parameter and MAC counts match
// numbers computed independently of nasc (torchvision's MobileNetV2, the DARTS
// supernet as PyTorch builds it in bench/peers/darts_step_torch.py, and hand counts for
// the small examples).
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compiler/analysis/space_stats.h"
#include "compiler/ir/op_registry.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/pipeline/pipeline.h"

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

}  // namespace

TEST_CASE("every example compiles without diagnostics", "[examples]") {
  std::set<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(example_path("")))
    if (entry.path().extension() == ".nas") found.insert(entry.path().filename().string());
  for (const char* name :
       {"tiny.nas", "zero_join.nas", "darts.nas", "darts_fmnist.nas", "mobilenet.nas",
        "mobilenet_v2.nas", "zoph.nas", "random_wired.nas", "mobilenet_v3_fmnist.nas"})
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
  // DARTS_V2 (Liu et al. 2019, genotypes.py): two inputs per node, the other edges none.
  std::map<std::string, std::string> choices = {
      {"normal/n2_e0", "sep_conv_3x3"}, {"normal/n2_e1", "sep_conv_3x3"},
      {"normal/n3_e0", "sep_conv_3x3"}, {"normal/n3_e1", "sep_conv_3x3"},
      {"normal/n4_e1", "sep_conv_3x3"}, {"normal/n4_e0", "skip_connect"},
      {"normal/n5_e0", "skip_connect"}, {"normal/n5_e2", "dil_conv_3x3"},
      {"reduce/n2_e0", "max_pool_3x3"}, {"reduce/n2_e1", "max_pool_3x3"},
      {"reduce/n3_e2", "skip_connect"}, {"reduce/n3_e1", "max_pool_3x3"},
      {"reduce/n4_e0", "max_pool_3x3"}, {"reduce/n4_e2", "skip_connect"},
      {"reduce/n5_e2", "skip_connect"}, {"reduce/n5_e1", "max_pool_3x3"}};
  std::string json = R"({"network": "darts", "choices": {)";
  bool first = true;
  for (const ArchGroup& group : g.arch) {
    auto it = choices.find(group.key);
    json += std::string(first ? "" : ", ") + "\"" + group.key + "\": \"" +
            (it == choices.end() ? "none" : it->second) + "\"";
    first = false;
  }
  json += "}}";
  Graph fixed = derive(g, json);
  CHECK(count_ops(fixed, "choice") == 0);
  CHECK(count_ops(fixed, "zero") == 0);
  // Per normal cell: 5 sep_conv_3x3 (2 depthwise convs each) + 1 dil_conv_3x3.
  CHECK(count_ops(fixed, "dwconv") == 6 * 11);
  CHECK(count_ops(fixed, "max_pool") == 2 * 5);
  // The search network (affine=false) with these ops, counted by hand from darts_step_torch.py.
  CHECK(params_of(fixed) == 239898);
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
  }
}

}  // namespace nas
