// User diagnostics: located, collected, rendered as `file:line:col: error: ...` with
// the source line and a caret. Internal invariant failures use NAS_CHECK instead and are
// never reported through this channel.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/errors.h"  // InternalError, NAS_CHECK

namespace nas {

// A source file held in memory for the whole compilation, so that diagnostics can quote
// any line of it long after parsing.
struct SourceFile {
  std::string path;
  std::string text;
  std::vector<size_t> line_starts;  // byte offset of each line (0-based index = line-1)

  SourceFile(std::string path, std::string text);
  std::string_view line(int line_no) const;  // 1-based; empty when out of range
};

struct SourceLoc {
  std::shared_ptr<const SourceFile> file;
  int line = 0;  // 1-based; 0 means unknown
  int col = 0;   // 1-based, in bytes
  bool known() const { return file != nullptr && line > 0; }
  std::string str() const;  // "file:line:col", or "<unknown>"
};

enum class Severity { Error, Warning, Note };

struct Diagnostic {
  Severity severity = Severity::Error;
  SourceLoc loc;
  std::string message;
  std::string instance_path;  // module instance path, e.g. "darts/cell_3/node_1"
  std::vector<std::pair<SourceLoc, std::string>> notes;
};

// Thrown when the error limit is reached, to unwind the compiler quickly. Caught by the
// pipeline driver; never escapes the library.
struct TooManyErrors : std::runtime_error {
  TooManyErrors() : std::runtime_error("too many errors") {}
};

class Diagnostics {
 public:
  explicit Diagnostics(size_t max_errors = 20) : max_errors_(max_errors) {}

  // Records an error. Throws TooManyErrors once max_errors errors are collected.
  void error(const SourceLoc& loc, std::string message, std::string instance_path = {});
  void warning(const SourceLoc& loc, std::string message, std::string instance_path = {});
  // Attaches a note to the most recent diagnostic.
  void note(const SourceLoc& loc, std::string message);

  bool has_errors() const { return error_count_ > 0; }
  size_t error_count() const { return error_count_; }
  const std::vector<Diagnostic>& all() const { return diags_; }

  // Renders every diagnostic, gcc style, with the source line and a caret.
  std::string render() const;
  static std::string render(const Diagnostic& d);

 private:
  std::vector<Diagnostic> diags_;
  size_t error_count_ = 0;
  size_t max_errors_;
};

}  // namespace nas
