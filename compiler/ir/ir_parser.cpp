#include "compiler/ir/ir_parser.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include "compiler/ir/op_registry.h"
#include "compiler/passes/shape_inference.h"

namespace nas {
namespace {

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Unwinds the parser after a syntax error has been reported.
struct SyntaxError {};

// What the parser remembers about a node's text, for later checks.
struct NodeText {
  SourceLoc op_loc;     // the op name
  SourceLoc shape_loc;  // the written shape
  Shape written;
  bool ok = true;  // op, arity and attributes are valid
};

struct ArchText {
  SourceLoc key_loc, k_loc, candidates_loc;
  std::vector<SourceLoc> node_locs;
  ArchGroup group;
};

class IrParser {
 public:
  IrParser(const std::string& path, const std::string& text, Diagnostics& diags,
           const IrParseOptions& options)
      : file_(std::make_shared<const SourceFile>(path, text)), diags_(diags), options_(options) {}

  std::optional<Graph> run() {
    try {
      parse_text();
    } catch (const SyntaxError&) {
      return std::nullopt;
    }
    check_choices();
    check_arch();
    if (errors_) return std::nullopt;
    if (options_.infer_shapes) check_shapes();
    if (errors_) return std::nullopt;
    return std::move(g_);
  }

 private:
  // --- Lines and positions ------------------------------------------------------------

  int line_count() const { return static_cast<int>(file_->line_starts.size()); }

  // Moves to the next line that is neither blank nor a `//` comment line; false at the
  // end of the text.
  bool next_line() {
    while (line_no_ < line_count()) {
      ++line_no_;
      line_ = file_->line(line_no_);
      pos_ = 0;
      skip_ws();
      if (pos_ < line_.size() && line_.substr(pos_, 2) != "//") return true;
    }
    line_ = {};
    pos_ = 0;
    return false;
  }

  SourceLoc at(size_t pos) const { return {file_, line_no_, static_cast<int>(pos) + 1}; }
  SourceLoc end_of_text() const {
    int last = line_count();
    return {file_, last, static_cast<int>(file_->line(last).size()) + 1};
  }

  void error(const SourceLoc& loc, std::string message) {
    diags_.error(loc, std::move(message));
    errors_ = true;
  }
  [[noreturn]] void fail(size_t pos, std::string message) {
    error(at(pos), std::move(message));
    throw SyntaxError();
  }
  [[noreturn]] void fail_at_end(std::string message) {
    error(end_of_text(), std::move(message));
    throw SyntaxError();
  }

  // --- Tokens ---------------------------------------------------------------------------

  void skip_ws() {
    while (pos_ < line_.size() && (line_[pos_] == ' ' || line_[pos_] == '\t')) ++pos_;
  }
  bool at_eol() {
    skip_ws();
    return pos_ >= line_.size();
  }
  char peek() {
    skip_ws();
    return pos_ < line_.size() ? line_[pos_] : '\0';
  }

  // The token at the cursor, for "got ..." in messages.
  std::string got() const {
    size_t p = pos_;
    while (p < line_.size() && (line_[p] == ' ' || line_[p] == '\t')) ++p;
    if (p >= line_.size()) return "end of line";
    size_t end = p;
    if (is_ident_char(line_[end])) {
      while (end < line_.size() && is_ident_char(line_[end]) && end - p < 40) ++end;
    } else {
      ++end;
    }
    std::string tok(line_.substr(p, end - p));
    for (char& c : tok)
      if (static_cast<unsigned char>(c) < 32 || c == 127) c = '?';
    return "`" + tok + "`";
  }

  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c, const std::string& context) {
    if (!eat(c)) fail(pos_, std::string("expected `") + c + "` " + context + ", got " + got());
  }
  void expect_eol(const std::string& context) {
    if (!at_eol()) fail(pos_, "expected the end of the line " + context + ", got " + got());
  }

