// The two error channels end to end: the support kinds and what they render, the shared
// helpers (did-you-mean, little-endian I/O, the strict JSON and config readers), and the
// CLI's exit codes: every user error exits 1 with its location, every internal error 2
// with "internal error". Each test checks the message, the location and the type or exit
// code, so that a regression to an unlocated message or to the other channel fails.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compiler/pipeline/pipeline.h"
#include "runtime/exec/executor.h"
#include "support/config_section.h"
#include "support/did_you_mean.h"
#include "support/errors.h"
#include "support/json_file.h"
#include "support/little_endian.h"
#include "tests/cli_test_util.h"
#include "tests/ir_test_util.h"

namespace nas {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;
using nlohmann::json;

// The exception of type E that f() throws (another type, or none, fails the test).
template <typename E, typename F>
E caught(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e;
  }
  FAIL("no exception of the expected type was thrown");
  throw;  // not reached
}

std::string write_scratch(const std::string& name, const std::string& text) {
  std::string path = test::scratch_path(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// ---------------------------------------------------------------------------------------
// The kinds

TEST_CASE("errors: each user-error kind renders its place before the message", "[errors]") {
  UserError plain("file.bin", "is empty");
  CHECK(std::string(plain.what()) == "file.bin: is empty");
  CHECK(plain.where() == "file.bin");
  CHECK(plain.message() == "is empty");
  CHECK(std::string(UserError("", "no place").what()) == "no place");

  ConfigError config("cfg.json", "data.batch_size", "must be >= 1, got 0");
  CHECK(std::string(config.what()) == "cfg.json: data.batch_size: must be >= 1, got 0");
  CHECK(config.file() == "cfg.json");
  CHECK(config.key_path() == "data.batch_size");
  CHECK(std::string(ConfigError("", "epochs", "x").what()) == "epochs: x");

  JsonError pointer("arch.json", "/choices/op", "unknown candidate");
  CHECK(std::string(pointer.what()) == "arch.json: /choices/op: unknown candidate");
  CHECK(pointer.pointer() == "/choices/op");

  DataFileError data("labels.idx", "label 10 is out of range", 9);
  CHECK(std::string(data.what()) == "labels.idx: byte 9: label 10 is out of range");
  CHECK(data.byte_offset() == 9);
  CHECK(std::string(DataFileError("w.bin", "cannot open").what()) == "w.bin: cannot open");

  LutEntryError entry("lut.json", "cpu conv k=3", "\"ms\" must be a number");
  CHECK(std::string(entry.what()) == "lut.json: entry \"cpu conv k=3\": \"ms\" must be a number");
  CHECK(entry.entry() == "cpu conv k=3");
  CHECK(std::string(LutEntryError("lut.json", "", "no \"format\"").what()) ==
        "lut.json: no \"format\"");

  // Every kind is a UserError, and no user error is an internal one or the reverse.
  const UserError& as_user = config;
  CHECK(dynamic_cast<const InternalError*>(static_cast<const std::exception*>(&as_user)) ==
        nullptr);
}

TEST_CASE("errors: NAS_CHECK throws an InternalError with the condition and its place",
          "[errors]") {
  auto e = caught<InternalError>([] { NAS_CHECK(1 + 1 == 3, "arithmetic is broken"); });
  CHECK_THAT(e.what(), StartsWith("internal error: 1 + 1 == 3 : arithmetic is broken (at "
                                  "tests/test_errors.cpp:"));
  // An InternalError is not a UserError: the CLI can never report it as exit 1.
  CHECK(dynamic_cast<const UserError*>(static_cast<const std::exception*>(&e)) == nullptr);
}

// ---------------------------------------------------------------------------------------
// Helpers

TEST_CASE("errors: did you mean", "[errors]") {
  const std::vector<std::string> keys = {"epochs", "seed", "threads", "data"};
  CHECK(edit_distance("epoch", "epochs") == 1);
  CHECK(closest_name("thread", keys) == "threads");
  CHECK(did_you_mean("sede", keys) == "; did you mean `seed`?");
  CHECK(did_you_mean("optimizer", keys).empty());
  CHECK(did_you_mean_or_choices("dat", keys) == " (did you mean data?)");
  CHECK(did_you_mean_or_choices("xyzzy", keys) ==
        " (expected one of: epochs, seed, threads, data)");
}

TEST_CASE("errors: little-endian integers round trip at every width", "[errors]") {
  const uint64_t v = 0x0102030405060708ULL;
  for (int bytes = 1; bytes <= 8; ++bytes) {
    std::string s;
    put_le(s, v, bytes);
    REQUIRE(s.size() == static_cast<size_t>(bytes));
    CHECK(static_cast<unsigned char>(s[0]) == 0x08);  // least significant byte first
    const uint64_t mask = bytes == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * bytes)) - 1;
    CHECK(get_le(reinterpret_cast<const unsigned char*>(s.data()), bytes) == (v & mask));
  }
  std::vector<uint8_t> blob;
  put_le(blob, 0xdeadbeefULL, 4);
  CHECK(blob == std::vector<uint8_t>{0xef, 0xbe, 0xad, 0xde});
  CHECK(get_le(blob.data(), 4) == 0xdeadbeefULL);
  unsigned char words[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  swap_words(words, 2);
  CHECK(std::vector<unsigned char>(words, words + 8) ==
        std::vector<unsigned char>{4, 3, 2, 1, 8, 7, 6, 5});
}

// ---------------------------------------------------------------------------------------
// The strict JSON reader

TEST_CASE("json_file: a syntax error is located at its line and column", "[errors][json]") {
  auto e = caught<JsonSyntaxError>([] { parse_json("{\n  \"a\": 1,\n  \"b\": }\n", "x.json"); });
  CHECK(e.file() == "x.json");
  CHECK(e.line() == 3);
  CHECK(e.col() == 8);
  CHECK_THAT(e.what(), StartsWith("x.json:3:8: invalid JSON: syntax error while parsing value"));
  // No nlohmann tag or repeated position in the message.
  CHECK_THAT(e.what(), !Contains("json.exception") && !Contains("parse error at line"));
  // The end of the input, and bytes that are not text, printed escaped.
  CHECK_THAT(caught<JsonSyntaxError>([] { parse_json("[1, 2", "t.json"); }).what(),
             StartsWith("t.json:1:6: invalid JSON:") && Contains("unexpected end of input"));
  CHECK_THAT(caught<JsonSyntaxError>([] { parse_json("\xff{}", "b.json"); }).what(),
             StartsWith("b.json:1:1: invalid JSON") && Contains("\\xff"));
}

TEST_CASE("json_file: a number beyond a double is a located user error", "[errors][json]") {
  auto e = caught<JsonSyntaxError>(
      [] { parse_json("{\"ok\": 1,\n \"ignored\": [2, 1e999999]}", "n.json"); });
  CHECK(e.line() == 2);
  CHECK(e.col() == 17);  // the number's first digit
  CHECK(std::string(e.what()) ==
        "n.json:2:17: number 1e999999 is too large (beyond a double's range, ±1.8e308)");
  CHECK_THAT(caught<JsonSyntaxError>([] { parse_json("-1e999999", "m.json"); }).what(),
             StartsWith("m.json:1:1: number -1e999999 is too large"));
  // Large but representable numbers are fine, and a tiny one is 0.
  CHECK(parse_json("[1e308, 1e-999999]", "f.json")[0].get<double>() == 1e308);
  CHECK(parse_json("[1e308, 1e-999999]", "f.json")[1].get<double>() == 0.0);
}

TEST_CASE("json_file: a key given twice is refused at the second one", "[errors][json]") {
  auto e = caught<JsonSyntaxError>(
      [] { parse_json("{\"data\": {\"lr\": 1,\n  \"lr\": 2}}", "d.json"); });
  CHECK(std::string(e.what()) == "d.json:2:3: duplicate key data.lr");
  CHECK(e.byte() == 21);
  // Keys with escaped quotes, and objects inside arrays, are placed and named as well.
  CHECK(std::string(caught<JsonSyntaxError>([] {
                      parse_json(R"({"a\"b": 1, "a\"b": 2})", "q.json");
                    }).what()) == "q.json:1:13: duplicate key a\"b");
  CHECK(std::string(caught<JsonSyntaxError>([] {
                      parse_json(R"({"l": [0, {"k": 1, "k": 2}]})", "a.json");
                    }).what()) == "a.json:1:20: duplicate key l[1].k");
  // The same key in different objects is fine.
  CHECK(parse_json(R"({"a": {"k": 1}, "b": {"k": 2}})", "ok.json")["b"]["k"] == 2);
}

