// Static memory planning of a fixed network's forward pass: exact offsets and peaks on
// hand-written IR (chains, a diamond, alignment, aliases), the examples' fixed networks,
// misuse, and `nasc ir --stage plan`. Every plan is also re-checked with check_plan
// (no two buffers live at the same step overlap in memory).
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "compiler/ir/ir_parser.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/memory_plan.h"
#include "compiler/pipeline/pipeline.h"

namespace nas {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

Graph parse(const std::string& text) {
  Diagnostics diags;
  std::optional<Graph> g = parse_ir("test.ir", text, diags);
  INFO(text << "\n" << diags.render());
  REQUIRE(g);
  return std::move(*g);
}

MemoryPlan plan(const Graph& g, int64_t batch = 1) {
  MemoryPlan p = plan_memory(g, batch);
  CHECK(check_plan(g, p) == "");
  CHECK(p.peak_bytes >= p.live_bytes_max);
  CHECK(p.peak_bytes <= p.naive_bytes + kArenaAlignment * static_cast<int64_t>(p.buffers.size()));
  return p;
}

Graph example(const std::string& file, const std::string& arch = "") {
  Diagnostics diags;
  Compilation c = compile_file(std::string(NASC_SOURCE_DIR) + "/examples/" + file, {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  if (arch.empty()) return *c.supernet;
  std::optional<Selection> sel = parse_arch(*c.supernet, "arch.json", arch, diags);
  INFO(diags.render());
  REQUIRE(sel);
  return specialise(*c.supernet, *sel);
}

TEST_CASE("memory plan: a chain reuses every other buffer", "[memory_plan]") {
  Graph g = parse(R"(network chain() {
  %0 = input() {shape=[4,8,8]} : [4,8,8]
  %1 = relu(%0) : [4,8,8]
  %2 = sigmoid(%1) : [4,8,8]
  %3 = relu(%2) : [4,8,8]
  %4 = global_avg_pool(%3) : [4]
  return %4
}
)");
  MemoryPlan p = plan(g);
  CHECK(print_plan(g, p) == R"(%0 input -> caller input, 1024 B
%1 relu -> [offset 0, 1024 B] live 1..2
%2 sigmoid -> [offset 1024, 1024 B] live 2..3
%3 relu -> [offset 0, 1024 B] live 3..4
%4 global_avg_pool -> caller output, 16 B
arena peak: 2048 bytes (naive: 3072 bytes, batch 1)
)");
  CHECK(p.live_bytes_max == 2048);
  REQUIRE(p.buffers.size() == 3);
  CHECK(p.buffers[2].node == 3);
  CHECK(p.nodes[0].kind == StorageKind::Input);
  CHECK(p.nodes[4].kind == StorageKind::Output);
  CHECK(p.nodes[4].buffer == -1);

  // The batch scales every buffer; offsets stay multiples of 64.
  MemoryPlan p8 = plan(g, 8);
  CHECK(p8.peak_bytes == 8 * 2048);
  CHECK(p8.naive_bytes == 8 * 3072);
  CHECK(p8.buffers[1].offset == 8 * 1024);
  CHECK_THAT(print_plan(g, p8), Contains("arena peak: 16384 bytes (naive: 24576 bytes, batch 8)"));
  // Other element sizes.
  MemoryPlan p2 = plan_memory(g, 1, 2);
  CHECK(check_plan(g, p2) == "");
  CHECK(p2.peak_bytes == 1024);
}

TEST_CASE("memory plan: offsets are aligned to 64 bytes", "[memory_plan]") {
  Graph g = parse(R"(network small() {
  %0 = input() {shape=[3]} : [3]
  %1 = relu(%0) : [3]
  %2 = relu(%1) : [3]
  %3 = relu(%2) : [3]
  %4 = relu(%3) : [3]
  return %4
}
)");
  MemoryPlan p = plan(g);
  CHECK(print_plan(g, p) == R"(%0 input -> caller input, 12 B
%1 relu -> [offset 0, 12 B] live 1..2
%2 relu -> [offset 64, 12 B] live 2..3
%3 relu -> [offset 0, 12 B] live 3..4
%4 relu -> caller output, 12 B
arena peak: 76 bytes (naive: 36 bytes, batch 1)
)");
}

TEST_CASE("memory plan: a diamond keeps both branches live", "[memory_plan]") {
  Graph g = parse(R"(network diamond() {
  %0 = input() {shape=[4,8,8]} : [4,8,8]
  %1 = conv(%0) {kernel=1, out=8} : [8,8,8]
  %2 = relu(%1) : [8,8,8]
  %3 = sigmoid(%1) : [8,8,8]
  %4 = add(%2, %3) : [8,8,8]
  %5 = global_avg_pool(%4) : [8]
  return %5
}
)");
  MemoryPlan p = plan(g);
  CHECK(print_plan(g, p) == R"(%0 input -> caller input, 1024 B
%1 conv -> [offset 0, 2048 B] live 1..3
%2 relu -> [offset 2048, 2048 B] live 2..4
%3 sigmoid -> [offset 4096, 2048 B] live 3..4
%4 add -> [offset 0, 2048 B] live 4..5
%5 global_avg_pool -> caller output, 32 B
arena peak: 6144 bytes (naive: 8192 bytes, batch 1)
)");
  CHECK(p.live_bytes_max == 6144);
}

