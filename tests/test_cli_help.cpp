// nasc's help table (tools/nasc/help.cpp) against its parser (tools/nasc/options.cpp):
// every flag a command's help lists is one the parser takes for that command, every flag
// it leaves out is refused there, and every example parses. Then what is printed from the
// table: `nasc COMMAND --help`, the man page (checked by groff when it is installed) and
// the bash completion (run in bash).
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli_test_util.h"
#include "tools/nasc/help.h"
#include "tools/nasc/options.h"

namespace {

using Catch::Matchers::Contains;
using nas::cli::CommandHelp;
using nas::cli::FlagHelp;

nas::cli::Options parse(const std::vector<std::string>& words) {
  std::vector<std::string> storage = {"nasc"};
  storage.insert(storage.end(), words.begin(), words.end());
  std::vector<char*> argv;
  for (std::string& w : storage) argv.push_back(w.data());
  return nas::cli::parse_options(static_cast<int>(argv.size()), argv.data());
}

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// A value each flag's parser accepts.
std::string sample_value(const FlagHelp& f) {
  const std::string& n = f.names.back();
  if (n == "--set") return "C=8";
  if (n == "--trim") return "0.1";
  if (n == "--statistic") return "median";
  if (n == "--algorithm") return "pnas";
  if (n == "--data") return "synthetic";
  if (n == "--backend") return "cpu";
  if (n == "--stage") return "lower";
  if (n == "--dump-after") return "dce";
  if (n == "--passes") return "partial-channels,zero-prune,memory-plan,lower";
  if (n == "--partial-channels") return "2";
  if (n == "--comm-timeout") return "30";
  if (f.value == "N" || f.value == "K") return "2";
  return "x";
}

// The command line that makes each of the command's conditional flags apply: an `ir`
// stage after every pass, `opt` passes that use --arch, --batch and --partial-channels.
std::vector<std::string> base_command(const CommandHelp& c) {
  if (c.name == "ir") return {"ir", "f.nas", "--stage", "lower"};
  if (c.name == "opt")
    return {"opt", "f.ir", "--passes", "partial-channels,zero-prune,memory-plan,lower"};
  if (c.name == "profile") return {"profile", "f.nas", "-o", "lut.json"};
  if (c.name == "export") return {"export", "f.nas", "-o", "net.onnx", "--random-weights"};
  return {c.name, "f.nas"};
}

std::vector<FlagHelp> every_flag() {
  std::vector<FlagHelp> all = nas::cli::common_flags();
  for (const CommandHelp& c : nas::cli::command_help())
    for (const FlagHelp& f : c.flags)
      if (std::none_of(all.begin(), all.end(),
                       [&](const FlagHelp& a) { return a.names == f.names; }))
        all.push_back(f);
  return all;
}

bool lists(const CommandHelp& c, const FlagHelp& flag) {
  std::vector<FlagHelp> listed = c.flags;
  if (c.compiles_nas)
    listed.insert(listed.end(), nas::cli::common_flags().begin(), nas::cli::common_flags().end());
  return std::any_of(listed.begin(), listed.end(),
                     [&](const FlagHelp& f) { return f.names == flag.names; });
}

}  // namespace

TEST_CASE("help: a command's listed flags are the ones its parser takes", "[cli][help]") {
  for (const CommandHelp& c : nas::cli::command_help()) {
    for (const FlagHelp& flag : every_flag()) {
      for (const std::string& name : flag.names) {
        std::vector<std::string> words = base_command(c);
        words.push_back(name);
        if (!flag.value.empty()) words.push_back(sample_value(flag));
        const nas::cli::Options o = parse(words);
        INFO("nasc " << c.name << " ... " << name << ": " << o.error);
        CHECK(o.error.find("unknown option") == std::string::npos);
        // Only flags the help leaves out may be refused as not applying.
        const bool refused = o.error.find("does not apply to `nasc " + c.name) != std::string::npos;
        CHECK(refused == !lists(c, flag));
      }
    }
  }
}

TEST_CASE("help: every example parses", "[cli][help]") {
  for (const CommandHelp& c : nas::cli::command_help()) {
    REQUIRE(c.examples.size() >= 2);
    for (const nas::cli::ExampleHelp& e : c.examples) {
      std::vector<std::string> words = split_words(e.command_line);
      // A data-parallel example starts with its launcher: `mpirun -n 2 nasc ...`.
      if (words.front() == "mpirun") words.erase(words.begin(), words.begin() + 3);
      REQUIRE(words.front() == "nasc");
      words.erase(words.begin());
      const nas::cli::Options o = parse(words);
      INFO(e.command_line);
      CHECK(o.error.empty());
      CHECK(o.command == c.name);
    }
  }
}