TEST_CASE("json_file: nesting deeper than 256 is refused at its bracket, cheaply",
          "[errors][json]") {
  // 256 levels read; the 257th opening bracket is the error, on line 2 here.
  const std::string ok = std::string(256, '[') + std::string(256, ']');
  CHECK(parse_json(ok, "ok.json").is_array());
  const std::string deep = "{\"a\":\n" + std::string(256, '[') + std::string(256, ']') + "}";
  auto e = caught<JsonSyntaxError>([&] { parse_json(deep, "deep.json"); });
  CHECK(e.line() == 2);
  CHECK(e.col() == 256);
  CHECK_THAT(e.what(), StartsWith("deep.json:2:256: nested more than 256 deep"));
  // 200,000 levels (an arch file like this once took 23 GB) fail as fast as 257.
  const std::string hostile = "{\"choices\": " + std::string(200000, '[');
  CHECK_THAT(caught<JsonSyntaxError>([&] { parse_json(hostile, "h.json"); }).what(),
             StartsWith("h.json:1:268: nested more than 256 deep"));
}

TEST_CASE("json_file: files that cannot be read, and lines skipped on purpose", "[errors][json]") {
  const std::string missing = test::scratch_path("missing.json");
  CHECK_THAT(caught<UserError>([&] { read_json_file(missing); }).what(),
             StartsWith(missing + ": cannot read: No such file"));
  const std::string folder = test::scratch_path("folder.json");
  std::filesystem::create_directories(folder);
  CHECK_THAT(caught<UserError>([&] { read_json_file(folder); }).what(),
             Equals(folder + ": cannot read: it is a folder, not a file"));
  const std::string good = write_scratch("good.json", "{\"a\": [1, 2.5, \"x\", null, true]}");
  CHECK(read_json_file(good)["a"][1] == 2.5);
  CHECK(try_parse_json("{\"epoch\": 3}")->at("epoch") == 3);
  CHECK_FALSE(try_parse_json("{\"epoch\": 3"));
  CHECK_FALSE(try_parse_json("{\"epoch\": 1e999999}"));
  CHECK_FALSE(try_parse_json("{\"epoch\": 1, \"epoch\": 2}"));
}

