// Elaboration, part 2 of 4 (see elaborator.h): expressions. Compile-time values are
// computed here; tensor operands turn into op nodes (`a + b` is add, `x * 0.5` is mul).
#include <algorithm>
#include <cmath>

#include "compiler/frontend/elaborator.h"
#include "compiler/frontend/pytorch_hints.h"
#include "support/did_you_mean.h"

namespace nas::elab {

Value Elaborator::eval(const ast::Expr& e, Frame& f) {
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

// "; did you mean `x`?" for an unknown name: the closest of the names in scope, the
// file-level constants and modules its file sees, ops and builtin functions.
std::string Elaborator::suggest(const std::string& name, Frame& f) {
  std::vector<std::string> pool;
  for (const auto& scope : f.scopes)
    for (const auto& [n, v] : scope) pool.push_back(n);
  for (const ast::File* file : program_.scopes.at(f.file).imports)
    for (const auto& [n, c] : consts_[file]) pool.push_back(n);
  for (const auto& [n, c] : consts_[f.file]) pool.push_back(n);
  for (const auto& n : program_.visible_module_names(*f.file)) pool.push_back(n);
  for (const OpDef* op : all_ops())
    if (!op->internal) pool.push_back(op->name);
  for (const auto& n : builtin_function_names()) pool.push_back(n);
  return did_you_mean(name, pool);
}

Value Elaborator::eval_name(const ast::Expr& e, Frame& f) {
  if (Value* v = lookup_var(f, e.text)) return *v;
  if (const Value* c = find_const(f, e.text, e.loc)) return *c;
  if (!program_.modules_named(*f.file, e.text).empty() || find_op(e.text) ||
      is_builtin_function(e.text))
    fail(e.loc, "`" + e.text + "` is a module or function; call it like `" + e.text + "(...)`");
  std::string hint = python_literal_hint(e.text);
  fail(e.loc, "unknown name `" + e.text + "`" + (hint.empty() ? suggest(e.text, f) : hint));
}

Value Elaborator::eval_list_comp(const ast::Expr& e, Frame& f) {
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

int64_t Elaborator::index_of(const Value& idx, size_t size, const SourceLoc& loc) {
  if (idx.kind != Value::Kind::Int)
    fail(loc, std::string("an index must be int, got ") + show(idx));
  int64_t i = idx.i < 0 ? idx.i + static_cast<int64_t>(size) : idx.i;
  if (i < 0 || i >= static_cast<int64_t>(size))
    fail(loc,
         "index " + std::to_string(idx.i) + " is out of range for length " + std::to_string(size));
  return i;
}

Value Elaborator::eval_index(const ast::Expr& e, Frame& f) {
  Value obj = eval(*e.operands[0], f);
  Value idx = eval(*e.operands[1], f);
  if (obj.is_poison() || idx.is_poison()) return Value::poison();
  if (obj.kind == Value::Kind::List)
    return (*obj.list)[index_of(idx, obj.list->size(), e.operands[1]->loc)];
  if (obj.kind == Value::Kind::String)
    return Value::of_string(std::string(1, obj.s[index_of(idx, obj.s.size(), e.operands[1]->loc)]));
  fail(e.loc,
       std::string("only lists and strings can be indexed, got ") + show(obj) +
           (obj.kind == Value::Kind::Tensor ? "; use shape(x)[i] for a tensor's dimensions" : ""));
}

Value Elaborator::eval_slice(const ast::Expr& e, Frame& f) {
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
bool Elaborator::equal(const Value& a, const Value& b, const SourceLoc& loc) {
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

Value Elaborator::eval_binary(const ast::Expr& e, Frame& f) {
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
  // Tensor arithmetic is sugar for ops: x + y is add(x, y), x * 0.5 is mul(x, scale=0.5),
  // x * g is mul(x, g) (g shaped like x, or one factor per channel).
  if (a.kind == Value::Kind::Tensor || b.kind == Value::Kind::Tensor) {
    if (op == "+" && a.kind == Value::Kind::Tensor && b.kind == Value::Kind::Tensor)
      return make_op("add", {a, b}, {}, e.loc, f);
    if (op == "*" && a.kind == Value::Kind::Tensor && b.kind == Value::Kind::Tensor)
      return make_op("mul", {a, b}, {}, e.loc, f);
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
      fail(e.loc, "list concatenation exceeds the limit of " + std::to_string(opt_.max_list_size) +
                      " elements");
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
      fail(e.loc, "integer overflow in " + std::to_string(x) + " " + op + " " + std::to_string(y));
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

}  // namespace nas::elab
