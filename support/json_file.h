// The one JSON reader for every file a user hands nasc: train and search configs, arch
// files, latency tables, weights-file headers, run-folder files. Strict where nlohmann's
// defaults are lenient or unhelpful:
//   - a syntax error is located ("cfg.json:3:26: invalid JSON: syntax error ...");
//   - a number too large for a double (1e999999) is a located error in plain words, not
//     nlohmann's out_of_range exception (which callers would report as an internal error);
//   - a key given twice in one object is an error (nlohmann keeps the last one silently,
//     and whichever of two "lr" entries was meant, the file is a mistake);
//   - arrays and objects nested more than 256 deep are an error at the opening bracket
//     (no file nasc reads nests beyond a few levels, and a hostile one would cost memory).
// Every failure is a JsonSyntaxError, a UserError whose place is FILE:LINE:COL.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "support/errors.h"

namespace nas {

// Where a byte of a text is, for people: 1-based line and column (the column counts
// bytes). A byte past the end is placed after the last character.
struct TextPosition {
  int line = 1;
  int col = 1;
};
TextPosition text_position(const std::string& text, size_t byte);

// A JSON text that cannot be read: where() is "FILE:LINE:COL" (or "LINE:COL" for a text
// without a file name), message() says what is wrong.
class JsonSyntaxError : public UserError {
 public:
  JsonSyntaxError(const std::string& file, size_t byte, TextPosition pos, std::string message);
  const std::string& file() const { return file_; }
  size_t byte() const { return byte_; }  // 0-based offset of the offending byte
  int line() const { return pos_.line; }
  int col() const { return pos_.col; }

 private:
  std::string file_;
  size_t byte_;
  TextPosition pos_;
};

// Parses `text` (named `file` in messages) strictly, as above. Throws JsonSyntaxError.
nlohmann::json parse_json(const std::string& text, const std::string& file);

// Reads `file` whole and parses it. A file that cannot be read is a UserError
// "FILE: cannot read: <reason>"; bad content a JsonSyntaxError.
nlohmann::json read_json_file(const std::string& file);

// For lines that a reader skips on purpose when they are damaged (metrics.jsonl read back
// for a report or a resume): the document, or nullopt for any text parse_json refuses.
std::optional<nlohmann::json> try_parse_json(const std::string& text);

// The whole of `file` as bytes. Throws UserError "FILE: cannot read: <reason>" (no such
// file, a folder, permission denied, an I/O error).
std::string read_text_file(const std::string& file);

}  // namespace nas