TEST_CASE("help: nasc --help, nasc COMMAND --help, nasc help COMMAND", "[cli][help]") {
  using nas::test::run_nasc;
  const nas::test::CliResult overview = run_nasc("--help");
  CHECK(overview.status == 0);
  for (const CommandHelp& c : nas::cli::command_help()) {
    CHECK_THAT(overview.out, Contains("  " + c.name + " " + c.operands));
    for (const std::string& line :
         {c.name + " --help", "help " + c.name, c.name + " examples/tiny.nas -h"}) {
      const nas::test::CliResult r = run_nasc(line);
      INFO("nasc " << line << "\n" << r.err);
      CHECK(r.status == 0);
      CHECK_THAT(r.out, Contains("Usage: nasc " + c.name + " " + c.operands));
      for (const FlagHelp& f : c.flags)
        for (const std::string& n : f.names) CHECK_THAT(r.out, Contains(n));
      for (const nas::cli::ExampleHelp& e : c.examples) CHECK_THAT(r.out, Contains(e.command_line));
    }
  }
  const nas::test::CliResult typo = run_nasc("help serch");
  CHECK(typo.status == 1);
  CHECK_THAT(typo.err, Contains("no help on `serch`; did you mean `search`?"));
  const nas::test::CliResult flag_typo = run_nasc("search examples/tiny.nas --retrian");
  CHECK(flag_typo.status == 1);
  CHECK_THAT(flag_typo.err, Contains("did you mean `--retrain`?"));
  const nas::test::CliResult bad_shell = run_nasc("--completion zsh");
  CHECK(bad_shell.status == 1);
  CHECK_THAT(bad_shell.err, Contains("--completion takes bash, got \"zsh\""));
}

TEST_CASE("help: the man page holds every command and flag, and groff reads it cleanly",
          "[cli][help]") {
  const nas::test::CliResult man = nas::test::run_nasc("--man");
  REQUIRE(man.status == 0);
  CHECK_THAT(man.out, Contains(".TH NASC 1"));
  for (const CommandHelp& c : nas::cli::command_help()) {
    CHECK_THAT(man.out, Contains(".SS \"nasc " + c.name));
    for (const FlagHelp& f : c.flags)
      for (const std::string& n : f.names) {
        std::string escaped;  // roff writes '-' as '\-'
        for (char ch : n) escaped += ch == '-' ? std::string("\\-") : std::string(1, ch);
        CHECK_THAT(man.out, Contains("\\fB" + escaped + "\\fR"));
      }
  }
  if (std::system("command -v groff > /dev/null") != 0) {
    WARN("groff not installed (Debian groff-base): the man page's markup is not checked");
    return;
  }
  const std::string page = nas::test::scratch_path("nasc.1");
  nas::test::write_bytes(page, man.out);
  // -ww: every warning; -z: no output. A warning is a defect in the generated markup.
  const std::string warnings = nas::test::scratch_path("groff.err");
  int raw = std::system(("groff -man -Tutf8 -ww -z '" + page + "' 2> '" + warnings + "'").c_str());
  INFO(nas::test::slurp(warnings));
  CHECK(WEXITSTATUS(raw) == 0);
  CHECK(nas::test::slurp(warnings).empty());
}

namespace {

// COMPREPLY of the generated completion for the words typed so far (the last is the one
// being completed).
std::string complete(const std::string& words) {
  const std::string script = nas::test::scratch_path("nasc.bash");
  nas::test::write_bytes(script, nas::test::run_nasc("--completion bash").out);
  const std::string out = nas::test::scratch_path("complete.out");
  const std::string cmd = "cd '" NASC_SOURCE_DIR "' && bash -c 'source \"" + script +
                          "\"; COMP_WORDS=(" + words +
                          "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _nasc; echo "
                          "\"${COMPREPLY[*]}\"' > '" +
                          out + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::string reply = nas::test::slurp(out);
  if (!reply.empty() && reply.back() == '\n') reply.pop_back();
  return reply;
}

}  // namespace

TEST_CASE("help: bash completion of commands, flags, values and files", "[cli][help]") {
  CHECK(complete("nasc sea") == "search");
  CHECK(complete("nasc search examples/tiny.nas --re") == "--rerank --retrain --resume");
  CHECK(complete("nasc search examples/tiny.nas -a darts") == "darts darts2");
  CHECK(complete("nasc ir examples/tiny.nas --stage memory") == "memory-plan");
  CHECK(complete("nasc train examples/tiny.nas --backend j") == "jit");
  CHECK(complete("nasc check examples/ti") == "examples/tiny.nas");
  CHECK(complete("nasc help est") == "estimate");
  // A flag of another command is not offered.
  CHECK(complete("nasc check examples/tiny.nas --ret").empty());
}