TEST_CASE("memory plan: large buffers first, small ones in the gaps", "[memory_plan]") {
  Graph g = parse(R"(network mixed() {
  %0 = input() {shape=[1,8,8]} : [1,8,8]
  %1 = conv(%0) {kernel=1, out=16} : [16,8,8]
  %2 = max_pool(%1) {kernel=2} : [16,4,4]
  %3 = conv(%2) {kernel=1, out=64} : [64,4,4]
  %4 = max_pool(%3) {kernel=2} : [64,2,2]
  %5 = relu(%4) : [64,2,2]
  %6 = global_avg_pool(%5) : [64]
  return %6
}
)");
  MemoryPlan p = plan(g);
  CHECK(print_plan(g, p) == R"(%0 input -> caller input, 256 B
%1 conv -> [offset 0, 4096 B] live 1..2
%2 max_pool -> [offset 4096, 1024 B] live 2..3
%3 conv -> [offset 0, 4096 B] live 3..4
%4 max_pool -> [offset 4096, 1024 B] live 4..5
%5 relu -> [offset 0, 1024 B] live 5..6
%6 global_avg_pool -> caller output, 256 B
arena peak: 5120 bytes (naive: 11264 bytes, batch 1)
)");
}

TEST_CASE("memory plan: identity, flatten and dropout alias their input", "[memory_plan]") {
  Graph g = parse(R"(network alias() {
  %0 = input() {shape=[4,8,8]} : [4,8,8]
  %1 = identity(%0) : [4,8,8]
  %2 = relu(%1) : [4,8,8]
  %3 = flatten(%2) : [256]
  %4 = dropout(%3) {p=0.5} : [256]
  %5 = linear(%4) {out=10} : [10]
  %6 = dropout(%5) {p=0.5} : [10]
  return %6
}
)");
  MemoryPlan p = plan(g);
  // %2's buffer stays live until %5 reads it through two aliases, so %5 gets its own
  // bytes; the output dropout is not an alias (it is copied into the caller's buffer).
  CHECK(print_plan(g, p) == R"(%0 input -> caller input, 1024 B
%1 identity -> alias of %0 (caller input)
%2 relu -> [offset 0, 1024 B] live 2..5
%3 flatten -> alias of %2 [offset 0, 1024 B]
%4 dropout -> alias of %2 [offset 0, 1024 B]
%5 linear -> [offset 1024, 40 B] live 5..6
%6 dropout -> caller output, 40 B
arena peak: 1064 bytes (naive: 1064 bytes, batch 1)
)");
  CHECK(p.nodes[4].kind == StorageKind::Alias);
  CHECK(p.nodes[4].root == 2);
  CHECK(p.nodes[4].buffer == p.nodes[2].buffer);
  CHECK(p.nodes[1].buffer == -1);
}

