// `nasc search` and `nasc train` without -o: each run gets runs/<space stem>-<n> in the
// working directory, n the first free number, created with one mkdir so that runs started
// together never share a folder (nasc::create_run_dir); the folder is said first, and
// removed again when the run fails before writing anything.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "nasc/nasc.h"
#include "tests/cli_test_util.h"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Runs nasc in `cwd` (not the source tree, where runs/ would land otherwise).
nas::test::CliResult nasc_in(const std::string& cwd, const std::string& args) {
  const std::string base = cwd + "/.cmd";
  const std::string cmd = "cd '" + cwd + "' && '" NASC_BINARY "' " + args + " > '" + base +
                          ".out' 2> '" + base + ".err'";
  int raw = std::system(cmd.c_str());
  nas::test::CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = nas::test::slurp(base + ".out");
  r.err = nas::test::slurp(base + ".err");
  return r;
}

const std::string kTiny = std::string(NASC_SOURCE_DIR) + "/examples/tiny.nas";

}  // namespace

TEST_CASE("create_run_dir: the first free runs/<stem>-<n>, never shared", "[cli][run_dir]") {
  nas::test::TempDir tmp;
  const std::string parent = tmp / "runs";
  CHECK(nasc::create_run_dir("examples/tiny.nas", parent) == parent + "/tiny-1");
  CHECK(nasc::create_run_dir("/elsewhere/tiny.nas", parent) == parent + "/tiny-2");
  fs::remove(parent + "/tiny-1");
  CHECK(nasc::create_run_dir("tiny.nas", parent) == parent + "/tiny-1");  // the first free
  CHECK(nasc::create_run_dir("darts.nas", parent) == parent + "/darts-1");
  // Many at once: every one gets its own folder.
  std::vector<std::string> got(16);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] { got[i] = nasc::create_run_dir("race.nas", parent); });
  for (std::thread& t : threads) t.join();
  std::set<std::string> distinct(got.begin(), got.end());
  CHECK(distinct.size() == got.size());
  for (const std::string& d : got) CHECK(fs::is_directory(d));
  CHECK(fs::is_directory(parent + "/race-16"));
  // A parent that cannot be made is a user error naming it.
  nas::test::write_bytes(tmp / "file", "x");
  try {
    nasc::create_run_dir("tiny.nas", tmp / "file");
    FAIL("no error");
  } catch (const nasc::Error& e) {
    CHECK(e.is_user_error());
    CHECK_THAT(std::string(e.what()), Contains(tmp / "file"));
  }
}

TEST_CASE("nasc search and train without -o write runs/<stem>-<n>", "[cli][run_dir]") {
  nas::test::TempDir tmp;
  const std::string cwd = tmp.path.string();
  // The command of the issue, as given.
  nas::test::CliResult r = nasc_in(cwd, "search " + kTiny + " --data synthetic --epochs 1");
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out,
             Contains("run folder runs/tiny-1\n") && Contains("wrote runs/tiny-1/arch.json"));
  CHECK(fs::exists(tmp / "runs/tiny-1/arch.json"));
  // The next run takes the next number; train does the same.
  r = nasc_in(cwd, "train " + kTiny + " --arch runs/tiny-1/arch.json --data synthetic --epochs 1");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("run folder runs/tiny-2\n") && Contains("wrote runs/tiny-2/weights"));
  CHECK(fs::exists(tmp / "runs/tiny-2/weights"));
  // --resume continues the folder it is given.
  r = nasc_in(cwd, "search " + kTiny + " --resume -o runs/tiny-1");
  CHECK(r.status == 0);
  // A run that fails before writing anything leaves no folder behind.
  r = nasc_in(cwd, "train " + kTiny + " --data synthetic --epochs 1");  // no --arch
  CHECK(r.status == 1);
  CHECK_FALSE(fs::exists(tmp / "runs/tiny-3"));
  // Runs started together get different folders.
  const std::string cmd = "'" NASC_BINARY "' train " + kTiny +
                          " --arch runs/tiny-1/arch.json --data synthetic --epochs 1 --threads 1";
  r = nasc_in(
      cwd, "--version && (" + cmd + " > a.out & " + cmd + " > b.out & " + cmd + " > c.out & wait)");
  std::set<std::string> dirs;
  for (const char* f : {"a.out", "b.out", "c.out"}) {
    const std::string out = nas::test::slurp(tmp / f);
    INFO(out);
    const size_t at = out.find("run folder ");
    REQUIRE(at != std::string::npos);
    dirs.insert(out.substr(at + 11, out.find('\n', at) - at - 11));
  }
  CHECK(dirs == std::set<std::string>{"runs/tiny-3", "runs/tiny-4", "runs/tiny-5"});
  for (const std::string& d : dirs) CHECK(fs::exists(tmp / (d + "/weights")));
}
