// ast::dump: the `nasc ir --stage ast` view, an indented tree with one node per line
// and its line:col, so that a user can see how the parser read their file.
#include <sstream>

#include "compiler/frontend/ast.h"

namespace nas::ast {
namespace {

class Dumper {
 public:
  std::ostringstream out;

  void line(int depth, const std::string& text, const SourceLoc& loc) {
    out << std::string(depth * 2, ' ') << text << "  @" << loc.line << ":" << loc.col << "\n";
  }

  void expr(const Expr* e, int d, const std::string& label = "") {
    if (!e) return;
    std::string head = label.empty() ? "" : label + ": ";
    switch (e->kind) {
      case ExprKind::Int:
        line(d, head + "int " + std::to_string(e->int_value), e->loc);
        break;
      case ExprKind::Float: {
        std::ostringstream v;
        v << e->float_value;
        line(d, head + "float " + v.str(), e->loc);
        break;
      }
      case ExprKind::String:
        line(d, head + "string \"" + e->text + "\"", e->loc);
        break;
      case ExprKind::Bool:
        line(d, head + (e->bool_value ? "bool true" : "bool false"), e->loc);
        break;
      case ExprKind::Name:
        line(d, head + "name " + e->text, e->loc);
        break;
      case ExprKind::List:
        line(d, head + "list", e->loc);
        for (auto& op : e->operands) expr(op.get(), d + 1);
        break;
      case ExprKind::ListComp:
        line(d, head + "list-comprehension for " + e->text, e->loc);
        expr(e->operands[0].get(), d + 1, "element");
        expr(e->operands[1].get(), d + 1, "in");
        expr(e->operands[2].get(), d + 1, "if");
        break;
      case ExprKind::Call:
        line(d, head + "call", e->loc);
        expr(e->operands[0].get(), d + 1, "callee");
        args(e->args, d + 1);
        break;
      case ExprKind::Index:
        line(d, head + "index", e->loc);
        expr(e->operands[0].get(), d + 1);
        expr(e->operands[1].get(), d + 1);
        break;
      case ExprKind::Slice:
        line(d, head + "slice", e->loc);
        expr(e->operands[0].get(), d + 1);
        expr(e->operands[1].get(), d + 1, "from");
        expr(e->operands[2].get(), d + 1, "to");
        break;
      case ExprKind::Unary:
      case ExprKind::Binary:
        line(d, head + "op " + e->text, e->loc);
        for (auto& op : e->operands) expr(op.get(), d + 1);
        break;
      case ExprKind::Cond:
        line(d, head + "conditional", e->loc);
        for (auto& op : e->operands) expr(op.get(), d + 1);
        break;
      case ExprKind::Choice:
        line(d, head + (e->is_join ? "join" : "choice"), e->loc);
        args(e->args, d + 1);
        candidates(e->candidates, d + 1);
        break;
    }
  }

  void args(const std::vector<Arg>& args, int d) {
    for (auto& a : args) expr(a.value.get(), d, a.name.empty() ? "arg" : "arg " + a.name);
  }

  void candidates(const std::vector<Candidate>& cands, int d) {
    for (auto& c : cands) {
      if (c.is_for) {
        line(d, "for-candidates " + c.var, c.loc);
        expr(c.iter.get(), d + 1, "in");
        candidates(c.body, d + 1);
      } else {
        line(d, "candidate " + (c.name_expr ? std::string("(computed)") : c.name), c.loc);
        expr(c.name_expr.get(), d + 1, "name");
        expr(c.value.get(), d + 1);
      }
    }
  }

  void stmts(const std::vector<StmtPtr>& body, int d) {
    for (auto& s : body) stmt(*s, d);
  }

  void stmt(const Stmt& s, int d) {
    switch (s.kind) {
      case StmtKind::Let:
        line(d, "let " + s.name, s.loc);
        break;
      case StmtKind::Assign:
        line(d, "assign " + s.name, s.loc);
        break;
      case StmtKind::If:
        line(d, "if", s.loc);
        break;
      case StmtKind::For:
        line(d, "for " + s.name, s.loc);
        break;
      case StmtKind::Return:
        line(d, "return", s.loc);
        break;
      case StmtKind::Assert:
        line(d, "assert", s.loc);
        break;
      case StmtKind::Expr:
        line(d, "expr", s.loc);
        break;
    }
    expr(s.expr.get(), d + 1);
    expr(s.expr2.get(), d + 1, "message");
    stmts(s.body, d + 1);
    if (!s.else_body.empty()) {
      out << std::string((d + 1) * 2, ' ') << "else\n";
      stmts(s.else_body, d + 2);
    }
  }
};

}  // namespace

std::string dump(const File& file) {
  Dumper dumper;
  dumper.out << "file " << (file.source ? file.source->path : "?") << "\n";
  for (auto& imp : file.imports) dumper.line(1, "import \"" + imp.path + "\"", imp.loc);
  for (auto& c : file.consts) {
    dumper.line(1, "let " + c.name, c.loc);
    dumper.expr(c.value.get(), 2);
  }
  for (auto& m : file.modules) {
    dumper.line(1, std::string(m.is_network ? "network " : "module ") + m.name, m.loc);
    for (auto& p : m.params) {
      dumper.line(2, "param " + p.name + ": " + p.type.name, p.loc);
      for (auto& dim : p.type.shape) dumper.expr(dim.get(), 3, "dim");
      dumper.expr(p.default_value.get(), 3, "default");
    }
    dumper.stmts(m.body, 2);
  }
  return dumper.out.str();
}

}  // namespace nas::ast
