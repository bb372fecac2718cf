// Private to the elaborator (compiler/frontend/elaborate*.cpp); the public API is
// elaborate.h. The Elaborator is one class because every part of it shares the same state
// (the graph being built, the call stack, the step count, the errors already reported);
// its methods are spread over files by concern:
//   elaborate.cpp         entry, errors and limits, the network and its parameters
//                         (--set), types, statements
//   elaborate_expr.cpp    expressions: names, lists, indexing, slicing, operators
//   elaborate_calls.cpp   calls: module calls and their arguments, op calls (nodes),
//                         builtin functions
//   elaborate_choice.cpp  choice and join
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "compiler/frontend/builtins.h"
#include "compiler/frontend/elaborate.h"
#include "compiler/frontend/value.h"
#include "compiler/ir/op_registry.h"

namespace nas::elab {

struct EvalFailed {};  // a located error was reported; unwind the current statement
struct Fatal {};       // a limit was hit; stop elaborating

// An evaluated call argument.
struct EvArg {
  std::string name;  // empty: positional
  Value value;
  SourceLoc loc;
};

// One module instance being elaborated (or the network, or the file-level constants).
struct Frame {
  const ast::ModuleDecl* module = nullptr;
  const ast::File* file = nullptr;  // where the code runs: the names it sees (loader.h)
  std::string path;                 // module instance path
  std::vector<std::map<std::string, Value>> scopes;
  bool returned = false;
  Value result;
};

// A file-level constant, with where it is defined (for ambiguity notes).
struct Const {
  Value value;
  SourceLoc loc;
};

// An evaluated choice candidate.
struct EvCandidate {
  std::string name;
  Value value;
  SourceLoc loc;
};

class Elaborator {
 public:
  Elaborator(const Program& program, const ElaborateOptions& options, Diagnostics& diags);
  std::optional<Graph> run();

 private:
  // ---- errors and limits (elaborate.cpp) ------------------------------------------------
  [[noreturn]] void fail(const SourceLoc& loc, const std::string& msg);
  // As fail(), in instance `path` rather than the current one.
  [[noreturn]] void fail_in(const std::string& path, const SourceLoc& loc, const std::string& msg);
  bool report(const SourceLoc& loc, const std::string& msg);
  bool report_in(const std::string& path, const SourceLoc& loc, const std::string& msg);
  [[noreturn]] void fatal(const SourceLoc& loc, const std::string& msg);
  void charge(int64_t n, const SourceLoc& loc);
  void step(const SourceLoc& loc);
  Value make_list(std::vector<Value> items, const SourceLoc& loc, int64_t min_depth = 1);
  void check_nesting(int64_t depth, const SourceLoc& loc);
  std::string current_path() const {
    return frames_.empty() ? std::string() : frames_.back()->path;
  }
  std::string show(const Value& v) const;

  // ---- entry and the network (elaborate.cpp) ---------------------------------------------
  const ast::ModuleDecl* find_network();
  void eval_consts();
  static Value parse_override(const std::string& text);
  void bind_network_params(const ast::ModuleDecl& net, Frame& frame);
  void build_network(const ast::ModuleDecl& net);

  // ---- types (elaborate.cpp) --------------------------------------------------------------
  static std::optional<Value> coerce(const Value& v, const ast::TypeRef& type);
  void check_type_name(const ast::TypeRef& type);

  // ---- statements (elaborate.cpp) ---------------------------------------------------------
  void exec_block(const std::vector<ast::StmtPtr>& body, Frame& f, bool new_scope = true);
  void exec(const ast::Stmt& s, Frame& f);
  Value* lookup_var(Frame& f, const std::string& name);
  // Names of f's file (loader.h): its own file-level constants, else those of its direct
  // imports; its own modules, else those of its imports. Several imports defining the name
  // are an error at `use`; nullptr when the name is not defined.
  std::vector<const Const*> consts_named(const Frame& f, const std::string& name) const;
  const Value* find_const(const Frame& f, const std::string& name, const SourceLoc& use);
  const ast::ModuleDecl* find_module(const Frame& f, const std::string& name, const SourceLoc& use);
  [[noreturn]] void fail_ambiguous(const SourceLoc& use, const std::string& what,
                                   const std::string& name, const std::vector<SourceLoc>& defs);
  bool truth(const Value& v, const SourceLoc& loc, const char* what);

  // ---- expressions (elaborate_expr.cpp) ---------------------------------------------------
  Value eval(const ast::Expr& e, Frame& f);
  std::string suggest(const std::string& name, Frame& f);
  Value eval_name(const ast::Expr& e, Frame& f);
  Value eval_list_comp(const ast::Expr& e, Frame& f);
  int64_t index_of(const Value& idx, size_t size, const SourceLoc& loc);
  Value eval_index(const ast::Expr& e, Frame& f);
  Value eval_slice(const ast::Expr& e, Frame& f);
  bool equal(const Value& a, const Value& b, const SourceLoc& loc);
  Value eval_binary(const ast::Expr& e, Frame& f);

  // ---- calls (elaborate_calls.cpp) --------------------------------------------------------
  std::vector<EvArg> eval_args(const std::vector<ast::Arg>& args, Frame& f);
  Value eval_call(const ast::Expr& e, Frame& f);
  [[noreturn]] void fail_unknown_callee(const ast::Expr& callee, Frame& f);
  Value call_builtin(const std::string& name, const std::vector<EvArg>& args, const SourceLoc& loc);
  Value call_sum(const std::vector<EvArg>& args, const SourceLoc& loc, Frame& f);
  std::string child_path(const std::string& parent, const std::string& segment);
  Value call_module(const ast::ModuleDecl& m, const std::vector<EvArg>& args, const SourceLoc& loc,
                    Frame& caller);
  void check_declared_shape(const ast::Param& p, const Value& t, const SourceLoc& loc, Frame& f,
                            const std::string& report_path);
  static std::optional<AttrValue> to_attr(const Value& v, AttrType type);
  Value call_op(const OpDef& op, const std::vector<EvArg>& args, const SourceLoc& loc, Frame& f);
  Value make_op(const std::string& name, const std::vector<Value>& tensors, Attrs attrs,
                const SourceLoc& loc, Frame& f);
  std::string describe_node(int id) const;
  int add_node(const OpDef* op, std::vector<int> inputs, Attrs attrs, std::string name,
               const SourceLoc& loc);

  // ---- choices (elaborate_choice.cpp) -----------------------------------------------------
  void expand_candidates(const std::vector<ast::Candidate>& cands, const std::string& key, Frame& f,
                         std::vector<EvCandidate>& out, std::set<std::string>& seen);
  Value eval_choice(const ast::Expr& e, Frame& f);
  void check_name(const std::string& name, const SourceLoc& loc, bool is_key, const char* what);
  ArchGroup* find_group(const std::string& key) {
    auto it = group_index_.find(key);
    return it == group_index_.end() ? nullptr : &graph_.arch[it->second];
  }

  const Program& program_;
  const ElaborateOptions& opt_;
  Diagnostics& diags_;
  BuiltinContext builtin_ctx_;
  Graph graph_;
  std::map<const ast::File*, std::map<std::string, Const>> consts_;  // file-level `let`s
  std::vector<Frame*> frames_;
  std::map<std::string, int> path_counts_;
  std::string key_path_;  // instance path of the choice being expanded
  std::set<std::tuple<const SourceFile*, int, int, std::string>> reported_;
  // graph_.arch by key: Graph::find_group scans, which is quadratic over many choices.
  std::map<std::string, size_t> group_index_;
  int64_t steps_ = 0;
};

}  // namespace nas::elab