TEST_CASE("memory plan: an alias extends its buffer's lifetime past later buffers",
          "[memory_plan]") {
  // Without the extension, %1 (live 1..2 by its direct readers) would share bytes with %3.
  Graph g = parse(R"(network extend() {
  %0 = input() {shape=[16]} : [16]
  %1 = relu(%0) : [16]
  %2 = identity(%1) : [16]
  %3 = sigmoid(%0) : [16]
  %4 = add(%2, %3) : [16]
  %5 = relu(%4) : [16]
  return %5
}
)");
  MemoryPlan p = plan(g);
  CHECK(print_plan(g, p) == R"(%0 input -> caller input, 64 B
%1 relu -> [offset 0, 64 B] live 1..4
%2 identity -> alias of %1 [offset 0, 64 B]
%3 sigmoid -> [offset 64, 64 B] live 3..4
%4 add -> [offset 128, 64 B] live 4..5
%5 relu -> caller output, 64 B
arena peak: 192 bytes (naive: 192 bytes, batch 1)
)");
}

TEST_CASE("check_plan finds overlapping and wrong plans", "[memory_plan]") {
  Graph g = parse(R"(network chain() {
  %0 = input() {shape=[4,8,8]} : [4,8,8]
  %1 = relu(%0) : [4,8,8]
  %2 = sigmoid(%1) : [4,8,8]
  %3 = relu(%2) : [4,8,8]
  %4 = global_avg_pool(%3) : [4]
  return %4
}
)");
  MemoryPlan good = plan(g);
  MemoryPlan p = good;
  p.buffers[1].offset = 500;
  p.peak_bytes = 500 + 1024;
  CHECK_THAT(check_plan(g, p), Contains("misaligned"));
  p.buffers[1].offset = 0;
  p.peak_bytes = 1024;
  CHECK(check_plan(g, p) == "buffers of %1 and %2 are live at the same step and overlap in memory");
  p = good;
  p.buffers[0].last = 1;
  CHECK_THAT(check_plan(g, p), Contains("lifetime 1..1, expected 1..2"));
  p = good;
  p.peak_bytes += 64;
  CHECK_THAT(check_plan(g, p), Contains("wrong peak"));
}

TEST_CASE("memory plan: zero_join's fixed networks", "[memory_plan]") {
  // Selecting `zero` leaves a zero node without inputs, planned like any buffer.
  Graph zero = example("zero_join.nas", R"({"choices": {"edge": "zero"}})");
  MemoryPlan p = plan(zero);
  CHECK(print_plan(zero, p) == R"(%0 input -> caller input, 3072 B
%1 zero -> [offset 0, 8192 B] live 1..2
%2 conv -> caller output, 8192 B
arena peak: 8192 bytes (naive: 8192 bytes, batch 1)
)");
  Graph conv = example("zero_join.nas", R"({"choices": {"edge": "conv2"}})");
  CHECK(print_plan(conv, plan(conv, 2)) == R"(%0 input -> caller input, 6144 B
%1 conv -> [offset 0, 16384 B] live 1..2
%2 conv -> [offset 16384, 16384 B] live 2..3
%3 conv -> caller output, 16384 B
arena peak: 32768 bytes (naive: 32768 bytes, batch 2)
)");
}

TEST_CASE("memory plan: the examples' fixed networks", "[memory_plan]") {
  for (const char* op : {"conv", "max_pool", "identity"}) {
    Graph g = example("tiny.nas", std::string(R"({"choices": {"op": ")") + op + "\"}}");
    MemoryPlan p = plan(g);
    INFO(op << "\n" << print_plan(g, p));
    CHECK(p.peak_bytes < p.naive_bytes);
  }
  Graph mb = example("mobilenet_v2.nas");
  MemoryPlan p1 = plan(mb, 1), p8 = plan(mb, 8);
  INFO(print_plan(mb, p1));
  CHECK(p1.peak_bytes < p1.naive_bytes);
  CHECK(p8.peak_bytes < p8.naive_bytes);
  CHECK(p8.naive_bytes == 8 * p1.naive_bytes);
  CHECK(p1.peak_bytes == 9633792);
  CHECK(p1.naive_bytes == 78718720);
  CHECK(p1.peak_bytes == p1.live_bytes_max);  // optimal here
  CHECK(p8.peak_bytes >= p8.live_bytes_max);
  // Deterministic: the same graph plans the same way.
  CHECK(print_plan(mb, plan(mb, 1)) == print_plan(mb, p1));
}

