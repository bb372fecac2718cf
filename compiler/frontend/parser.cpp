// parse_source: checks the raw bytes (UTF-8, size, nesting), runs the ANTLR lexer and
// parser with located error reporting, and converts the parse tree into the owned AST.
#include "compiler/frontend/parser.h"

#include <NasLexer.h>
#include <NasParser.h>
#include <antlr4-runtime.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>

#include "compiler/frontend/pytorch_hints.h"
#include "compiler/ir/names.h"

namespace nas {
namespace {

using nas_grammar::NasLexer;
using nas_grammar::NasParser;

// ANTLR counts columns in code points; diagnostics count bytes (as gcc does). Lines that
// are pure ASCII need no conversion; the others get a code point -> byte table, built
// once per line, so that a huge one-line file still converts in linear time.
class Columns {
 public:
  explicit Columns(std::shared_ptr<const SourceFile> file)
      : file_(std::move(file)), kind_(file_->line_starts.size(), kUnknown) {}

  SourceLoc loc(const antlr4::Token* tok) {
    if (!tok) return {file_, 0, 0};
    return at(static_cast<int>(tok->getLine()), static_cast<int>(tok->getCharPositionInLine()));
  }
  // line is 1-based, cp_col is ANTLR's 0-based code point column. The line's text is
  // looked at once (finding its end is linear in its length).
  SourceLoc at(int line, int cp_col) {
    if (line < 1 || static_cast<size_t>(line) > kind_.size()) return {file_, line, cp_col + 1};
    char& kind = kind_[line - 1];
    if (kind == kUnknown) {
      std::string_view text = file_->line(line);
      kind = kAscii;
      for (unsigned char c : text)
        if (c >= 0x80) kind = kWide;
      if (kind == kWide) {
        std::vector<int>& map = maps_[line];  // byte offset of each code point, then the end
        for (size_t i = 0; i < text.size(); ++i)
          if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80)
            map.push_back(static_cast<int>(i));
        map.push_back(static_cast<int>(text.size()));
      }
    }
    if (kind == kAscii) return {file_, line, cp_col + 1};
    const std::vector<int>& map = maps_[line];
    int byte = static_cast<size_t>(cp_col) < map.size() ? map[cp_col] : map.back();
    return {file_, line, byte + 1};
  }
  // Just after the end of `tok`: where a missing `;` belongs.
  SourceLoc after(const antlr4::Token* tok) {
    SourceLoc l = loc(tok);
    l.col += static_cast<int>(tok->getText().size());
    return l;
  }
  const std::shared_ptr<const SourceFile>& file() const { return file_; }

 private:
  enum : char { kUnknown, kAscii, kWide };
  std::shared_ptr<const SourceFile> file_;
  std::vector<char> kind_;
  std::map<int, std::vector<int>> maps_;
};

// Rejects bytes that are not text before ANTLR sees them: the runtime's UTF-8 decoder
// throws on invalid sequences, and a binary file deserves a clear message anyway.
bool check_text(const std::shared_ptr<const SourceFile>& file, Diagnostics& diags) {
  const std::string& t = file->text;
  if (t.size() > kMaxSourceBytes) {
    diags.error({file, 1, 1}, "source file is larger than the " +
                                  std::to_string(kMaxSourceBytes >> 20) + " MiB limit (" +
                                  std::to_string(t.size()) + " bytes)");
    return false;
  }
  int line = 1, col = 1;
  for (size_t i = 0; i < t.size();) {
    unsigned char c = t[i];
    size_t len = c == 0 ? 0 : utf8_length(t, i);
    if (len == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", c);
      diags.error({file, line, col}, std::string("not a .nas text file: ") +
                                         (c == 0 ? "NUL byte" : "invalid UTF-8 byte ") +
                                         (c == 0 ? "" : hex) + " (is this a binary file?)");
      return false;
    }
    if (c == '\n') {
      ++line;
      col = 1;
    } else {
      col += static_cast<int>(len);  // columns are bytes
    }
    i += len;
  }
  return true;
}

// Token types by role, from the grammar's literal names, so that nothing here depends
// on the generated numbering.
struct TokenKinds {
  std::vector<char> open, close, op, starts_expr, starts_stmt;
  size_t semi = 0, lbrace = 0, rbrace = 0, lparen = 0, lbracket = 0, rparen = 0, rbracket = 0,
         slash = 0, star = 0;
  const antlr4::dfa::Vocabulary& vocab;

