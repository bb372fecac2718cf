// Every pass as "IR text in -> IR text out": the inputs are hand-written IR read with
// parse_ir, the outputs are compared with literal IR text printed with names and without
// locations. Also the live masks, and the arch-file reader and writer. More IR-in/IR-out
// cases of dce and zero-prune are FileCheck tests: tests/filecheck/dce_*.ir, zero_prune_*.ir.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "compiler/ir/ir_parser.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/passes/dce.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/live_mask.h"
#include "compiler/passes/shape_inference.h"
#include "compiler/passes/zero_prune.h"
#include "compiler/pipeline/pipeline.h"

namespace nas {
namespace {

Graph parse(const std::string& text, const IrParseOptions& options = {}) {
  Diagnostics diags;
  std::optional<Graph> g = parse_ir("test.ir", text, diags, options);
  INFO(text << "\n" << diags.render());
  REQUIRE(g);
  REQUIRE(diags.all().empty());
  return std::move(*g);
}

// The stable form the expectations are written in. It must also read back: every pass
// output is valid IR whose written shapes agree with shape inference.
std::string print(const Graph& g) {
  std::string text = print_graph(g, PrintOptions{true, false});
  Diagnostics diags;
  INFO(text);
  CHECK(parse_ir("out.ir", text, diags));
  CHECK(diags.render() == "");
  return text;
}

Selection select(const Graph& g, const std::string& json) {
  Diagnostics diags;
  std::optional<Selection> sel = parse_arch(g, "arch.json", json, diags);
  INFO(json << "\n" << diags.render());
  REQUIRE(sel);
  return *sel;
}

std::string mask_str(const std::vector<char>& mask) {
  std::string out;
  for (char m : mask) out += m ? '1' : '0';
  return out;
}

// Each located error of parse_arch as "line:col: message".
std::vector<std::string> arch_errors(const Graph& g, const std::string& json) {
  Diagnostics diags;
  CHECK_FALSE(parse_arch(g, "arch.json", json, diags));
  std::vector<std::string> out;
  for (const Diagnostic& d : diags.all()) {
    CHECK(d.loc.file->path == "arch.json");
    out.push_back(std::to_string(d.loc.line) + ":" + std::to_string(d.loc.col) + ": " + d.message);
  }
  return out;
}

// conv1 -> {zero, conv2} -> conv3, as examples/zero_join.nas elaborates it.
const char* const kZeroJoin = R"(network zero_join(c=8) {
  %0 = input() {shape=[3,16,16]} : [3,16,16]  # x
  %1 = conv(%0) {bias=false, dilation=1, groups=1, kernel=3, out=8, pad=1, stride=1} : [8,16,16]  # conv1
  %2 = zero(%1) {shape=[], stride=1} : [8,16,16]  # edge/zero
  %3 = conv(%1) {bias=false, dilation=1, groups=1, kernel=3, out=8, pad=1, stride=1} : [8,16,16]  # edge/conv2
  %4 = choice(%2, %3) {candidates=["zero","conv2"], k=1, key="edge"} : [8,16,16]  # edge
  %5 = conv(%4) {bias=false, dilation=1, groups=1, kernel=3, out=8, pad=1, stride=1} : [8,16,16]  # conv3
  return %5
}
arch "edge" k=1 candidates=["zero","conv2"] nodes=[%4]
)";

// A join that picks 2 of 3 edges, one of them a Zero.
const char* const kJoin = R"(network join() {
  %0 = input() {shape=[4,8,8]} : [4,8,8]  # x
  %1 = relu(%0) : [4,8,8]  # e0
  %2 = max_pool(%0) {kernel=3, pad=1, stride=1} : [4,8,8]  # e1
  %3 = zero(%0) {shape=[], stride=1} : [4,8,8]  # e2
  %4 = choice(%1, %2, %3) {candidates=["e0","e1","e2"], k=2, key="node"} : [4,8,8]  # node
  %5 = global_avg_pool(%4) : [4]  # gap
  return %5
}
arch "node" k=2 candidates=["e0","e1","e2"] nodes=[%4]
)";

// One key shared by two choices in a row.
const char* const kShared = R"(network shared() {
  %0 = input() {shape=[4]} : [4]  # x
  %1 = zero(%0) {shape=[], stride=1} : [4]  # a/zero
  %2 = relu(%0) : [4]  # a/act
  %3 = choice(%1, %2) {candidates=["zero","act"], k=1, key="op"} : [4]  # a
  %4 = zero(%3) {shape=[], stride=1} : [4]  # b/zero
  %5 = sigmoid(%3) : [4]  # b/act
  %6 = choice(%4, %5) {candidates=["zero","act"], k=1, key="op"} : [4]  # b
  %7 = linear(%6) {bias=true, out=3} : [3]  # fc
  return %7
}
arch "op" k=1 candidates=["zero","act"] nodes=[%3,%6]
)";

