#include "runtime/train/run_dir.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/train/checkpoint.h"
#include "runtime/train/tensor_file.h"
#include "support/json_file.h"

namespace nas {

namespace fs = std::filesystem;

namespace {

// The files that mark a folder as holding a run (a folder with only a checkpoint is one).
const char* const kRunMarkers[] = {"log.txt", "metrics.jsonl", kCheckpointFileName};

}  // namespace

RunDir::RunDir(const std::string& dir, bool fresh) : dir_(dir) {
  if (dir_.empty()) throw RunDirError("-o", "the run folder's path is empty");
  std::error_code ec;
  fs::file_status st = fs::status(dir_, ec);
  if (fs::exists(st) && !fs::is_directory(st))
    throw RunDirError(dir_, "exists and is not a folder");
  if (!fresh) {
    if (!fs::exists(st)) throw RunDirError(dir_, "no such run folder to resume");
    // A run stopped before its first checkpoint still has its config.json: resuming it
    // starts it over, rather than leaving a folder that can be neither resumed nor reused.
    if (!fs::exists(path(kCheckpointFileName), ec) && !fs::exists(path("config.json"), ec))
      throw RunDirError(dir_, "no checkpoint or config.json to resume from");
    return;
  }
  for (const char* m : kRunMarkers)
    if (fs::exists(path(m), ec))
      throw RunDirError(dir_, "already holds a run (" + std::string(m) +
                                  "); use --resume to continue it, or -o with another folder");
  fs::create_directories(dir_, ec);
  if (ec) throw RunDirError(dir_, "cannot create the folder: " + ec.message());
}

std::string RunDir::path(const std::string& name) const {
  return (fs::path(dir_) / name).string();
}

void RunDir::write_json(const std::string& name, const nlohmann::ordered_json& j) {
  std::string text;
  try {
    text = j.dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {
    throw RunDirError(path(name), std::string("cannot encode: ") + e.what());
  }
  write_file_atomic(path(name), text);
}

void RunDir::append(const std::string& name, const std::string& text) {
  // Opened per call: a line per epoch (or per log_every steps) makes the cost irrelevant,
  // and nothing stays open across a truncate_metrics_after.
  const std::string p = path(name);
  std::FILE* f = std::fopen(p.c_str(), "ab");
  if (!f) throw RunDirError(p, std::string("cannot open for appending: ") + std::strerror(errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fflush(f) == 0 && ok;
  int err = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) throw RunDirError(p, std::string("cannot write: ") + std::strerror(err ? err : EIO));
}

void RunDir::log(const std::string& line) {
  append("log.txt", line + "\n");
}

void RunDir::metrics(const nlohmann::ordered_json& record) {
  std::string text;
  try {
    text = record.dump();
  } catch (const nlohmann::json::exception& e) {
    throw RunDirError(path("metrics.jsonl"), std::string("cannot encode a record: ") + e.what());
  }
  append("metrics.jsonl", text + "\n");
}

void RunDir::start_over() {
  truncate_metrics_after(0);
  log(kStartingOver);
}

void RunDir::truncate_metrics_after(int64_t last_epoch) {
  const std::string p = path("metrics.jsonl");
  std::error_code ec;
  if (!fs::exists(p, ec)) return;
  std::ifstream in(p, std::ios::binary);
  if (!in) throw RunDirError(p, std::string("cannot open: ") + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();

  std::string kept;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // an incomplete last line: a crash mid-append
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    bool drop = false;
    if (std::optional<nlohmann::json> r = try_parse_json(line)) {  // else not ours to judge
      auto it = r->is_object() ? r->find("epoch") : r->end();
      drop = it != r->end() && it->is_number_integer() && it->get<int64_t>() > last_epoch;
    }
    if (!drop) kept += line + "\n";
  }
  if (kept == text) return;
  write_file_atomic(p, kept);
}

}  // namespace nas