  explicit TokenKinds(const antlr4::dfa::Vocabulary& v) : vocab(v) {
    size_t n = v.getMaxTokenType() + 1;
    open.assign(n, 0), close.assign(n, 0), op.assign(n, 0);
    starts_expr.assign(n, 0), starts_stmt.assign(n, 0);
    static const std::set<std::string> ops = {"+",  "-",  "*",  "/",  "%",  "<",  "<=",
                                              ">",  ">=", "==", "!=", "&&", "||", "and",
                                              "or", "?",  "in", "!",  "not"};
    static const std::set<std::string> expr_start = {"(",    "[",     "-",      "!",   "not",
                                                     "true", "false", "choice", "join"};
    static const std::set<std::string> stmt_start = {"let", "if", "for", "return", "assert"};
    for (size_t t = 1; t < n; ++t) {
      std::string lit = v.getLiteralName(t);
      if (lit.size() < 2) {  // not a literal token: INT, IDENT, ...
        std::string sym = v.getSymbolicName(t);
        if (sym == "INT" || sym == "FLOAT" || sym == "STRING" || sym == "IDENT")
          starts_expr[t] = starts_stmt[t] = 1;
        continue;
      }
      lit = lit.substr(1, lit.size() - 2);  // 'x' -> x
      open[t] = lit == "(" || lit == "[" || lit == "{";
      close[t] = lit == ")" || lit == "]" || lit == "}";
      op[t] = ops.count(lit) > 0;
      starts_expr[t] = expr_start.count(lit) > 0;
      starts_stmt[t] = starts_expr[t] || stmt_start.count(lit) > 0;
      size_t* slot = lit == ";"   ? &semi
                     : lit == "{" ? &lbrace
                     : lit == "}" ? &rbrace
                     : lit == "(" ? &lparen
                     : lit == "[" ? &lbracket
                     : lit == ")" ? &rparen
                     : lit == "]" ? &rbracket
                     : lit == "/" ? &slash
                     : lit == "*" ? &star
                                  : nullptr;
      if (slot) *slot = t;
    }
  }
  template <typename V>
  static bool in(const V& v, size_t type) {
    return type < v.size() && v[type];
  }
};

// Refuses input whose nesting or expression length would make the (recursive) parser,
// AST builder or evaluator run out of stack. Legitimate files are far below these.
// Operators are counted per statement (up to `;`), not per block: a choice body or
// brackets must not reset the count, or nesting could multiply the depth. Calls and
// indexing (`f(x)`, `xs[i]`) chain like operators, so they count too.
bool check_tokens(Columns& cols, antlr4::CommonTokenStream& tokens, const TokenKinds& k,
                  Diagnostics& diags) {
  constexpr int kMaxOperatorsPerStatement = 10000;
  int depth = 0, operators = 0;
  size_t prev = antlr4::Token::INVALID_TYPE;
  const antlr4::Token* prev_tok = nullptr;
  for (antlr4::Token* tok : tokens.getTokens()) {
    size_t type = tok->getType();
    // An unterminated `/* ...` is not a comment to the lexer: it arrives as `/` `*`.
    if (prev == k.slash && type == k.star && prev_tok->getStopIndex() + 1 == tok->getStartIndex()) {
      diags.error(cols.loc(prev_tok), "unterminated comment: `/*` without a closing `*/`");
      return false;
    }
    bool postfix = (type == k.lparen || type == k.lbracket) &&
                   (prev == k.rparen || prev == k.rbracket || prev == NasLexer::IDENT ||
                    prev == NasLexer::STRING);
    if (TokenKinds::in(k.open, type)) {
      if (++depth > kMaxNestingDepth) {
        diags.error(cols.loc(tok), "nesting deeper than " + std::to_string(kMaxNestingDepth) +
                                       " levels of brackets; simplify the expression");
        return false;
      }
    } else if (TokenKinds::in(k.close, type)) {
      depth = std::max(0, depth - 1);
    }
    if (type == k.semi) operators = 0;
    if ((TokenKinds::in(k.op, type) || postfix) && ++operators > kMaxOperatorsPerStatement) {
      diags.error(cols.loc(tok), "statement has more than " +
                                     std::to_string(kMaxOperatorsPerStatement) +
                                     " operators, calls and indexings; split it up");
      return false;
    }
    prev = type;
    prev_tok = tok;
  }
  return true;
}

// `'x'` for a token in a message, or "end of file".
std::string token_display(const antlr4::Token* t) {
  if (!t || t->getType() == antlr4::Token::EOF) return "end of file";
  std::string s = t->getText();
  if (s.size() > 40) {
    size_t cut = 37;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // whole chars
    s = s.substr(0, cut) + "...";
  }
  return "'" + s + "'";
}

// "a statement or '}'", "an expression", "';'", "a name": what the parser wanted, in
// words rather than ANTLR's token set.
std::string describe_expected(const antlr4::misc::IntervalSet& set, const TokenKinds& k) {
  std::vector<ssize_t> types = set.toList();
  auto has = [&](auto pred) {
    for (ssize_t t : types)
      if (t > 0 && pred(static_cast<size_t>(t))) return true;
    return false;
  };
  bool stmt = has([&](size_t t) { return k.vocab.getLiteralName(t) == "'return'"; });
  bool expr = !stmt && has([&](size_t t) { return t == NasLexer::INT; });
  std::vector<std::string> parts;
  if (stmt) parts.push_back("a statement");
  if (expr) parts.push_back("an expression");
  for (ssize_t t : types) {
    if (t < 0) continue;  // end of file: only worth saying when it is the only option
    size_t u = static_cast<size_t>(t);
    if ((stmt && TokenKinds::in(k.starts_stmt, u)) || (expr && TokenKinds::in(k.starts_expr, u)))
      continue;
    std::string lit = k.vocab.getLiteralName(u);
    if (!lit.empty())
      parts.push_back(lit);
    else if (u == NasLexer::IDENT)
      parts.push_back("a name");
    else if (u == NasLexer::INT || u == NasLexer::FLOAT)
      parts.push_back("a number");
    else if (u == NasLexer::STRING)
      parts.push_back("a string");
  }
  if (parts.empty()) return set.contains(antlr4::Token::EOF) ? "end of file" : "something else";
  std::string out;
  const size_t kShown = 8;
  for (size_t i = 0; i < parts.size() && i < kShown; ++i)
    out += (i == 0 ? "" : i + 1 == parts.size() ? " or " : ", ") + parts[i];
  if (parts.size() > kShown) out += ", ...";
  return out;
}

// ANTLR's default messages ("mismatched input 'x' expecting {...}") are rewritten as
// "unexpected X; expected Y". Stray characters and unterminated strings get their own
// words.
class ErrorStrategy : public antlr4::DefaultErrorStrategy {
 public:
  explicit ErrorStrategy(const TokenKinds& k) : k_(k) {}