// --- shape_inference -------------------------------------------------------------------

TEST_CASE("infer_shapes recomputes every shape", "[passes][shape_inference]") {
  Graph g = parse(R"(network s() {
  %0 = input() {shape=[3,8,8]} : [1]  # x
  %1 = conv(%0) {kernel=3, out=4, stride=2} : [9,9,9]  # c
  %2 = zero(%1) {stride=2} : [4,3,3]  # z
  %3 = global_avg_pool(%2) : []  # g
  return %3
}
)",
                  IrParseOptions{false});
  Diagnostics diags;
  CHECK(infer_shapes(g, diags));
  CHECK(diags.all().empty());
  CHECK(print(g) == R"(network s() {
  %0 = input() {shape=[3,8,8]} : [3,8,8]  # x
  %1 = conv(%0) {bias=false, dilation=1, groups=1, kernel=3, out=4, pad=0, stride=2} : [4,3,3]  # c
  %2 = zero(%1) {shape=[], stride=2} : [4,2,2]  # z
  %3 = global_avg_pool(%2) : [4]  # g
  return %3
}
)");
}

TEST_CASE("infer_shapes reports a broken rule at the node's location",
          "[passes][shape_inference]") {
  Graph g = parse(R"(network s() {
  %0 = input() {shape=[4]} : [4]  # x @s.nas:1:11
  %1 = linear(%0) {out=5} : [5]  # fc @s.nas:2:7
  %2 = add(%0, %1) : [4]  # sum @s.nas:3:7
  %3 = relu(%2) : [99]  # after_sum @s.nas:4:7
  %4 = zero(%0) {shape=[3]} : [3]  # z @s.nas:5:7
  %5 = add(%0, %0, %0) : [1]  # fine @s.nas:6:7
  return %3
}
)",
                  IrParseOptions{false});
  Diagnostics diags;
  CHECK_FALSE(infer_shapes(g, diags));
  REQUIRE(diags.all().size() == 2);
  const Diagnostic& add = diags.all()[0];
  CHECK(add.loc.str() == "s.nas:3:7");
  CHECK(add.instance_path == "sum");
  CHECK(add.message ==
        "add needs all inputs to have the same shape: input 0 is [4] from `x` at s.nas:1:11 but "
        "input 1 is [5] from `fc` at s.nas:2:7");
  const Diagnostic& zero = diags.all()[1];
  CHECK(zero.loc.str() == "s.nas:5:7");
  CHECK(zero.instance_path == "z");
  CHECK(zero.message == "zero `shape` [3] disagrees with its input: [4] from `x` at s.nas:1:11");
  // The node after the broken one is not reported again and keeps its shape; the good
  // node after them is still inferred.
  CHECK(g.nodes[3].shape == Shape{99});
  CHECK(g.nodes[5].shape == Shape{4});
}

// --- eliminate_dead_code ---------------------------------------------------------------

TEST_CASE("eliminate_dead_code keeps a Zero's input that another node uses", "[passes][dce]") {
  // zero_join is already minimal: conv1 feeds conv2 as well as the Zero.
  CHECK(print(eliminate_dead_code(parse(kZeroJoin))) == kZeroJoin);
}

// --- live_mask / live_mask_into / supernet_mask ----------------------------------------

TEST_CASE("live_mask follows the selected candidates, Zero cuts", "[passes][live_mask]") {
  Graph g = parse(kZeroJoin);
  // Ids: x conv1 zero conv2 choice conv3. Selecting zero kills conv1 and conv2, but the
  // input stays live.
  CHECK(mask_str(live_mask(g, select(g, R"({"choices": {"edge": "zero"}})"))) == "101011");
  CHECK(mask_str(live_mask(g, select(g, R"({"choices": {"edge": "conv2"}})"))) == "110111");
  CHECK(mask_str(supernet_mask(g)) == "111111");
  CHECK(mask_str(live_mask(g, first_candidates(g))) == "101011");
}