  std::string ident(const std::string& what) {
    skip_ws();
    if (pos_ >= line_.size() || !is_ident_start(line_[pos_]))
      fail(pos_, "expected " + what + ", got " + got());
    size_t start = pos_;
    while (pos_ < line_.size() && is_ident_char(line_[pos_])) ++pos_;
    return std::string(line_.substr(start, pos_ - start));
  }
  void keyword(const char* word, const std::string& context) {
    skip_ws();
    size_t start = pos_;
    if (pos_ < line_.size() && is_ident_start(line_[pos_])) {
      std::string w = ident(word);
      if (w == word) return;
    }
    pos_ = start;
    fail(pos_, std::string("expected `") + word + "` " + context + ", got " + got());
  }

  // A number: int64 unless it has a '.', an exponent, or is inf/nan.
  AttrValue number(const std::string& what) {
    skip_ws();
    size_t start = pos_;
    size_t p = pos_;
    if (p < line_.size() && line_[p] == '-') ++p;
    auto word_at = [&](size_t q, const char* w) {
      return line_.substr(q, 3) == w && (q + 3 >= line_.size() || !is_ident_char(line_[q + 3]));
    };
    if (word_at(p, "inf") || word_at(p, "nan")) {
      pos_ = p + 3;
      bool negative = line_[start] == '-';
      double v = line_[p] == 'i' ? std::numeric_limits<double>::infinity()
                                 : std::numeric_limits<double>::quiet_NaN();
      return negative ? -v : v;
    }
    if (p >= line_.size() || !is_digit(line_[p]))
      fail(start, "expected " + what + ", got " + got());
    bool is_float = false;
    while (p < line_.size() && is_digit(line_[p])) ++p;
    if (p < line_.size() && line_[p] == '.') {
      is_float = true;
      ++p;
      while (p < line_.size() && is_digit(line_[p])) ++p;
    }
    if (p < line_.size() && (line_[p] == 'e' || line_[p] == 'E')) {
      size_t q = p + 1;
      if (q < line_.size() && (line_[q] == '+' || line_[q] == '-')) ++q;
      if (q < line_.size() && is_digit(line_[q])) {
        is_float = true;
        p = q;
        while (p < line_.size() && is_digit(line_[p])) ++p;
      }
    }
    if (p < line_.size() && (is_ident_char(line_[p]) || line_[p] == '.'))
      fail(start, "malformed number `" + std::string(line_.substr(start, p + 1 - start)) + "`");
    const char* first = line_.data() + start;
    const char* last = line_.data() + p;
    pos_ = p;
    if (is_float) {
      double v = 0;
      auto [ptr, ec] = std::from_chars(first, last, v);
      if (ec != std::errc() || ptr != last)
        fail(start, "float `" + std::string(first, last) + "` is out of range");
      return v;
    }
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(first, last, v);
    if (ec != std::errc() || ptr != last)
      fail(start, "integer `" + std::string(first, last) + "` does not fit in 64 bits");
    return v;
  }

  int64_t integer(const std::string& what) {
    skip_ws();
    size_t start = pos_;
    AttrValue v = number(what);
    if (!std::holds_alternative<int64_t>(v)) fail(start, "expected " + what + " (an integer)");
    return std::get<int64_t>(v);
  }

  // `%N`; the id is checked by the caller.
  int ref(const std::string& what) {
    skip_ws();
    size_t start = pos_;
    if (!eat('%')) fail(pos_, "expected " + what + " (`%N`), got " + got());
    if (pos_ >= line_.size() || !is_digit(line_[pos_]))
      fail(pos_, "expected a node number after `%`, got " + got());
    int64_t v = integer("a node number");
    if (v > std::numeric_limits<int>::max()) fail(start, "node number is too large");
    return static_cast<int>(v);
  }

