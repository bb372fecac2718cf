#include "compiler/frontend/elaborate.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "compiler/frontend/builtins.h"
#include "compiler/frontend/value.h"
#include "compiler/ir/op_registry.h"

namespace nas {
namespace {

struct EvalFailed {};  // a located error was reported; unwind the current statement
struct Fatal {};       // a limit was hit; stop elaborating

struct EvArg {
  std::string name;  // empty: positional
  Value value;
  SourceLoc loc;
};

struct Frame {
  const ast::ModuleDecl* module = nullptr;
  std::string path;  // module instance path
  std::vector<std::map<std::string, Value>> scopes;
  bool returned = false;
  Value result;
};

// Edit distance, for "did you mean" hints on unknown names.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

class Elaborator {
 public:
  Elaborator(const Program& program, const ElaborateOptions& options, Diagnostics& diags)
      : program_(program), opt_(options), diags_(diags) {
    builtin_ctx_.max_list_size = options.max_list_size;
    builtin_ctx_.fail = [this](const SourceLoc& loc, const std::string& msg) { fail(loc, msg); };
  }

  std::optional<Graph> run() {
    try {
      const ast::ModuleDecl* net = find_network();
      if (!net) return std::nullopt;
      eval_consts();
      build_network(*net);
    } catch (const Fatal&) {
      return std::nullopt;
    } catch (const EvalFailed&) {
      return std::nullopt;
    }
    if (diags_.has_errors()) return std::nullopt;
    return std::move(graph_);
  }

 private:
  // ---- errors and limits -------------------------------------------------------------
  [[noreturn]] void fail(const SourceLoc& loc, const std::string& msg) {
    report(loc, msg);
    throw EvalFailed();
  }
  // Reports an error in the current instance, once per location and message: a mistake
  // in a loop body, or in a module called from a loop, fails on every iteration and
  // every instance, and is still one mistake. (Messages that differ in their values,
  // such as shapes, are reported separately.)
  bool report(const SourceLoc& loc, const std::string& msg) {
    if (!reported_.insert({loc.file.get(), loc.line, loc.col, msg}).second) return false;
    diags_.error(loc, msg, current_path());
    return true;
  }
  [[noreturn]] void fatal(const SourceLoc& loc, const std::string& msg) {
    diags_.error(loc, msg, current_path());
    throw Fatal();
  }
  // Charges work proportional to n (elements copied, compared or built), so that a loop
  // over cheap-looking statements on big lists or strings still hits the step limit.
  void charge(int64_t n, const SourceLoc& loc) {
    steps_ += n;
    step(loc);
  }
  // Builds a list value that records its nesting depth in the otherwise unused `i` (as
  // builtins.cpp does), and refuses nesting that printing, comparing or destroying the
  // value would recurse through: `a = [a]` in a loop makes lists millions deep.
  Value make_list(std::vector<Value> items, const SourceLoc& loc, int64_t min_depth = 1) {
    int64_t depth = std::max<int64_t>(1, min_depth);
    for (const Value& v : items)
      if (v.kind == Value::Kind::List) depth = std::max(depth, v.i + 1);
    check_nesting(depth, loc);
    Value r = Value::of_list(std::move(items));
    r.i = depth;
    return r;
  }
  void check_nesting(int64_t depth, const SourceLoc& loc) {
    constexpr int64_t kMaxListNesting = 100;
    if (depth > kMaxListNesting)
      fail(loc, "lists nested more than " + std::to_string(kMaxListNesting) + " levels deep");
  }
  void step(const SourceLoc& loc) {
    if (++steps_ > opt_.max_steps)
      fatal(
          loc,
          "elaboration took more than " + std::to_string(opt_.max_steps) +
              " steps (loop iterations, calls, list elements); is a loop or recursion unbounded?");
  }
  std::string current_path() const {
    return frames_.empty() ? std::string() : frames_.back()->path;
  }
  // A value for messages: its kind, then the value ("int 3", "tensor [16,8,8]"); long
  // values are cut so that one message stays one screen.
  std::string show(const Value& v) const {
    if (v.kind == Value::Kind::None) return "nothing (a module without `return`)";
    if (v.kind == Value::Kind::Tensor) return "tensor " + shape_str(graph_.nodes[v.i].shape);
    std::string out = std::string(kind_name(v.kind)) + " " + value_str(v, true);
    constexpr size_t kMax = 200;
    if (out.size() > kMax) {
      size_t cut = kMax - 3;
      while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
      out = out.substr(0, cut) + "...";
    }
    return out;
  }

  // ---- entry ---------------------------------------------------------------------------
  const ast::ModuleDecl* find_network() {
    std::vector<const ast::ModuleDecl*> nets;
    for (const auto& m : program_.main->modules)
      if (m.is_network) nets.push_back(&m);
    SourceLoc file_loc{program_.main->source, 1, 1};
    if (!opt_.network.empty()) {
      for (auto* n : nets)
        if (n->name == opt_.network) return n;
      std::string names;
      for (auto* n : nets) names += (names.empty() ? "" : ", ") + n->name;
      diags_.error(file_loc, "no network named `" + opt_.network + "` in this file" +
                                 (names.empty() ? "" : " (networks: " + names + ")"));
      return nullptr;
    }
    if (nets.empty()) {
      diags_.error(file_loc,
                   "no `network` in this file; declare the entry point with "
                   "`network name(x: tensor[C, H, W]) { ... }`");
      return nullptr;
    }
    if (nets.size() > 1) {
      std::string names;
      for (auto* n : nets) names += (names.empty() ? "" : ", ") + n->name;
      diags_.error(nets[1]->loc, "this file has " + std::to_string(nets.size()) + " networks (" +
                                     names + "); pick one with --network NAME");
      return nullptr;
    }
    return nets[0];
  }

  void eval_consts() {
    Frame global;
    global.path = "";
    global.scopes.emplace_back();
    frames_.push_back(&global);
    for (const ast::ConstDecl* c : program_.consts) {
      Value v = Value::poison();
      try {
        v = eval(*c->value, global);
        if (v.kind == Value::Kind::Tensor)
          fail(c->loc, "a file-level `let` must be a compile-time value, not a tensor");
      } catch (const EvalFailed&) {
      }
      if (globals_.count(c->name)) {
        diags_.error(c->loc, "`" + c->name + "` is already defined at file level");
        continue;
      }
      globals_[c->name] = v;
    }
    frames_.pop_back();
  }