TEST_CASE("config_section: unknown keys, types and ranges name the key path", "[errors][json]") {
  const json j = json::parse(R"({"batch_sze": 8, "lr": "0.1", "epochs": 0, "mode": "fiar",
                                 "sub": {"x": []}})");
  ConfigSection top(j, "c.json", "train");
  CHECK(std::string(caught<ConfigError>([&] {
                      top.check_keys({"batch_size", "lr", "epochs", "mode", "sub"});
                    }).what()) ==
        "c.json: train.batch_sze: unknown key (did you mean batch_size?)");
  auto lr = caught<ConfigError>([&] { top.get_number("lr", 0, 0); });
  CHECK(lr.key_path() == "train.lr");
  CHECK(lr.message() == "expected a number, got string");
  CHECK(std::string(caught<ConfigError>([&] { top.get_int("epochs", 1, 1); }).what()) ==
        "c.json: train.epochs: must be >= 1, got 0");
  CHECK(std::string(caught<ConfigError>([&] {
                      top.get_one_of("mode", "sample", {"sample", "fair"});
                    }).what()) ==
        "c.json: train.mode: expected one of sample, fair, got \"fiar\" (did you mean fair?)");
  ConfigSection sub = top.section("sub");
  CHECK(std::string(caught<ConfigError>([&] { sub.get_string("x", ""); }).what()) ==
        "c.json: train.sub.x: expected a string, got array");
  CHECK(top.get_int("absent", 7, 1) == 7);
  CHECK(std::string(caught<ConfigError>([&] {
                      ConfigSection(j["lr"], "c.json", "train.lr");
                    }).what()) == "c.json: train.lr: expected an object, got string");
}

