// The nasc command line, run as a program on files in a temp folder: exit status 0 for
// success and 1 for any mistake in the input or the command line (never 2, which means
// a bug in nasc), messages on stderr in the file:line:col form, and the --json summary.
// Runs under `ulimit -s 8192`, the usual default stack, with hostile inputs.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <utility>

#include "tests/backend_test_util.h"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

struct Run {
  int status = -1;  // exit status, or -1 when nasc did not exit normally (a crash)
  std::string out, err;
  double seconds = 0;
};

// A temp folder for one test, with nasc run from inside it.
struct Cli {
  fs::path dir;
  Cli() {
    static int counter = 0;
    dir = fs::temp_directory_path() /
          ("nasc_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Cli() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name, std::ios::binary) << text;
    return name;
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // `args` is a shell fragment: quote what needs quoting.
  Run run(const std::string& args) const {
    std::string cmd = "cd '" + dir.string() + "' && ulimit -s 8192 && '" NASC_BINARY "' " + args +
                      " > stdout.txt 2> stderr.txt";
    auto start = std::chrono::steady_clock::now();
    int raw = std::system(cmd.c_str());
    Run r;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(dir / "stdout.txt");
    r.err = slurp(dir / "stderr.txt");
    return r;
  }
};

const char* kTiny =
    "network tiny(x: tensor[1, 28, 28], classes: int = 10, width: int = 8) {\n"
    "  let h = conv(x, width, kernel=3, pad=1);\n"
    "  h = choice \"op\" {\n"
    "    conv:     conv(h, width, kernel=3, pad=1),\n"
    "    max_pool: max_pool(h, 3, stride=1, pad=1),\n"
    "    identity: identity(h),\n"
    "  };\n"
    "  h = relu(h);\n"
    "  return linear(global_avg_pool(h), classes);\n"
    "}\n";

// Exit status 1 with `fragment` on stderr.
void user_error(const Run& r, const std::string& fragment) {
  INFO("stderr: " << r.err << "\nstdout: " << r.out);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains(fragment));
}

}  // namespace

TEST_CASE("nasc --help and --version", "[cli]") {
  Cli cli;
  Run help = cli.run("--help");
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Contains("Usage:"));
  CHECK_THAT(help.out, Contains("  check FILE.nas"));
  CHECK(cli.run("-h").status == 0);
  Run version = cli.run("--version");
  CHECK(version.status == 0);
  const std::string cpu_backends = std::string("nasc ") + NASC_VERSION +
                                   "\nbackends:\n  cpu: the host CPU: oneDNN kernels and plain "
                                   "loops (the reference)\n  jit (default): the host CPU with "
                                   "generated code: fused regions compiled by LLVM, oneDNN for "
                                   "the rest\n";
  CHECK(version.out.substr(0, cpu_backends.size()) == cpu_backends);
  // A nasc built with the CUDA toolkit lists the plugin's backend, and either the GPU it
  // found or why it cannot run.
  const std::string rest = version.out.substr(std::min(cpu_backends.size(), version.out.size()));
  if (nas::backend_name_problem("cuda").empty()) {
    CHECK_THAT(rest, StartsWith("  cuda: an NVIDIA GPU: cuDNN and cuBLAS kernels (the plugin "
                                "libnasc_cuda.so)\n    "));
    CHECK_THAT(rest, Contains("    not available here: ") || Contains("    device: "));
  } else {
    CHECK(rest.empty());
  }
}

TEST_CASE("nasc --backend: a registered name, else exit 1 with a suggestion", "[cli][backend]") {
  Cli cli;
  cli.write("tiny.nas", kTiny);
  for (const char* command : {"train tiny.nas -o run", "search tiny.nas -o run",
                              "profile tiny.nas -o lut.json", "estimate tiny.nas"}) {
    INFO(command);
    const std::string list = nas::test::backend_list();
    user_error(cli.run(std::string(command) + " --backend cdu"),
               "nasc: error: unknown backend `cdu`; did you mean `cpu`? (built in: " + list + ")");
    user_error(cli.run(std::string(command) + " --backend metal"),
               "nasc: error: unknown backend `metal` (built in: " + list + ")");
    user_error(cli.run(std::string(command) + " --backend"), "--backend needs a value");
  }
  user_error(cli.run("check tiny.nas --backend cpu"),
             "--backend does not apply to `nasc check`; it is for `nasc train`, `nasc search`, "
             "`nasc profile` and `nasc estimate`");
  cli.write("a.json", R"({"choices": {"op": "conv"}})");
  for (const char* interpreter : {"cpu", "interp"}) {  // interp: the interpreter's other name
    Run ok = cli.run(std::string("estimate tiny.nas --backend ") + interpreter +
                     " --arch a.json --measure --repetitions 2 --warmup 0");
    INFO(ok.err);
    CHECK(ok.status == 0);
  }
}