  std::string string_literal() {
    skip_ws();
    size_t start = pos_;
    if (!eat('"')) fail(pos_, "expected a string, got " + got());
    std::string out;
    while (true) {
      if (pos_ >= line_.size()) fail(start, "unterminated string");
      char c = line_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      size_t esc = pos_;
      if (pos_ + 1 >= line_.size()) fail(start, "unterminated string");
      char e = line_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'x': {
          auto hex = [](char h) {
            if (h >= '0' && h <= '9') return h - '0';
            if (h >= 'a' && h <= 'f') return h - 'a' + 10;
            if (h >= 'A' && h <= 'F') return h - 'A' + 10;
            return -1;
          };
          int hi = pos_ < line_.size() ? hex(line_[pos_]) : -1;
          int lo = pos_ + 1 < line_.size() ? hex(line_[pos_ + 1]) : -1;
          if (hi < 0 || lo < 0) fail(esc, "`\\x` must be followed by two hex digits");
          out += static_cast<char>(hi * 16 + lo);
          pos_ += 2;
          break;
        }
        default:
          fail(esc, std::string("unknown escape `\\") + e +
                        "` in string (known: \\\" \\\\ \\n \\t \\r \\xHH)");
      }
    }
  }

  StringList string_list() {
    expect('[', "to open a list of strings");
    StringList out;
    if (eat(']')) return out;
    do out.push_back(string_literal());
    while (eat(','));
    expect(']', "to close the list");
    return out;
  }

  IntList int_list(const std::string& what) {
    expect('[', "to open " + what);
    IntList out;
    if (eat(']')) return out;
    do out.push_back(integer("an integer"));
    while (eat(','));
    expect(']', "to close " + what);
    return out;
  }

  // An attribute value; `spec` (when the attribute is known) types an empty list.
  AttrValue value(const AttrSpec* spec) {
    char c = peek();
    if (c == '"') return string_literal();
    if (c == '[') {
      size_t open = pos_;
      ++pos_;
      if (eat(']')) {
        if (spec && spec->type == AttrType::StringList) return StringList{};
        return IntList{};
      }
      pos_ = open;
      if (skip_bracket_peek() == '"') return string_list();
      return int_list("a list of integers");
    }
    if (c == '-' || is_digit(c)) return number("a value");
    if (is_ident_start(c)) {
      size_t start = pos_;
      std::string w = ident("a value");
      if (w == "true") return true;
      if (w == "false") return false;
      if (w == "inf" || w == "nan") {
        pos_ = start;
        return number("a value");
      }
      fail(start, "expected a value (number, true, false, string or list), got `" + w + "`");
    }
    fail(pos_, "expected a value (number, true, false, string or list), got " + got());
  }
  // The first non-blank character after the '[' at the cursor.
  char skip_bracket_peek() {
    size_t p = pos_ + 1;
    while (p < line_.size() && (line_[p] == ' ' || line_[p] == '\t')) ++p;
    return p < line_.size() ? line_[p] : '\0';
  }

  // --- Lines ----------------------------------------------------------------------------

  void parse_text() {
    if (!next_line()) fail_at_end("expected `network NAME(...) {`, got an empty text");
    parse_header();
    while (true) {
      if (!next_line()) fail_at_end("expected a node, `return %N` or `}`, got the end of the text");
      if (peek() == '%') {
        parse_node();
        continue;
      }
      if (peek() == '}') fail(pos_, "expected `return %N` before `}`");
      keyword("return", "(or a node `%N = op(...)`)");
      skip_ws();
      size_t p = pos_;
      int out = ref("the output node");
      if (out >= static_cast<int>(g_.nodes.size()))
        fail(p, "`return %" + std::to_string(out) +
                    "` names a node that does not exist (the graph has " +
                    std::to_string(g_.nodes.size()) + ")");
      if (produces_no_tensor(out)) error(at(p), no_tensor_message(out, "the output"));
      skip_ws();
      g_.output = out;
      expect_eol("after `return %N`");
      break;
    }
    if (!next_line()) fail_at_end("expected `}` to close the network, got the end of the text");
    expect('}', "to close the network");
    expect_eol("after `}`");
    while (next_line()) parse_arch();
  }