 protected:
  void reportNoViableAlternative(antlr4::Parser* p,
                                 const antlr4::NoViableAltException& e) override {
    notify(p, e.getOffendingToken(), "unexpected " + token_display(e.getOffendingToken()));
  }
  void reportInputMismatch(antlr4::Parser* p, const antlr4::InputMismatchException& e) override {
    notify(p, e.getOffendingToken(),
           "unexpected " + token_display(e.getOffendingToken()) + "; expected " +
               describe_expected(e.getExpectedTokens(), k_));
  }
  void reportUnwantedToken(antlr4::Parser* p) override {
    if (inErrorRecoveryMode(p)) return;
    beginErrorCondition(p);
    antlr4::Token* t = p->getCurrentToken();
    notify(p, t,
           "unexpected " + token_display(t) + "; expected " +
               describe_expected(getExpectedTokens(p), k_));
  }
  void reportMissingToken(antlr4::Parser* p) override {
    if (inErrorRecoveryMode(p)) return;
    beginErrorCondition(p);
    antlr4::Token* t = p->getCurrentToken();
    notify(
        p, t,
        "expected " + describe_expected(getExpectedTokens(p), k_) + " before " + token_display(t));
  }

 private:
  void notify(antlr4::Parser* p, antlr4::Token* t, std::string msg) {
    if (t && t->getType() == NasLexer::ANY) {
      std::string c = t->getText();
      if (c == "\"")
        msg = "unterminated string (a string must end on the line where it starts)";
      else if (c.size() == 1 && (static_cast<unsigned char>(c[0]) < 32 || c[0] == 127))
        msg = "unexpected control character U+00" + std::string(1, "0123456789ABCDEF"[c[0] >> 4]) +
              std::string(1, "0123456789ABCDEF"[c[0] & 15]);
      else
        msg = "unexpected character '" + c + "'";
    }
    p->notifyErrorListeners(t, msg, nullptr);
  }
  const TokenKinds& k_;
};

// Turns syntax errors into located diagnostics. Errors at the end of the file, and
// missing tokens, are placed just after the previous token (where the `;` is missing),
// not at the start of whatever follows. Only the first error of a statement is kept:
// ANTLR's recovery often trips again before the next `;` or `}`.
class ErrorListener : public antlr4::BaseErrorListener {
 public:
  ErrorListener(Columns& cols, antlr4::CommonTokenStream& tokens, const TokenKinds& k,
                Diagnostics& diags)
      : cols_(cols), tokens_(tokens), k_(k), diags_(diags) {
    // Statement ends: every `;`, and the `}` that closes a module or network. A `}`
    // inside (a choice body, an `if` block) is not one: recovery often unwinds past it.
    boundary_.resize(tokens.size());
    int depth = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      size_t type = tokens.get(i)->getType();
      if (type == k.lbrace) ++depth;
      if (type == k.rbrace) depth = std::max(0, depth - 1);
      boundary_[i] = type == k.semi || (type == k.rbrace && depth == 0);
    }
  }
  void syntaxError(antlr4::Recognizer*, antlr4::Token* tok, size_t line, size_t col,
                   const std::string& msg, std::exception_ptr) override {
    ++count;
    size_t index = tok ? tok->getTokenIndex() : 0;
    if (tok && last_ >= 0 && !boundary_between(static_cast<size_t>(last_), index)) return;
    if (tok) last_ = static_cast<ssize_t>(index);
    SourceLoc loc = tok ? cols_.loc(tok) : cols_.at(static_cast<int>(line), static_cast<int>(col));
    bool at_eof = tok && tok->getType() == antlr4::Token::EOF;
    if (tok && index > 0 && (at_eof || msg.rfind("expected ", 0) == 0)) {
      antlr4::Token* prev = tokens_.get(index - 1);
      if (prev->getType() != antlr4::Token::EOF) loc = cols_.after(prev);
    }
    diags_.error(loc, "syntax error: " + msg);
    if (tok && index > 0) note_floor_division(tokens_.get(index - 1), tok);
  }
  int count = 0;