TEST_CASE("nasc --backend cuda: a missing, malformed or foreign plugin file is named, with why",
          "[cli][backend]") {
  if (!nas::backend_name_problem("cuda").empty()) {
    WARN("skipped: this nasc was built without the CUDA plugin (no CUDA toolkit)");
    return;
  }
  Cli cli;
  cli.write("tiny.nas", kTiny);
  cli.write("a.json", R"({"choices": {"op": "conv"}})");
  const std::string junk = (cli.dir / "junk.so").string();
  cli.write("junk.so", "not a shared object");
  const std::string missing = (cli.dir / "missing.so").string();
  const std::pair<std::string, std::string> cases[] = {
      {missing, "NASC_CUDA_PLUGIN=" + missing + " names no file"},
      {junk, junk + " did not load: "},
      {NASC_NOT_A_PLUGIN, " is not a nasc backend plugin (it has no nasc_backend_plugin function)"},
      {NASC_FAKE_PLUGIN,
       " was built by another build of nasc (plugin interface "
       "0.0.0-another-build, this nasc's "}};
  for (const auto& [plugin, says] : cases) {
    INFO("NASC_CUDA_PLUGIN=" << plugin);
    ::setenv("NASC_CUDA_PLUGIN", plugin.c_str(), 1);
    Run version = cli.run("--version");
    CHECK(version.status == 0);
    CHECK_THAT(version.out, Contains("    not available here: ") && Contains(says));
    Run train = cli.run("train tiny.nas --arch a.json -o run --backend cuda");
    CHECK(train.status == 1);
    CHECK_THAT(train.err, Contains("nasc: error: --backend cuda: ") && Contains(says));
    CHECK_FALSE(fs::exists(cli.dir / "run"));
  }
  ::unsetenv("NASC_CUDA_PLUGIN");
}

TEST_CASE("nasc --backend cuda where it cannot run: exit 1 before any work, with the reason",
          "[cli][backend][gpu]") {
  if (!nas::backend_name_problem("cuda").empty()) {
    WARN("skipped: this nasc was built without the CUDA plugin (no CUDA toolkit)");
    return;
  }
  std::string problem;
  for (const nas::BackendInfo& info : nas::registered_backends())
    if (info.name == "cuda") problem = nas::probe_backend(info).problem;
  if (problem.empty()) {
    WARN("skipped: a GPU is present; the cuda backend runs in the backend tests");
    return;
  }
  Cli cli;
  cli.write("tiny.nas", kTiny);
  cli.write("a.json", R"({"choices": {"op": "conv"}})");
  for (const char* command : {"train tiny.nas --arch a.json -o run", "search tiny.nas -o run",
                              "profile tiny.nas -o lut.json"}) {
    INFO(command);
    user_error(cli.run(std::string(command) + " --backend cuda"),
               "nasc: error: --backend cuda: " + problem);
    CHECK_FALSE(fs::exists(cli.dir / "run"));
    CHECK_FALSE(fs::exists(cli.dir / "lut.json"));
  }
}

TEST_CASE("nasc: mistakes on the command line", "[cli]") {
  Cli cli;
  cli.write("tiny.nas", kTiny);
  user_error(cli.run(""), "nasc: error: no command given");
  user_error(cli.run("compile tiny.nas"),
             "unknown command `compile` (commands: check, graph, ir, opt, train, search, profile, "
             "estimate, export)");
  user_error(cli.run("check"), "`nasc check` needs a .nas FILE");
  user_error(cli.run("check tiny.nas --bogus"), "unknown option --bogus");
  user_error(cli.run("check tiny.nas other.nas"), "unexpected argument `other.nas`");
  user_error(cli.run("check tiny.nas --arch"), "--arch needs a value");
  user_error(cli.run("ir tiny.nas --stage pruned"),
             "--stage pruned needs --arch A.json (the selection to prune with)");
  user_error(cli.run("ir tiny.nas --stage llvm-ir"),
             "unknown --stage `llvm-ir` (stages: load, elaborate, shapes, dce, partial-channels, "
             "zero-prune, cse, autodiff, remat, fusion, memory-plan, lower; also ast, ir, pruned, "
             "grad, plan, "
             "train-plan, fused, llvm, asm)");
  user_error(cli.run("ir tiny.nas --stage lvm"), "unknown --stage `lvm`; did you mean `llvm`?");
  user_error(cli.run("ir tiny.nas --stage llvm --dump-after bogus"),
             "unknown --dump-after `bogus` (stages: load,");
  user_error(cli.run("graph tiny.nas -o out.xyz"),
             "cannot tell the output format from \"out.xyz\"");
}

