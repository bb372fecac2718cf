#include "compiler/frontend/builtins.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "compiler/ir/names.h"

namespace nas {

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::None:
      return "none";
    case Value::Kind::Int:
      return "int";
    case Value::Kind::Float:
      return "float";
    case Value::Kind::Bool:
      return "bool";
    case Value::Kind::String:
      return "string";
    case Value::Kind::List:
      return "list";
    case Value::Kind::Tensor:
      return "tensor";
    case Value::Kind::Poison:
      return "error";
  }
  return "?";
}

namespace {

// How append_value renders: for messages (lists cut after 16 elements or once the text
// passes the limit), as str() gives it (whole, or nothing), or as JSON (whole, or nothing).
enum class Style { Message, Full, Json };

// Float text of str() and messages: 12 significant digits, with ".0" on whole numbers so
// that a float never reads as an int.
std::string float_text(double f) {
  std::ostringstream s;
  s.precision(12);
  s << f;
  std::string out = s.str();
  if (out.find_first_of(".eEn") == std::string::npos) out += ".0";
  return out;
}

// Float as a JSON number: the shortest text that reads back as the same double (the IR
// header and `nasc check --json` record the exact value), ".0" kept on whole numbers.
std::string float_json(double f) {
  if (!std::isfinite(f)) return "null";  // JSON has no inf/nan; the language makes none
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, f);
  std::string out(buf, ec == std::errc() ? end : buf);
  if (out.find_first_of(".eE") == std::string::npos) out += ".0";
  return out;
}

// Appends v to out. Returns false, for Full and Json, once out passes `limit`: the caller
// then has no text (a cut one would let two different values print the same, e.g. as
// choice keys), and lists that share sublists ([a, a, ...] nested), cheap to build but
// exponential to print, stop there. Messages cut long lists instead and always succeed.
bool append_value(std::string& out, const Value& v, Style style, bool quote, size_t limit) {
  switch (v.kind) {
    case Value::Kind::Int:
      out += std::to_string(v.i);
      break;
    case Value::Kind::Float:
      out += style == Style::Json ? float_json(v.f) : float_text(v.f);
      break;
    case Value::Kind::Bool:
      out += v.b ? "true" : "false";
      break;
    case Value::Kind::String:
      if (style == Style::Json)
        out += json_quote(v.s);
      else
        out += quote ? "\"" + v.s + "\"" : v.s;
      break;
    case Value::Kind::List:
      out += "[";
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i) out += ", ";
        if (style == Style::Message && (i == 16 || out.size() > limit)) {
          out += "... (" + std::to_string(v.list->size()) + " elements)";
          break;
        }
        if (!append_value(out, (*v.list)[i], style, true, limit)) return false;
      }
      out += "]";
      break;
    case Value::Kind::Tensor:
      out += style == Style::Json ? "null" : "tensor";
      break;
    default:
      out += style == Style::Json ? "null" : kind_name(v.kind);
      break;
  }
  return style == Style::Message || out.size() <= limit;
}

}  // namespace

std::string value_str(const Value& v, bool quote) {
  std::string out;
  append_value(out, v, Style::Message, quote, 4096);
  return out;
}

std::optional<std::string> value_text(const Value& v, size_t max_chars) {
  std::string out;
  if (!append_value(out, v, Style::Full, false, max_chars)) return std::nullopt;
  return out;
}

std::optional<std::string> value_json(const Value& v, size_t max_chars) {
  std::string out;
  if (!append_value(out, v, Style::Json, true, max_chars)) return std::nullopt;
  return out;
}

// SplitMix64: a tiny generator whose output is fixed by its definition, so that a seed
// gives the same graph with every compiler and standard library.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
};