// ---------------------------------------------------------------------------------------
// Checked attribute access

TEST_CASE("plan steps: a missing attribute is an internal error naming it", "[errors]") {
  Step s;
  s.kind = StepKind::Conv;
  s.op = "conv";
  s.name = "stem/conv";
  s.ints["kernel"] = 3;
  CHECK(s.int_attr("kernel") == 3);
  CHECK(s.int_attr_or("dilation", 1) == 1);
  CHECK(s.float_attr_or("slope", 0.25) == 0.25);
  auto e = caught<InternalError>([&] { s.int_attr("stride"); });
  CHECK_THAT(e.what(), Contains("step `stem/conv` (op conv) has no int attribute `stride`"));
  CHECK_THAT(caught<InternalError>([&] { s.float_attr("eps"); }).what(),
             Contains("has no float attribute `eps`"));
  // A map read would have inserted the attribute: the checked read leaves the step alone.
  CHECK(s.ints.count("stride") == 0);

  // Through the library: a lowered plan whose conv step lost an attribute fails when the
  // backend builds its kernels, naming the step and the attribute, not with "map::at".
  Graph net = test::compile_source(
      "network n(x: tensor[1, 6, 6]) {\n"
      "  return linear(global_avg_pool(conv(x, 2, kernel=3, pad=1)), 3);\n"
      "}\n");
  PlanOptions po;
  po.batch = 2;
  ExecPlan plan = compile_plan(net, po);
  bool dropped = false;
  for (Step& step : plan.steps)
    if (step.kind == StepKind::Conv) dropped = step.ints.erase("kernel") == 1;
  REQUIRE(dropped);
  ParamStore store;
  auto broken = caught<InternalError>([&] { Executor(plan, store, 1); });
  CHECK_THAT(broken.what(),
             StartsWith("internal error: ") && Contains("(op conv) has no int attribute `kernel`"));
}

// ---------------------------------------------------------------------------------------
// The CLI: exit 1 with the location for user errors, 2 for internal ones

void user_error(const test::CliResult& r, const std::string& fragment) {
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains(fragment));
  CHECK_THAT(r.err, !Contains("internal error"));
}

TEST_CASE("nasc: a huge number in an arch file, even under an ignored key, is exit 1 at it",
          "[errors][cli]") {
  const std::string arch =
      write_scratch("huge_arch.json", "{\"choices\": {\"op\": \"conv\"},\n \"score\": 1e999999}\n");
  test::CliResult r = test::run_nasc("check examples/tiny.nas --arch " + arch);
  user_error(r, arch + ":2:11: error: arch file: number 1e999999 is too large");
  // Its neighbours: a duplicate choice and broken syntax, located the same way.
  const std::string twice =
      write_scratch("twice_arch.json", "{\"choices\": {\"op\": \"conv\",\n \"op\": \"identity\"}}");
  user_error(test::run_nasc("check examples/tiny.nas --arch " + twice),
             twice + ":2:2: error: arch file: duplicate key choices.op");
}

TEST_CASE("nasc: an arch file and a latency table nested 200,000 deep are exit 1 at once",
          "[errors][cli]") {
  const std::string arch =
      write_scratch("deep_arch.json", "{\"choices\": " + std::string(200000, '[') + "\n");
  user_error(test::run_nasc("check examples/tiny.nas --arch " + arch),
             arch + ":1:268: error: arch file: nested more than 256 deep");
  const std::string lut = write_scratch("deep_lut.json", std::string(200000, '['));
  test::CliResult r =
      test::run_nasc("estimate examples/tiny.nas --arch examples/tiny_conv.json --lut " + lut);
  user_error(r, lut + ":1:257:");
  CHECK_THAT(r.err, Contains("nested more than 256 deep"));
}