  void parse_header() {
    keyword("network", "at the start of the IR");
    skip_ws();
    g_.name = ident("the network's name");
    expect('(', "after the network's name");
    // The parameters are free text (values print as .nas source: lists, quoted strings);
    // they end at the last `)` before the closing `{`.
    size_t open = pos_;
    size_t brace = line_.find_last_not_of(" \t");
    if (line_[brace] != '{') {
      pos_ = brace;
      fail(brace, "expected `{` at the end of the network line, got " + got());
    }
    size_t close = line_.find_last_not_of(" \t", brace - 1);
    if (close == std::string_view::npos || close < open || line_[close] != ')') {
      fail(brace, "expected `)` to close the network's parameters before `{`");
    }
    std::string_view params = line_.substr(open, close - open);
    size_t begin = 0, depth = 0;
    bool in_string = false;
    auto add_param = [&](size_t end) {
      std::string_view item = params.substr(begin, end - begin);
      size_t item_pos = open + begin;
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
        item.remove_prefix(1);
        ++item_pos;
      }
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      size_t name_end = 0;
      while (name_end < item.size() && is_ident_char(item[name_end])) ++name_end;
      size_t eq = name_end;
      while (eq < item.size() && (item[eq] == ' ' || item[eq] == '\t')) ++eq;
      if (name_end == 0 || !is_ident_start(item[0]) || eq >= item.size() || item[eq] != '=')
        fail(item_pos,
             "expected a network parameter `name=value`, got `" + std::string(item) + "`");
      std::string_view value = item.substr(eq + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      g_.params.emplace_back(std::string(item.substr(0, name_end)), std::string(value));
    };
    if (!params.empty()) {
      for (size_t i = 0; i < params.size(); ++i) {
        char c = params[i];
        if (in_string) {
          if (c == '\\')
            ++i;  // an escaped character, e.g. \", cannot end the string
          else
            in_string = c != '"';
        } else if (c == '"') {
          in_string = true;
        } else if (c == '[' || c == '(') {
          ++depth;
        } else if ((c == ']' || c == ')') && depth > 0) {
          --depth;
        } else if (c == ',' && depth == 0 && i + 1 < params.size() && params[i + 1] == ' ') {
          add_param(i);
          begin = i + 2;
          ++i;
        }
      }
      add_param(params.size());
    }
  }

  // An effect op (a gradient op that only writes parameter gradients) has the shape [];
  // the shape rules of its would-be consumers rely on never seeing one.
  bool produces_no_tensor(int id) const {
    const Node& src = g_.nodes[id];
    return src.op && src.op->effect;
  }
  std::string no_tensor_message(int id, const char* role) const {
    return "%" + std::to_string(id) + " is " + g_.nodes[id].op->name +
           ", which produces no tensor (it only writes gradients), so it cannot be " + role;
  }

