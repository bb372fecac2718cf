// The JIT backend (runtime/jit): the element-wise formulas it compiles, its module's text,
// and its disk cache of objects. Whole plans on it against the CPU interpreter are in
// test_backend_networks.cpp, the fusion tests run random elementwise chains and a
// multi-chunk region on it, and the conformance test every op and fusion pattern (it runs on
// every registered backend).
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "compiler/pipeline/pipeline.h"
#include "runtime/jit/cache_limit.h"
#include "runtime/jit/formula_codegen.h"
#include "runtime/jit/jit_plan.h"
#include "runtime/jit/schedule.h"
#include "support/elementwise_ops.h"
#include "tests/file_test_util.h"
#include "tests/ir_test_util.h"
#include "tests/plan_compare_util.h"

using namespace nas;
using namespace nas::test;

namespace {}  // namespace

TEST_CASE("jit: every element-wise formula parses to its C++ definition", "[jit]") {
  const double points[] = {-7.0, -3.0, -2.5, -1.0, -0.25, 0.0, 0.25, 1.0, 2.9, 3.0, 6.0, 8.5};
  for (const ElementwiseFn& fn : elementwise_fns()) {
    INFO(fn.name);
    Formula value(fn.value_text), slope(fn.derivative_text);
    for (double x : points) {
      INFO("x = " << x);
      CHECK(value.evaluate(x, 0.2) == Approx(fn.value(x, 0.2)).margin(1e-12));
      CHECK(slope.evaluate(x, 0.2) == Approx(fn.derivative(x, 0.2)).margin(1e-12));
    }
  }
}

TEST_CASE("jit: a malformed formula is an internal error naming its column", "[jit]") {
  CHECK_THROWS_WITH(Formula("x +"), Catch::Contains("`x +` at column 4: unexpected end"));
  CHECK_THROWS_WITH(Formula("foo(x)"), Catch::Contains("unknown name `foo`"));
  CHECK_THROWS_WITH(Formula("max(x)"), Catch::Contains("max takes 2 arguments"));
  CHECK_THROWS_WITH(Formula("x > 0"), Catch::Contains("a condition where a number is needed"));
  CHECK_THROWS_AS(Formula("x ? 1 : 0"), InternalError);
}

TEST_CASE("jit: the object cache: a miss, a hit, and a corrupt entry rebuilt", "[jit][cache]") {
  Graph net = compile_source(R"(network n(x: tensor[2, 4, 4]) {
  return linear(flatten(relu(conv(x, 3, kernel=1)) * 2.0), 3);
}
)");
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  const ExecPlan plan = compile_plan(net, o);
  TempDir dir;
  JitCompileReport first = compile_plan_module(plan, dir.path.string());
  CHECK_FALSE(first.from_cache);
  CHECK(first.functions >= 2);  // the plan function and at least one region
  // One entry per module (the kernels, the schedule), keys joined by `+`.
  const std::string kernels_key = first.cache_key.substr(0, first.cache_key.find('+'));
  const std::string schedule_key = first.cache_key.substr(first.cache_key.find('+') + 1);
  CHECK(kernels_key.size() == 40);
  CHECK(schedule_key.size() == 40);
  CHECK(std::filesystem::exists(dir / (schedule_key + ".o")));
  const std::string entry = dir / (kernels_key + ".o");
  REQUIRE(std::filesystem::exists(entry));

  JitCompileReport second = compile_plan_module(plan, dir.path.string());
  CHECK(second.from_cache);
  CHECK(second.cache_key == first.cache_key);
  CHECK(second.corrupt == 0);

  // A flipped byte in the object: the entry does not verify, is deleted and rebuilt.
  std::string bytes = read_bytes(entry);
  bytes[bytes.size() - 10] ^= 0x5a;
  write_bytes(entry, bytes);
  JitCompileReport third = compile_plan_module(plan, dir.path.string());
  CHECK_FALSE(third.from_cache);
  CHECK(third.corrupt == 1);
  // A truncated one too.
  bytes = read_bytes(entry);
  write_bytes(entry, bytes.substr(0, 12));
  JitCompileReport fourth = compile_plan_module(plan, dir.path.string());
  CHECK_FALSE(fourth.from_cache);
  CHECK(fourth.corrupt == 1);
  CHECK(compile_plan_module(plan, dir.path.string()).from_cache);  // rewritten whole

  // The schedule's entry, which a hit loads without generating the module, likewise.
  const std::string schedule_entry = dir / (schedule_key + ".o");
  bytes = read_bytes(schedule_entry);
  bytes[bytes.size() / 2] ^= 0x21;
  write_bytes(schedule_entry, bytes);
  JitCompileReport fifth = compile_plan_module(plan, dir.path.string());
  CHECK_FALSE(fifth.from_cache);
  CHECK(fifth.corrupt == 1);
  CHECK(fifth.cache_key == first.cache_key);
  CHECK(compile_plan_module(plan, dir.path.string()).from_cache);

  // Another plan is another entry.
  o.batch = 3;
  CHECK(compile_plan_module(compile_plan(net, o), dir.path.string()).cache_key != first.cache_key);
}

