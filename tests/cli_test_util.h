// Helpers for tests that run the nasc binary: run a command line from the source tree
// and capture its status and output, read files, count lines; and run it under test
// conditions: killed (SIGKILL, no cleanup) at an exact step or checkpoint write through
// NASC_TEST_KILL_AT (runtime/train/kill_points.h), to test --resume without timing, or
// with a file size limit, to test a full disk.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/file_test_util.h"

namespace nas::test {

struct CliResult {
  int status = -1;  // the exit status, -1 when a signal ended the process
  int signal = 0;   // the signal that ended it, 0 when it exited
  std::string out, err;
};

inline std::string slurp(const std::string& p) {
  return read_bytes(p);
}

inline int count_lines(const std::string& path) {
  std::string s = slurp(path);
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

// A fresh path under /tmp, unique to this test process.
inline std::string scratch_path(const std::string& name) {
  std::string d = "/tmp/nasc_test_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(d);
  return d;
}

inline CliResult run_nasc(const std::string& args) {
  std::string base = scratch_path("cmd");
  std::string cmd = "cd '" NASC_SOURCE_DIR "' && '" NASC_BINARY "' " + args + " > '" + base +
                    ".out' 2> '" + base + ".err'";
  int raw = std::system(cmd.c_str());
  CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  return r;
}

// What a finished run folder holds that must not depend on where (or whether) the run
// was interrupted: each of `files` byte for byte, plus metrics.jsonl with the timings
// ("seconds", "images_per_s") taken out of every record.
inline std::map<std::string, std::string> run_outcome(const std::string& dir,
                                                      const std::vector<std::string>& files) {
  std::map<std::string, std::string> out;
  for (const std::string& f : files) {
    REQUIRE(std::filesystem::exists(dir + "/" + f));
    out[f] = slurp(dir + "/" + f);
  }
  std::istringstream metrics(slurp(dir + "/metrics.jsonl"));
  std::string line, kept;
  while (std::getline(metrics, line)) {
    nlohmann::ordered_json record = nlohmann::ordered_json::parse(line);
    record.erase("seconds");
    record.erase("images_per_s");
    kept += record.dump() + "\n";
  }
  out["metrics.jsonl"] = kept;
  return out;
}

// How run_nasc_under runs nasc: NASC_TEST_KILL_AT set to `kill_at` (when not empty), and
// at most `max_file_bytes` per file written (RLIMIT_FSIZE, when >= 0) with SIGXFSZ ignored,
// so that a write past the limit fails with EFBIG as on a full disk.
struct ChildConditions {
  std::string kill_at;
  long long max_file_bytes = -1;
};

inline CliResult run_nasc_under(const std::string& args, const ChildConditions& conditions) {
  const std::string base = scratch_path("child");
  const std::string out_path = base + ".out", err_path = base + ".err";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!conditions.kill_at.empty())
      ::setenv("NASC_TEST_KILL_AT", conditions.kill_at.c_str(), 1);
    else
      ::unsetenv("NASC_TEST_KILL_AT");
    // The output files are opened before the limit, so only nasc's own writes count.
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
    if (conditions.max_file_bytes >= 0) {
      ::signal(SIGXFSZ, SIG_IGN);  // stays ignored across exec
      rlimit limit{static_cast<rlim_t>(conditions.max_file_bytes),
                   static_cast<rlim_t>(conditions.max_file_bytes)};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(126);
    }
    const std::string cmd = "cd '" NASC_SOURCE_DIR "' && exec '" NASC_BINARY "' " + args;
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int raw = 0;
  ::waitpid(pid, &raw, 0);
  CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.signal = WIFSIGNALED(raw) ? WTERMSIG(raw) : 0;
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

// Runs `nasc ARGS` with NASC_TEST_KILL_AT=kill_at ("step:N" or "checkpoint-write:N") and
// requires that it died of that SIGKILL: a kill point the run never reaches (it finished,
// or failed first) fails the test rather than passing without a crash.
inline void run_nasc_killed_at(const std::string& args, const std::string& kill_at) {
  ChildConditions c;
  c.kill_at = kill_at;
  CliResult r = run_nasc_under(args, c);
  INFO("nasc " << args << " with NASC_TEST_KILL_AT=" << kill_at << "\nexit " << r.status << "\n"
               << r.err);
  REQUIRE(r.signal == SIGKILL);
}

}  // namespace nas::test