 private:
  // `k // 2` (PyTorch's floor division) comments out the rest of the line, and the error
  // then comes from whatever follows, which says nothing about the `//`: when a `//`
  // comment starts right after an operand, just before the offending token, say so.
  void note_floor_division(const antlr4::Token* operand, const antlr4::Token* next) {
    size_t type = operand->getType();
    bool is_operand = type == NasLexer::IDENT || type == NasLexer::INT || type == NasLexer::FLOAT ||
                      type == NasLexer::STRING || type == k_.rparen || type == k_.rbracket;
    if (!is_operand) return;
    antlr4::CharStream* input = operand->getInputStream();
    if (!input) return;
    size_t from = operand->getStopIndex() + 1;
    size_t to = next->getType() == antlr4::Token::EOF ? input->size() : next->getStartIndex();
    if (from >= to) return;
    std::string gap = input->getText(antlr4::misc::Interval(from, to - 1));
    size_t spaces = gap.find_first_not_of(" \t");
    if (spaces == std::string::npos || gap.compare(spaces, 2, "//") != 0) return;
    std::string comment = gap.substr(spaces + 2, gap.find('\n', spaces) - spaces - 2);
    // The right operand: the word the comment starts with.
    size_t word = comment.find_first_not_of(" \t");
    std::string right;
    while (word < comment.size() &&
           (std::isalnum(static_cast<unsigned char>(comment[word])) || comment[word] == '_'))
      right += comment[word++];
    // A comment that reads like code (`// 2;`, `// 2, 3)`, `// 2`) rather than words
    // (`// done`, where only a `;` is missing before the comment).
    bool swallowed_code = comment.find_first_of(";,)]") != std::string::npos ||
                          (!right.empty() && std::isdigit(static_cast<unsigned char>(right[0])));
    if (!swallowed_code) return;
    std::string left =
        type == NasLexer::IDENT || type == NasLexer::INT ? operand->getText() : std::string();
    SourceLoc at = cols_.after(operand);
    at.col += static_cast<int>(spaces);  // spaces and tabs: one byte each
    diags_.note(at, floor_division_note(left, right));
  }