  static Value parse_override(const std::string& text) {
    auto trim = [](std::string s) {
      size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
      return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    std::string t = trim(text);
    if (t == "true" || t == "false") return Value::of_bool(t == "true");
    if (!t.empty() && t.front() == '[' && t.back() == ']') {
      std::vector<Value> items;
      std::string inner = t.substr(1, t.size() - 2), item;
      int depth = 0;
      for (char c : inner + ",") {
        if (c == ',' && depth == 0) {
          if (!trim(item).empty()) items.push_back(parse_override(item));
          item.clear();
          continue;
        }
        depth += (c == '[') - (c == ']');
        item += c;
      }
      return Value::of_list(std::move(items));
    }
    if (!t.empty()) {
      char* end = nullptr;
      errno = 0;
      long long i = std::strtoll(t.c_str(), &end, 10);
      if (*end == 0 && errno == 0) return Value::of_int(i);
      double d = std::strtod(t.c_str(), &end);
      if (*end == 0 && std::isfinite(d)) return Value::of_float(d);
    }
    if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
    return Value::of_string(t);
  }

  void build_network(const ast::ModuleDecl& net) {
    graph_.name = net.name;
    Frame frame;
    frame.module = &net;
    frame.path = net.name;
    frame.scopes.emplace_back();
    frames_.push_back(&frame);

    std::set<std::string> used_overrides;
    for (const auto& [name, value] : opt_.overrides) {
      auto it = std::find_if(net.params.begin(), net.params.end(),
                             [&](const ast::Param& p) { return p.name == name; });
      if (it == net.params.end() || it->type.name == "tensor") {
        std::string names;
        for (const auto& p : net.params)
          if (p.type.name != "tensor") names += (names.empty() ? "" : ", ") + p.name;
        diags_.error(net.loc, "--set " + name + "=" + value + ": network `" + net.name +
                                  "` has no parameter `" + name + "`" +
                                  (names.empty() ? "" : " (its parameters: " + names + ")"));
      }
    }
    if (diags_.has_errors()) throw Fatal();

    // Compile-time parameters first, so that input shapes may depend on them.
    for (const auto& p : net.params) {
      if (p.type.name == "tensor") continue;
      Value v;
      auto ov = std::find_if(opt_.overrides.begin(), opt_.overrides.end(),
                             [&](auto& o) { return o.first == p.name; });
      try {
        check_type_name(p.type);
        if (ov != opt_.overrides.end()) {
          int depth = 0, max_depth = 0;  // parse_override recurses on brackets
          for (char c : ov->second)
            max_depth = std::max(max_depth, depth += (c == '[') - (c == ']'));
          if (max_depth > 100)
            fail(p.loc, "--set " + p.name + "=...: lists nested more than 100 levels deep");
          v = parse_override(ov->second);
          std::optional<Value> c = coerce(v, p.type);
          if (!c)
            fail(p.loc, "--set " + p.name + "=" + ov->second + ": network parameter `" + p.name +
                            "` is " + p.type.name + ", got " + show(v));
          v = *c;
        } else if (p.default_value) {
          v = eval(*p.default_value, frame);
          std::optional<Value> c = coerce(v, p.type);
          if (!c)
            fail(p.default_value->loc, "default of network parameter `" + p.name + "` must be " +
                                           p.type.name + ", got " + show(v));
          v = *c;
        } else {
          fail(p.loc, "network parameter `" + p.name + "` has no default; give it with --set " +
                          p.name + "=VALUE");
        }
      } catch (const EvalFailed&) {
        v = Value::poison();
      }
      frame.scopes[0][p.name] = v;
      graph_.params.emplace_back(p.name, value_str(v, true));
    }
    for (const auto& p : net.params) {
      if (p.type.name != "tensor") continue;
      try {
        if (!p.type.has_shape)
          fail(p.loc, "network input `" + p.name + "` needs a per-sample shape, e.g. `" + p.name +
                          ": tensor[3, 32, 32]`");
        IntList dims;
        for (const auto& d : p.type.shape) {
          Value v = eval(*d, frame);
          if (v.kind != Value::Kind::Int || v.i < 1 || v.i > (int64_t(1) << 24))
            fail(d->loc, "input shape dimensions must be ints between 1 and 16777216, got " +
                             value_str(v, true));
          dims.push_back(v.i);
        }
        int id = add_node(find_op("input"), {}, {{"shape", dims}}, p.name, p.loc);
        graph_.inputs.push_back(id);
        frame.scopes[0][p.name] = id < 0 ? Value::poison() : Value::of_tensor(id);
      } catch (const EvalFailed&) {
        frame.scopes[0][p.name] = Value::poison();
      }
    }
    if (graph_.inputs.empty() && !diags_.has_errors())
      diags_.error(net.loc, "network `" + net.name +
                                "` has no tensor input; add one like `x: tensor[3, 32, 32]`");

    size_t errors_before = diags_.error_count();
    exec_block(net.body, frame, /*new_scope=*/false);
    if (!frame.returned && diags_.error_count() > errors_before) {
      // the body failed before its `return`: already reported
    } else if (!frame.returned) {
      diags_.error(net.loc,
                   "network `" + net.name + "` does not return a tensor; end it with `return y;`");
    } else if (frame.result.kind == Value::Kind::Tensor) {
      graph_.output = static_cast<int>(frame.result.i);
    } else if (!frame.result.is_poison()) {
      diags_.error(net.loc, std::string("network `") + net.name + "` must return a tensor, got " +
                                show(frame.result));
    }
    frames_.pop_back();
  }

  // ---- types ---------------------------------------------------------------------------
  static std::optional<Value> coerce(const Value& v, const ast::TypeRef& type) {
    if (v.is_poison()) return v;
    const std::string& t = type.name;
    if (t == "any") return v;
    if (t == "int" && v.kind == Value::Kind::Int) return v;
    if (t == "float" && v.is_number()) return Value::of_float(v.as_double());
    if (t == "bool" && v.kind == Value::Kind::Bool) return v;
    if (t == "string" && v.kind == Value::Kind::String) return v;
    if (t == "list" && v.kind == Value::Kind::List) return v;
    if (t == "tensor" && v.kind == Value::Kind::Tensor) return v;
    return std::nullopt;
  }

  void check_type_name(const ast::TypeRef& type) {
    static const std::set<std::string> known = {"int",  "float", "bool",  "string",
                                                "list", "any",   "tensor"};
    if (!known.count(type.name))
      fail(type.loc, "unknown type `" + type.name +
                         "`; types are int, float, bool, string, list, tensor, any");
  }

  // ---- statements ----------------------------------------------------------------------
  void exec_block(const std::vector<ast::StmtPtr>& body, Frame& f, bool new_scope = true) {
    if (new_scope) f.scopes.emplace_back();
    for (const auto& s : body) {
      if (f.returned) break;
      try {
        exec(*s, f);
      } catch (const EvalFailed&) {
        // The statement reported its error. Bind what it would have set to poison, so
        // that later uses stay quiet instead of cascading: a failed `h = conv(h, ...)`
        // must not leave the old `h` (with its old shape) in place, and a failed
        // `return` must not be reported again as "does not return a tensor".
        if (s->kind == ast::StmtKind::Let) f.scopes.back()[s->name] = Value::poison();
        if (s->kind == ast::StmtKind::Assign) {
          Value* slot = lookup_var(f, s->name);
          if (slot)
            *slot = Value::poison();
          else if (!globals_.count(s->name))  // undeclared: declare it, quietly
            f.scopes.back()[s->name] = Value::poison();
        }
        if (s->kind == ast::StmtKind::Return) {
          f.result = Value::poison();
          f.returned = true;
        }
      }
    }
    if (new_scope) f.scopes.pop_back();
  }

  Value* lookup_var(Frame& f, const std::string& name) {
    for (auto it = f.scopes.rbegin(); it != f.scopes.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return &found->second;
    }
    return nullptr;
  }

  bool truth(const Value& v, const SourceLoc& loc, const char* what) {
    if (v.kind != Value::Kind::Bool) fail(loc, std::string(what) + " must be bool, got " + show(v));
    return v.b;
  }

  void exec(const ast::Stmt& s, Frame& f) {
    step(s.loc);
    switch (s.kind) {
      case ast::StmtKind::Let: {
        if (f.scopes.back().count(s.name))
          fail(s.loc, "`" + s.name + "` is already declared in this scope; assign it with `" +
                          s.name + " = ...`");
        f.scopes.back()[s.name] = Value::poison();  // declared even if the value fails
        f.scopes.back()[s.name] = eval(*s.expr, f);
        break;
      }
      case ast::StmtKind::Assign: {
        Value* slot = lookup_var(f, s.name);
        if (!slot) {
          if (globals_.count(s.name))
            fail(s.loc, "cannot assign to file-level constant `" + s.name + "`");
          fail(s.loc, "assignment to undeclared variable `" + s.name + "`; declare it with `let " +
                          s.name + " = ...`");
        }
        Value v = eval(*s.expr, f);
        *lookup_var(f, s.name) = v;
        break;
      }
      case ast::StmtKind::If: {
        Value c = eval(*s.expr, f);
        if (c.is_poison()) break;
        if (truth(c, s.expr->loc, "an `if` condition"))
          exec_block(s.body, f);
        else
          exec_block(s.else_body, f);
        break;
      }
      case ast::StmtKind::For: {
        Value it = eval(*s.expr, f);
        if (it.is_poison()) break;
        if (it.kind != Value::Kind::List)
          fail(s.expr->loc, std::string("`for` iterates over a list, got ") + show(it) +
                                "; use range(n) for counting loops");
        auto items = it.list;  // keep alive while the body rebinds names
        for (const Value& item : *items) {
          step(s.loc);
          f.scopes.emplace_back();
          f.scopes.back()[s.name] = item;
          exec_block(s.body, f);
          f.scopes.pop_back();
          if (f.returned) break;
        }
        break;
      }
      case ast::StmtKind::Return:
        f.result = eval(*s.expr, f);
        f.returned = true;
        break;
      case ast::StmtKind::Assert: {
        Value c = eval(*s.expr, f);
        if (c.is_poison()) break;
        if (!truth(c, s.expr->loc, "an assert condition")) {
          std::string msg = "assertion failed";
          if (s.expr2) {
            Value m = eval(*s.expr2, f);
            msg += ": " + value_str(m);
          }
          fail(s.loc, msg);
        }
        break;
      }
      case ast::StmtKind::Expr:
        if (s.expr) eval(*s.expr, f);
        break;
    }
  }

  // ---- expressions ---------------------------------------------------------------------
  Value eval(const ast::Expr& e, Frame& f) {
    using K = ast::ExprKind;
    switch (e.kind) {
      case K::Int:
        return Value::of_int(e.int_value);
      case K::Float:
        if (!std::isfinite(e.float_value))
          fail(e.loc, "number literal " + e.text + " is out of range");
        return Value::of_float(e.float_value);
      case K::String:
        return Value::of_string(e.text);
      case K::Bool:
        return Value::of_bool(e.bool_value);
      case K::Name:
        return eval_name(e, f);
      case K::List: {
        std::vector<Value> items;
        for (const auto& op : e.operands) {
          step(e.loc);
          items.push_back(eval(*op, f));
        }
        return make_list(std::move(items), e.loc);
      }
      case K::ListComp:
        return eval_list_comp(e, f);
      case K::Call:
        return eval_call(e, f);
      case K::Index:
        return eval_index(e, f);
      case K::Slice:
        return eval_slice(e, f);
      case K::Unary: {
        Value v = eval(*e.operands[0], f);
        if (v.is_poison()) return v;
        if (e.text == "!") return Value::of_bool(!truth(v, e.loc, "the operand of `not`"));
        if (v.kind == Value::Kind::Int && v.i == INT64_MIN)
          fail(e.loc, "integer overflow in -(" + std::to_string(v.i) + ")");
        if (v.kind == Value::Kind::Int) return Value::of_int(-v.i);
        if (v.kind == Value::Kind::Float) return Value::of_float(-v.f);
        if (v.kind == Value::Kind::Tensor) return make_op("mul", {v}, {{"scale", -1.0}}, e.loc, f);
        fail(e.loc, std::string("unary `-` needs a number, got ") + show(v));
      }
      case K::Binary:
        return eval_binary(e, f);
      case K::Cond: {
        Value c = eval(*e.operands[0], f);
        if (c.is_poison()) return c;
        return truth(c, e.operands[0]->loc, "the condition of `?:`") ? eval(*e.operands[1], f)
                                                                     : eval(*e.operands[2], f);
      }
      case K::Choice:
        return eval_choice(e, f);
    }
    NAS_CHECK(false, "unhandled expression kind");
  }

  std::string suggest(const std::string& name, Frame& f) {
    std::vector<std::string> pool;
    for (const auto& scope : f.scopes)
      for (const auto& [n, v] : scope) pool.push_back(n);
    for (const auto& [n, v] : globals_) pool.push_back(n);
    for (const auto& [n, m] : program_.modules) pool.push_back(n);
    for (const OpDef* op : all_ops())
      if (!op->internal) pool.push_back(op->name);
    for (const auto& n : builtin_function_names()) pool.push_back(n);
    std::string best;
    size_t best_d = std::max<size_t>(2, name.size() / 3) + 1;
    for (const auto& p : pool) {
      size_t d = edit_distance(name, p);
      if (d < best_d) best_d = d, best = p;
    }
    return best.empty() ? "" : "; did you mean `" + best + "`?";
  }

  Value eval_name(const ast::Expr& e, Frame& f) {
    if (Value* v = lookup_var(f, e.text)) return *v;
    auto g = globals_.find(e.text);
    if (g != globals_.end()) return g->second;
    if (program_.modules.count(e.text) || find_op(e.text) || is_builtin_function(e.text))
      fail(e.loc, "`" + e.text + "` is a module or function; call it like `" + e.text + "(...)`");
    fail(e.loc, "unknown name `" + e.text + "`" + suggest(e.text, f));
  }

  Value eval_list_comp(const ast::Expr& e, Frame& f) {
    Value it = eval(*e.operands[1], f);
    if (it.is_poison()) return it;
    if (it.kind != Value::Kind::List)
      fail(e.operands[1]->loc,
           std::string("a list comprehension iterates over a list, got ") + show(it));
    std::vector<Value> out;
    auto items = it.list;
    for (const Value& item : *items) {
      step(e.loc);
      f.scopes.emplace_back();
      f.scopes.back()[e.text] = item;
      try {
        bool keep = true;
        if (e.operands[2]) {
          Value c = eval(*e.operands[2], f);
          keep = !c.is_poison() && truth(c, e.operands[2]->loc, "a list comprehension filter");
        }
        if (keep) out.push_back(eval(*e.operands[0], f));
      } catch (...) {
        f.scopes.pop_back();
        throw;
      }
      f.scopes.pop_back();
    }
    return make_list(std::move(out), e.loc);
  }

  int64_t index_of(const Value& idx, size_t size, const SourceLoc& loc) {
    if (idx.kind != Value::Kind::Int)
      fail(loc, std::string("an index must be int, got ") + show(idx));
    int64_t i = idx.i < 0 ? idx.i + static_cast<int64_t>(size) : idx.i;
    if (i < 0 || i >= static_cast<int64_t>(size))
      fail(loc, "index " + std::to_string(idx.i) + " is out of range for length " +
                    std::to_string(size));
    return i;
  }

  Value eval_index(const ast::Expr& e, Frame& f) {
    Value obj = eval(*e.operands[0], f);
    Value idx = eval(*e.operands[1], f);
    if (obj.is_poison() || idx.is_poison()) return Value::poison();
    if (obj.kind == Value::Kind::List)
      return (*obj.list)[index_of(idx, obj.list->size(), e.operands[1]->loc)];
    if (obj.kind == Value::Kind::String)
      return Value::of_string(
          std::string(1, obj.s[index_of(idx, obj.s.size(), e.operands[1]->loc)]));
    fail(e.loc, std::string("only lists and strings can be indexed, got ") + show(obj) +
                    (obj.kind == Value::Kind::Tensor ? "; use shape(x)[i] for a tensor's dimensions"
                                                     : ""));
  }

  Value eval_slice(const ast::Expr& e, Frame& f) {
    Value obj = eval(*e.operands[0], f);
    if (obj.is_poison()) return obj;
    int64_t size;
    if (obj.kind == Value::Kind::List)
      size = static_cast<int64_t>(obj.list->size());
    else if (obj.kind == Value::Kind::String)
      size = static_cast<int64_t>(obj.s.size());
    else
      fail(e.loc, std::string("only lists and strings can be sliced, got ") + show(obj));
    auto bound = [&](const ast::ExprPtr& b, int64_t dflt) -> int64_t {
      if (!b) return dflt;
      Value v = eval(*b, f);
      if (v.kind != Value::Kind::Int)
        fail(b->loc, std::string("a slice bound must be int, got ") + show(v));
      int64_t i = v.i < 0 ? std::max<int64_t>(0, v.i + size) : std::min(v.i, size);
      return i;
    };
    int64_t lo = bound(e.operands[1], 0), hi = std::max(lo, bound(e.operands[2], size));
    charge((hi - lo) / (obj.kind == Value::Kind::String ? 16 : 1), e.loc);
    if (obj.kind == Value::Kind::String) return Value::of_string(obj.s.substr(lo, hi - lo));
    return make_list(std::vector<Value>(obj.list->begin() + lo, obj.list->begin() + hi), e.loc,
                     obj.i);
  }

  // Charges a step per list element visited: lists that share sublists ([a, a, ...]
  // nested) are cheap to build but exponential to walk.
  bool equal(const Value& a, const Value& b, const SourceLoc& loc) {
    if (a.is_number() && b.is_number()) {
      if (a.kind == Value::Kind::Int && b.kind == Value::Kind::Int) return a.i == b.i;
      return a.as_double() == b.as_double();
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
      case Value::Kind::Bool:
        return a.b == b.b;
      case Value::Kind::String:
        return a.s == b.s;
      case Value::Kind::Tensor:
        return a.i == b.i;
      case Value::Kind::None:
        return true;
      case Value::Kind::List:
        if (a.list->size() != b.list->size()) return false;
        if (a.list == b.list) return true;  // the same list (cheap, and common)
        for (size_t i = 0; i < a.list->size(); ++i) {
          step(loc);
          if (!equal((*a.list)[i], (*b.list)[i], loc)) return false;
        }
        return true;
      default:
        return false;
    }
  }

  Value eval_binary(const ast::Expr& e, Frame& f) {
    const std::string& op = e.text;
    Value a = eval(*e.operands[0], f);
    if (op == "&&" || op == "||") {  // short-circuit
      if (a.is_poison()) return a;
      const char* what = op == "&&" ? "an operand of `and`" : "an operand of `or`";
      bool av = truth(a, e.operands[0]->loc, what);
      if (op == "&&" ? !av : av) return Value::of_bool(av);
      Value b = eval(*e.operands[1], f);
      if (b.is_poison()) return b;
      return Value::of_bool(truth(b, e.operands[1]->loc, what));
    }
    Value b = eval(*e.operands[1], f);
    if (a.is_poison() || b.is_poison()) return Value::poison();
    auto mismatch = [&]() {
      fail(e.loc, "operator `" + op + "` is not defined for " + show(a) + " and " + show(b) +
                      (a.kind == Value::Kind::String || b.kind == Value::Kind::String
                           ? "; use str() to format numbers"
                           : ""));
    };
    if (op == "==") return Value::of_bool(equal(a, b, e.loc));
    if (op == "!=") return Value::of_bool(!equal(a, b, e.loc));
    if (op == "in") {
      if (b.kind == Value::Kind::List) {
        for (const Value& v : *b.list) {
          step(e.loc);
          if (equal(a, v, e.loc)) return Value::of_bool(true);
        }
        return Value::of_bool(false);
      }
      if (b.kind == Value::Kind::String && a.kind == Value::Kind::String)
        return Value::of_bool(b.s.find(a.s) != std::string::npos);
      mismatch();
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      int cmp;
      if (a.is_number() && b.is_number()) {
        if (a.kind == Value::Kind::Int && b.kind == Value::Kind::Int)
          cmp = (a.i > b.i) - (a.i < b.i);
        else
          cmp = (a.as_double() > b.as_double()) - (a.as_double() < b.as_double());
      } else if (a.kind == Value::Kind::String && b.kind == Value::Kind::String) {
        cmp = a.s.compare(b.s);
        cmp = (cmp > 0) - (cmp < 0);
      } else {
        mismatch();
      }
      bool r = op == "<" ? cmp < 0 : op == "<=" ? cmp <= 0 : op == ">" ? cmp > 0 : cmp >= 0;
      return Value::of_bool(r);
    }
    // Tensor arithmetic is sugar for ops: x + y is add(x, y), x * 0.5 is mul(x, scale=0.5).
    if (a.kind == Value::Kind::Tensor || b.kind == Value::Kind::Tensor) {
      if (op == "+" && a.kind == Value::Kind::Tensor && b.kind == Value::Kind::Tensor)
        return make_op("add", {a, b}, {}, e.loc, f);
      if (op == "*" && a.kind == Value::Kind::Tensor && b.is_number())
        return make_op("mul", {a}, {{"scale", b.as_double()}}, e.loc, f);
      if (op == "*" && b.kind == Value::Kind::Tensor && a.is_number())
        return make_op("mul", {b}, {{"scale", a.as_double()}}, e.loc, f);
      mismatch();
    }
    if (op == "+" && a.kind == Value::Kind::String && b.kind == Value::Kind::String) {
      // `s = s + s` doubles: without a limit, 40 iterations ask for a terabyte.
      size_t n = a.s.size() + b.s.size();
      if (static_cast<int64_t>(n) > opt_.max_list_size)
        fail(e.loc, "string concatenation would have " + std::to_string(n) +
                        " characters; the limit is " + std::to_string(opt_.max_list_size));
      charge(static_cast<int64_t>(n / 16), e.loc);
      return Value::of_string(a.s + b.s);
    }
    if (op == "+" && a.kind == Value::Kind::List && b.kind == Value::Kind::List) {
      if (static_cast<int64_t>(a.list->size() + b.list->size()) > opt_.max_list_size)
        fail(e.loc, "list concatenation exceeds the limit of " +
                        std::to_string(opt_.max_list_size) + " elements");
      std::vector<Value> out = *a.list;
      out.insert(out.end(), b.list->begin(), b.list->end());
      charge(static_cast<int64_t>(out.size()), e.loc);  // both sides are copied
      return make_list(std::move(out), e.loc, std::max(a.i, b.i));
    }
    if (op == "*" && a.kind == Value::Kind::List && b.kind == Value::Kind::Int) {
      long double n = static_cast<long double>(a.list->size()) * b.i;
      if (n > opt_.max_list_size)
        fail(e.loc, "list repetition would have " + std::to_string(static_cast<long long>(n)) +
                        " elements; the limit is " + std::to_string(opt_.max_list_size));
      std::vector<Value> out;
      for (int64_t r = 0; r < b.i; ++r) out.insert(out.end(), a.list->begin(), a.list->end());
      charge(static_cast<int64_t>(out.size()), e.loc);
      return make_list(std::move(out), e.loc, a.i);
    }
    if (!a.is_number() || !b.is_number()) mismatch();
    // Two ints stay ints: `/` is floor division (`//` starts a comment in .nas, so the
    // language has no separate floor-division operator), `%` the matching modulo.
    if (a.kind == Value::Kind::Int && b.kind == Value::Kind::Int) {
      int64_t x = a.i, y = b.i, r = 0;
      bool overflow = false;
      if (op == "+") overflow = __builtin_add_overflow(x, y, &r);
      if (op == "-") overflow = __builtin_sub_overflow(x, y, &r);
      if (op == "*") overflow = __builtin_mul_overflow(x, y, &r);
      if (op == "/" || op == "%") {
        if (y == 0)
          fail(e.loc, "integer " + std::string(op == "%" ? "modulo" : "division") + " by zero");
        if (x == INT64_MIN && y == -1)
          overflow = true;
        else {
          int64_t q = x / y, m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) --q, m += y;  // floor semantics, as in Python
          r = op == "/" ? q : m;
        }
      }
      if (overflow)
        fail(e.loc,
             "integer overflow in " + std::to_string(x) + " " + op + " " + std::to_string(y));
      return Value::of_int(r);
    }
    double x = a.as_double(), y = b.as_double(), r;
    if (op == "+")
      r = x + y;
    else if (op == "-")
      r = x - y;
    else if (op == "*")
      r = x * y;
    else if (op == "/" || op == "%") {
      if (y == 0) fail(e.loc, "division by zero");
      r = op == "/" ? x / y : x - std::floor(x / y) * y;
    } else {
      mismatch();
    }
    if (!std::isfinite(r))
      fail(e.loc, "arithmetic overflow in " + value_str(a) + " " + op + " " + value_str(b));
    return Value::of_float(r);
  }

