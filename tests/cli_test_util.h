// Helpers for tests that run the nasc binary: run a command line from the source tree
// and capture its status and output, read files, count lines, and start a run then kill
// it (SIGKILL, no cleanup) once a file has some lines, to test --resume.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/file_test_util.h"

namespace nas::test {

struct CliResult {
  int status = -1;
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

// Starts `nasc ARGS`, waits until `watched` has `lines` lines, lets it run `extra_ms`
// more, then kills it with SIGKILL.
inline void run_nasc_and_kill(const std::string& args, const std::string& watched, int lines,
                              int extra_ms) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string cmd =
        "cd '" NASC_SOURCE_DIR "' && exec '" NASC_BINARY "' " + args + " > /dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_lines(watched) < lines && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(extra_ms));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

}  // namespace nas::test