  // A statement end from the last error's token (itself included: a missing `;` is
  // reported at the `}` that follows) up to, not including, the new one.
  bool boundary_between(size_t from, size_t to) {
    for (size_t i = from; i < to && i < boundary_.size(); ++i)
      if (boundary_[i]) return true;
    return false;
  }
  Columns& cols_;
  antlr4::CommonTokenStream& tokens_;
  const TokenKinds& k_;
  Diagnostics& diags_;
  std::vector<char> boundary_;
  ssize_t last_ = -1;
};

std::string unquote(const std::string& s) {
  std::string out;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] == '\\' && i + 2 < s.size()) {
      char c = s[++i];
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}

class AstBuilder {
 public:
  explicit AstBuilder(Columns& cols) : cols_(cols), file_(cols.file()) {}

  std::unique_ptr<ast::File> build(NasParser::FileContext* ctx) {
    auto out = std::make_unique<ast::File>();
    out->source = file_;
    for (auto* item : ctx->item()) {
      if (auto* imp = item->importDecl()) {
        // Located at the file name: that is what a "cannot find" or a cycle is about.
        out->imports.push_back({unquote(imp->STRING()->getText()), loc(imp->STRING())});
      } else if (auto* c = item->constDecl()) {
        out->consts.push_back({c->IDENT()->getText(), expr(c->expr()), loc(c)});
      } else if (auto* m = item->moduleDecl()) {
        out->modules.push_back(module(m->IDENT(), m->paramList(), m->block(), false, loc(m)));
      } else if (auto* n = item->networkDecl()) {
        out->modules.push_back(module(n->IDENT(), n->paramList(), n->block(), true, loc(n)));
      }
    }
    return out;
  }

 private:
  SourceLoc loc(antlr4::ParserRuleContext* ctx) { return cols_.loc(ctx->getStart()); }
  SourceLoc loc(antlr4::tree::TerminalNode* t) { return cols_.loc(t->getSymbol()); }

  ast::ModuleDecl module(antlr4::tree::TerminalNode* name, NasParser::ParamListContext* params,
                         NasParser::BlockContext* body, bool is_network, SourceLoc l) {
    ast::ModuleDecl m;
    m.name = name->getText();
    m.is_network = is_network;
    m.loc = loc(name);
    if (params)
      for (auto* p : params->param()) {
        ast::Param param;
        param.name = p->IDENT()->getText();
        param.loc = loc(p);
        param.type.loc = loc(p->typeRef());
        if (auto* t = dynamic_cast<NasParser::TensorTypeContext*>(p->typeRef())) {
          param.type.name = "tensor";
          if (auto* dims = t->exprList()) {
            param.type.has_shape = true;
            for (auto* e : dims->expr()) param.type.shape.push_back(expr(e));
          }
        } else if (auto* n = dynamic_cast<NasParser::NamedTypeContext*>(p->typeRef())) {
          param.type.name = n->IDENT()->getText();
        }
        if (p->expr()) param.default_value = expr(p->expr());
        m.params.push_back(std::move(param));
      }
    m.body = block(body);
    return m;
  }