std::vector<std::pair<int64_t, int64_t>> watts_strogatz(int64_t n, int64_t k, double p,
                                                        uint64_t seed) {
  SplitMix64 rng{seed};
  std::set<std::pair<int64_t, int64_t>> edges;  // undirected, stored as (min, max)
  // Degrees are kept up to date rather than counted over all edges at each rewiring,
  // which made large graphs (n=4096, k=200) take hours.
  std::vector<int64_t> degree(static_cast<size_t>(n), 0);
  auto key = [](int64_t a, int64_t b) { return std::make_pair(std::min(a, b), std::max(a, b)); };
  auto insert = [&](std::pair<int64_t, int64_t> e) {
    if (edges.insert(e).second) ++degree[e.first], ++degree[e.second];
  };
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 1; j <= k / 2; ++j) insert(key(i, (i + j) % n));
  // Rewire in the classic order: for each ring distance, for each node.
  for (int64_t j = 1; j <= k / 2; ++j)
    for (int64_t i = 0; i < n; ++i) {
      if (rng.uniform() >= p) continue;
      auto old_edge = key(i, (i + j) % n);
      if (!edges.count(old_edge)) continue;
      if (degree[i] >= n - 1) continue;  // i is joined to every node already
      int64_t target;
      do target = rng.below(n);
      while (target == i || edges.count(key(i, target)));
      edges.erase(old_edge);
      --degree[old_edge.first], --degree[old_edge.second];
      insert(key(i, target));
    }
  return {edges.begin(), edges.end()};
}

