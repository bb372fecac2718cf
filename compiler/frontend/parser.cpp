// parse_source: checks the raw bytes (UTF-8, size, nesting), runs the ANTLR lexer and
// parser with located error reporting, and converts the parse tree into the owned AST.
#include "compiler/frontend/parser.h"

#include <NasLexer.h>
#include <NasParser.h>
#include <antlr4-runtime.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace nas {
namespace {

using nas_grammar::NasLexer;
using nas_grammar::NasParser;

SourceLoc loc_of(const std::shared_ptr<const SourceFile>& file, const antlr4::Token* tok) {
  if (!tok) return {file, 0, 0};
  return {file, static_cast<int>(tok->getLine()),
          static_cast<int>(tok->getCharPositionInLine()) + 1};
}

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
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool ok = len > 0 && i + len <= t.size() && c != 0;
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(t[i + k]) >> 6) == 0x2;
    if (!ok) {
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
      ++col;
    }
    i += len;
  }
  return true;
}

// Turns ANTLR's syntax errors into located diagnostics with friendlier wording.
class ErrorListener : public antlr4::BaseErrorListener {
 public:
  ErrorListener(std::shared_ptr<const SourceFile> file, Diagnostics& diags)
      : file_(std::move(file)), diags_(diags) {}
  void syntaxError(antlr4::Recognizer*, antlr4::Token* tok, size_t line, size_t col,
                   const std::string& msg, std::exception_ptr) override {
    ++count;
    std::string text = msg;
    if (tok && tok->getType() == NasLexer::ANY)
      text = "unexpected character '" + tok->getText() + "'";
    else if (tok && tok->getType() == antlr4::Token::EOF &&
             msg.find("missing") == std::string::npos)
      text = "unexpected end of file (" + msg + ")";
    diags_.error({file_, static_cast<int>(line), static_cast<int>(col) + 1},
                 "syntax error: " + text);
  }
  int count = 0;

 private:
  std::shared_ptr<const SourceFile> file_;
  Diagnostics& diags_;
};

// Refuses input whose nesting or expression length would make the (recursive) parser,
// AST builder or evaluator run out of stack. Legitimate files are far below these.
bool check_tokens(const std::shared_ptr<const SourceFile>& file, antlr4::CommonTokenStream& tokens,
                  Diagnostics& diags) {
  constexpr int kMaxOperatorsPerStatement = 10000;
  int depth = 0, operators = 0;
  for (antlr4::Token* tok : tokens.getTokens()) {
    std::string text = tok->getText();
    if (text == "(" || text == "[" || text == "{") {
      if (++depth > kMaxNestingDepth) {
        diags.error(loc_of(file, tok), "nesting deeper than " + std::to_string(kMaxNestingDepth) +
                                           " levels of brackets; simplify the expression");
        return false;
      }
    } else if (text == ")" || text == "]" || text == "}") {
      depth = std::max(0, depth - 1);
    }
    if (text == ";" || text == "{" || text == "}") operators = 0;
    static const char* kOps[] = {"+",  "-",  "*",  "/", "%",   "<",  "<=", ">",
                                 ">=", "==", "!=", "&&", "||", "and", "or", "?",  "in"};
    for (const char* op : kOps)
      if (text == op && ++operators > kMaxOperatorsPerStatement) {
        diags.error(loc_of(file, tok), "statement has more than " +
                                           std::to_string(kMaxOperatorsPerStatement) +
                                           " operators; split it up");
        return false;
      }
  }
  return true;
}

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
  explicit AstBuilder(std::shared_ptr<const SourceFile> file) : file_(std::move(file)) {}

  std::unique_ptr<ast::File> build(NasParser::FileContext* ctx) {
    auto out = std::make_unique<ast::File>();
    out->source = file_;
    for (auto* item : ctx->item()) {
      if (auto* imp = item->importDecl()) {
        out->imports.push_back({unquote(imp->STRING()->getText()), loc(imp)});
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
  SourceLoc loc(antlr4::ParserRuleContext* ctx) const { return loc_of(file_, ctx->getStart()); }
  SourceLoc loc(antlr4::tree::TerminalNode* t) const { return loc_of(file_, t->getSymbol()); }

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
      e->float_value = std::strtod(c->FLOAT()->getText().c_str(), nullptr);
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

  std::shared_ptr<const SourceFile> file_;
};

}  // namespace

std::unique_ptr<ast::File> parse_source(std::shared_ptr<const SourceFile> source,
                                        Diagnostics& diags) {
  if (!check_text(source, diags)) return nullptr;
  antlr4::ANTLRInputStream input(source->text);
  NasLexer lexer(&input);
  lexer.removeErrorListeners();  // the ANY token absorbs every character
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  if (!check_tokens(source, tokens, diags)) return nullptr;

  NasParser parser(&tokens);
  ErrorListener listener(source, diags);
  parser.removeErrorListeners();
  parser.addErrorListener(&listener);
  NasParser::FileContext* tree = parser.file();
  if (listener.count > 0) return nullptr;
  return AstBuilder(source).build(tree);
}

}  // namespace nas
