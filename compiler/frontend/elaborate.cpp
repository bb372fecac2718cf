// Elaboration, part 1 of 4 (see elaborator.h): the entry point, errors and limits, the
// network and its parameters (--set overrides, defaults, inputs), types and statements.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "compiler/frontend/elaborator.h"

namespace nas {
namespace elab {

Elaborator::Elaborator(const Program& program, const ElaborateOptions& options, Diagnostics& diags)
    : program_(program), opt_(options), diags_(diags) {
  builtin_ctx_.max_list_size = options.max_list_size;
  builtin_ctx_.fail = [this](const SourceLoc& loc, const std::string& msg) { fail(loc, msg); };
  builtin_ctx_.charge = [this](int64_t n, const SourceLoc& loc) { charge(n, loc); };
}

std::optional<Graph> Elaborator::run() {
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

// ---- errors and limits ---------------------------------------------------------------------

void Elaborator::fail(const SourceLoc& loc, const std::string& msg) {
  report(loc, msg);
  throw EvalFailed();
}

void Elaborator::fail_in(const std::string& path, const SourceLoc& loc, const std::string& msg) {
  report_in(path, loc, msg);
  throw EvalFailed();
}

// Reports an error in the current instance, once per location and message: a mistake
// in a loop body, or in a module called from a loop, fails on every iteration and
// every instance, and is still one mistake. (Messages that differ in their values,
// such as shapes, are reported separately.)
bool Elaborator::report(const SourceLoc& loc, const std::string& msg) {
  return report_in(current_path(), loc, msg);
}

bool Elaborator::report_in(const std::string& path, const SourceLoc& loc, const std::string& msg) {
  if (!reported_.insert({loc.file.get(), loc.line, loc.col, msg}).second) return false;
  diags_.error(loc, msg, path);
  return true;
}

void Elaborator::fatal(const SourceLoc& loc, const std::string& msg) {
  diags_.error(loc, msg, current_path());
  throw Fatal();
}

// Charges work proportional to n (elements copied, compared or built), so that a loop
// over cheap-looking statements on big lists or strings still hits the step limit.
void Elaborator::charge(int64_t n, const SourceLoc& loc) {
  steps_ += n;
  step(loc);
}

// Builds a list value that records its nesting depth in the otherwise unused `i` (as
// builtins.cpp does), and refuses nesting that printing, comparing or destroying the
// value would recurse through: `a = [a]` in a loop makes lists millions deep.
Value Elaborator::make_list(std::vector<Value> items, const SourceLoc& loc, int64_t min_depth) {
  int64_t depth = std::max<int64_t>(1, min_depth);
  for (const Value& v : items)
    if (v.kind == Value::Kind::List) depth = std::max(depth, v.i + 1);
  check_nesting(depth, loc);
  Value r = Value::of_list(std::move(items));
  r.i = depth;
  return r;
}

void Elaborator::check_nesting(int64_t depth, const SourceLoc& loc) {
  constexpr int64_t kMaxListNesting = 100;
  if (depth > kMaxListNesting)
    fail(loc, "lists nested more than " + std::to_string(kMaxListNesting) + " levels deep");
}

void Elaborator::step(const SourceLoc& loc) {
  if (++steps_ > opt_.max_steps)
    fatal(loc,
          "elaboration took more than " + std::to_string(opt_.max_steps) +
              " steps (loop iterations, calls, list elements); is a loop or recursion unbounded?");
}

// A value for messages: its kind, then the value ("int 3", "tensor [16,8,8]"); long
// values are cut so that one message stays one screen.
std::string Elaborator::show(const Value& v) const {
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

// ---- entry -----------------------------------------------------------------------------------

const ast::ModuleDecl* Elaborator::find_network() {
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

// File by file, dependencies first, so that a constant may use its file's earlier ones
// and those of the files it imports.
void Elaborator::eval_consts() {
  for (const auto& file : program_.files) {
    Frame global;
    global.file = file.get();
    global.path = "";
    global.scopes.emplace_back();
    frames_.push_back(&global);
    auto& own = consts_[file.get()];
    for (const ast::ConstDecl& c : file->consts) {
      Value v = Value::poison();
      try {
        v = eval(*c.value, global);
        if (v.kind == Value::Kind::Tensor)
          fail(c.loc, "a file-level `let` must be a compile-time value, not a tensor");
      } catch (const EvalFailed&) {
      }
      auto first = own.find(c.name);
      if (first != own.end()) {
        diags_.error(c.loc, "`" + c.name + "` is already defined at file level in this file");
        diags_.note(first->second.loc, "first definition of `" + c.name + "` is here");
        continue;
      }
      own[c.name] = {v, c.loc};
    }
    frames_.pop_back();
  }
}

Value Elaborator::parse_override(const std::string& text) {
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

void Elaborator::build_network(const ast::ModuleDecl& net) {
  graph_.name = net.name;
  Frame frame;
  frame.module = &net;
  frame.file = program_.main;
  frame.path = net.name;
  frame.scopes.emplace_back();
  frames_.push_back(&frame);

  for (const auto& [name, value] : opt_.overrides) {
    auto it = std::find_if(net.params.begin(), net.params.end(),
                           [&, &name = name](const ast::Param& p) { return p.name == name; });
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

  bind_network_params(net, frame);
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

// Binds the network's parameters in `frame`: compile-time parameters first (from --set,
// else their defaults), so that input shapes may depend on them, then the inputs, each
// an `input` node. A parameter that fails is bound to poison, so that the body still
// runs and reports its own, independent errors.
void Elaborator::bind_network_params(const ast::ModuleDecl& net, Frame& frame) {
  for (const auto& p : net.params) {
    if (p.type.name == "tensor") continue;
    Value v;
    std::string json = "null";  // what the IR records; a failed parameter stops elaboration
    // The last one of a name wins: a config's network section comes before --set.
    auto last = std::find_if(opt_.overrides.rbegin(), opt_.overrides.rend(),
                             [&](auto& o) { return o.first == p.name; });
    auto ov = last == opt_.overrides.rend() ? opt_.overrides.end() : std::prev(last.base());
    try {
      check_type_name(p.type);
      if (ov != opt_.overrides.end()) {
        int depth = 0, max_depth = 0;  // parse_override recurses on brackets
        for (char c : ov->second) max_depth = std::max(max_depth, depth += (c == '[') - (c == ']'));
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
      // Recorded as JSON, whole: the IR header and `nasc check --json` print it, and a
      // reader must get the value back (value_str abbreviates long lists).
      size_t limit = static_cast<size_t>(std::max<int64_t>(opt_.max_list_size, 0));
      std::optional<std::string> text = value_json(v, limit);
      charge(static_cast<int64_t>((text ? text->size() : limit) / 16), p.loc);
      if (!text)
        fail(p.loc, "network parameter `" + p.name + "` is too big to record: its value is over " +
                        std::to_string(limit) + " characters as text");
      json = std::move(*text);
    } catch (const EvalFailed&) {
      v = Value::poison();
    }
    frame.scopes[0][p.name] = v;
    graph_.params.emplace_back(p.name, std::move(json));
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
        // A parameter whose --set value or default failed is poison here: its error is
        // reported already, and "got error" would report it again.
        if (v.is_poison()) throw EvalFailed();
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
}

// ---- types -----------------------------------------------------------------------------------

std::optional<Value> Elaborator::coerce(const Value& v, const ast::TypeRef& type) {
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

void Elaborator::check_type_name(const ast::TypeRef& type) {
  static const std::set<std::string> known = {"int",  "float", "bool",  "string",
                                              "list", "any",   "tensor"};
  if (!known.count(type.name))
    fail(type.loc,
         "unknown type `" + type.name + "`; types are int, float, bool, string, list, tensor, any");
}

// ---- statements ------------------------------------------------------------------------------

void Elaborator::exec_block(const std::vector<ast::StmtPtr>& body, Frame& f, bool new_scope) {
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
        else if (consts_named(f, s->name).empty())  // undeclared: declare it, quietly
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

Value* Elaborator::lookup_var(Frame& f, const std::string& name) {
  for (auto it = f.scopes.rbegin(); it != f.scopes.rend(); ++it) {
    auto found = it->find(name);
    if (found != it->end()) return &found->second;
  }
  return nullptr;
}

std::vector<const Const*> Elaborator::consts_named(const Frame& f, const std::string& name) const {
  auto of_file = [&](const ast::File* file) -> const Const* {
    auto consts = consts_.find(file);
    if (consts == consts_.end()) return nullptr;
    auto it = consts->second.find(name);
    return it == consts->second.end() ? nullptr : &it->second;
  };
  if (const Const* own = of_file(f.file)) return {own};
  std::vector<const Const*> found;
  for (const ast::File* imported : program_.scopes.at(f.file).imports)
    if (const Const* c = of_file(imported)) found.push_back(c);
  return found;
}

const Value* Elaborator::find_const(const Frame& f, const std::string& name, const SourceLoc& use) {
  std::vector<const Const*> found = consts_named(f, name);
  if (found.size() > 1) {
    std::vector<SourceLoc> defs;
    for (const Const* c : found) defs.push_back(c->loc);
    fail_ambiguous(use, "constant", name, defs);
  }
  return found.empty() ? nullptr : &found[0]->value;
}

const ast::ModuleDecl* Elaborator::find_module(const Frame& f, const std::string& name,
                                               const SourceLoc& use) {
  std::vector<const ast::ModuleDecl*> found = program_.modules_named(*f.file, name);
  if (found.size() > 1) {
    std::vector<SourceLoc> defs;
    for (const ast::ModuleDecl* m : found) defs.push_back(m->loc);
    fail_ambiguous(use, "module", name, defs);
  }
  return found.empty() ? nullptr : found[0];
}

// Two imports defining one name: neither is preferred, since which one wins would depend
// on the order of the imports.
void Elaborator::fail_ambiguous(const SourceLoc& use, const std::string& what,
                                const std::string& name, const std::vector<SourceLoc>& defs) {
  std::string files;  // the notes give the full paths
  for (const SourceLoc& d : defs)
    files += (files.empty() ? "" : " and ") +
             (d.file ? std::filesystem::path(d.file->path).filename().string() : "?");
  if (report(use, "`" + name + "` is ambiguous: a " + what + " of that name is imported from " +
                      files + "; import only one of them, or define `" + name + "` in this file"))
    for (const SourceLoc& d : defs) diags_.note(d, "`" + name + "` is defined here");
  throw EvalFailed();
}

bool Elaborator::truth(const Value& v, const SourceLoc& loc, const char* what) {
  if (v.kind != Value::Kind::Bool) fail(loc, std::string(what) + " must be bool, got " + show(v));
  return v.b;
}

void Elaborator::exec(const ast::Stmt& s, Frame& f) {
  step(s.loc);
  switch (s.kind) {
    case ast::StmtKind::Let: {
      if (f.scopes.back().count(s.name))
        fail(s.loc, "`" + s.name + "` is already declared in this scope; assign it with `" +
                        s.name + " = ...`");
      // Evaluate before declaring: in `let z = relu(z);` the right side's `z` is not this
      // one (a failure still declares it, as poison, in exec_block).
      Value v = eval(*s.expr, f);
      f.scopes.back()[s.name] = v;
      break;
    }
    case ast::StmtKind::Assign: {
      Value* slot = lookup_var(f, s.name);
      if (!slot) {
        if (!consts_named(f, s.name).empty())
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

}  // namespace elab

std::optional<Graph> elaborate(const Program& program, const ElaborateOptions& options,
                               Diagnostics& diags) {
  return elab::Elaborator(program, options, diags).run();
}

std::vector<std::string> network_names(const Program& program) {
  std::vector<std::string> names;
  for (const auto& m : program.main->modules)
    if (m.is_network) names.push_back(m.name);
  return names;
}

}  // namespace nas
