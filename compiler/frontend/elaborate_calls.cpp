// Elaboration, part 3 of 4 (see elaborator.h): calls. A call is a module call (a new
// instance, with its own frame and path), an op call (a node, whose shape rule is checked
// as it is created), or a builtin function (a compile-time value).
#include <algorithm>
#include <filesystem>

#include "compiler/frontend/elaborator.h"
#include "compiler/frontend/pytorch_hints.h"
#include "support/did_you_mean.h"

namespace nas::elab {

std::vector<EvArg> Elaborator::eval_args(const std::vector<ast::Arg>& args, Frame& f) {
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

Value Elaborator::eval_call(const ast::Expr& e, Frame& f) {
  const ast::Expr& callee = *e.operands[0];
  if (callee.kind != ast::ExprKind::Name)
    fail(callee.loc, "only modules and functions can be called");
  const std::string& name = callee.text;
  if (lookup_var(f, name) || !consts_named(f, name).empty())
    fail(callee.loc, "`" + name + "` is a variable, not a module or function");
  // An unknown callee is its own mistake: report it even when an argument is poison
  // from an earlier error.
  const ast::ModuleDecl* mod = find_module(f, name, callee.loc);
  const OpDef* op = find_op(name);
  if (op && op->internal) op = nullptr;
  if (!mod && !op && name != "sum" && name != "channels" && name != "shape" &&
      !is_builtin_function(name))
    fail_unknown_callee(callee, f);
  std::vector<EvArg> args = eval_args(e.args, f);
  step(e.loc);
  for (const auto& a : args)
    if (a.value.is_poison()) return Value::poison();
  if (mod) {
    if (mod->is_network)
      fail(callee.loc,
           "`" + name + "` is a network; networks are entry points and cannot be called");
    return call_module(*mod, args, e.loc, f);
  }
  if (op) return call_op(*op, args, e.loc, f);
  if (name == "sum") return call_sum(args, e.loc, f);
  if (name == "channels" || name == "shape" || is_builtin_function(name))
    return call_builtin(name, args, e.loc);
  fail_unknown_callee(callee, f);
}

// A module of another file that this one does not import (imports are not transitive:
// a file importing darts_ops.nas does not see ops.nas) is named with its file; anything
// else gets the closest visible name.
void Elaborator::fail_unknown_callee(const ast::Expr& callee, Frame& f) {
  const std::string& name = callee.text;
  for (const auto& [file, scope] : program_.scopes) {
    auto it = scope.modules.find(name);
    if (it == scope.modules.end()) continue;
    std::string where = std::filesystem::path(file->source->path).filename().string();
    if (report(callee.loc, "unknown module or function `" + name + "`; `" + name +
                               "` is defined in " + where +
                               ", which this file does not import (imports are not "
                               "transitive)"))
      diags_.note(it->second->loc, "`" + name + "` is defined here");
    throw EvalFailed();
  }
  fail(callee.loc, "unknown module or function `" + name + "`" + suggest(name, f));
}

// The compile-time functions: channels() and shape() read a tensor's shape here; the
// others live in builtins.cpp. Work on big lists and strings counts toward the step limit.
Value Elaborator::call_builtin(const std::string& name, const std::vector<EvArg>& args,
                               const SourceLoc& loc) {
  if (name == "channels" || name == "shape") {
    if (args.size() != 1 || !args[0].name.empty() || args[0].value.kind != Value::Kind::Tensor)
      fail(loc, name + "() takes one tensor");
    const Shape& s = graph_.nodes[args[0].value.i].shape;
    if (name == "channels") return Value::of_int(s.empty() ? 1 : s[0]);
    std::vector<Value> dims;
    for (int64_t d : s) dims.push_back(Value::of_int(d));
    return make_list(std::move(dims), loc);
  }
  if (is_builtin_function(name)) {
    std::vector<Value> pos;
    for (const auto& a : args) {
      if (!a.name.empty()) fail(a.loc, name + "() takes no named arguments");
      pos.push_back(a.value);
      // Builtins walk their list and string arguments (len() only looks at the size).
      if (name == "len") continue;
      if (a.value.kind == Value::Kind::List)
        charge(static_cast<int64_t>(a.value.list->size()), loc);
      if (a.value.kind == Value::Kind::String)
        charge(static_cast<int64_t>(a.value.s.size() / 16), loc);
    }
    Value r = call_builtin_function(name, pos, loc, builtin_ctx_);
    if (r.kind == Value::Kind::List) {
      charge(static_cast<int64_t>(r.list->size()), loc);
      check_nesting(r.i, loc);  // recorded in r.i by the builtin
    }
    return r;
  }
  NAS_CHECK(false, "not a builtin function: " + name);
}

// sum(list): numbers add up; tensors become one `add` node.
Value Elaborator::call_sum(const std::vector<EvArg>& args, const SourceLoc& loc, Frame& f) {
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

std::string Elaborator::child_path(const std::string& parent, const std::string& segment) {
  std::string base = parent.empty() ? segment : parent + "/" + segment;
  int n = path_counts_[base]++;
  return n == 0 ? base : base + "_" + std::to_string(n);
}

Value Elaborator::call_module(const ast::ModuleDecl& m, const std::vector<EvArg>& args,
                              const SourceLoc& loc, Frame& caller) {
  if (static_cast<int>(frames_.size()) > opt_.max_call_depth) {
    std::string chain;
    for (size_t i = frames_.size() - std::min<size_t>(frames_.size(), 4); i < frames_.size(); ++i)
      chain += (frames_[i]->module ? frames_[i]->module->name : std::string("?")) + " -> ";
    fatal(loc, "module calls nested deeper than " + std::to_string(opt_.max_call_depth) +
                   " (recursion without a base case?): ... " + chain + m.name);
  }
  Frame f;
  f.module = &m;
  f.file = program_.file_of.at(&m);
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
      std::vector<std::string> candidates;
      for (const auto& q : m.params) {
        names += (names.empty() ? "" : ", ") + q.name;
        candidates.push_back(q.name);
      }
      std::string hint = pytorch_keyword_hint(args[i].name, candidates);
      fail(args[i].loc, "module `" + m.name + "` has no parameter `" + args[i].name +
                            "` (its parameters: " + names + ")" +
                            (hint.empty() ? did_you_mean(args[i].name, candidates) : hint));
    }
    if (given.count(args[i].name))
      fail(args[i].loc, "argument `" + args[i].name + "` of `" + m.name + "` is given twice");
    given[args[i].name] = &args[i];
  }
  for (const auto& p : m.params)
    if (!given.count(p.name) && !p.default_value)
      fail(loc, "module `" + m.name + "` requires argument `" + p.name + "` (" + p.type.name + ")");
  frames_.push_back(&f);
  struct Pop {
    std::vector<Frame*>& frames;
    ~Pop() { frames.pop_back(); }
  } pop{frames_};
  // Parameters bind in order, so that a default or a declared shape may use the ones
  // before it. A given argument that has the wrong type or shape is the caller's mistake:
  // it is reported in the caller's instance, where the caret points (the argument); a
  // default is the module's own and is reported in the callee's.
  for (const auto& p : m.params) {
    check_type_name(p.type);
    Value v;
    SourceLoc vloc = loc;
    const std::string* where = &caller.path;
    auto g = given.find(p.name);
    if (g != given.end()) {
      v = g->second->value;
      vloc = g->second->loc;
    } else {
      v = eval(*p.default_value, f);
      vloc = p.default_value->loc;
      where = &f.path;
    }
    std::optional<Value> c = coerce(v, p.type);
    if (!c)
      fail_in(*where, vloc,
              "argument `" + p.name + "` of `" + m.name + "` must be " + p.type.name + ", got " +
                  show(v));
    if (p.type.has_shape && c->kind == Value::Kind::Tensor)
      check_declared_shape(p, *c, vloc, f, *where);
    f.scopes[0][p.name] = *c;
  }
  size_t errors_before = diags_.error_count();
  exec_block(m.body, f, /*new_scope=*/false);
  // A body that failed may have skipped its `return`; poison keeps the caller quiet.
  if (!f.returned && diags_.error_count() > errors_before) return Value::poison();
  return f.returned ? f.result : Value::none();
}

// Checks tensor argument `t` against the shape declared for parameter `p`. The
// dimensions are evaluated in the callee's frame `f` (they may use earlier parameters) and
// a bad one is reported there, in the module's declaration; a mismatch is reported at
// `loc`, in instance `report_path`.
void Elaborator::check_declared_shape(const ast::Param& p, const Value& t, const SourceLoc& loc,
                                      Frame& f, const std::string& report_path) {
  const Shape& actual = graph_.nodes[t.i].shape;
  Shape want;
  for (const auto& d : p.type.shape) {
    Value v = eval(*d, f);
    if (v.is_poison()) throw EvalFailed();  // a failed default, reported already
    if (v.kind != Value::Kind::Int) fail(d->loc, "a shape dimension must be int");
    want.push_back(v.i);
  }
  if (want != actual)
    fail_in(report_path, loc,
            "argument `" + p.name + "` of `" + f.module->name + "` must have shape " +
                shape_str(want) + ", got " + shape_str(actual) + " from `" +
                graph_.nodes[t.i].name + "`");
}

std::optional<AttrValue> Elaborator::to_attr(const Value& v, AttrType type) {
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
Value Elaborator::call_op(const OpDef& op, const std::vector<EvArg>& args, const SourceLoc& loc,
                          Frame& f) {
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
        std::vector<std::string> candidates;
        for (const auto& s : op.attrs) {
          names += (names.empty() ? "" : ", ") + s.name;
          candidates.push_back(s.name);
        }
        std::string hint = pytorch_keyword_hint(a.name, candidates);
        fail(a.loc, op.name + " has no attribute `" + a.name + "`" +
                        (names.empty() ? "" : " (its attributes: " + names + ")") +
                        (hint.empty() ? did_you_mean(a.name, candidates) : hint));
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

Value Elaborator::make_op(const std::string& name, const std::vector<Value>& tensors, Attrs attrs,
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

std::string Elaborator::describe_node(int id) const {
  const Node& n = graph_.nodes[id];
  return shape_str(n.shape) + " from `" + n.name + "` at " + n.loc.str();
}

// Appends a node after checking its shape rule. Returns -1 (after reporting) when the
// rule is broken.
int Elaborator::add_node(const OpDef* op, std::vector<int> inputs, Attrs attrs, std::string name,
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

}  // namespace nas::elab