  // ---- calls ---------------------------------------------------------------------------
  std::vector<EvArg> eval_args(const std::vector<ast::Arg>& args, Frame& f) {
    std::vector<EvArg> out;
    std::set<std::string> seen;
    bool named_seen = false;
    for (const auto& a : args) {
      if (!a.name.empty()) {
        if (!seen.insert(a.name).second) fail(a.loc, "argument `" + a.name + "` is given twice");
        named_seen = true;
      } else if (named_seen) {
        fail(a.loc, "a positional argument cannot follow a named one");
      }
      out.push_back({a.name, eval(*a.value, f), a.loc});
    }
    return out;
  }

  Value eval_call(const ast::Expr& e, Frame& f) {
    const ast::Expr& callee = *e.operands[0];
    if (callee.kind != ast::ExprKind::Name)
      fail(callee.loc, "only modules and functions can be called");
    const std::string& name = callee.text;
    if (lookup_var(f, name) || globals_.count(name))
      fail(callee.loc, "`" + name + "` is a variable, not a module or function");
    // An unknown callee is its own mistake: report it even when an argument is poison
    // from an earlier error.
    auto mod = program_.modules.find(name);
    const OpDef* op = find_op(name);
    if (op && op->internal) op = nullptr;
    if (mod == program_.modules.end() && !op && name != "sum" && name != "channels" &&
        name != "shape" && !is_builtin_function(name))
      fail(callee.loc, "unknown module or function `" + name + "`" + suggest(name, f));
    std::vector<EvArg> args = eval_args(e.args, f);
    step(e.loc);
    for (const auto& a : args)
      if (a.value.is_poison()) return Value::poison();
    if (mod != program_.modules.end()) {
      if (mod->second->is_network)
        fail(callee.loc,
             "`" + name + "` is a network; networks are entry points and cannot be called");
      return call_module(*mod->second, args, e.loc, f);
    }
    if (op) return call_op(*op, args, e.loc, f);
    if (name == "sum") return call_sum(args, e.loc, f);
    if (name == "channels" || name == "shape") {
      if (args.size() != 1 || !args[0].name.empty() || args[0].value.kind != Value::Kind::Tensor)
        fail(e.loc, name + "() takes one tensor");
      const Shape& s = graph_.nodes[args[0].value.i].shape;
      if (name == "channels") return Value::of_int(s.empty() ? 1 : s[0]);
      std::vector<Value> dims;
      for (int64_t d : s) dims.push_back(Value::of_int(d));
      return make_list(std::move(dims), e.loc);
    }
    if (is_builtin_function(name)) {
      std::vector<Value> pos;
      for (const auto& a : args) {
        if (!a.name.empty()) fail(a.loc, name + "() takes no named arguments");
        pos.push_back(a.value);
        // Builtins walk their list and string arguments (len() only looks at the size).
        if (name == "len") continue;
        if (a.value.kind == Value::Kind::List)
          charge(static_cast<int64_t>(a.value.list->size()), e.loc);
        if (a.value.kind == Value::Kind::String)
          charge(static_cast<int64_t>(a.value.s.size() / 16), e.loc);
      }
      Value r = call_builtin_function(name, pos, e.loc, builtin_ctx_);
      if (r.kind == Value::Kind::List) {
        charge(static_cast<int64_t>(r.list->size()), e.loc);
        check_nesting(r.i, e.loc);  // recorded in r.i by the builtin
      }
      return r;
    }
    fail(callee.loc, "unknown module or function `" + name + "`" + suggest(name, f));
  }

