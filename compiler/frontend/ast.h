// The owned, located AST of a .nas file. Built from the ANTLR parse tree by
// parse_source() (parser.h), after which the parse tree is dropped: nothing downstream
// sees ANTLR types. Every node carries the SourceLoc of its first token.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compiler/ir/diagnostics.h"

namespace nas::ast {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;

enum class ExprKind {
  Int,       // int_value
  Float,     // float_value
  String,    // text
  Bool,      // bool_value
  Name,      // text
  List,      // operands = elements
  ListComp,  // [operands[0] for text in operands[1] if operands[2]]; operands[2] may be null
  Call,      // operands[0] = callee, args
  Index,     // operands[0][operands[1]]
  Slice,     // operands[0][operands[1]:operands[2]]; bounds may be null
  Unary,     // text = operator ("-", "!"), operands[0]
  Binary,    // text = operator, operands[0], operands[1]
  Cond,      // operands[0] ? operands[1] : operands[2]
  Choice,    // choice(args) { candidates } ; join(args) { candidates } when is_join
};

struct Arg {
  std::string name;  // empty for positional
  ExprPtr value;
  SourceLoc loc;
};

// One entry of a choice/join body: a named candidate or a `for` that generates several.
struct Candidate {
  bool is_for = false;
  // Named candidate: `name: value` where the name is an identifier or string literal
  // (name set), or `(expr): value` (name_expr set).
  std::string name;
  ExprPtr name_expr;
  ExprPtr value;
  // Generator: `for var in iter { body }`.
  std::string var;
  ExprPtr iter;
  std::vector<Candidate> body;
  SourceLoc loc;
};

struct Expr {
  ExprKind kind;
  SourceLoc loc;
  int64_t int_value = 0;
  double float_value = 0;
  bool bool_value = false;
  std::string text;
  std::vector<ExprPtr> operands;
  std::vector<Arg> args;
  std::vector<Candidate> candidates;
  bool is_join = false;

  Expr(ExprKind k, SourceLoc l) : kind(k), loc(std::move(l)) {}
};

enum class StmtKind {
  Let,     // let name = expr;
  Assign,  // name = expr;
  If,      // if expr { body } else { else_body }
  For,     // for name in expr { body }
  Return,  // return expr;
  Assert,  // assert expr [, message_expr];
  Expr,    // expr;
};

struct Stmt {
  StmtKind kind;
  SourceLoc loc;
  std::string name;
  ExprPtr expr;
  ExprPtr expr2;  // assert message
  std::vector<StmtPtr> body;
  std::vector<StmtPtr> else_body;

  Stmt(StmtKind k, SourceLoc l) : kind(k), loc(std::move(l)) {}
};

struct TypeRef {
  std::string name;  // tensor, int, float, bool, string, list, any
  bool has_shape = false;
  std::vector<ExprPtr> shape;  // tensor[C, H, W]
  SourceLoc loc;
};

struct Param {
  std::string name;
  TypeRef type;
  ExprPtr default_value;  // may be null
  SourceLoc loc;
};

struct ModuleDecl {
  std::string name;
  bool is_network = false;
  std::vector<Param> params;
  std::vector<StmtPtr> body;
  SourceLoc loc;
};

struct ConstDecl {
  std::string name;
  ExprPtr value;
  SourceLoc loc;
};

struct ImportDecl {
  std::string path;
  SourceLoc loc;
};

struct File {
  std::shared_ptr<const SourceFile> source;
  std::vector<ImportDecl> imports;
  std::vector<ConstDecl> consts;
  std::vector<ModuleDecl> modules;  // networks included, in source order
};

// Prints the AST as an indented tree (`nasc ir --stage ast`).
std::string dump(const File& file);

}  // namespace nas::ast