  void parse_node() {
    size_t start = pos_;
    int id = ref("a node");
    int expected = static_cast<int>(g_.nodes.size());
    if (id != expected)
      fail(start, "node ids must be 0, 1, 2, ... in order: expected %" + std::to_string(expected) +
                      ", got %" + std::to_string(id));
    expect('=', "after the node's id");
    skip_ws();
    size_t op_pos = pos_;
    std::string op_name = ident("an op name");
    Node n;
    n.id = id;
    NodeText t;
    t.op_loc = at(op_pos);
    n.op = find_op(op_name);
    if (!n.op) {
      error(t.op_loc, "unknown op `" + op_name + "`");
      t.ok = false;
    }
    expect('(', "after the op name");
    if (!eat(')')) {
      do {
        skip_ws();
        size_t p = pos_;
        int in = ref("an input");
        if (in >= id)
          fail(p, "node %" + std::to_string(id) + " reads %" + std::to_string(in) +
                      ", but inputs must be earlier nodes");
        if (produces_no_tensor(in)) {
          error(at(p), no_tensor_message(in, "an input"));
          t.ok = false;
        }
        n.inputs.push_back(in);
      } while (eat(','));
      expect(')', "to close the inputs");
    }
    if (n.op) {
      size_t count = n.inputs.size();
      if (count < static_cast<size_t>(n.op->min_inputs) ||
          (n.op->max_inputs >= 0 && count > static_cast<size_t>(n.op->max_inputs))) {
        std::string range = n.op->max_inputs < 0 ? "at least " + std::to_string(n.op->min_inputs)
                            : n.op->min_inputs == n.op->max_inputs
                                ? std::to_string(n.op->min_inputs)
                                : "between " + std::to_string(n.op->min_inputs) + " and " +
                                      std::to_string(n.op->max_inputs);
        error(t.op_loc,
              n.op->name + " expects " + range + " input(s), got " + std::to_string(count));
        t.ok = false;
      }
    }
    bool attrs_ok = true;
    if (eat('{')) {
      std::set<std::string> seen;
      if (!eat('}')) {
        do {
          skip_ws();
          size_t key_pos = pos_;
          std::string key = ident("an attribute name");
          if (seen.count(key)) fail(key_pos, "attribute `" + key + "` is given twice");
          seen.insert(key);
          expect('=', "after the attribute name");
          const AttrSpec* spec = n.op ? n.op->find_attr(key) : nullptr;
          skip_ws();
          size_t value_pos = pos_;
          AttrValue v = value(spec);
          if (n.op) {
            // complete_attrs on this attribute alone reports an unknown name or a wrong
            // type (before it would look for missing ones).
            Attrs single{{key, v}};
            if (!spec) {
              error(at(key_pos), complete_attrs(*n.op, single));
              attrs_ok = false;
            } else if (!compatible(spec->type, v)) {
              error(at(value_pos), complete_attrs(*n.op, single));
              attrs_ok = false;
            }
          }
          n.attrs[key] = std::move(v);
        } while (eat(','));
        expect('}', "to close the attributes");
      }
    }
    if (!attrs_ok) t.ok = false;
    if (n.op && attrs_ok) {
      std::string err = complete_attrs(*n.op, n.attrs);
      if (!err.empty()) {
        error(t.op_loc, err);
        t.ok = false;
      }
    }
    expect(':', "before the node's shape");
    skip_ws();
    t.shape_loc = at(pos_);
    t.written = int_list("the shape");
    n.shape = t.written;
    if (eat('#')) {
      parse_comment(n);
    } else {
      expect_eol("after the shape (or `# name @file:line:col`)");
    }
    if (n.op && is_input(n)) g_.inputs.push_back(n.id);
    g_.nodes.push_back(std::move(n));
    texts_.push_back(std::move(t));
  }

  static bool compatible(AttrType type, const AttrValue& v) {
    if (static_cast<AttrType>(v.index()) == type) return true;
    if (type == AttrType::Float && std::holds_alternative<int64_t>(v)) return true;
    if (auto* l = std::get_if<IntList>(&v))
      return l->empty() && (type == AttrType::IntList || type == AttrType::StringList);
    return false;
  }

  // ` name @file:line:col`, both parts optional; the name may hold anything.
  void parse_comment(Node& n) {
    std::string_view rest = line_.substr(pos_);
    pos_ = line_.size();
    std::string_view name = rest;
    size_t at_pos = rest.rfind(" @");
    if (at_pos != std::string_view::npos) {
      std::string_view loc = rest.substr(at_pos + 2);
      size_t c2 = loc.rfind(':');
      size_t c1 =
          c2 == std::string_view::npos || c2 == 0 ? std::string_view::npos : loc.rfind(':', c2 - 1);
      auto as_int = [](std::string_view s, int& out) {
        if (s.empty() || s.size() > 9) return false;
        for (char c : s)
          if (!is_digit(c)) return false;
        out = std::stoi(std::string(s));
        return true;
      };
      int line = 0, col = 0;
      if (c1 != std::string_view::npos && c1 > 0 && as_int(loc.substr(c1 + 1, c2 - c1 - 1), line) &&
          as_int(loc.substr(c2 + 1), col) && line > 0) {
        std::string file(loc.substr(0, c1));
        auto& src = source_files_[file];
        if (!src) src = std::make_shared<const SourceFile>(file, "");
        n.loc = {src, line, col};
        name = rest.substr(0, at_pos);
      }
    }
    if (!name.empty() && name[0] == ' ') name.remove_prefix(1);
    n.name = std::string(name);
  }

