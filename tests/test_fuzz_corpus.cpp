// Regression tests over the fuzzers' corpora (tests/fuzz, see its README.md): every
// committed corpus file and every crash reproducer of every fuzz target goes through the
// same harness as the libFuzzer binary (tests/fuzz/harness/, compiled into this test
// binary by the top-level CMakeLists.txt), and none may end in an InternalError, an
// escaped exception or a broken invariant. Refusals (user errors, diagnostics) are fine:
// most corpus files are not valid input. A reproducer that still crashes fails the test.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuzz/harness/harness.h"

namespace fs = std::filesystem;

namespace {

struct Target {
  const char* name;
  nas_fuzz::Harness harness;
  size_t min_corpus;  // the committed corpus has at least this many files
};

const Target kTargets[] = {
    {"frontend", nas_fuzz::fuzz_frontend, 500},
    {"arch", nas_fuzz::fuzz_arch, 7},
    {"ir", nas_fuzz::fuzz_ir, 6},
    {"config", nas_fuzz::fuzz_config, 10},
    {"lut", nas_fuzz::fuzz_lut, 2},
    {"idx", nas_fuzz::fuzz_idx, 7},
    {"cifar", nas_fuzz::fuzz_cifar, 6},
    {"weights", nas_fuzz::fuzz_weights, 6},
    {"npy", nas_fuzz::fuzz_npy, 6},
    {"images", nas_fuzz::fuzz_images, 4},
};

std::vector<fs::path> files_in(const std::string& folder) {
  std::vector<fs::path> files;
  const fs::path dir = fs::path(NASC_SOURCE_DIR) / "tests" / "fuzz" / folder;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().filename() != "README.md")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace

TEST_CASE("every fuzz corpus file passes its harness", "[fuzz]") {
  for (const Target& target : kTargets) {
    DYNAMIC_SECTION("corpus/" << target.name) {
      std::vector<fs::path> files = files_in(std::string("corpus/") + target.name);
      // The corpora are committed; fewer files than this means a wrong path or a lost corpus.
      REQUIRE(files.size() >= target.min_corpus);
      size_t accepted = 0;
      for (const fs::path& path : files) {
        std::string input = read_bytes(path);
        INFO(target.name << " corpus file " << path.filename().string() << " (" << input.size()
                         << " bytes)");
        bool ok = false;
        std::string failure = nas_fuzz::failure_of(target.harness, input, &ok);
        if (!failure.empty()) FAIL_CHECK(failure);
        if (ok) ++accepted;
      }
      // The seeds include valid inputs; if none is accepted, the reader (or the harness)
      // regressed badly, and the corpus would only exercise the error paths.
      CHECK(accepted > 0);
    }
  }
}

TEST_CASE("the inputs that crashed a fuzzer no longer do", "[fuzz]") {
  // Each file in tests/fuzz/crashes/TARGET once made fuzz_TARGET trap (crashes/README.md
  // says which bug and which fix).
  size_t reproducers = 0;
  for (const Target& target : kTargets) {
    for (const fs::path& path : files_in(std::string("crashes/") + target.name)) {
      ++reproducers;
      std::string input = read_bytes(path);
      INFO(target.name << " crash reproducer " << path.filename().string() << " (" << input.size()
                       << " bytes)");
      std::string failure = nas_fuzz::failure_of(target.harness, input);
      if (!failure.empty()) FAIL_CHECK(failure);
    }
  }
  CHECK(reproducers >= 9);
}
