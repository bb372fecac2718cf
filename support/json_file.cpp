#include "support/json_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>
#include <vector>

namespace nas {

namespace {

using nlohmann::json;

// An input iterator over the text that counts the bytes nlohmann's lexer has taken, so
// that a SAX event, which carries no position, can still be placed: when a key event
// arrives, the lexer has just read the key's closing quote.
class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator(const char* p, size_t* taken) : p_(p), taken_(taken) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    ++p_;
    ++*taken_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const CountingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const CountingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  size_t* taken_;
};

// nlohmann's message is "[json.exception.parse_error.101] parse error at line 2, column 1:
// syntax error ..."; the tag and the position (given separately) are dropped.
// nlohmann escapes control characters in the text it quotes ("last read: '...'") but not
// bytes >= 0x80, which may not even be UTF-8 (a binary file given as JSON): those are
// written as \xNN so that a message is always printable.
std::string plain_parse_message(const std::string& what) {
  size_t at = what.find("parse error");
  size_t colon = at == std::string::npos ? std::string::npos : what.find(": ", at);
  std::string msg = at == std::string::npos      ? what
                    : colon == std::string::npos ? what.substr(at)
                                                 : what.substr(colon + 2);
  std::string out;
  for (unsigned char c : msg) {
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    static const char kHex[] = "0123456789abcdef";
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

constexpr size_t kMaxJsonDepth = 256;

// Builds the document from SAX events, refusing what json::parse would accept silently
// (a duplicate key) or report without a place (a number overflow).
class StrictBuilder {
 public:
  StrictBuilder(const std::string& text, const std::string& file, const size_t* taken)
      : text_(text), file_(file), taken_(taken) {}

  json take() { return std::move(root_); }

  bool null() { return put(nullptr); }
  bool boolean(bool v) { return put(v); }
  bool number_integer(json::number_integer_t v) { return put(v); }
  bool number_unsigned(json::number_unsigned_t v) { return put(v); }
  bool number_float(json::number_float_t v, const json::string_t&) { return put(v); }
  bool string(json::string_t& v) { return put(std::move(v)); }
  bool binary(json::binary_t& v) { return put(json::binary(std::move(v))); }

  bool start_object(std::size_t) {
    open(json::object());
    return true;
  }
  bool start_array(std::size_t) {
    open(json::array());
    return true;
  }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    Frame& f = stack_.back();
    if (f.value->contains(k)) {
      size_t at = opening_quote(*taken_ == 0 ? 0 : *taken_ - 1);
      fail(at, "duplicate key " + child_path(f, k));
    }
    f.key = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string& last_token, const json::exception& e) {
    // A number beyond a double's range: the lexer has read the whole token (and no
    // more), so it starts token-length bytes back. The token holds digits, signs, '.'
    // and exponents only, which nlohmann does not escape.
    if (e.id == 406) {
      size_t start = position >= last_token.size() ? position - last_token.size() : 0;
      fail(start, "number " + last_token + " is too large (beyond a double's range, ±1.8e308)");
    }
    // `position` counts the bytes read, the offending one included (the end of the input
    // counts as one), so the error is at position - 1.
    fail(position > 0 ? position - 1 : 0, "invalid JSON: " + plain_parse_message(e.what()));
  }

 private:
  struct Frame {
    json* value;
    std::string path;  // dotted key path of this container, for messages
    std::string key;   // objects: the key whose value comes next
  };

  [[noreturn]] void fail(size_t byte, std::string message) const {
    throw JsonSyntaxError(file_, byte, text_position(text_, byte), std::move(message));
  }

  static std::string child_path(const Frame& f, const std::string& key) {
    return f.path.empty() ? key : f.path + "." + key;
  }

  // The byte of the opening quote of the string whose closing quote is at `close`: the
  // first '"' before it that is not escaped (preceded by an even number of backslashes).
  size_t opening_quote(size_t close) const {
    for (size_t i = close; i-- > 0;) {
      if (text_[i] != '"') continue;
      size_t slashes = 0;
      while (i > slashes && text_[i - 1 - slashes] == '\\') ++slashes;
      if (slashes % 2 == 0) return i;
    }
    return close;
  }

  // Places a value in the open container (or as the root) and returns where it went.
  json* place(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json* parent = stack_.back().value;
    if (parent->is_array()) {
      parent->push_back(std::move(v));
      return &parent->back();
    }
    return &((*parent)[stack_.back().key] = std::move(v));
  }
  bool put(json&& v) {
    place(std::move(v));
    return true;
  }
  void open(json&& container) {
    // No file nasc reads nests deeply; a hostile one nested 200,000 deep would otherwise
    // cost memory quadratic in its depth (each level keeps its key path for messages).
    if (stack_.size() >= kMaxJsonDepth)
      fail(*taken_ == 0 ? 0 : *taken_ - 1,
           "nested more than " + std::to_string(kMaxJsonDepth) + " deep (arrays and objects)");
    std::string path;
    if (!stack_.empty()) {
      const Frame& f = stack_.back();
      path = f.value->is_array() ? f.path + "[" + std::to_string(f.value->size()) + "]"
                                 : child_path(f, f.key);
    }
    // Containers below are filled in place: a parent's storage does not move while one
    // of its children is open, because values are only added to the innermost one.
    json* at = place(std::move(container));
    stack_.push_back({at, std::move(path), {}});
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  const std::string& text_;
  const std::string& file_;
  const size_t* taken_;
  json root_;
  std::vector<Frame> stack_;
};

std::string where_of(const std::string& file, TextPosition pos) {
  std::string lc = std::to_string(pos.line) + ":" + std::to_string(pos.col);
  return file.empty() ? lc : file + ":" + lc;
}

}  // namespace

TextPosition text_position(const std::string& text, size_t byte) {
  TextPosition pos;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++pos.line;
      pos.col = 1;
    } else {
      ++pos.col;
    }
  }
  return pos;
}

JsonSyntaxError::JsonSyntaxError(const std::string& file, size_t byte, TextPosition pos,
                                 std::string message)
    : UserError(where_of(file, pos), std::move(message)), file_(file), byte_(byte), pos_(pos) {}

json parse_json(const std::string& text, const std::string& file) {
  size_t taken = 0;
  StrictBuilder builder(text, file, &taken);
  CountingIterator first(text.data(), &taken), last(text.data() + text.size(), &taken);
  // Every failure throws from inside the builder; a false return would be a handler
  // that stopped without saying why.
  bool ok = json::sax_parse(first, last, &builder);
  NAS_CHECK(ok, "the JSON builder stopped without an error");
  return builder.take();
}

std::optional<json> try_parse_json(const std::string& text) {
  try {
    return parse_json(text, "");
  } catch (const JsonSyntaxError&) {
    return std::nullopt;
  }
}

std::string read_text_file(const std::string& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    throw UserError(file, "cannot read: it is a folder, not a file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UserError(file, std::string("cannot read: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw UserError(file, "cannot read: I/O error");
  return ss.str();
}

json read_json_file(const std::string& file) {
  return parse_json(read_text_file(file), file);
}

}  // namespace nas
