#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>

#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

namespace fs = std::filesystem;

void bug(const std::string& what, const std::string& detail) {
  throw FuzzFinding(what + ": " + detail);
}

std::string failure_of(Harness harness, const std::string& input, bool* was_accepted) {
  try {
    bool ok = harness(input);
    if (was_accepted) *was_accepted = ok;
  } catch (const nas::InternalError& e) {
    return std::string("nas::InternalError: ") + e.what();
  } catch (const FuzzFinding& e) {
    return std::string("invariant broken: ") + e.what();
  } catch (const nas::UserError& e) {
    // A harness catches the user errors of the reader it calls; one escaping means a
    // later stage (which the harness only feeds accepted input) refused it.
    return std::string("user error escaped the harness: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("exception escaped: ") + e.what();
  } catch (...) {
    return "exception escaped (not a std::exception)";
  }
  return "";
}

void run_or_trap(const char* target, Harness harness, const std::string& input) {
  std::string failure = failure_of(harness, input);
  if (failure.empty()) return;
  std::fprintf(stderr, "\n==fuzz_%s== %s\n", target, failure.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

namespace {

struct ScratchFolder {
  fs::path path;
  ScratchFolder() {
    std::error_code ec;
    fs::path base =
        fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string pattern = (base / "nasc-fuzz-XXXXXX").string();
    if (!mkdtemp(pattern.data()))
      throw std::runtime_error("cannot create a scratch folder in " + base.string());
    path = pattern;
  }
  ~ScratchFolder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const fs::path& scratch() {
  static ScratchFolder folder;  // destroyed at exit, which removes it
  return folder.path;
}

}  // namespace

std::string scratch_dir() {
  return scratch().string();
}

std::string write_scratch(const std::string& name, const std::string& bytes) {
  fs::path path = scratch() / name;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write the scratch file " + path.string());
  return path.string();
}

std::vector<std::string> split_input(const std::string& input, const std::string& separator) {
  std::vector<std::string> parts;
  size_t from = 0;
  for (size_t at = input.find(separator); at != std::string::npos;
       at = input.find(separator, from)) {
    parts.push_back(input.substr(from, at - from));
    from = at + separator.size();
  }
  parts.push_back(input.substr(from));
  return parts;
}

}  // namespace nas_fuzz