TEST_CASE("nasc: a mistyped command, flag or stage gets a suggestion", "[cli]") {
  Cli cli;
  cli.write("tiny.nas", kTiny);
  user_error(cli.run("chek tiny.nas"),
             "nasc: error: unknown command `chek`; did you mean `check`? (commands: check, graph, "
             "ir, opt, train, search, profile, estimate, export)");
  user_error(cli.run("check tiny.nas --jsn"), "unknown option --jsn; did you mean `--json`?");
  user_error(cli.run("ir tiny.nas --no-location"),
             "unknown option --no-location; did you mean `--no-locations`?");
  user_error(cli.run("ir tiny.nas --stage pruend"),
             "unknown --stage `pruend`; did you mean `pruned`?");
  // A one-letter flag is close to every other: no suggestion.
  Run r = cli.run("check tiny.nas -x");
  user_error(r, "unknown option -x");
  CHECK_THAT(r.err, !Contains("did you mean"));
}

TEST_CASE(
    "nasc ir: NASC_JIT_BATCHNORM and NASC_JIT_DEPTHWISE=library leave those steps to the "
    "library",
    "[cli][jit]") {
  struct Switch {
    const char* variable;
    const char* file;   // in tests/filecheck
    const char* body;   // what the generated code defines
    const char* trace;  // in every name of that code
  };
  for (const Switch& sw : {Switch{"NASC_JIT_BATCHNORM", "jit_batchnorm.nas",
                                  "define void @nasc_batchnorm_body_", "nasc_batchnorm"},
                           Switch{"NASC_JIT_DEPTHWISE", "jit_depthwise.nas",
                                  "define void @nasc_depthwise_body_", "nasc_depthwise"}}) {
    INFO(sw.variable);
    struct Restore {
      const char* variable;
      ~Restore() { ::unsetenv(variable); }
    } restore{sw.variable};
    Cli cli;
    const std::string args = std::string("ir '" NASC_SOURCE_DIR "/tests/filecheck/") + sw.file +
                             "' --stage llvm --batch 2 --train";
    ::unsetenv(sw.variable);
    Run generated = cli.run(args);
    REQUIRE(generated.status == 0);
    CHECK(generated.out.find(sw.body) != std::string::npos);
    ::setenv(sw.variable, "library", 1);
    Run library = cli.run(args);
    REQUIRE(library.status == 0);
    CHECK(library.out.find(sw.trace) == std::string::npos);
    CHECK(library.err.empty());
    // Another value is reported, and the default kept.
    ::setenv(sw.variable, "fast", 1);
    Run bad = cli.run(args);
    CHECK(bad.status == 0);
    CHECK(bad.err.find(std::string(sw.variable) +
                       " must be `generated` or `library`, got `fast`") != std::string::npos);
    CHECK(bad.out.find(sw.body) != std::string::npos);
  }
}

TEST_CASE("nasc ir and check: a pool's effective stride, counts with three digits", "[cli]") {
  Cli cli;
  cli.write("pools.nas",
            "network pools(x: tensor[2, 12, 12]) {\n"
            "  return avg_pool(max_pool(x, 2), 3, pad=1);\n"
            "}\n");
  Run ir = cli.run("ir pools.nas --no-locations");
  INFO(ir.err);
  REQUIRE(ir.status == 0);
  // Stride 0 means "the kernel"; the dump shows the stride used.
  CHECK_THAT(ir.out, Contains("max_pool(%0) {kernel=2, pad=0, stride=2} : [2,6,6]"));
  CHECK_THAT(
      ir.out,
      Contains("avg_pool(%1) {count_include_pad=true, kernel=3, pad=1, stride=3} : [2,2,2]"));
  CHECK_THAT(ir.out, !Contains("stride=0"));
  cli.write("tiny.nas", kTiny);
  Run check = cli.run("check tiny.nas");
  CHECK(check.status == 0);
  CHECK_THAT(check.out, Contains("MACs             supernet 508,112 (508K) per sample"));
}

