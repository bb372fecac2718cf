// The output folder of a training or search run (-o runs/x): config.json, log.txt,
// metrics.jsonl, weights, checkpoint. Its layout is documented in docs/train.md.
//
// A run folder is precious: starting a fresh run over an old one would interleave two
// runs' logs and metrics, so that is refused unless the caller resumes. Whole files are
// written atomically; log.txt and metrics.jsonl are appended line by line and flushed,
// so whatever a crash leaves behind is readable up to its last complete line.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "support/errors.h"

namespace nas {

// A folder that cannot be used as a run folder, or an I/O error in it: a UserError whose
// place is the folder or the file.
class RunDirError : public UserError {
 public:
  using UserError::UserError;
};

// What --resume says when there is no checkpoint yet.
inline constexpr const char* kStartingOver = "no checkpoint yet: starting the run over";

class RunDir {
 public:
  // Creates `dir` (and parents). fresh = true (a new run): refuses a folder that already
  // holds a run (log.txt, metrics.jsonl or checkpoint); other files are left alone.
  // fresh = false (--resume): the folder must exist and hold a checkpoint, or the
  // config.json of a run stopped before its first checkpoint (which then starts over).
  RunDir(const std::string& dir, bool fresh);

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& name) const;  // dir/name

  // Pretty-printed (2 spaces) with a final newline, written atomically.
  void write_json(const std::string& name, const nlohmann::ordered_json& j);
  // Appends `line` + '\n' to log.txt and flushes. The caller prints to the terminal itself.
  void log(const std::string& line);
  // Appends one compact JSON line to metrics.jsonl and flushes.
  void metrics(const nlohmann::ordered_json& record);
  // For --resume: drops the metrics.jsonl records whose integer "epoch" is > last_epoch
  // (the interrupted epoch is redone and logs them again) and an incomplete last line
  // left by a crash. Other lines, unparseable ones included, are kept as they are.
  // Rewrites the file atomically; nothing happens when there is no metrics.jsonl.
  void truncate_metrics_after(int64_t last_epoch);
  // For --resume of a run stopped before its first checkpoint: drops its epoch records
  // and notes in log.txt that the run starts over (kStartingOver).
  void start_over();

 private:
  void append(const std::string& name, const std::string& text);
  std::string dir_;
};

}  // namespace nas