TEST_CASE("jit: the schedule's cache key is its description, every field of it", "[jit][cache]") {
  ScheduleDescription base;
  base.chunks = {
      {{3,
        {{0, 0, false, false, false, {}, ""}, {4, 7, true, false, false, {1, 2}, "nasc_region_4"}}},
       {-1, {{5, 8, false, true, true, {7}, ""}}}}};
  const std::string key = schedule_key_text(base);
  CHECK(key.rfind("nasc schedule, generator ", 0) == 0);
  CHECK(schedule_key_text(base) == key);  // deterministic
  std::vector<ScheduleDescription> changed(10, base);
  changed[0].chunks[0][0].guard = 2;
  changed[1].chunks[0][0].steps[1].index = 6;
  changed[2].chunks[0][0].steps[1].node = 9;
  changed[3].chunks[0][0].steps[1].weight_grad = false;
  changed[4].chunks[0][1].steps[0].arch_grad = false;
  changed[5].chunks[0][1].steps[0].ends_forward_only = false;
  changed[6].chunks[0][0].steps[1].needs = {1};
  changed[7].chunks[0][0].steps[1].region_entry = "";
  changed[8].chunks = {{base.chunks[0][0]}, {base.chunks[0][1]}};  // chunked otherwise
  changed[9].chunks[0][0].steps.pop_back();
  for (size_t i = 0; i < changed.size(); ++i) {
    INFO("change " << i);
    CHECK(schedule_key_text(changed[i]) != key);
  }
  // The module made from a description verifies, whatever the description, and calls what
  // it says.
  for (const ScheduleDescription& d : changed) CHECK_NOTHROW(schedule_ir_text(d));
  const std::string ir = schedule_ir_text(base);
  // Every step is one call of the runtime: a region's with its entry, a library step's
  // with none.
  CHECK(ir.find("call i32 @nasc_jit_run_step(i8** %0, i64 4, i32 7, i32 (i8**)* @nasc_region_4)") !=
        std::string::npos);
  CHECK(ir.find("call i32 @nasc_jit_run_step(i8** %0, i64 0, i32 0, i32 (i8**)* null)") !=
        std::string::npos);
  CHECK(ir.find("define i32 @nasc_plan_chunk_0") != std::string::npos);
  CHECK(ir.find("nasc_plan_chunk_1") == std::string::npos);  // one chunk
  CHECK(schedule_ir_text(changed[8]).find("nasc_plan_chunk_1") != std::string::npos);
}

TEST_CASE("jit: a schedule splits into parts that call each other by name", "[jit][cache]") {
  ScheduleRegion region{
      -1, {{0, 0, false, false, false, {}, ""}, {1, 1, false, false, false, {0}, ""}}};
  ScheduleDescription whole;
  whole.chunks = {{region}, {region}, {region}};
  // Two steps a chunk: parts of at least three steps take two chunks, then one.
  const std::vector<ScheduleDescription> parts = split_schedule(whole, 3);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].first_chunk == 0);
  CHECK(parts[0].chunks.size() == 2);
  CHECK(parts[1].first_chunk == 2);
  CHECK(parts[1].chunks.size() == 1);
  CHECK(parts[1].total() == 3);
  CHECK(split_schedule(whole, 100).size() == 1);
  CHECK(schedule_key_text(parts[0]) != schedule_key_text(parts[1]));
  CHECK(schedule_key_text(parts[0]) != schedule_key_text(whole));
  // The first part holds the plan function and declares the chunk it lacks; the second
  // defines that chunk and no plan function.
  const std::string first = schedule_ir_text(parts[0]), second = schedule_ir_text(parts[1]);
  CHECK(first.find("define i32 @nasc_plan(") != std::string::npos);
  CHECK(first.find("declare i32 @nasc_plan_chunk_2(") != std::string::npos);
  CHECK(first.find("define i32 @nasc_plan_chunk_1(") != std::string::npos);
  CHECK(second.find("define i32 @nasc_plan_chunk_2(") != std::string::npos);
  CHECK(second.find("@nasc_plan(") == std::string::npos);
}