  // sum(list): numbers add up; tensors become one `add` node.
  Value call_sum(const std::vector<EvArg>& args, const SourceLoc& loc, Frame& f) {
    if (args.size() != 1 || args[0].value.kind != Value::Kind::List)
      fail(loc, "sum() takes one list");
    const auto& items = *args[0].value.list;
    if (items.empty()) fail(loc, "sum() of an empty list");
    if (items[0].kind == Value::Kind::Tensor) return make_op("add", {args[0].value}, {}, loc, f);
    charge(static_cast<int64_t>(items.size()), loc);
    Value acc = Value::of_int(0);
    for (const Value& v : items) {
      if (!v.is_number()) fail(loc, std::string("sum() takes numbers or tensors, got ") + show(v));
      if (acc.kind == Value::Kind::Int && v.kind == Value::Kind::Int) {
        int64_t r;
        if (__builtin_add_overflow(acc.i, v.i, &r)) fail(loc, "integer overflow in sum()");
        acc = Value::of_int(r);
      } else {
        acc = Value::of_float(acc.as_double() + v.as_double());
      }
    }
    return acc;
  }

  std::string child_path(const std::string& parent, const std::string& segment) {
    std::string base = parent.empty() ? segment : parent + "/" + segment;
    int n = path_counts_[base]++;
    return n == 0 ? base : base + "_" + std::to_string(n);
  }