TEST_CASE("nasc: missing and unreadable files", "[cli]") {
  Cli cli;
  user_error(cli.run("check missing.nas"), "cannot read \"missing.nas\": no such file");
  fs::create_directories(cli.dir / "folder");
  user_error(cli.run("check folder"), "cannot read \"folder\": it is a directory");
}

TEST_CASE("nasc --set: unknown names, wrong types, malformed", "[cli]") {
  Cli cli;
  cli.write("tiny.nas", kTiny);
  user_error(cli.run("check tiny.nas --set"), "--set needs a value");
  user_error(cli.run("check tiny.nas --set width"), "--set needs NAME=VALUE, got \"width\"");
  user_error(cli.run("check tiny.nas --set =3"), "--set needs NAME=VALUE, got \"=3\"");
  user_error(cli.run("check tiny.nas --set depth=3"),
             "tiny.nas:1:9: error: --set depth=3: network `tiny` has no parameter `depth` (its "
             "parameters: classes, width)");
  user_error(cli.run("check tiny.nas --set x=3"), "network `tiny` has no parameter `x`");
  user_error(cli.run("check tiny.nas --set width=wide"),
             "tiny.nas:1:55: error: --set width=wide: network parameter `width` is int, got string "
             "\"wide\"");
  user_error(cli.run("check tiny.nas --set width=1.5"), "is int, got float 1.5");
  user_error(cli.run("check tiny.nas --set width=0"),
             "tiny.nas:2:11: error: conv attribute `out` must be >= 1, got 0");
  Run ok = cli.run("check tiny.nas --set width=4 --set classes=3");
  INFO(ok.err);
  CHECK(ok.status == 0);
  CHECK_THAT(ok.out, Contains("network tiny(classes=3, width=4)"));
}

TEST_CASE("nasc --arch: bad architecture files", "[cli]") {
  Cli cli;
  cli.write("tiny.nas", kTiny);
  cli.write("truncated.json", "{\"choices\": {\"op\": \"conv\"\n");
  user_error(cli.run("check tiny.nas --arch truncated.json"),
             "truncated.json:2:1: error: arch file: invalid JSON: syntax error while parsing "
             "object - unexpected end of input; expected '}'");
  cli.write("empty.json", "");
  user_error(cli.run("check tiny.nas --arch empty.json"),
             "empty.json:1:1: error: arch file: invalid JSON");
  cli.write("key.json", "{\"choices\": {\"op\": \"conv\", \"opp\": \"conv\"}}");
  user_error(cli.run("check tiny.nas --arch key.json"),
             "key.json:1:28: error: arch file names choice `opp`, which `tiny` does not have (its "
             "choices: op)");
  cli.write("cand.json", "{\"choices\": {\"op\": \"avg_pool\"}}");
  user_error(cli.run("check tiny.nas --arch cand.json"),
             "cand.json:1:14: error: choice `op` has no candidate `avg_pool` (candidates: conv, "
             "max_pool, identity)");
  cli.write("type.json", "{\"choices\": {\"op\": 2}}");
  user_error(cli.run("check tiny.nas --arch type.json"),
             "type.json:1:14: error: choice `op` must be a candidate name (string) or a list of "
             "names, got 2");
  cli.write("none.json", "{\"choices\": {}}");
  user_error(cli.run("check tiny.nas --arch none.json"),
             "none.json:1:1: error: arch file does not fix 1 choice(s) of `tiny`: op");
  cli.write("nochoices.json", "{\"network\": \"tiny\"}");
  user_error(
      cli.run("check tiny.nas --arch nochoices.json"),
      "nochoices.json:1:1: error: arch file must be a JSON object with a \"choices\" object");
  cli.write("list.json", "[\"conv\"]");
  user_error(cli.run("check tiny.nas --arch list.json"),
             "list.json:1:1: error: arch file must be a JSON object");
  cli.write("net.json", "{\"network\": \"darts\", \"choices\": {\"op\": \"conv\"}}");
  user_error(cli.run("check tiny.nas --arch net.json"),
             "net.json:1:2: error: arch file is for network \"darts\", not `tiny`");
  cli.write("twice.json", "{\"choices\": {\"op\": \"conv\", \"op\": \"identity\"}}");
  user_error(cli.run("check tiny.nas --arch twice.json"),
             "twice.json:1:28: error: arch file: duplicate key choices.op");
  user_error(cli.run("check tiny.nas --arch absent.json"),
             "cannot read arch file \"absent.json\": no such file");
  cli.write("binary.json", "\xff\xfe{}");
  Run bin = cli.run("check tiny.nas --arch binary.json");
  user_error(bin, "binary.json:1:1: error: arch file: invalid JSON");
  for (unsigned char c : bin.err) CHECK((c >= 32 || c == '\n'));
  // The same checks for the other commands that take --arch.
  user_error(cli.run("graph tiny.nas --arch cand.json"), "has no candidate `avg_pool`");
  user_error(cli.run("ir tiny.nas --stage pruned --arch key.json"), "names choice `opp`");
}