TEST_CASE("nasc train and search: a huge number in a config is exit 1 at its line and column",
          "[errors][cli]") {
  const std::string cfg =
      write_scratch("huge_train.json", "{\"epochs\": 1,\n  \"note\": {\"x\": 1e999999}}\n");
  const std::string out = test::scratch_path("huge_train_run");
  user_error(test::run_nasc("train examples/tiny.nas --arch examples/tiny_conv.json -c " + cfg +
                            " -o " + out),
             "error: " + cfg + ":2:17: number 1e999999 is too large");
  const std::string search = write_scratch("huge_search.json",
                                           "{\"pnas\": {\"samples\": 2,\n \"baseline_decay\": "
                                           "1e999999}}\n");
  user_error(test::run_nasc("search examples/tiny.nas -a pnas -c " + search + " -o " +
                            test::scratch_path("huge_search_run")),
             "error: " + search + ":2:20: number 1e999999 is too large");
  // A key path error in the same file names the file and the key, not a line.
  const std::string typo = write_scratch("typo_search.json", "{\"pnas\": {\"sample\": 2}}");
  user_error(test::run_nasc("search examples/tiny.nas -a pnas -c " + typo + " -o " +
                            test::scratch_path("typo_search_run")),
             "error: " + typo + ": pnas.sample: unknown key (did you mean samples?)");
}

TEST_CASE("nasc estimate: a malformed latency-table entry is exit 1 naming the entry",
          "[errors][cli]") {
  json lut = {{"format", 1},
              {"batch", 1},
              {"network", "tiny"},
              {"device",
               {{"backend", "cpu"},
                {"cpu_model", "x"},
                {"cores", 1},
                {"threads", 1},
                {"onednn_version", "y"}}},
              {"settings",
               {{"warmup", 1},
                {"repetitions", 1},
                {"trim", 0},
                {"statistic", "min"},
                {"min_sample_us", 0}}},
              {"entries",
               {{"cpu relu in=[1,8,28,28]",
                 {{"ms", -0.5},
                  {"median_ms", 1},
                  {"mean_ms", 1},
                  {"min_ms", 1},
                  {"max_ms", 1},
                  {"samples", 3}}}}}};
  const std::string path = write_scratch("bad_entry_lut.json", lut.dump(1));
  user_error(
      test::run_nasc("estimate examples/tiny.nas --arch examples/tiny_conv.json --lut " + path),
      "error: " + path + ": entry \"cpu relu in=[1,8,28,28]\": \"ms\" must be a number in 0..");
}

TEST_CASE("nasc train and search: an internal error deep in a run is exit 2, never 1",
          "[errors][cli]") {
  // The test-only kill point throws an InternalError after the first optimizer step, as a
  // broken invariant in the executor or a searcher would.
  test::ChildConditions at_step_1;
  at_step_1.kill_at = "internal-error:1";
  for (const std::string& command :
       {std::string("train examples/tiny.nas --arch examples/tiny_conv.json --data synthetic"),
        std::string("search examples/tiny.nas --data synthetic")}) {
    const std::string out = test::scratch_path("internal_run");
    test::CliResult r = test::run_nasc_under(command + " --epochs 1 -o " + out, at_step_1);
    INFO(command << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("nasc: internal error: ") &&
                          Contains("NASC_TEST_KILL_AT stops the run after step 1") &&
                          Contains("(at runtime/train/kill_points.cpp:") &&
                          Contains("This is a bug in nasc; please report it"));
    CHECK_THAT(r.err, !Contains("nasc: error:") && !Contains("\nerror:"));
  }
  // A mistyped test setting is the user's mistake: exit 1.
  test::ChildConditions typo;
  typo.kill_at = "internal-eror:1";
  test::CliResult bad = test::run_nasc_under(
      "train examples/tiny.nas --arch examples/tiny_conv.json --data synthetic --epochs 1 -o " +
          test::scratch_path("typo_run"),
      typo);
  user_error(bad,
             "NASC_TEST_KILL_AT: expected step:N, checkpoint-write:N, internal-error:N or stall:N");
}

}  // namespace
}  // namespace nas