  Value call_module(const ast::ModuleDecl& m, const std::vector<EvArg>& args, const SourceLoc& loc,
                    Frame& caller) {
    if (static_cast<int>(frames_.size()) > opt_.max_call_depth) {
      std::string chain;
      for (size_t i = frames_.size() - std::min<size_t>(frames_.size(), 4); i < frames_.size(); ++i)
        chain += (frames_[i]->module ? frames_[i]->module->name : std::string("?")) + " -> ";
      fatal(loc, "module calls nested deeper than " + std::to_string(opt_.max_call_depth) +
                     " (recursion without a base case?): ... " + chain + m.name);
    }
    Frame f;
    f.module = &m;
    f.path = child_path(caller.path, m.name);
    f.scopes.emplace_back();
    // Bind positional, then named arguments.
    size_t positional = 0;
    for (const auto& a : args) positional += a.name.empty();
    if (positional > m.params.size())
      fail(loc, "module `" + m.name + "` takes " + std::to_string(m.params.size()) + " argument" +
                    (m.params.size() == 1 ? "" : "s") + ", got " + std::to_string(positional));
    std::map<std::string, const EvArg*> given;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i].name.empty()) {
        given[m.params[i].name] = &args[i];
        continue;
      }
      auto p = std::find_if(m.params.begin(), m.params.end(),
                            [&](const ast::Param& p) { return p.name == args[i].name; });
      if (p == m.params.end()) {
        std::string names;
        for (const auto& q : m.params) names += (names.empty() ? "" : ", ") + q.name;
        fail(args[i].loc, "module `" + m.name + "` has no parameter `" + args[i].name +
                              "` (its parameters: " + names + ")");
      }
      if (given.count(args[i].name))
        fail(args[i].loc, "argument `" + args[i].name + "` of `" + m.name + "` is given twice");
      given[args[i].name] = &args[i];
    }
    for (const auto& p : m.params)
      if (!given.count(p.name) && !p.default_value)
        fail(loc,
             "module `" + m.name + "` requires argument `" + p.name + "` (" + p.type.name + ")");
    frames_.push_back(&f);
    struct Pop {
      std::vector<Frame*>& frames;
      ~Pop() { frames.pop_back(); }
    } pop{frames_};
    for (const auto& p : m.params) {
      check_type_name(p.type);
      Value v;
      SourceLoc vloc = loc;
      auto g = given.find(p.name);
      if (g != given.end()) {
        v = g->second->value;
        vloc = g->second->loc;
      } else {
        v = eval(*p.default_value, f);
        vloc = p.default_value->loc;
      }
      std::optional<Value> c = coerce(v, p.type);
      if (!c)
        fail(vloc, "argument `" + p.name + "` of `" + m.name + "` must be " + p.type.name +
                       ", got " + show(v));
      if (p.type.has_shape && c->kind == Value::Kind::Tensor) check_declared_shape(p, *c, vloc, f);
      f.scopes[0][p.name] = *c;
    }
    size_t errors_before = diags_.error_count();
    exec_block(m.body, f, /*new_scope=*/false);
    // A body that failed may have skipped its `return`; poison keeps the caller quiet.
    if (!f.returned && diags_.error_count() > errors_before) return Value::poison();
    return f.returned ? f.result : Value::none();
  }

  void check_declared_shape(const ast::Param& p, const Value& t, const SourceLoc& loc, Frame& f) {
    const Shape& actual = graph_.nodes[t.i].shape;
    Shape want;
    for (const auto& d : p.type.shape) {
      Value v = eval(*d, f);
      if (v.kind != Value::Kind::Int) fail(d->loc, "a shape dimension must be int");
      want.push_back(v.i);
    }
    if (want != actual)
      fail(loc, "argument `" + p.name + "` of `" + f.module->name + "` must have shape " +
                    shape_str(want) + ", got " + shape_str(actual) + " from `" +
                    graph_.nodes[t.i].name + "`");
  }

  static std::optional<AttrValue> to_attr(const Value& v, AttrType type) {
    switch (type) {
      case AttrType::Int:
        if (v.kind == Value::Kind::Int) return AttrValue(v.i);
        break;
      case AttrType::Float:
        if (v.is_number()) return AttrValue(v.as_double());
        break;
      case AttrType::Bool:
        if (v.kind == Value::Kind::Bool) return AttrValue(v.b);
        break;
      case AttrType::String:
        if (v.kind == Value::Kind::String) return AttrValue(v.s);
        break;
      case AttrType::IntList:
        if (v.kind == Value::Kind::List) {
          IntList out;
          for (const Value& x : *v.list) {
            if (x.kind != Value::Kind::Int) return std::nullopt;
            out.push_back(x.i);
          }
          return AttrValue(out);
        }
        break;
      case AttrType::StringList:
        if (v.kind == Value::Kind::List) {
          StringList out;
          for (const Value& x : *v.list) {
            if (x.kind != Value::Kind::String) return std::nullopt;
            out.push_back(x.s);
          }
          return AttrValue(out);
        }
        break;
    }
    return std::nullopt;
  }

  // Builds an op node from call arguments: leading tensors (or lists of tensors, for
  // variadic ops) are inputs; the remaining positional arguments fill the op's
  // attributes in declaration order; named arguments fill attributes by name.
  Value call_op(const OpDef& op, const std::vector<EvArg>& args, const SourceLoc& loc, Frame& f) {
    std::vector<int> inputs;
    size_t i = 0;
    for (; i < args.size() && args[i].name.empty(); ++i) {
      const Value& v = args[i].value;
      if (v.kind == Value::Kind::Tensor) {
        inputs.push_back(static_cast<int>(v.i));
      } else if (v.kind == Value::Kind::List && !v.list->empty() &&
                 (*v.list)[0].kind == Value::Kind::Tensor) {
        for (const Value& t : *v.list) {
          if (t.is_poison()) return t;
          if (t.kind != Value::Kind::Tensor)
            fail(args[i].loc,
                 op.name + " expects a list of tensors, got a " + kind_name(t.kind) + " in it");
          inputs.push_back(static_cast<int>(t.i));
        }
      } else {
        break;
      }
    }
    if (inputs.empty())
      fail(loc, op.name + " expects a tensor as its first argument" +
                    (i < args.size() ? ", got " + show(args[i].value) : ""));
    Attrs attrs;
    size_t attr_index = 0;
    for (; i < args.size(); ++i) {
      const EvArg& a = args[i];
      const AttrSpec* spec = nullptr;
      if (a.name.empty()) {
        if (a.value.kind == Value::Kind::Tensor)
          fail(a.loc, op.name + " takes " +
                          (op.max_inputs == 1 ? "one tensor input" : "its tensor inputs first") +
                          "; got another tensor here");
        if (attr_index >= op.attrs.size()) {
          std::string names;
          for (const auto& spec : op.attrs) names += (names.empty() ? "" : ", ") + spec.name;
          size_t extra = 0;
          for (size_t j = i; j < args.size(); ++j) extra += args[j].name.empty();
          fail(a.loc,
               op.name + " takes " +
                   (op.attrs.empty() ? std::string("no attributes")
                                     : "at most " + std::to_string(op.attrs.size()) + " attribute" +
                                           (op.attrs.size() == 1 ? "" : "s") + " (" + names + ")") +
                   " after its tensor input" + (op.max_inputs == 1 ? "" : "s") + ", got " +
                   std::to_string(extra) + " more positional argument" + (extra == 1 ? "" : "s"));
        }
        spec = &op.attrs[attr_index++];
      } else {
        spec = op.find_attr(a.name);
        if (!spec) {
          std::string names;
          for (const auto& s : op.attrs) names += (names.empty() ? "" : ", ") + s.name;
          fail(a.loc, op.name + " has no attribute `" + a.name + "`" +
                          (names.empty() ? "" : " (its attributes: " + names + ")"));
        }
        if (attrs.count(spec->name))
          fail(a.loc, op.name + " attribute `" + a.name + "` is given twice");
      }
      std::optional<AttrValue> av = to_attr(a.value, spec->type);
      if (!av)
        fail(a.loc, op.name + " attribute `" + spec->name + "` must be " +
                        attr_type_name(spec->type) + ", got " + show(a.value));
      attrs[spec->name] = *av;
    }
    std::string err = complete_attrs(op, attrs);
    if (!err.empty()) fail(loc, err);
    for (int in : inputs)
      if (in < 0) return Value::poison();
    int id = add_node(&op, inputs, std::move(attrs), child_path(f.path, op.name), loc);
    return id < 0 ? Value::poison() : Value::of_tensor(id);
  }

  Value make_op(const std::string& name, const std::vector<Value>& tensors, Attrs attrs,
                const SourceLoc& loc, Frame& f) {
    const OpDef* op = find_op(name);
    NAS_CHECK(op, "missing builtin op " + name);
    std::vector<EvArg> args;
    for (const Value& t : tensors) args.push_back({"", t, loc});
    for (const auto& [k, v] : attrs) {
      Value val = std::holds_alternative<double>(v) ? Value::of_float(std::get<double>(v))
                                                    : Value::of_int(std::get<int64_t>(v));
      args.push_back({k, val, loc});
    }
    return call_op(*op, args, loc, f);
  }

  std::string describe_node(int id) const {
    const Node& n = graph_.nodes[id];
    return shape_str(n.shape) + " from `" + n.name + "` at " + n.loc.str();
  }

  // Appends a node after checking its shape rule. Returns -1 (after reporting) when the
  // rule is broken.
  int add_node(const OpDef* op, std::vector<int> inputs, Attrs attrs, std::string name,
               const SourceLoc& loc) {
    if (static_cast<int64_t>(graph_.nodes.size()) >= opt_.max_nodes)
      fatal(loc, "the network has more than " + std::to_string(opt_.max_nodes) + " nodes");
    charge(static_cast<int64_t>(inputs.size()), loc);  // add(list) may have many inputs
    std::vector<Shape> in;
    for (int i : inputs) in.push_back(graph_.nodes[i].shape);
    Shape out;
    std::string err;
    if (!infer_shape(
            *op, in, attrs, [&](size_t i) { return describe_node(inputs[i]); }, out, err)) {
      report(loc, err);
      return -1;
    }
    Node n;
    n.id = static_cast<int>(graph_.nodes.size());
    n.op = op;
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    n.shape = std::move(out);
    n.name = std::move(name);
    n.loc = loc;
    graph_.nodes.push_back(std::move(n));
    return graph_.nodes.back().id;
  }

  // ---- choices -------------------------------------------------------------------------
  struct EvCandidate {
    std::string name;
    Value value;
    SourceLoc loc;
  };

  // `seen` holds the names in `out`: a generated choice may have many candidates, and a
  // scan of `out` per candidate is quadratic.
  void expand_candidates(const std::vector<ast::Candidate>& cands, const std::string& key, Frame& f,
                         std::vector<EvCandidate>& out, std::set<std::string>& seen) {
    for (const auto& c : cands) {
      step(c.loc);
      if (c.is_for) {
        Value it = eval(*c.iter, f);
        if (it.is_poison()) throw EvalFailed();
        if (it.kind != Value::Kind::List)
          fail(c.iter->loc, std::string("`for` in a choice iterates over a list, got ") + show(it));
        auto items = it.list;
        for (const Value& item : *items) {
          f.scopes.emplace_back();
          f.scopes.back()[c.var] = item;
          try {
            expand_candidates(c.body, key, f, out, seen);
          } catch (...) {
            f.scopes.pop_back();
            throw;
          }
          f.scopes.pop_back();
        }
        continue;
      }
      std::string name = c.name;
      if (c.name_expr) {
        Value n = eval(*c.name_expr, f);
        if (n.is_poison()) throw EvalFailed();
        if (n.kind != Value::Kind::String && n.kind != Value::Kind::Int)
          fail(c.name_expr->loc, std::string("a candidate name must be a string, got ") + show(n));
        name = value_str(n);
      }
      if (name.empty()) fail(c.loc, "a candidate name must not be empty");
      if (!seen.insert(name).second)
        fail(c.loc, "candidate `" + name + "` appears twice in choice `" + key + "`");
      std::string saved = f.path;
      f.path = child_path(key_path_, name);
      Value v;
      try {
        v = eval(*c.value, f);
      } catch (...) {
        f.path = saved;
        throw;
      }
      f.path = saved;
      if (!v.is_poison() && v.kind != Value::Kind::Tensor)
        fail(c.value->loc, "candidate `" + name + "` must be a tensor, got " + show(v));
      out.push_back({name, v, c.loc});
    }
  }

  Value eval_choice(const ast::Expr& e, Frame& f) {
    const char* what = e.is_join ? "join" : "choice";
    std::string key;
    int64_t k = 1;
    for (const auto& a : e.args) {
      Value v = eval(*a.value, f);
      if (v.is_poison()) return v;
      if (a.name == "key" ||
          (a.name.empty() && &a == &e.args[0] && v.kind == Value::Kind::String)) {
        if (v.kind != Value::Kind::String || v.s.empty())
          fail(a.loc,
               std::string(what) + " key must be a non-empty string, got " + value_str(v, true));
        key = v.s;
      } else if (a.name == "k" && e.is_join) {
        if (v.kind != Value::Kind::Int)
          fail(a.loc, "join k must be int, got " + value_str(v, true));
        k = v.i;
      } else {
        fail(a.loc,
             std::string(what) + " takes " + (e.is_join ? "`key` and `k`" : "only `key`") +
                 (a.name.empty() ? "; got a positional argument" : "; got `" + a.name + "`") +
                 (!e.is_join && a.name == "k" ? " (use join(k=...) to pick several inputs)" : ""));
      }
    }
    std::string segment = key.empty() ? std::string(what) : key;
    std::string saved_key_path = key_path_;
    key_path_ = child_path(f.path, segment);
    if (key.empty()) key = key_path_;  // unshared: the instance path is unique
    std::vector<EvCandidate> cands;
    try {
      std::set<std::string> seen;
      expand_candidates(e.candidates, key, f, cands, seen);
    } catch (...) {
      key_path_ = saved_key_path;
      throw;
    }
    std::string node_name = key_path_;
    key_path_ = saved_key_path;
    if (cands.empty())
      fail(e.loc, std::string(what) + " `" + key + "` needs at least one candidate");
    if (k < 1 || k > static_cast<int64_t>(cands.size()))
      fail(e.loc, "join `" + key + "` picks k=" + std::to_string(k) + " of " +
                      std::to_string(cands.size()) + " inputs; k must be between 1 and " +
                      std::to_string(cands.size()));
    StringList names;
    std::vector<int> inputs;
    for (const auto& c : cands) {
      names.push_back(c.name);
      if (c.value.is_poison()) return Value::poison();
      inputs.push_back(static_cast<int>(c.value.i));
    }
    if (ArchGroup* g = find_group(key)) {
      if (g->candidates != names || g->k != k) {
        if (report(e.loc, std::string(what) + "s sharing key `" + key +
                              "` must have the same candidates" + " and k: this one has " +
                              attr_str(names) + " (k=" + std::to_string(k) + "), the first has " +
                              attr_str(g->candidates) + " (k=" + std::to_string(g->k) + ")"))
          diags_.note(g->loc, "first use of key `" + key + "`");
        return Value::poison();
      }
    }
    Attrs attrs{{"key", key}, {"candidates", names}, {"k", k}};
    int id = add_node(find_op("choice"), inputs, std::move(attrs), node_name, e.loc);
    if (id < 0) return Value::poison();
    ArchGroup* g = find_group(key);
    if (!g) {
      group_index_[key] = graph_.arch.size();
      graph_.arch.push_back({key, names, static_cast<int>(k), {}, e.loc});
      g = &graph_.arch.back();
    }
    g->nodes.push_back(id);
    return Value::of_tensor(id);
  }

  const Program& program_;
  const ElaborateOptions& opt_;
  Diagnostics& diags_;
  BuiltinContext builtin_ctx_;
  Graph graph_;
  std::map<std::string, Value> globals_;
  std::vector<Frame*> frames_;
  std::map<std::string, int> path_counts_;
  std::string key_path_;  // instance path of the choice being expanded
  std::set<std::tuple<const SourceFile*, int, int, std::string>> reported_;
  // graph_.arch by key: Graph::find_group scans, which is quadratic over many choices.
  std::map<std::string, size_t> group_index_;
  ArchGroup* find_group(const std::string& key) {
    auto it = group_index_.find(key);
    return it == group_index_.end() ? nullptr : &graph_.arch[it->second];
  }
  int64_t steps_ = 0;
};

}  // namespace

std::optional<Graph> elaborate(const Program& program, const ElaborateOptions& options,
                               Diagnostics& diags) {
  return Elaborator(program, options, diags).run();
}

std::vector<std::string> network_names(const Program& program) {
  std::vector<std::string> names;
  for (const auto& m : program.main->modules)
    if (m.is_network) names.push_back(m.name);
  return names;
}

}  // namespace nas