TEST_CASE("nasc --arch with more bad keys than the error limit is still a user error", "[cli]") {
  Cli cli;
  cli.write("tiny.nas", kTiny);
  std::string json = "{\"choices\": {";
  for (int i = 0; i < 30; ++i) json += (i ? ", \"k" : "\"k") + std::to_string(i) + "\": \"x\"";
  cli.write("many.json", json + "}}");
  Run r = cli.run("check tiny.nas --arch many.json");
  user_error(r, "many.json:1:14: error: arch file names choice `k0`");
  CHECK_THAT(r.err, Contains("20 errors (stopped at the limit)"));
}

TEST_CASE("nasc check --json", "[cli]") {
  Cli cli;
  cli.write("tiny.nas", kTiny);
  cli.write("conv.json", "{\"choices\": {\"op\": \"identity\"}}");
  Run r = cli.run("check tiny.nas --json");
  INFO(r.err);
  REQUIRE(r.status == 0);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["network"] == "tiny");
  CHECK(j["network_params"] == nlohmann::json({{"classes", 10}, {"width", 8}}));
  // stem conv 1*8*9 (no bias), conv candidate 8*8*9, linear 8*10 + 10
  CHECK(j["params"] == 72 + 576 + 90);
  CHECK(j["macs"].is_number_integer());
  CHECK(j["macs"].get<int64_t>() > 0);
  CHECK(std::fabs(j["log10_space_size"].get<double>() - std::log10(3.0)) < 1e-9);
  REQUIRE(j["choices"].is_array());
  REQUIRE(j["choices"].size() == 1);
  CHECK(j["choices"][0]["key"] == "op");
  CHECK(j["choices"][0]["candidates"] == nlohmann::json::array({"conv", "max_pool", "identity"}));
  CHECK(j["choices"][0]["k"] == 1);
  CHECK_FALSE(j.contains("arch"));

  Run a = cli.run("check tiny.nas --json --arch conv.json");
  INFO(a.err);
  REQUIRE(a.status == 0);
  nlohmann::json ja = nlohmann::json::parse(a.out);
  REQUIRE(ja.contains("arch"));
  CHECK(ja["arch"]["params"] == 72 + 90);
  CHECK(ja["params"] == j["params"]);
}

TEST_CASE("nasc: diagnostics on stderr in file:line:col form, with the caret", "[cli]") {
  Cli cli;
  cli.write("bad.nas",
            "module a(x: tensor) { return relu(y); }\n"
            "network n(x: tensor[1, 8, 8]) {\n"
            "  let h = a(x)\n"
            "  return h;\n"
            "}\n");
  user_error(cli.run("check bad.nas"),
             "bad.nas:3:15: error: syntax error: expected ';' before 'return'\n"
             "    let h = a(x)\n"
             "                ^\n"
             "1 error\n");
  cli.write("sem.nas",
            "module a(x: tensor) { return relu(y); }\n"
            "network n(x: tensor[1, 8, 8]) {\n"
            "  let h = a(x);\n"
            "  return h;\n"
            "}\n");
  Run r = cli.run("check sem.nas");
  user_error(r,
             "sem.nas:1:35: error: unknown name `y`; did you mean `x`? [in n/a]\n"
             "  module a(x: tensor) { return relu(y); }\n"
             "                                    ^\n"
             "1 error\n");
  CHECK(r.out.empty());
  CHECK(cli.run("ir sem.nas --stage ast").status == 0);                  // parses fine...
  user_error(cli.run("ir bad.nas --stage ast"), "bad.nas:3:15: error");  // ...this does not
  user_error(cli.run("graph sem.nas"), "sem.nas:1:35: error");
}