  std::vector<ast::StmtPtr> block(NasParser::BlockContext* ctx) {
    std::vector<ast::StmtPtr> out;
    for (auto* s : ctx->stmt()) out.push_back(stmt(s));
    return out;
  }

  ast::StmtPtr if_stmt(antlr4::ParserRuleContext* ctx, NasParser::ExprContext* cond,
                       NasParser::BlockContext* then, NasParser::IfStmtContext* else_if,
                       NasParser::BlockContext* else_block) {
    auto s = std::make_unique<ast::Stmt>(ast::StmtKind::If, loc(ctx));
    s->expr = expr(cond);
    s->body = block(then);
    if (else_if)
      s->else_body.push_back(if_stmt(else_if, else_if->expr(), else_if->block(0), else_if->ifStmt(),
                                     else_if->block().size() > 1 ? else_if->block(1) : nullptr));
    else if (else_block)
      s->else_body = block(else_block);
    return s;
  }

  ast::StmtPtr stmt(NasParser::StmtContext* ctx) {
    using K = ast::StmtKind;
    if (auto* c = dynamic_cast<NasParser::LetStmtContext*>(ctx)) {
      auto s = std::make_unique<ast::Stmt>(K::Let, loc(c->IDENT()));
      s->name = c->IDENT()->getText();
      s->expr = expr(c->expr());
      return s;
    }
    if (auto* c = dynamic_cast<NasParser::AssignStmtContext*>(ctx)) {
      auto s = std::make_unique<ast::Stmt>(K::Assign, loc(c->IDENT()));
      s->name = c->IDENT()->getText();
      s->expr = expr(c->expr());
      return s;
    }
    if (auto* c = dynamic_cast<NasParser::IfStmtAltContext*>(ctx))
      return if_stmt(c, c->expr(), c->block(0), c->ifStmt(),
                     c->block().size() > 1 ? c->block(1) : nullptr);
    if (auto* c = dynamic_cast<NasParser::ForStmtContext*>(ctx)) {
      auto s = std::make_unique<ast::Stmt>(K::For, loc(c));
      s->name = c->IDENT()->getText();
      s->expr = expr(c->expr());
      s->body = block(c->block());
      return s;
    }
    if (auto* c = dynamic_cast<NasParser::ReturnStmtContext*>(ctx)) {
      auto s = std::make_unique<ast::Stmt>(K::Return, loc(c));
      s->expr = expr(c->expr());
      return s;
    }
    if (auto* c = dynamic_cast<NasParser::AssertStmtContext*>(ctx)) {
      auto s = std::make_unique<ast::Stmt>(K::Assert, loc(c));
      s->expr = expr(c->expr(0));
      if (c->expr().size() > 1) s->expr2 = expr(c->expr(1));
      return s;
    }
    auto* c = dynamic_cast<NasParser::ExprStmtContext*>(ctx);
    auto s = std::make_unique<ast::Stmt>(K::Expr, loc(ctx));
    if (c) s->expr = expr(c->expr());
    return s;
  }

  ast::ExprPtr make(ast::ExprKind k, antlr4::ParserRuleContext* ctx) {
    return std::make_unique<ast::Expr>(k, loc(ctx));
  }

  ast::ExprPtr binary(antlr4::ParserRuleContext* ctx, const std::string& op,
                      NasParser::ExprContext* a, NasParser::ExprContext* b) {
    auto e = make(ast::ExprKind::Binary, ctx);
    e->text = op == "and" ? "&&" : op == "or" ? "||" : op;
    // Locate binary errors at the operator, which is where a reader looks.
    for (auto* child : ctx->children)
      if (auto* t = dynamic_cast<antlr4::tree::TerminalNode*>(child)) {
        e->loc = loc(t);
        break;
      }
    e->operands.push_back(expr(a));
    e->operands.push_back(expr(b));
    return e;
  }

  void args(NasParser::ArgListContext* list, std::vector<ast::Arg>& out) {
    if (!list) return;
    for (auto* a : list->arg())
      out.push_back({a->IDENT() ? a->IDENT()->getText() : std::string(), expr(a->expr()), loc(a)});
  }

