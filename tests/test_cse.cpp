// Common-subexpression elimination, IR in and IR out.
#include <catch2/catch.hpp>

#include "compiler/passes/cse.h"
#include "compiler/passes/pipeline.h"
#include "tests/ir_test_util.h"

using namespace nas;

using test::parse_ir_text;
using test::print_bare;

TEST_CASE("cse: equal parameter-free nodes merge; layers with weights never do", "[cse]") {
  Graph g = parse_ir_text(R"(network net() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]
  %1 = relu(%0) : [2,4,4]
  %2 = conv(%1) {kernel=1, out=2} : [2,4,4]
  %3 = relu(%0) : [2,4,4]
  %4 = conv(%3) {kernel=1, out=2} : [2,4,4]
  %5 = max_pool(%0) {kernel=3, pad=1, stride=1} : [2,4,4]
  %6 = max_pool(%0) {kernel=3, pad=1, stride=2} : [2,2,2]
  %7 = add(%2, %4, %5) : [2,4,4]
  %8 = global_avg_pool(%7) : [2]
  %9 = global_avg_pool(%6) : [2]
  %10 = add(%8, %9) : [2]
  return %10
}
)");
  CHECK(print_bare(eliminate_common_subexpressions(g)) == R"(network net() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]
  %1 = relu(%0) : [2,4,4]
  %2 = conv(%1) {bias=false, dilation=1, groups=1, kernel=1, out=2, pad=0, stride=1} : [2,4,4]
  %3 = conv(%1) {bias=false, dilation=1, groups=1, kernel=1, out=2, pad=0, stride=1} : [2,4,4]
  %4 = max_pool(%0) {kernel=3, pad=1, stride=1} : [2,4,4]
  %5 = max_pool(%0) {kernel=3, pad=1, stride=2} : [2,2,2]
  %6 = add(%2, %3, %4) : [2,4,4]
  %7 = global_avg_pool(%6) : [2]
  %8 = global_avg_pool(%5) : [2]
  %9 = add(%7, %8) : [2]
  return %9
}
)");
}

TEST_CASE("cse: DARTS edges share one relu per input; groups and output survive", "[cse]") {
  Diagnostics diags;
  Compilation c =
      compile_file(std::string(NASC_SOURCE_DIR) + "/examples/darts_fmnist.nas", {}, diags);
  REQUIRE(c.supernet);
  Graph after = eliminate_common_subexpressions(*c.supernet);
  CHECK(after.nodes.size() < c.supernet->nodes.size());
  CHECK(after.arch.size() == c.supernet->arch.size());
  for (size_t i = 0; i < after.arch.size(); ++i)
    CHECK(after.arch[i].nodes.size() == c.supernet->arch[i].nodes.size());
  CHECK(after.nodes[after.output].shape == c.supernet->nodes[c.supernet->output].shape);
  // Idempotent.
  CHECK(eliminate_common_subexpressions(after).nodes.size() == after.nodes.size());
}
