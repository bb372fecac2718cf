// Common-subexpression elimination, IR in and IR out (also tests/filecheck/cse.ir).
#include <catch2/catch.hpp>

#include "compiler/passes/cse.h"
#include "compiler/pipeline/pipeline.h"
#include "tests/ir_test_util.h"

using namespace nas;

using test::parse_ir_text;
using test::print_bare;

TEST_CASE("cse: DARTS edges share one relu per input, groups and output survive", "[cse]") {
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