  ast::ExprPtr expr(NasParser::ExprContext* ctx) {
    using K = ast::ExprKind;
    if (!ctx) return nullptr;
    if (auto* c = dynamic_cast<NasParser::PrimaryExprContext*>(ctx)) return primary(c->primary());
    if (auto* c = dynamic_cast<NasParser::CallExprContext*>(ctx)) {
      auto e = make(K::Call, c);
      e->operands.push_back(expr(c->expr()));
      args(c->argList(), e->args);
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::IndexExprContext*>(ctx)) {
      auto e = make(K::Index, c);
      e->operands.push_back(expr(c->expr(0)));
      e->operands.push_back(expr(c->expr(1)));
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::SliceExprContext*>(ctx)) {
      auto e = make(K::Slice, c);
      e->operands.push_back(expr(c->expr(0)));
      // Which bound is present is told by the position of ':' among the children.
      NasParser::ExprContext* lo = nullptr;
      NasParser::ExprContext* hi = nullptr;
      bool after_colon = false;
      for (size_t i = 1; i < c->children.size(); ++i) {
        auto* child = c->children[i];
        if (child->getText() == ":" && dynamic_cast<antlr4::tree::TerminalNode*>(child))
          after_colon = true;
        else if (auto* sub = dynamic_cast<NasParser::ExprContext*>(child))
          (after_colon ? hi : lo) = sub;
      }
      e->operands.push_back(expr(lo));
      e->operands.push_back(expr(hi));
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::UnaryExprContext*>(ctx)) {
      auto e = make(K::Unary, c);
      e->text = c->op->getText() == "not" ? "!" : c->op->getText();
      e->operands.push_back(expr(c->expr()));
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::MulExprContext*>(ctx))
      return binary(c, c->op->getText(), c->expr(0), c->expr(1));
    if (auto* c = dynamic_cast<NasParser::AddExprContext*>(ctx))
      return binary(c, c->op->getText(), c->expr(0), c->expr(1));
    if (auto* c = dynamic_cast<NasParser::CmpExprContext*>(ctx))
      return binary(c, c->op->getText(), c->expr(0), c->expr(1));
    if (auto* c = dynamic_cast<NasParser::EqExprContext*>(ctx))
      return binary(c, c->op->getText(), c->expr(0), c->expr(1));
    if (auto* c = dynamic_cast<NasParser::InExprContext*>(ctx))
      return binary(c, "in", c->expr(0), c->expr(1));
    if (auto* c = dynamic_cast<NasParser::AndExprContext*>(ctx))
      return binary(c, "&&", c->expr(0), c->expr(1));
    if (auto* c = dynamic_cast<NasParser::OrExprContext*>(ctx))
      return binary(c, "||", c->expr(0), c->expr(1));
    if (auto* c = dynamic_cast<NasParser::CondExprContext*>(ctx)) {
      auto e = make(K::Cond, c);
      for (auto* sub : c->expr()) e->operands.push_back(expr(sub));
      return e;
    }
    NAS_CHECK(false, "unhandled expression alternative");
  }

