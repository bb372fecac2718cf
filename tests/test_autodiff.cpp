// Autodiff, IR in and IR out: hand-written forward graphs and the exact backward graph
// expected (a chain in tests/filecheck/autodiff.ir), the round trip of training graphs
// through the IR parser, and misuse.
#include <catch2/catch.hpp>

#include "compiler/passes/autodiff.h"
#include "compiler/pipeline/pipeline.h"
#include "tests/ir_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;

using test::parse_ir_text;
using test::print_bare;

TEST_CASE("autodiff: fan-out sums gradients, add and identity pass them through", "[autodiff]") {
  Graph g = parse_ir_text(R"(network net() {
  %0 = input() {shape=[4]} : [4]
  %1 = linear(%0) {out=4} : [4]
  %2 = identity(%1) : [4]
  %3 = mul(%1) {scale=2.0} : [4]
  %4 = add(%2, %3) : [4]
  %5 = linear(%4) {out=2} : [2]
  return %5
}
)");
  std::string out = print_bare(build_training_graph(g));
  CHECK_THAT(out, Contains("%10 = mul(%9) {scale=2.0} : [4]"));
  // %1's two uses (through identity, and through mul) are summed once both are known.
  CHECK_THAT(out, Contains("%11 = add(%10, %9) : [4]"));
  CHECK_THAT(out, Contains("%12 = linear_grad_weight(%11, %0) {fwd=1, shape=[]} : []"));
  // The input needs no gradient: no linear_grad_input for %1.
  CHECK_THAT(out, !Contains("linear_grad_input(%11)"));
}

TEST_CASE("autodiff: a choice in full mode differentiates alpha, zero passes nothing",
          "[autodiff]") {
  Graph g = parse_ir_text(R"(network net() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]
  %1 = conv(%0) {kernel=1, out=2} : [2,4,4]
  %2 = max_pool(%1) {kernel=3, pad=1, stride=1} : [2,4,4]
  %3 = zero(%1) : [2,4,4]
  %4 = choice(%2, %3) {candidates=["pool","none"], key="e"} : [2,4,4]
  %5 = global_avg_pool(%4) : [2]
  %6 = linear(%5) {out=2} : [2]
  return %6
}
arch "e" k=1 candidates=["pool","none"] nodes=[%4]
)");
  AutodiffOptions o;
  o.arch_grads = true;
  std::string out = print_bare(build_training_graph(g, o));
  CHECK_THAT(out, Contains("choice_grad_input(%11) {fwd=4, index=0, shape=[2,4,4]}"));
  CHECK_THAT(out, !Contains("index=1"));  // zero's input gets nothing
  CHECK_THAT(out, Contains("choice_grad_arch(%11, %2, %3) {fwd=4, shape=[]} : []"));
  CHECK_THAT(out, Contains("pool_grad(%12) {fwd=2, shape=[2,4,4]}"));
  // Without arch gradients the choice is still differentiated for its inputs.
  CHECK_THAT(print_bare(build_training_graph(g)), !Contains("choice_grad_arch"));
}

TEST_CASE("autodiff: training graphs of the examples parse back and re-check", "[autodiff]") {
  for (const char* file : {"tiny.nas", "darts_fmnist.nas", "mobilenet.nas", "random_wired.nas"}) {
    INFO(file);
    Diagnostics diags;
    Compilation c = compile_file(std::string(NASC_SOURCE_DIR) + "/examples/" + file, {}, diags);
    REQUIRE(c.supernet);
    AutodiffOptions o;
    o.arch_grads = true;
    Graph t = build_training_graph(*c.supernet, o);
    CHECK(forward_node_count(t) == static_cast<int>(c.supernet->nodes.size()));
    std::string text = print_bare(t);
    Graph back = parse_ir_text(text);
    CHECK(print_bare(back) == text);
  }
}

TEST_CASE("autodiff: a network without vector logits is refused", "[autodiff]") {
  Graph g = parse_ir_text(R"(network img() {
  %0 = input() {shape=[1,4,4]} : [1,4,4]
  %1 = conv(%0) {kernel=1, out=2} : [2,4,4]
  return %1
}
)");
  // The user's network, so a UserError; a graph from textual IR has no source location.
  CHECK_THROWS_AS(build_training_graph(g), UserError);
  CHECK_THROWS_WITH(build_training_graph(g),
                    "network `img`: training needs the network to return 1-D logits [classes], "
                    "but `img` returns [2,4,4]");
}