TEST_CASE("live_mask of a join keeps exactly the k picked inputs", "[passes][live_mask]") {
  Graph g = parse(kJoin);
  // Ids: x e0 e1 e2(zero) node gap.
  CHECK(mask_str(live_mask(g, select(g, R"({"choices": {"node": ["e0", "e1"]}})"))) == "111011");
  CHECK(mask_str(live_mask(g, select(g, R"({"choices": {"node": ["e2", "e0"]}})"))) == "110111");
  CHECK(mask_str(live_mask(g, select(g, R"({"choices": {"node": ["e1", "e2"]}})"))) == "101111");
  CHECK(mask_str(supernet_mask(g)) == "111111");

  // live_mask_into resizes and overwrites whatever the buffer held.
  std::vector<char> mask(17, 1);
  live_mask_into(g, select(g, R"({"choices": {"node": ["e1", "e2"]}})"), mask);
  CHECK(mask_str(mask) == "101111");
  mask.assign(2, 0);
  live_mask_into(g, select(g, R"({"choices": {"node": ["e0", "e1"]}})"), mask);
  CHECK(mask_str(mask) == "111011");
}

TEST_CASE("live_mask with a shared key and unused inputs", "[passes][live_mask]") {
  Graph g = parse(kShared);
  // Ids: x a/zero a/act a b/zero b/act b fc. With "zero" both choices read their Zero,
  // which cuts everything before b; x is live only because inputs always are.
  CHECK(mask_str(live_mask(g, select(g, R"({"choices": {"op": "zero"}})"))) == "10001011");
  CHECK(mask_str(live_mask(g, select(g, R"({"choices": {"op": "act"}})"))) == "10110111");
  // In the supernet every candidate is live; `a` is reached through b/act, not b/zero.
  CHECK(mask_str(supernet_mask(g)) == "11111111");

  Graph two_inputs = parse(R"(network two() {
  %0 = input() {shape=[4]} : [4]  # x
  %1 = input() {shape=[4]} : [4]  # y
  %2 = zero(%0) {shape=[], stride=1} : [4]  # z
  %3 = relu(%1) : [4]  # r
  return %2
}
)");
  CHECK(mask_str(live_mask(two_inputs, first_candidates(two_inputs))) == "1110");
  CHECK(mask_str(supernet_mask(two_inputs)) == "1110");
}

// --- zero_prune ------------------------------------------------------------------------

TEST_CASE("zero_prune on zero_join", "[passes][zero_prune]") {
  Graph g = parse(kZeroJoin);
  SECTION("zero selected: only the conv3 path is left, reading zeros") {
    Selection sel = select(g, R"({"choices": {"edge": "zero"}})");
    const char* expected = R"(network zero_join(c=8) {
  %0 = input() {shape=[3,16,16]} : [3,16,16]  # x
  %1 = zero() {shape=[8,16,16], stride=1} : [8,16,16]  # edge
  %2 = conv(%1) {bias=false, dilation=1, groups=1, kernel=3, out=8, pad=1, stride=1} : [8,16,16]  # conv3
  return %2
}
)";
    CHECK(print(zero_prune(g, sel)) == expected);
    CHECK(print(derive_fixed_network(g, sel)) == expected);
  }
  SECTION("conv2 selected: three convs") {
    CHECK(print(zero_prune(g, select(g, R"({"choices": {"edge": "conv2"}})"))) ==
          R"(network zero_join(c=8) {
  %0 = input() {shape=[3,16,16]} : [3,16,16]  # x
  %1 = conv(%0) {bias=false, dilation=1, groups=1, kernel=3, out=8, pad=1, stride=1} : [8,16,16]  # conv1
  %2 = conv(%1) {bias=false, dilation=1, groups=1, kernel=3, out=8, pad=1, stride=1} : [8,16,16]  # edge/conv2
  %3 = conv(%2) {bias=false, dilation=1, groups=1, kernel=3, out=8, pad=1, stride=1} : [8,16,16]  # conv3
  return %3
}
)");
  }
}

TEST_CASE("zero_prune on the real zero_join example and its arch files", "[passes][zero_prune]") {
  Diagnostics diags;
  Compilation c = compile_file(std::string(NASC_SOURCE_DIR) + "/examples/zero_join.nas",
                               CompileOptions{}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  std::optional<Selection> sel =
      load_arch(*c.supernet, std::string(NASC_SOURCE_DIR) + "/examples/zero_join_zero.json", diags);
  REQUIRE(sel);
  CHECK(print(specialise(*c.supernet, *sel)) == R"(network zero_join(c=8) {
  %0 = input() {shape=[3,16,16]} : [3,16,16]  # x
  %1 = zero() {shape=[8,16,16], stride=1} : [8,16,16]  # zero_join/edge
  %2 = conv(%1) {bias=false, dilation=1, groups=1, kernel=3, out=8, pad=1, stride=1} : [8,16,16]  # zero_join/conv_1
  return %2
}
)");
}