  void parse_arch() {
    ArchText a;
    keyword("arch", "(only `arch` lines may follow the network)");
    skip_ws();
    a.key_loc = at(pos_);
    a.group.key = string_literal();
    keyword("k", "after the arch key");
    expect('=', "after `k`");
    skip_ws();
    a.k_loc = at(pos_);
    int64_t k = integer("k");
    if (k < 0 || k > std::numeric_limits<int>::max()) {
      error(a.k_loc, "k is out of range");
      throw SyntaxError();
    }
    a.group.k = static_cast<int>(k);
    keyword("candidates", "after k");
    expect('=', "after `candidates`");
    skip_ws();
    a.candidates_loc = at(pos_);
    a.group.candidates = string_list();
    keyword("nodes", "after the candidates");
    expect('=', "after `nodes`");
    expect('[', "to open the list of choice nodes");
    if (!eat(']')) {
      do {
        skip_ws();
        size_t p = pos_;
        int id = ref("a choice node");
        if (id >= static_cast<int>(g_.nodes.size()))
          fail(p, "arch \"" + a.group.key + "\" names %" + std::to_string(id) +
                      ", which does not exist (the graph has " + std::to_string(g_.nodes.size()) +
                      " nodes)");
        a.group.nodes.push_back(id);
        a.node_locs.push_back(at(p));
      } while (eat(','));
      expect(']', "to close the list of choice nodes");
    }
    expect_eol("after the arch line");
    arch_.push_back(std::move(a));
  }

  // --- Graph checks ---------------------------------------------------------------------

  void check_choices() {
    for (Node& n : g_.nodes) {
      NodeText& t = texts_[n.id];
      if (!t.ok || !is_choice(n)) continue;
      size_t inputs = n.inputs.size();
      const StringList& names = n.strings_attr("candidates");
      int64_t k = n.int_attr("k");
      if (names.size() != inputs) {
        error(t.op_loc,
              "choice `" + n.string_attr("key") +
                  "` needs one candidate name per input: " + std::to_string(names.size()) +
                  " names for " + std::to_string(inputs) + " inputs");
        t.ok = false;
      } else if (k < 1 || k > static_cast<int64_t>(inputs)) {
        error(t.op_loc, "choice `" + n.string_attr("key") +
                            "` attribute `k` must be between 1 and the number of candidates (" +
                            std::to_string(inputs) + "), got " + std::to_string(k));
        t.ok = false;
      }
    }
  }