TEST_CASE("jit: the object cache stays under its size limit, least recently used out first",
          "[jit][cache]") {
  TempDir dir;
  // Entries of 1,000 bytes under a 4,000-byte limit, each a minute more recent than the one
  // before (explicit times: the file system's clock may not tell writes a moment apart).
  const auto t0 = std::filesystem::file_time_type::clock::now() - std::chrono::hours(1);
  auto entry = [&](const std::string& key) { return dir / (key + ".o"); };
  auto store = [&](const std::string& key, int minute) {
    write_bytes(entry(key), std::string(1000, 'x'));
    std::filesystem::last_write_time(entry(key), t0 + std::chrono::minutes(minute));
  };
  for (int i = 0; i < 4; ++i) store("k" + std::to_string(i), i);
  write_bytes(dir / "notes.txt", std::string(5000, 'n'));          // not an entry: never counted
  CHECK(evict_least_recently_used(dir.path.string(), 4000) == 0);  // at the limit, not over
  // k0 used again (a hit refreshes the time), then a fifth entry: over the limit, so the
  // least recently used go until at most 3,000 bytes are left.
  std::filesystem::last_write_time(entry("k0"), t0 + std::chrono::minutes(10));
  store("k4", 11);
  CHECK(evict_least_recently_used(dir.path.string(), 4000) == 2);
  CHECK_FALSE(std::filesystem::exists(entry("k1")));
  CHECK_FALSE(std::filesystem::exists(entry("k2")));
  for (const char* kept : {"k0", "k3", "k4"}) {
    INFO(kept);
    CHECK(std::filesystem::exists(entry(kept)));
  }
  CHECK(std::filesystem::exists(dir / "notes.txt"));
  CHECK(evict_least_recently_used(dir / "missing", 1) == 0);  // no directory
}

// A small inference plan with one elementwise region, for the cache's tests.
static ExecPlan small_inference_plan() {
  Graph net = compile_source(R"(network n(x: tensor[2, 4, 4]) {
  return linear(flatten(relu(conv(x, 3, kernel=1)) * 2.0), 3);
}
)");
  PlanOptions o;
  o.batch = 2;
  return compile_plan(net, o);
}

TEST_CASE("jit: a cache hit makes its entry the most recently used", "[jit][cache]") {
  const ExecPlan plan = small_inference_plan();
  TempDir dir;
  const JitCompileReport first = compile_plan_module(plan, dir.path.string());
  const std::string kernels = dir / (first.cache_key.substr(0, first.cache_key.find('+')) + ".o");
  const auto old = std::filesystem::file_time_type::clock::now() - std::chrono::hours(5);
  std::filesystem::last_write_time(kernels, old);
  REQUIRE(compile_plan_module(plan, dir.path.string()).from_cache);
  CHECK(std::filesystem::last_write_time(kernels) > old + std::chrono::hours(4));
}

TEST_CASE("jit: NASC_CACHE_MAX_MB sets the cache's limit, a bad value keeps the default",
          "[jit][cache]") {
  const uint64_t mb = 1 << 20;
  struct Restore {
    ~Restore() { ::unsetenv("NASC_CACHE_MAX_MB"); }
  } restore;
  ::unsetenv("NASC_CACHE_MAX_MB");
  CHECK(cache_max_bytes_from_env() == 512 * mb);
  ::setenv("NASC_CACHE_MAX_MB", "64", 1);
  CHECK(cache_max_bytes_from_env() == 64 * mb);
  for (const char* bad : {"0", "-5", "12abc", "lots", "1e3", "99999999999999999999999"}) {
    INFO(bad);
    ::setenv("NASC_CACHE_MAX_MB", bad, 1);
    CHECK(cache_max_bytes_from_env() == 512 * mb);
  }
}

TEST_CASE("jit: a cache directory that cannot be written costs only the cache", "[jit][cache]") {
  const ExecPlan plan = small_inference_plan();
  TempDir dir;
  write_bytes(dir / "file", "not a directory");
  for (const std::string& where : {dir / "file/cache", std::string("/proc/nasc_no_cache")}) {
    INFO(where);
    JitCompileReport first = compile_plan_module(plan, where);
    CHECK_FALSE(first.from_cache);
    CHECK_FALSE(compile_plan_module(plan, where).from_cache);  // nothing was stored
  }
  CHECK_FALSE(compile_plan_module(plan, "").from_cache);  // no cache at all
}

TEST_CASE("jit: the module's text and assembly", "[jit]") {
  Graph net = compile_source(R"(network n(x: tensor[2, 4, 4]) {
  return linear(flatten(relu(conv(x, 2, kernel=1) * 0.5) + x), 3);
}
)");
  PlanOptions o;
  o.batch = 1;
  const ExecPlan plan = compile_plan(net, o);
  const std::string ir = plan_llvm_ir(plan, false);
  CHECK(ir.find("define i32 @nasc_plan(i8** %0)") != std::string::npos);
  CHECK(ir.find("@nasc_jit_run_step") != std::string::npos);
  CHECK(ir.find("@nasc_jit_parallel_for") != std::string::npos);
  const bool vector_loop =
      ir.find("<8 x float>") != std::string::npos || ir.find("<16 x float>") != std::string::npos;
  CHECK(vector_loop);
  const std::string asm_text = plan_assembly(plan);
  CHECK(asm_text.find("nasc_plan:") != std::string::npos);
}