TEST_CASE("zero_prune turns a join into the sum of its picked inputs", "[passes][zero_prune]") {
  Graph g = parse(kJoin);
  const char* both = R"(network join() {
  %0 = input() {shape=[4,8,8]} : [4,8,8]  # x
  %1 = relu(%0) : [4,8,8]  # e0
  %2 = max_pool(%0) {kernel=3, pad=1, stride=1} : [4,8,8]  # e1
  %3 = add(%1, %2) : [4,8,8]  # node
  %4 = global_avg_pool(%3) : [4]  # gap
  return %4
}
)";
  CHECK(print(zero_prune(g, select(g, R"({"choices": {"node": ["e0", "e1"]}})"))) == both);
  // The order of the names in the arch file does not change the network.
  CHECK(print(zero_prune(g, select(g, R"({"choices": {"node": ["e1", "e0"]}})"))) == both);
  // A picked Zero drops out of the sum; one input left needs no add.
  CHECK(print(zero_prune(g, select(g, R"({"choices": {"node": ["e2", "e1"]}})"))) ==
        R"(network join() {
  %0 = input() {shape=[4,8,8]} : [4,8,8]  # x
  %1 = max_pool(%0) {kernel=3, pad=1, stride=1} : [4,8,8]  # e1
  %2 = global_avg_pool(%1) : [4]  # gap
  return %2
}
)");
}

TEST_CASE("zero_prune: a chain whose output becomes zero", "[passes][zero_prune]") {
  Graph g = parse(R"(network chain() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]  # x
  %1 = zero(%0) {shape=[], stride=2} : [2,2,2]  # e/zero
  %2 = max_pool(%0) {kernel=2, pad=0, stride=2} : [2,2,2]  # e/pool
  %3 = choice(%1, %2) {candidates=["zero","pool"], k=1, key="e"} : [2,2,2]  # e
  %4 = relu(%3) : [2,2,2]  # relu
  %5 = global_avg_pool(%4) : [2]  # gap
  %6 = concat(%5, %5) {axis=0} : [4]  # cat
  %7 = mul(%6) {scale=0.5} : [4]  # scale
  return %7
}
arch "e" k=1 candidates=["zero","pool"] nodes=[%3]
)");
  CHECK(print(zero_prune(g, select(g, R"({"choices": {"e": "zero"}})"))) == R"(network chain() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]  # x
  %1 = zero() {shape=[4], stride=1} : [4]  # scale
  return %1
}
)");
  CHECK(print(zero_prune(g, select(g, R"({"choices": {"e": "pool"}})"))) == R"(network chain() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]  # x
  %1 = max_pool(%0) {kernel=2, pad=0, stride=2} : [2,2,2]  # e/pool
  %2 = relu(%1) : [2,2,2]  # relu
  %3 = global_avg_pool(%2) : [2]  # gap
  %4 = concat(%3, %3) {axis=0} : [4]  # cat
  %5 = mul(%4) {scale=0.5} : [4]  # scale
  return %5
}
)");
}

TEST_CASE("zero_prune: one key shared by two choices", "[passes][zero_prune]") {
  Graph g = parse(kShared);
  CHECK(print(zero_prune(g, select(g, R"({"choices": {"op": "act"}})"))) == R"(network shared() {
  %0 = input() {shape=[4]} : [4]  # x
  %1 = relu(%0) : [4]  # a/act
  %2 = sigmoid(%1) : [4]  # b/act
  %3 = linear(%2) {bias=true, out=3} : [3]  # fc
  return %3
}
)");
  CHECK(print(zero_prune(g, select(g, R"({"choices": {"op": "zero"}})"))) == R"(network shared() {
  %0 = input() {shape=[4]} : [4]  # x
  %1 = zero() {shape=[4], stride=1} : [4]  # b
  %2 = linear(%1) {bias=true, out=3} : [3]  # fc
  return %2
}
)");
}

// --- derive_arch -----------------------------------------------------------------------