TEST_CASE("nasc: several networks need --network", "[cli]") {
  Cli cli;
  cli.write("two.nas",
            "network a(x: tensor[1, 8, 8]) { return x; }\n"
            "network b(x: tensor[1, 8, 8]) { return relu(x); }\n");
  user_error(cli.run("check two.nas"),
             "two.nas:2:9: error: this file has 2 networks (a, b); pick one with --network NAME");
  user_error(cli.run("check two.nas --network c"),
             "no network named `c` in this file (networks: a, b)");
  Run r = cli.run("check two.nas --network b");
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Contains("network b()"));
}

// Hostile files through the real binary with an 8 MiB stack: each gives exit status 1
// and a located error, quickly; none crashes (status -1) or reports a bug (status 2).
TEST_CASE("nasc on hostile files: never a crash, never exit 2", "[cli][big]") {
  Cli cli;
  const std::string head = "network n(x: tensor[1, 8, 8]) { let a = ";
  std::string sum = "1", nots, chain = "x";
  for (int i = 0; i < 999999; ++i) sum += "+1";
  for (int i = 0; i < 1000000; ++i) nots += "! ";
  for (int i = 0; i < 300000; ++i) chain += "(1)";
  std::mt19937 rng(3);
  std::string random_bytes, garbage;
  for (int i = 0; i < 100000; ++i) random_bytes += static_cast<char>(rng() & 0xFF);
  const std::string chars = "abcdefghij{}()[];:,.=+-*/<>!?\"# \n\t0123456789";
  while (garbage.size() < (10u << 20)) garbage += chars[rng() % chars.size()];
  struct Case {
    std::string name, text, expect;
  };
  std::vector<Case> cases = {
      {"parens.nas", head + std::string(100000, '(') + "1" + std::string(100000, ')') + "; }",
       "parens.nas:1:296: error: nesting deeper than 256 levels of brackets"},
      {"sum.nas", head + sum + "; return x; }", "sum.nas:1:20040: error: statement has more than"},
      {"nots.nas", head + nots + "true; return x; }", "nots.nas:1:20039: error: statement has"},
      {"calls.nas", head + chain + "; return x; }", "calls.nas:1:30039: error: statement has"},
      {"empty.nas", "", "empty.nas:1:1: error: no `network` in this file"},
      {"nul.nas", std::string("network n(x: tensor[1, 8, 8]) { return x; }\0", 44),
       "nul.nas:1:44: error: not a .nas text file: NUL byte"},
      {"random.nas", random_bytes, "random.nas:1:"},
      {"garbage.nas", garbage, "garbage.nas:"},
      {"loop.nas",
       "network n(x: tensor[1, 8, 8]) {\n  for i in range(1000000000) { }\n  return x;\n}\n",
       "loop.nas:2:12: error: range(1000000000) would have 1000000000 elements"},
      {"recurse.nas",
       "module r(x: tensor) { return r(x); }\nnetwork n(x: tensor[1, 8, 8]) { return r(x); }\n",
       "recurse.nas:1:30: error: module calls nested deeper than 128"},
      {"nest.nas",
       "network n(x: tensor[1, 8, 8]) {\n  let a = [];\n  for i in range(100000) { a = [a]; }\n  "
       "return x;\n}\n",
       "nest.nas:3:32: error: lists nested more than 100 levels deep"},
  };
  for (const Case& c : cases) {
    cli.write(c.name, c.text);
    for (const char* command : {"check", "ir"}) {
      Run r = cli.run(std::string(command) + " " + c.name);
      INFO(c.name << " (" << command << "): " << r.err.substr(0, 1000));
      CHECK(r.status == 1);
      CHECK_THAT(r.err, StartsWith(c.expect));
      CHECK(r.seconds < 60);
    }
  }
}

TEST_CASE("nasc on a 10 MB file of valid modules", "[cli][big]") {
  Cli cli;
  std::string text;
  text.reserve((10u << 20) + 1000);
  for (int i = 0; text.size() < (10u << 20); ++i)
    text +=
        "module blk_" + std::to_string(i) +
        "(x: tensor, c: int = 4) {\n  let h = conv(x, c, kernel=3, pad=1);\n  return relu(h);\n}\n";
  text += "network n(x: tensor[3, 8, 8]) { return blk_1(x); }\n";
  cli.write("big.nas", text);
  Run r = cli.run("check big.nas");
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Contains("big.nas: network n()"));
  CHECK(r.seconds < 120);
}

