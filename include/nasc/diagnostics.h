// libnasc's error reporting: compiler diagnostics as structured data, and the one exception
// type the API throws. Part of the public API (docs/embedding.md); it uses standard C++
// types only.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace nasc {

enum class Severity { Error, Warning, Note };

// A place in a source file. line and column are 1-based; 0 when unknown (the file may be
// empty too, for a message about no file in particular).
struct Location {
  std::string file;
  int line = 0;
  int column = 0;
};

// One located remark attached to a diagnostic ("candidate declared here").
struct DiagnosticNote {
  Location location;
  std::string message;
};

// A compiler diagnostic. `rendered` is the gcc-style text the nasc CLI prints for it
// (file:line:col: error: message, the source line and a caret, then the notes).
struct Diagnostic {
  Severity severity = Severity::Error;
  Location location;
  std::string message;
  std::string instance_path;  // module instance path ("darts/cell_3/node_1"), may be empty
  std::vector<DiagnosticNote> notes;
  std::string rendered;
};

// Everything the API throws. kind() tells a caller's mistake in its inputs (a .nas file,
// a config, an arch file, a latency table, a data set: fix the input) from a bug in nasc
// (report it). what() is the whole message, located ("cfg.json: epochs: must be ...");
// compile errors also come as diagnostics().
class Error : public std::runtime_error {
 public:
  enum class Kind { User, Internal };
  Error(Kind kind, const std::string& message, std::vector<Diagnostic> diagnostics = {});
  Kind kind() const { return kind_; }
  bool is_user_error() const { return kind_ == Kind::User; }
  // The compiler's diagnostics when the error came from compiling (errors and warnings,
  // in the order found); empty otherwise.
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  Kind kind_;
  std::vector<Diagnostic> diagnostics_;
};

// The suggestion nasc's messages end with for a misspelt name: "; did you mean `x`?" for
// the closest of `candidates` when it is a near miss, else "".
std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace nasc