TEST_CASE("parse_arch reports each problem at the arch file's line and column",
          "[passes][derive_arch]") {
  Graph zj = parse(kZeroJoin);
  Graph join = parse(kJoin);
  CHECK(arch_errors(zj, "{\n  \"choices\": {\"edge\": \"zero\",}\n}\n") ==
        std::vector<std::string>{
            "2:30: arch file: invalid JSON: syntax error while parsing object key - unexpected "
            "'}'; expected string literal"});
  // A key twice, at the second one; a number beyond a double, even under an ignored key.
  CHECK(arch_errors(zj, "{\"choices\": {\"edge\": \"zero\",\n  \"edge\": \"zero\"}}") ==
        std::vector<std::string>{"2:3: arch file: duplicate key choices.edge"});
  CHECK(arch_errors(zj, "{\"choices\": {\"edge\": \"zero\"},\n \"score\": 1e999999}") ==
        std::vector<std::string>{
            "2:11: arch file: number 1e999999 is too large (beyond a double's range, ±1.8e308)"});
  CHECK(arch_errors(zj, "[1, 2]") ==
        std::vector<std::string>{"1:1: arch file must be a JSON object with a \"choices\" object "
                                 "(choice key -> candidate name)"});
  CHECK(arch_errors(zj, R"({"network": "other", "choices": {"edge": "zero"}})") ==
        std::vector<std::string>{"1:2: arch file is for network \"other\", not `zero_join`"});
  CHECK(arch_errors(zj, "{\"choices\": {\"edge\": \"zero\",\n  \"nope\": \"x\"}}") ==
        std::vector<std::string>{
            "2:3: arch file names choice `nope`, which `zero_join` does not have (its choices: "
            "edge)"});
  CHECK(arch_errors(zj, R"({"choices": {"edge": "conv9"}})") ==
        std::vector<std::string>{
            "1:14: choice `edge` has no candidate `conv9` (candidates: zero, conv2)"});
  CHECK(arch_errors(zj, R"({"choices": {"edge": 3}})") ==
        std::vector<std::string>{"1:14: choice `edge` must be a candidate name (string) or a "
                                 "list of names, got 3"});
  CHECK(arch_errors(zj, R"({"choices": {}})") ==
        std::vector<std::string>{"1:1: arch file does not fix 1 choice(s) of `zero_join`: edge"});
  CHECK(
      arch_errors(join, R"({"choices": {"node": "e0"}})") ==
      std::vector<std::string>{"1:14: choice `node` picks 2 candidate(s), the arch file gives 1"});
  CHECK(
      arch_errors(join, R"({"choices": {"node": ["e0", "e1", "e2"]}})") ==
      std::vector<std::string>{"1:14: choice `node` picks 2 candidate(s), the arch file gives 3"});
  CHECK(arch_errors(join, R"({"choices": {"node": ["e1", "e1"]}})") ==
        std::vector<std::string>{"1:14: choice `node` names candidate `e1` twice"});
  // The other top-level keys are ignored, and a one-name list fixes a k=1 choice.
  Selection sel =
      select(zj, R"({"network": "zero_join", "alphas": [0.1], "choices": {"edge": ["conv2"]}})");
  CHECK(sel.chosen == std::vector<std::vector<int>>{{1}});
}

// An error about a key points at the key, even when the same string appears earlier as a
// value.
TEST_CASE("parse_arch locates a key that also appears as a value", "[passes][derive_arch]") {
  Graph zj = parse(kZeroJoin);
  CHECK(arch_errors(zj, R"({"choices": {"edge": "zero", "zero": "x"}})") ==
        std::vector<std::string>{
            "1:30: arch file names choice `zero`, which `zero_join` does not have (its choices: "
            "edge)"});
}

TEST_CASE("arch_to_json writes what parse_arch reads", "[passes][derive_arch]") {
  Graph zj = parse(kZeroJoin);
  CHECK(arch_to_json(zj, Selection{{{0}}}) == R"({
  "network": "zero_join",
  "choices": {
    "edge": "zero"
  }
}
)");
  Graph join = parse(kJoin);
  CHECK(arch_to_json(join, Selection{{{2, 0}}}) == R"({
  "network": "join",
  "choices": {
    "node": [
      "e2",
      "e0"
    ]
  }
}
)");
  for (const Graph* g : {&zj, &join}) {
    const ArchGroup& group = g->arch[0];
    int n = static_cast<int>(group.candidates.size());
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b) {
        if (group.k == 1 && b > 0) continue;
        if (group.k == 2 && a == b) continue;
        Selection sel;
        sel.chosen.push_back(group.k == 1 ? std::vector<int>{a} : std::vector<int>{a, b});
        std::string json = arch_to_json(*g, sel);
        INFO(json);
        CHECK(select(*g, json).chosen == sel.chosen);
      }
  }
  Graph shared = parse(kShared);
  Selection sel = select(shared, arch_to_json(shared, Selection{{{1}}}));
  CHECK(sel.chosen == std::vector<std::vector<int>>{{1}});
}

}  // namespace
}  // namespace nas