TEST_CASE("a flag that does not apply to the command is an error", "[cli]") {
  Cli cli;
  std::string file = cli.write("tiny.nas", kTiny);
  cli.write("a.json", R"({"choices": {"op": "conv"}})");
  struct Case {
    std::string args, message;
  };
  for (const Case& c : std::vector<Case>{
           {"graph " + file + " --json",
            "--json does not apply to `nasc graph`; it is for `nasc check`"},
           {"check " + file + " -o x.svg",
            "-o does not apply to `nasc check`; it is for `nasc graph`"},
           {"check " + file + " --stage ir", "--stage does not apply to `nasc check`"},
           {"graph " + file + " --no-locations", "--no-locations does not apply to `nasc graph`"},
           {"ir " + file + " --arch a.json", "--arch does not apply to `nasc ir`"},
       }) {
    Run r = cli.run(c.args);
    INFO(c.args << "\n" << r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(c.message));
  }
  // The same flags where they apply.
  CHECK(cli.run("ir " + file + " --stage pruned --arch a.json --no-locations").status == 0);
  CHECK(cli.run("check " + file + " --arch a.json --json").status == 0);
}

TEST_CASE("graph reports an unwritable output instead of claiming success", "[cli]") {
  Cli cli;
  std::string file = cli.write("tiny.nas", kTiny);
  Run r = cli.run("graph " + file + " -o no_such_folder/x.svg");
  INFO(r.err);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("could not write no_such_folder/x.svg"));
  Run ok = cli.run("graph " + file + " -o x.svg");
  CHECK(ok.status == 0);
  CHECK(fs::file_size(cli.dir / "x.svg") > 0);
}

TEST_CASE("nasc --print-pipeline lists every stage in order", "[cli][pipeline]") {
  Cli cli;
  Run r = cli.run("--print-pipeline");
  INFO(r.err);
  CHECK(r.status == 0);
  size_t at = 0;
  for (const char* stage : {"load", "elaborate", "shapes", "dce", "partial-channels", "zero-prune",
                            "cse", "autodiff", "fusion", "memory-plan", "lower"}) {
    size_t found = r.out.find(std::string(". ") + stage + " ", at);
    INFO(stage << " after byte " << at << " in\n" << r.out);
    REQUIRE(found != std::string::npos);
    at = found;
  }
}

TEST_CASE("nasc ir: every stage has a dump, --dump-after and --train", "[cli][pipeline]") {
  Cli cli;
  std::string file = cli.write("tiny.nas", kTiny);
  cli.write("a.json", R"({"choices": {"op": "conv"}})");
  for (const char* stage :
       {"load", "elaborate", "shapes", "dce", "cse", "autodiff", "fusion", "memory-plan", "lower",
        "ast", "ir", "grad", "plan", "train-plan", "fused"}) {
    Run r = cli.run("ir " + file + " --stage " + stage);
    INFO(stage << "\n" << r.err);
    CHECK(r.status == 0);
    CHECK(!r.out.empty());
  }
  CHECK(cli.run("ir " + file + " --stage zero-prune --arch a.json").status == 0);
  // The lowered plan: forward without --train, the loss and backward steps with it.
  Run forward = cli.run("ir " + file + " --stage lower");
  CHECK_THAT(forward.out, StartsWith("plan batch=1 mode=inference"));
  CHECK_THAT(forward.out, !Contains("cross_entropy"));
  Run train = cli.run("ir " + file + " --stage lower --train --batch 4 --arch a.json");
  CHECK_THAT(train.out, StartsWith("plan batch=4 mode=training"));
  CHECK_THAT(train.out, Contains("conv_grad_weight"));
  // Dumps go to stderr, in pipeline order, the result to stdout.
  Run dumped = cli.run("ir " + file + " --stage memory-plan --dump-after cse --dump-after dce");
  CHECK(dumped.status == 0);
  CHECK_THAT(dumped.out, Contains("arena peak:"));
  CHECK_THAT(dumped.err, StartsWith("// ----- after dce -----\nnetwork tiny("));
  CHECK_THAT(dumped.err, Contains("// ----- after cse -----\nnetwork tiny("));
  user_error(cli.run("ir " + file + " --stage cse --dump-after lower"),
             "--dump-after lower: the run stops before it, after cse (--stage cse)");
  user_error(cli.run("ir " + file + " --dump-after csee"),
             "unknown --dump-after `csee`; did you mean `cse`?");
  user_error(cli.run("ir " + file + " --stage dce --train"), "--train does not apply to `nasc ir`");
  user_error(cli.run("ir " + file + " --stage zero-prune"),
             "--stage zero-prune needs --arch A.json (the selection to prune with)");
  user_error(cli.run("ir " + file + " --stage cse --batch 2"),
             "--batch does not apply to `nasc ir --stage cse`");
  user_error(cli.run("check " + file + " --dump-after dce"),
             "--dump-after does not apply to `nasc check`");
}

