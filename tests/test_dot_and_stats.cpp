// Graph drawing (clusters per choice, pruned drawing) and search-space statistics
// (space size, largest/smallest sub-network by enumeration and by coordinate search).
#include <catch2/catch.hpp>
#include <cmath>
#include <regex>

#include "compiler/analysis/space_stats.h"
#include "compiler/dot/graph_dot.h"
#include "compiler/ir/op_registry.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/pipeline/pipeline.h"

namespace nas {
namespace {

Graph compile(const std::string& text) {
  Diagnostics diags;
  Compilation c = compile_text("t.nas", text, CompileOptions{}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  return *c.supernet;
}

int count_matches(const std::string& text, const std::string& pattern) {
  std::regex re(pattern);
  return static_cast<int>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

const char* kZeroJoin = R"(
network zj(x: tensor[3, 16, 16]) {
  let a = conv(x, 8, kernel=3, pad=1);
  let b = choice "edge" { zero: zero(a), conv2: conv(a, 8, kernel=3, pad=1) };
  return conv(b, 8, kernel=3, pad=1);
}
)";

}  // namespace

TEST_CASE("DOT groups candidates in one cluster per choice and per candidate", "[dot]") {
  Graph g = compile(kZeroJoin);
  std::string dot = graph_to_dot(g);
  CHECK(count_matches(dot, "subgraph cluster_") == 3);  // the choice + its 2 candidates
  CHECK(dot.find("label=\"choice edge\"") != std::string::npos);
  CHECK(dot.find("label=\"conv2\"") != std::string::npos);
  CHECK(count_matches(dot, "label=\"conv 3x3") == 3);
  CHECK(count_matches(dot, " -> ") == 7);  // 6 data edges + the output edge
}

TEST_CASE("DOT of a pruned architecture draws only what survives", "[dot]") {
  Graph g = compile(kZeroJoin);
  Diagnostics diags;
  auto zero = parse_arch(g, "a.json", R"({"choices": {"edge": "zero"}})", diags);
  REQUIRE(zero);
  std::string dot = graph_to_dot(specialise(g, *zero));
  CHECK(count_matches(dot, "label=\"conv 3x3") == 1);  // conv3 only
  CHECK(count_matches(dot, "label=\"zero") == 1);
  CHECK(count_matches(dot, "subgraph cluster_") == 0);
  CHECK(count_matches(dot, " -> ") == 2);  // zero -> conv3 -> output

  auto conv2 = parse_arch(g, "a.json", R"({"choices": {"edge": "conv2"}})", diags);
  REQUIRE(conv2);
  dot = graph_to_dot(specialise(g, *conv2));
  CHECK(count_matches(dot, "label=\"conv 3x3") == 3);
  CHECK(count_matches(dot, "label=\"zero") == 0);
}

TEST_CASE("DOT escapes quotes and backslashes in names", "[dot]") {
  // The language rejects such names; the renderer must still never emit broken DOT
  // for a graph built another way (IR text, embedders).
  Graph g;
  g.name = "q\"uote";
  Node in;
  in.id = 0;
  in.op = find_op("input");
  in.attrs = {{"shape", IntList{2, 4, 4}}};
  in.shape = {2, 4, 4};
  in.name = "x\\\"y";
  g.nodes.push_back(in);
  g.inputs = {0};
  g.output = 0;
  std::string dot = graph_to_dot(g);
  CHECK(dot.find("digraph \"q\\\"uote\"") != std::string::npos);
  CHECK(dot.find("label=\"input x\\\\\\\"y\\n[2,4,4]\"") != std::string::npos);
}

TEST_CASE("space statistics: sizes and exact extremes by enumeration", "[stats]") {
  // Two independent choices (3 and 2 candidates) and a shared key used twice.
  Graph g = compile(R"(
network s(x: tensor[4, 8, 8]) {
  let a = choice "c1" { big: conv(x, 4, kernel=3, pad=1), small: conv(x, 4, kernel=1), none: zero(x) };
  let b = choice "c2" { id: identity(a), pw: conv(a, 4, kernel=1, bias=true) };
  let c = choice "c2" { id: identity(b), pw: conv(b, 4, kernel=1, bias=true) };
  return c;
}
)");
  SpaceStats s = space_stats(g);
  CHECK(s.num_choices == 2);
  CHECK(s.num_choice_nodes == 3);
  CHECK(s.log10_space_size == Approx(std::log10(6.0)));
  // conv 3x3: 144; conv 1x1: 16; pw with bias: 20 each, two of them.
  CHECK(s.supernet_params == 144 + 16 + 40);
  CHECK(s.extremes_exact);
  CHECK(s.largest.params == 144 + 40);
  CHECK(s.smallest.params == 0);  // zero, then identities
  CHECK(s.supernet_macs == 144 * 64 + 16 * 64 + 2 * 16 * 64);
}

TEST_CASE("coordinate search finds the extremes of an additive space", "[stats]") {
  // 12 independent binary choices: 4096 architectures. With max_enumerate below that,
  // coordinate search must still find the exact extremes, since costs are additive.
  std::string text = "network big(x: tensor[4, 8, 8]) {\n  let h = x;\n";
  for (int i = 0; i < 12; ++i)
    text += "  h = choice \"c" + std::to_string(i) +
            "\" { a: conv(h, 4, kernel=1), b: conv(h, 4, kernel=3, pad=1) };\n";
  text += "  return h;\n}\n";
  Graph g = compile(text);
  SpaceStats exact = space_stats(g, 4096);
  SpaceStats searched = space_stats(g, 100);
  CHECK(exact.extremes_exact);
  CHECK_FALSE(searched.extremes_exact);
  CHECK(exact.largest.params == 12 * 144);
  CHECK(exact.smallest.params == 12 * 16);
  CHECK(searched.largest.params == exact.largest.params);
  CHECK(searched.smallest.params == exact.smallest.params);
}

}  // namespace nas
