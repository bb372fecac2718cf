#include "compiler/ir/diagnostics.h"

#include <sstream>

namespace nas {

SourceFile::SourceFile(std::string p, std::string t) : path(std::move(p)), text(std::move(t)) {
  line_starts.push_back(0);
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') line_starts.push_back(i + 1);
}

std::string_view SourceFile::line(int line_no) const {
  if (line_no < 1 || static_cast<size_t>(line_no) > line_starts.size()) return {};
  size_t begin = line_starts[line_no - 1];
  size_t end = text.find('\n', begin);
  if (end == std::string::npos) end = text.size();
  if (end > begin && text[end - 1] == '\r') --end;
  return std::string_view(text).substr(begin, end - begin);
}

std::string SourceLoc::str() const {
  if (!file) return "<unknown>";
  return file->path + ":" + std::to_string(line) + ":" + std::to_string(col);
}

void Diagnostics::error(const SourceLoc& loc, std::string message, std::string instance_path) {
  diags_.push_back({Severity::Error, loc, std::move(message), std::move(instance_path), {}});
  ++error_count_;
  if (error_count_ >= max_errors_) throw TooManyErrors();
}

void Diagnostics::warning(const SourceLoc& loc, std::string message, std::string instance_path) {
  diags_.push_back({Severity::Warning, loc, std::move(message), std::move(instance_path), {}});
}

void Diagnostics::note(const SourceLoc& loc, std::string message) {
  if (diags_.empty()) return;
  diags_.back().notes.emplace_back(loc, std::move(message));
}

// Quotes the source line, with control characters made visible so that a binary file
// cannot garble the terminal, and a caret under the column.
static void render_excerpt(std::ostringstream& out, const SourceLoc& loc) {
  if (!loc.known()) return;
  std::string_view line = loc.file->line(loc.line);
  constexpr size_t kMaxShown = 200;
  size_t start = 0;
  if (static_cast<size_t>(loc.col) > kMaxShown) start = loc.col - kMaxShown / 2;
  std::string shown;
  for (size_t i = start; i < line.size() && shown.size() < kMaxShown; ++i) {
    unsigned char c = line[i];
    shown += (c == '\t') ? ' ' : (c < 32 || c == 127) ? '?' : static_cast<char>(c);
  }
  out << "  " << shown << "\n  ";
  for (int i = static_cast<int>(start) + 1; i < loc.col; ++i) out << ' ';
  out << "^\n";
}

std::string Diagnostics::render(const Diagnostic& d) {
  std::ostringstream out;
  const char* kind = d.severity == Severity::Error     ? "error"
                     : d.severity == Severity::Warning ? "warning"
                                                       : "note";
  if (d.loc.file) out << d.loc.str() << ": ";
  out << kind << ": " << d.message;
  if (!d.instance_path.empty()) out << " [in " << d.instance_path << "]";
  out << "\n";
  render_excerpt(out, d.loc);
  for (const auto& [loc, msg] : d.notes) {
    out << loc.str() << ": note: " << msg << "\n";
    render_excerpt(out, loc);
  }
  return out.str();
}

std::string Diagnostics::render() const {
  std::string all;
  for (const auto& d : diags_) all += render(d);
  return all;
}

void internal_error(const char* file, int line, const std::string& what) {
  throw InternalError(std::string("internal error at ") + file + ":" + std::to_string(line) + ": " +
                      what);
}

}  // namespace nas
