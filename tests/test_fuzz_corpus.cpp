// Regression test over the fuzzer's corpus (tests/fuzz/corpus, see tests/fuzz/README.md):
// every file goes through the same checks as the libFuzzer target (compile_text, then
// printing, DOT, space statistics and specialisation of the supernet when there is one),
// and none may end in an InternalError, an escaped exception or a broken invariant.
// Diagnostics are fine: most corpus files are not valid programs.
//
// The inputs that crashed the fuzzer are in tests/fuzz/crashes (see its README.md); the
// hidden test "[.fuzz-crashes]" runs them (`nas_tests "[fuzz-crashes]"`) and passes once
// the bugs are fixed, at which point they can move into the corpus.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#define NAS_FUZZ_NO_ENTRY_POINT
#include "tests/fuzz/fuzz_frontend.cpp"

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> files_in(const char* folder) {
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

// What the fuzzer would report for `text`, or "" when it passes. Sets *compiled when a
// supernet came out.
std::string failure_of(const std::string& text, bool* compiled = nullptr) {
  try {
    nas::run_with_large_stack([&] {
      bool ok = nas_fuzz::run_one(text);
      if (compiled) *compiled = ok;
    });
  } catch (const nas::InternalError& e) {
    return std::string("nas::InternalError: ") + e.what();
  } catch (const nas_fuzz::FuzzFinding& e) {
    return std::string("invariant broken: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("exception escaped: ") + e.what();
  } catch (...) {
    return "exception escaped (not a std::exception)";
  }
  return "";
}

}  // namespace

TEST_CASE("every fuzz corpus file compiles without an internal error", "[fuzz]") {
  std::vector<fs::path> files = files_in("corpus");
  REQUIRE(files.size() >= 20);  // the corpus is committed; an empty one means a wrong path
  size_t with_supernet = 0;
  for (const fs::path& path : files) {
    std::string text = read_bytes(path);
    if (nas_fuzz::names_special_files(text)) continue;  // the fuzzer skips them too
    INFO("corpus file " << path.filename().string() << " (" << text.size() << " bytes)");
    bool compiled = false;
    std::string failure = failure_of(text, &compiled);
    if (!failure.empty()) FAIL_CHECK(failure);
    if (compiled) ++with_supernet;
  }
  // The seeds include valid programs; if none compiles, the front end regressed badly.
  CHECK(with_supernet > 0);
}

TEST_CASE("the inputs that crashed the fuzzer no longer do", "[fuzz]") {
  // Each file in tests/fuzz/crashes once crashed the front end (see its README).
  std::vector<fs::path> files = files_in("crashes");
  CHECK(files.size() >= 8);
  for (const fs::path& path : files) {
    std::string text = read_bytes(path);
    INFO("crash reproducer " << path.filename().string() << " (" << text.size() << " bytes)");
    std::string failure = failure_of(text);
    if (!failure.empty()) FAIL_CHECK(failure);
  }
}