  ast::ExprPtr primary(NasParser::PrimaryContext* ctx) {
    using K = ast::ExprKind;
    if (auto* c = dynamic_cast<NasParser::IntLitContext*>(ctx)) {
      auto e = make(K::Int, c);
      errno = 0;
      const std::string text = c->INT()->getText();
      char* end = nullptr;
      unsigned long long v = std::strtoull(text.c_str(), &end, 10);
      if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX)) {
        e->kind = K::Float;  // reported by the evaluator as out of range
        e->float_value = HUGE_VAL;
        e->text = text;
      } else {
        e->int_value = static_cast<int64_t>(v);
      }
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::FloatLitContext*>(ctx)) {
      auto e = make(K::Float, c);
      e->text = c->FLOAT()->getText();  // kept for the "out of range" message
      e->float_value = std::strtod(e->text.c_str(), nullptr);
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::StringLitContext*>(ctx)) {
      auto e = make(K::String, c);
      e->text = unquote(c->STRING()->getText());
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::BoolLitContext*>(ctx)) {
      auto e = make(K::Bool, c);
      e->bool_value = c->getText() == "true";
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::NameRefContext*>(ctx)) {
      auto e = make(K::Name, c);
      e->text = c->IDENT()->getText();
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::ParenExprContext*>(ctx)) return expr(c->expr());
    if (auto* c = dynamic_cast<NasParser::ListLitContext*>(ctx)) {
      auto e = make(K::List, c);
      if (c->exprList())
        for (auto* sub : c->exprList()->expr()) e->operands.push_back(expr(sub));
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::ListCompContext*>(ctx)) {
      auto e = make(K::ListComp, c);
      e->text = c->IDENT()->getText();
      e->operands.push_back(expr(c->expr(0)));
      e->operands.push_back(expr(c->expr(1)));
      e->operands.push_back(c->expr().size() > 2 ? expr(c->expr(2)) : nullptr);
      return e;
    }
    if (auto* c = dynamic_cast<NasParser::ChoiceExprContext*>(ctx)) {
      auto e = make(K::Choice, c);
      e->is_join = c->kw->getText() == "join";
      if (c->STRING()) {  // choice "key" { ... } is short for choice(key="key") { ... }
        auto key = std::make_unique<ast::Expr>(ast::ExprKind::String, loc(c->STRING()));
        key->text = unquote(c->STRING()->getText());
        e->args.push_back({"key", std::move(key), loc(c->STRING())});
      }
      args(c->argList(), e->args);
      if (c->candidates()) candidates(c->candidates(), e->candidates);
      return e;
    }
    NAS_CHECK(false, "unhandled primary alternative");
  }

  void candidates(NasParser::CandidatesContext* ctx, std::vector<ast::Candidate>& out) {
    for (auto* c : ctx->candidate()) {
      ast::Candidate cand;
      cand.loc = loc(c);
      if (auto* n = dynamic_cast<NasParser::NamedCandidateContext*>(c)) {
        auto* name = n->candName();
        if (name->IDENT())
          cand.name = name->IDENT()->getText();
        else if (name->STRING())
          cand.name = unquote(name->STRING()->getText());
        else
          cand.name_expr = expr(name->expr());
        cand.value = expr(n->expr());
      } else if (auto* f = dynamic_cast<NasParser::ForCandidatesContext*>(c)) {
        cand.is_for = true;
        cand.var = f->IDENT()->getText();
        cand.iter = expr(f->expr());
        if (f->candidates()) candidates(f->candidates(), cand.body);
      }
      out.push_back(std::move(cand));
    }
  }

  Columns& cols_;
  std::shared_ptr<const SourceFile> file_;
};

}  // namespace

std::unique_ptr<ast::File> parse_source(std::shared_ptr<const SourceFile> source,
                                        Diagnostics& diags) {
  if (!check_text(source, diags)) return nullptr;
  Columns cols(source);
  antlr4::ANTLRInputStream input(source->text);
  NasLexer lexer(&input);
  lexer.removeErrorListeners();  // the ANY token absorbs every character
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  TokenKinds kinds(lexer.getVocabulary());
  if (!check_tokens(cols, tokens, kinds, diags)) return nullptr;

  // Two-stage parse, as the ANTLR authors recommend: SLL prediction is much faster and
  // enough for almost every valid file; if it fails (a syntax error, or a rare
  // SLL-ambiguous input), parse again with full LL and the error-reporting strategy.
  NasParser parser(&tokens);
  parser.removeErrorListeners();
  parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(
      antlr4::atn::PredictionMode::SLL);
  parser.setErrorHandler(std::make_shared<antlr4::BailErrorStrategy>());
  NasParser::FileContext* tree = nullptr;
  try {
    tree = parser.file();
  } catch (const antlr4::ParseCancellationException&) {
    tree = nullptr;
  }
  if (!tree) {
    tokens.seek(0);
    parser.reset();
    parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(
        antlr4::atn::PredictionMode::LL);
    ErrorListener listener(cols, tokens, kinds, diags);
    parser.addErrorListener(&listener);
    parser.setErrorHandler(std::make_shared<ErrorStrategy>(kinds));
    tree = parser.file();
    parser.removeErrorListeners();
    if (listener.count > 0) return nullptr;
  }
  return AstBuilder(cols).build(tree);
}

}  // namespace nas
