#include "compiler/ir/diagnostics.h"

#include <algorithm>
#include <sstream>

#include "compiler/ir/names.h"

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

namespace {

// Quotes the source line with a caret under the column. The column counts bytes; the
// caret is placed by characters, so that UTF-8 text before it does not shift it. Control
// characters and invalid bytes are shown as '?' so that a binary file cannot garble the
// terminal, and a long line is cut to a window around the column, marked with "...".
void render_excerpt(std::ostringstream& out, const SourceLoc& loc) {
  if (!loc.known()) return;
  std::string_view line = loc.file->line(loc.line);
  if (line.empty()) return;  // nothing to point at
  constexpr size_t kMaxShown = 160;
  size_t col = static_cast<size_t>(std::max(loc.col, 1)) - 1;  // 0-based byte
  size_t start = col > kMaxShown - 20 ? col - kMaxShown / 2 : 0;
  while (start > 0 && start < line.size() &&
         (static_cast<unsigned char>(line[start]) & 0xC0) == 0x80)
    --start;  // do not start inside a character
  std::string shown = start > 0 ? "..." : "";
  size_t caret = shown.size();
  size_t i = start, width = 0;
  while (i < line.size() && width < kMaxShown) {
    size_t len = utf8_length(line, i);
    unsigned char c = line[i];
    if (len == 0 || (len == 1 && (c < 32 || c == 127))) {
      shown += c == '\t' ? ' ' : '?';
      len = 1;
    } else {
      shown.append(line.substr(i, len));
    }
    if (i < col) ++caret;
    i += len;
    ++width;
  }
  if (i < line.size()) shown += "...";
  if (col > i) caret += col - i;  // past the end of the line (e.g. a missing `;`)
  out << "  " << shown << "\n  " << std::string(caret, ' ') << "^\n";
}

// Instance paths of deep recursion can be thousands of characters; keep both ends.
std::string shorten_path(const std::string& path) {
  constexpr size_t kMax = 160;
  if (path.size() <= kMax) return path;
  size_t head = path.find('/', kMax / 2 - 20);
  size_t tail = path.rfind('/', path.size() - (kMax / 2 - 20));
  if (head == std::string::npos || tail == std::string::npos || head >= tail) return path;
  return path.substr(0, head) + "/..." + path.substr(tail);
}

// Messages quote user text (names, JSON parser output); keep control characters and
// invalid UTF-8 out of the terminal there too.
std::string printable(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t len = utf8_length(text, i);
    unsigned char c = text[i];
    if (len == 0 || (len == 1 && ((c < 32 && c != '\n' && c != '\t') || c == 127))) {
      out += '?';
      len = 1;
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

}  // namespace

std::string Diagnostics::render(const Diagnostic& d) {
  std::ostringstream out;
  const char* kind = d.severity == Severity::Error     ? "error"
                     : d.severity == Severity::Warning ? "warning"
                                                       : "note";
  if (d.loc.file) out << d.loc.str() << ": ";
  out << kind << ": " << printable(d.message);
  if (!d.instance_path.empty()) out << " [in " << printable(shorten_path(d.instance_path)) << "]";
  out << "\n";
  render_excerpt(out, d.loc);
  for (const auto& [loc, msg] : d.notes) {
    out << loc.str() << ": note: " << printable(msg) << "\n";
    render_excerpt(out, loc);
  }
  return out.str();
}

std::string Diagnostics::render() const {
  std::string all;
  for (const auto& d : diags_) all += render(d);
  return all;
}

}  // namespace nas