namespace {

// A list value that records its nesting depth in the otherwise unused `i` (1 for a flat
// list), so that the elaborator can refuse runaway nesting (`a = [a]` in a loop) in
// O(1) before printing, comparing or destroying it recurses too deep. elaborate.cpp
// builds its lists the same way.
Value list_of(std::vector<Value> items) {
  int64_t depth = 1;
  for (const Value& v : items)
    if (v.kind == Value::Kind::List) depth = std::max(depth, v.i + 1);
  Value r = Value::of_list(std::move(items));
  r.i = depth;
  return r;
}

using Args = std::vector<Value>;
using Fn = std::function<Value(const Args&, const SourceLoc&, BuiltinContext&)>;

struct Builtin {
  int min_args, max_args;
  std::string signature;
  Fn fn;
};

int64_t want_int(const Value& v, const std::string& what, const SourceLoc& loc,
                 BuiltinContext& ctx) {
  if (v.kind != Value::Kind::Int)
    ctx.fail(loc, what + " must be int, got " + kind_name(v.kind) + " " + value_str(v, true));
  return v.i;
}

const std::vector<Value>& want_list(const Value& v, const std::string& what, const SourceLoc& loc,
                                    BuiltinContext& ctx) {
  if (v.kind != Value::Kind::List)
    ctx.fail(loc, what + " must be a list, got " + kind_name(v.kind) + " " + value_str(v, true));
  return *v.list;
}

Value min_max(const Args& args, const SourceLoc& loc, BuiltinContext& ctx, bool is_max,
              const char* name) {
  const std::vector<Value>* items = &args;
  if (args.size() == 1)
    items = &want_list(args[0], std::string(name) + "() of one argument: the argument", loc, ctx);
  if (items->empty()) ctx.fail(loc, std::string(name) + "() of an empty list");
  Value best = (*items)[0];
  for (const Value& v : *items) {
    if (!v.is_number())
      ctx.fail(loc, std::string(name) + "() takes numbers, got " + kind_name(v.kind) + " " +
                        value_str(v, true));
    if (is_max ? v.as_double() > best.as_double() : v.as_double() < best.as_double()) best = v;
  }
  return best;
}

const std::map<std::string, Builtin>& table() {
  static const std::map<std::string, Builtin> t = {
      {"range",
       {1, 3, "range(stop) or range(start, stop[, step])",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          int64_t start = 0, stop, step = 1;
          if (a.size() == 1) {
            stop = want_int(a[0], "range() stop", loc, ctx);
          } else {
            start = want_int(a[0], "range() start", loc, ctx);
            stop = want_int(a[1], "range() stop", loc, ctx);
            if (a.size() == 3) step = want_int(a[2], "range() step", loc, ctx);
          }
          if (step == 0) ctx.fail(loc, "range() step must not be zero");
          // Count in long double: stop - start may overflow int64.
          long double count = std::ceil((static_cast<long double>(stop) - start) / step);
          if (count > ctx.max_list_size)
            ctx.fail(loc, "range(" + value_str(a[0]) +
                              (a.size() > 1 ? ", " + value_str(a[1]) : "") + ") would have " +
                              std::to_string(static_cast<long long>(count)) +
                              " elements; the limit is " + std::to_string(ctx.max_list_size));
          std::vector<Value> out;
          for (int64_t i = 0; i < static_cast<int64_t>(std::max<long double>(count, 0)); ++i)
            out.push_back(Value::of_int(start + i * step));
          return list_of(std::move(out));
        }}},
      {"len",
       {1, 1, "len(list or string)",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          if (a[0].kind == Value::Kind::String)
            return Value::of_int(static_cast<int64_t>(a[0].s.size()));
          return Value::of_int(
              static_cast<int64_t>(want_list(a[0], "len() argument", loc, ctx).size()));
        }}},
      {"str",
       {1, 1, "str(value)",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          if (a[0].kind == Value::Kind::Tensor)
            ctx.fail(loc, "str() of a tensor is not a compile-time value");
          // The whole text, never an abbreviation: str() builds keys and candidate names,
          // and two long lists cut to the same prefix must not give the same name.
          size_t limit = static_cast<size_t>(std::max<int64_t>(ctx.max_list_size, 0));
          std::optional<std::string> text = value_text(a[0], limit);
          ctx.charge(static_cast<int64_t>((text ? text->size() : limit) / 16), loc);
          if (!text)
            ctx.fail(loc, "str() of this " + std::string(kind_name(a[0].kind)) +
                              " would be longer than " + std::to_string(limit) +
                              " characters, the limit for strings");
          return Value::of_string(std::move(*text));
        }}},
      {"int",
       {1, 1, "int(number)",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          if (a[0].kind == Value::Kind::Int) return a[0];
          if (a[0].kind == Value::Kind::Float && std::isfinite(a[0].f) && std::fabs(a[0].f) < 9e18)
            return Value::of_int(static_cast<int64_t>(a[0].f));
          if (a[0].kind == Value::Kind::Bool) return Value::of_int(a[0].b);
          ctx.fail(loc, std::string("int() takes a finite number, got ") + kind_name(a[0].kind) +
                            " " + value_str(a[0], true));
          return Value();
        }}},
      {"float",
       {1, 1, "float(number)",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          if (!a[0].is_number())
            ctx.fail(loc, std::string("float() takes a number, got ") + kind_name(a[0].kind));
          return Value::of_float(a[0].as_double());
        }}},
      {"abs",
       {1, 1, "abs(number)",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          if (a[0].kind == Value::Kind::Int && a[0].i == INT64_MIN)
            ctx.fail(loc, "integer overflow in abs(" + std::to_string(a[0].i) + ")");
          if (a[0].kind == Value::Kind::Int) return Value::of_int(a[0].i < 0 ? -a[0].i : a[0].i);
          if (a[0].kind == Value::Kind::Float) return Value::of_float(std::fabs(a[0].f));
          ctx.fail(loc, std::string("abs() takes a number, got ") + kind_name(a[0].kind));
          return Value();
        }}},
      {"min",
       {1, 64, "min(a, b, ...) or min(list)",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          return min_max(a, loc, ctx, false, "min");
        }}},
      {"max",
       {1, 64, "max(a, b, ...) or max(list)",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          return min_max(a, loc, ctx, true, "max");
        }}},
      {"enumerate",
       {1, 1, "enumerate(list) -> [[0, x0], [1, x1], ...]",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          const auto& items = want_list(a[0], "enumerate() argument", loc, ctx);
          std::vector<Value> out;
          for (size_t i = 0; i < items.size(); ++i)
            out.push_back(list_of({Value::of_int(static_cast<int64_t>(i)), items[i]}));
          return list_of(std::move(out));
        }}},
      {"zip",
       {2, 2, "zip(list, list) -> [[a0, b0], ...]",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          const auto& x = want_list(a[0], "zip() first argument", loc, ctx);
          const auto& y = want_list(a[1], "zip() second argument", loc, ctx);
          std::vector<Value> out;
          for (size_t i = 0; i < std::min(x.size(), y.size()); ++i)
            out.push_back(list_of({x[i], y[i]}));
          return list_of(std::move(out));
        }}},
      {"append",
       {2, 2, "append(list, value) -> a new list",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          std::vector<Value> out = want_list(a[0], "append() first argument", loc, ctx);
          if (static_cast<int64_t>(out.size()) >= ctx.max_list_size)
            ctx.fail(loc, "append() would exceed the list size limit of " +
                              std::to_string(ctx.max_list_size));
          out.push_back(a[1]);
          return list_of(std::move(out));
        }}},
      {"watts_strogatz",
       {4, 4, "watts_strogatz(n, k, p, seed) -> [[u, v], ...] with u < v",
        [](const Args& a, const SourceLoc& loc, BuiltinContext& ctx) {
          int64_t n = want_int(a[0], "watts_strogatz() n", loc, ctx);
          int64_t k = want_int(a[1], "watts_strogatz() k", loc, ctx);
          if (!a[2].is_number()) ctx.fail(loc, "watts_strogatz() p must be a number");
          double p = a[2].as_double();
          int64_t seed = want_int(a[3], "watts_strogatz() seed", loc, ctx);
          if (n < 2 || n > 4096)
            ctx.fail(loc, "watts_strogatz() needs 2 <= n <= 4096, got n=" + std::to_string(n));
          if (k < 2 || k % 2 || k >= n)
            ctx.fail(loc, "watts_strogatz() needs an even k with 2 <= k < n, got k=" +
                              std::to_string(k) + ", n=" + std::to_string(n));
          if (!(p >= 0 && p <= 1))
            ctx.fail(loc, "watts_strogatz() needs 0 <= p <= 1, got p=" + value_str(a[2]));
          if (n * (k / 2) > ctx.max_list_size)
            ctx.fail(loc, "watts_strogatz(" + std::to_string(n) + ", " + std::to_string(k) +
                              ", ...) would have " + std::to_string(n * (k / 2)) +
                              " edges; the limit is " + std::to_string(ctx.max_list_size));
          std::vector<Value> out;
          for (auto [u, v] : watts_strogatz(n, k, p, static_cast<uint64_t>(seed)))
            out.push_back(list_of({Value::of_int(u), Value::of_int(v)}));
          return list_of(std::move(out));
        }}},
  };
  return t;
}

}  // namespace

bool is_builtin_function(std::string_view name) {
  return table().count(std::string(name)) > 0;
}

std::vector<std::string> builtin_function_names() {
  std::vector<std::string> names;
  for (const auto& [name, b] : table()) names.push_back(name);
  return names;
}

Value call_builtin_function(const std::string& name, const std::vector<Value>& args,
                            const SourceLoc& loc, BuiltinContext& ctx) {
  const Builtin& b = table().at(name);
  if (static_cast<int>(args.size()) < b.min_args || static_cast<int>(args.size()) > b.max_args)
    ctx.fail(loc, name + "() takes " +
                      (b.min_args == b.max_args
                           ? std::to_string(b.min_args)
                           : std::to_string(b.min_args) + " to " + std::to_string(b.max_args)) +
                      " argument" + (b.max_args == 1 ? "" : "s") + ", got " +
                      std::to_string(args.size()) + " (usage: " + b.signature + ")");
  return b.fn(args, loc, ctx);
}

}  // namespace nas