  void check_arch() {
    std::map<std::string, size_t> by_key;
    std::set<int> seen, listed;
    for (size_t i = 0; i < arch_.size(); ++i) {
      ArchText& a = arch_[i];
      ArchGroup& group = a.group;
      if (by_key.count(group.key)) {
        error(a.key_loc, "arch \"" + group.key + "\" is declared twice");
        continue;
      }
      by_key[group.key] = i;
      bool ok = true;
      if (group.k < 1 || group.k > static_cast<int>(group.candidates.size())) {
        error(a.k_loc, "arch \"" + group.key + "\": k must be between 1 and the number of " +
                           "candidates (" + std::to_string(group.candidates.size()) + "), got " +
                           std::to_string(group.k));
        ok = false;
      }
      for (size_t c = 0; c < group.candidates.size() && ok; ++c)
        for (size_t d = 0; d < c; ++d)
          if (group.candidates[c] == group.candidates[d]) {
            error(a.candidates_loc, "arch \"" + group.key + "\": candidate `" +
                                        group.candidates[c] + "` appears twice");
            ok = false;
            break;
          }
      for (size_t j = 0; j < group.nodes.size(); ++j) {
        int id = group.nodes[j];
        const Node& n = g_.nodes[id];
        std::string where = "arch \"" + group.key + "\" lists %" + std::to_string(id);
        if (!seen.insert(id).second) {
          error(a.node_locs[j], where + " twice, or in two arch lines");
          continue;
        }
        if (!texts_[id].ok) continue;
        if (!is_choice(n)) {
          error(a.node_locs[j], where + ", which is a " + n.op->name + ", not a choice");
          continue;
        }
        if (n.string_attr("key") != group.key) {
          error(a.node_locs[j], where + ", a choice with key \"" + n.string_attr("key") + "\"");
          continue;
        }
        listed.insert(id);
        if (n.strings_attr("candidates") != group.candidates || n.int_attr("k") != group.k)
          error(a.node_locs[j], where + ", whose candidates " + attr_str(n.attrs.at("candidates")) +
                                    " (k=" + std::to_string(n.int_attr("k")) +
                                    ") differ from the group's " + attr_str(group.candidates) +
                                    " (k=" + std::to_string(group.k) + ")");
      }
      if (!group.nodes.empty()) group.loc = g_.nodes[group.nodes[0]].loc;
      g_.arch.push_back(group);
    }
    for (const Node& n : g_.nodes) {
      if (!texts_[n.id].ok || !is_choice(n) || listed.count(n.id)) continue;
      const std::string& key = n.string_attr("key");
      error(texts_[n.id].op_loc,
            "choice %" + std::to_string(n.id) + " has key \"" + key + "\", but " +
                (by_key.count(key) ? "the line `arch \"" + key + "\"` does not list it in `nodes`"
                                   : "no `arch \"" + key + "\" ...` line follows the network"));
    }
  }

  // Recomputes every shape. Messages point into the IR text: each node is located at its
  // op name while the pass runs, and gets its own location back afterwards.
  void check_shapes() {
    std::vector<SourceLoc> own;
    for (Node& n : g_.nodes) {
      own.push_back(n.loc);
      n.loc = texts_[n.id].op_loc;
    }
    Diagnostics local(std::numeric_limits<size_t>::max());
    infer_shapes(g_, local);
    for (const Diagnostic& d : local.all()) {
      if (d.severity == Severity::Error) {
        diags_.error(d.loc, d.message, d.instance_path);
        errors_ = true;
      } else {
        diags_.warning(d.loc, d.message, d.instance_path);
      }
      for (const auto& [loc, message] : d.notes) diags_.note(loc, message);
    }
    for (Node& n : g_.nodes) {
      n.loc = own[n.id];
      const NodeText& t = texts_[n.id];
      if (n.shape != t.written)
        error(t.shape_loc, "node %" + std::to_string(n.id) + " is written with shape " +
                               shape_str(t.written) + ", but " + n.op->name + " gives " +
                               shape_str(n.shape));
    }
    for (ArchGroup& group : g_.arch)
      if (!group.nodes.empty()) group.loc = g_.nodes[group.nodes[0]].loc;
  }

  std::shared_ptr<const SourceFile> file_;
  Diagnostics& diags_;
  IrParseOptions options_;
  int line_no_ = 0;
  std::string_view line_;
  size_t pos_ = 0;
  bool errors_ = false;

  Graph g_;
  std::vector<NodeText> texts_;  // by node id
  std::vector<ArchText> arch_;
  std::map<std::string, std::shared_ptr<const SourceFile>> source_files_;
};

}  // namespace

std::optional<Graph> parse_ir(const std::string& path, const std::string& text,
                              Diagnostics& diags) {
  return parse_ir(path, text, diags, IrParseOptions{});
}

std::optional<Graph> parse_ir(const std::string& path, const std::string& text, Diagnostics& diags,
                              const IrParseOptions& options) {
  try {
    IrParser parser(path, text, diags, options);
    return parser.run();
  } catch (const TooManyErrors&) {
    return std::nullopt;
  }
}

}  // namespace nas