TEST_CASE("memory plan: misuse is a clear error", "[memory_plan]") {
  Graph fixed = example("tiny.nas", R"({"choices": {"op": "conv"}})");
  // Batch sizes come from checked flags and configs: a bad one here is a bug.
  CHECK_THROWS_AS(plan_memory(fixed, 0), InternalError);
  CHECK_THROWS_WITH(plan_memory(fixed, -3),
                    Contains("memory plan: batch must be at least 1, got -3"));
  CHECK_THROWS_WITH(plan_memory(fixed, 1, 0),
                    Contains("memory plan: bytes per element must be at least 1, got 0"));
  // A network too large at the batch is the user's, located at the node's source.
  CHECK_THROWS_AS(plan_memory(fixed, int64_t{1} << 60), UserError);
  CHECK_THROWS_WITH(
      plan_memory(fixed, int64_t{1} << 60),
      StartsWith(NASC_SOURCE_DIR "/examples/tiny.nas:") && Contains("is too large to allocate"));
}

// --- nasc ir --stage plan --------------------------------------------------------------

struct Result {
  int status = -1;
  std::string out, err;
};

Result nasc(const std::string& args) {
  std::string dir = std::string(NASC_SOURCE_DIR);
  static int counter = 0;
  std::string base =
      "/tmp/nasc_plan_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::string out = base + ".out", err = base + ".err";
  std::string cmd =
      "cd '" + dir + "' && '" NASC_BINARY "' " + args + " > '" + out + "' 2> '" + err + "'";
  int raw = std::system(cmd.c_str());
  Result r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    std::remove(p.c_str());
    return s.str();
  };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

TEST_CASE("nasc ir --stage plan", "[memory_plan][cli]") {
  Result ok = nasc("ir examples/zero_join.nas --stage plan --arch examples/zero_join_conv2.json");
  CHECK(ok.status == 0);
  CHECK(ok.err == "");
  CHECK_THAT(ok.out, Contains("arena peak: 16384 bytes (naive: 16384 bytes, batch 1)\n"));
  Result b8 = nasc("ir examples/mobilenet_v2.nas --stage plan --batch 8");
  CHECK(b8.status == 0);
  CHECK_THAT(b8.out, Contains(", batch 8)\n"));

  // A supernet is planned whole: every candidate has its buffer (DARTS' full mode); the
  // choice's weighted sum is fused into the relu that reads it.
  Result choices = nasc("ir examples/tiny.nas --stage plan");
  CHECK(choices.status == 0);
  CHECK_THAT(choices.out, Contains("%2 conv -> [offset"));
  CHECK_THAT(choices.out, Contains("%3 max_pool -> [offset"));
  CHECK_THAT(choices.out, Contains("%5 choice -> fused into %6"));
  Result zero = nasc("ir examples/mobilenet_v2.nas --stage plan --batch 0");
  CHECK(zero.status == 1);
  CHECK_THAT(zero.err, Contains("--batch needs a positive integer, got \"0\""));
  Result word = nasc("ir examples/mobilenet_v2.nas --stage plan --batch 8x");
  CHECK(word.status == 1);
  CHECK_THAT(word.err, Contains("--batch needs a positive integer, got \"8x\""));
  Result huge = nasc("ir examples/mobilenet_v2.nas --stage plan --batch 100000000000000");
  CHECK(huge.status == 1);
  CHECK_THAT(huge.err, Contains("is too large"));
  Result where = nasc("ir examples/mobilenet_v2.nas --batch 8");
  CHECK(where.status == 1);
  CHECK_THAT(where.err, Contains("--batch does not apply to `nasc ir --stage ir`; it is for "
                                 "`nasc ir --stage memory-plan|lower|plan|train-plan`"));
  Result check = nasc("check examples/mobilenet_v2.nas --batch 8");
  CHECK(check.status == 1);
  CHECK_THAT(check.err, Contains("--batch does not apply to `nasc check`"));
}

}  // namespace
}  // namespace nas