const char* kChainIr =
    "network chain() {\n"
    "  %0 = input() {shape=[4]} : [4]  # x\n"
    "  %1 = relu(%0) : [4]  # a\n"
    "  %2 = relu(%0) : [4]  # b\n"
    "  %3 = add(%1, %2) : [4]  # sum\n"
    "  %4 = sigmoid(%0) : [4]  # dead\n"
    "  return %3\n"
    "}\n";

TEST_CASE("nasc opt runs passes on textual IR in the order given", "[cli][pipeline]") {
  Cli cli;
  cli.write("chain.ir", kChainIr);
  Run none = cli.run("opt chain.ir");  // no passes: the IR read back
  CHECK(none.status == 0);
  CHECK(none.out == kChainIr);
  Run cse = cli.run("opt chain.ir --passes dce,cse --no-locations");
  INFO(cse.err);
  CHECK(cse.status == 0);
  CHECK(cse.out ==
        "network chain() {\n"
        "  %0 = input() {shape=[4]} : [4]  # x\n"
        "  %1 = relu(%0) : [4]  # a\n"
        "  %2 = add(%1, %1) : [4]  # sum\n"
        "  return %2\n"
        "}\n");
  Run lowered = cli.run("opt chain.ir --passes cse,memory-plan,lower --batch 3");
  CHECK(lowered.status == 0);
  CHECK_THAT(lowered.out, StartsWith("plan batch=3 mode=inference"));
  Run dumped = cli.run("opt chain.ir --passes cse,memory-plan --dump-after cse");
  CHECK_THAT(dumped.err, StartsWith("// ----- after cse -----\nnetwork chain() {"));
  CHECK_THAT(dumped.out, Contains("arena peak:"));
}

TEST_CASE("nasc opt: malformed IR, unknown passes and bad orders are user errors",
          "[cli][pipeline]") {
  Cli cli;
  cli.write("chain.ir", kChainIr);
  cli.write("bad.ir",
            "network bad() {\n"
            "  %0 = input() {shape=[4]} : [4]\n"
            "  %1 = rleu(%0) : [4]\n"
            "  return %1\n"
            "}\n");
  Run bad = cli.run("opt bad.ir --passes cse");
  user_error(bad, "bad.ir:3:8: error: unknown op `rleu`");
  user_error(cli.run("opt chain.ir --passes cse,dcee"),
             "unknown --passes `dcee`; did you mean `dce`? (passes: shapes, dce, partial-channels, "
             "zero-prune, cse, autodiff, remat, fusion, memory-plan, lower)");
  user_error(cli.run("opt chain.ir --passes elaborate"),
             "--passes elaborate reads .nas source; `nasc opt` reads IR");
  user_error(cli.run("opt chain.ir --passes lower"),
             "--passes: lower lowers a memory plan; put memory-plan right before it");
  user_error(cli.run("opt chain.ir --passes memory-plan,cse"),
             "--passes: cse runs on a graph, but memory-plan ends the graph passes");
  user_error(cli.run("opt chain.ir --passes cse,,dce"), "--passes needs a comma-separated list");
  user_error(cli.run("opt chain.ir --passes zero-prune"),
             "--passes zero-prune needs --arch A.json");
  user_error(cli.run("opt chain.ir --passes cse --dump-after dce"),
             "--dump-after dce: not among the --passes (cse)");
  user_error(cli.run("opt chain.ir --passes cse --batch 2"),
             "--batch does not apply to `nasc opt`");
  user_error(cli.run("opt missing.ir"), "cannot read \"missing.ir\"");
  user_error(cli.run("opt"), "`nasc opt` needs a FILE.ir");
  // A network the executor cannot run is refused at lowering (at its last input's source
  // location; this IR has none, so at the network).
  cli.write("two.ir",
            "network two() {\n"
            "  %0 = input() {shape=[4]} : [4]  # x\n"
            "  %1 = input() {shape=[4]} : [4]  # y\n"
            "  %2 = add(%0, %1) : [4]  # sum\n"
            "  return %2\n"
            "}\n");
  user_error(cli.run("opt two.ir --passes memory-plan,lower"),
             "network `two`: network `two` has 2 inputs; the executor runs networks with exactly "
             "one");
}
