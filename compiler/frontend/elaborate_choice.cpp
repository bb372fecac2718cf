// Elaboration, part 4 of 4 (see elaborator.h): choice and join. Every candidate is
// elaborated (the supernet holds them all) under the instance path <choice>/<name>; a
// choice node joins them, and choices that share a key share one arch parameter.
#include "compiler/frontend/elaborator.h"
#include "compiler/ir/names.h"

namespace nas::elab {

namespace {

// What is wrong with character c of a candidate name or key, or nullptr. Names and keys
// become parts of node instance paths, the IR text and DOT labels, where '/' separates
// path segments, '%' starts a node reference, '@' a source location, '#' a comment and
// '"' a quoted name, and where whitespace and control characters would split or garble
// a line. Keys may hold '/': they name arch parameters, not path segments, and computed
// keys like "normal/n2_e0" group related choices.
const char* bad_name_char(unsigned char c, bool is_key) {
  if (c == ' ') return "a space";
  if (c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') return "whitespace";
  if (c < 0x20 || c == 0x7F) return "a control character";
  switch (c) {
    case '/':
      return is_key ? nullptr : "`/`";
    case '@':
      return "`@`";
    case '#':
      return "`#`";
    case '"':
      return "`\"`";
    case '%':
      return "`%`";
  }
  return nullptr;
}

}  // namespace

// Rejects a candidate name, or the key of a `what` ("choice" or "join"), that the IR and
// DOT cannot carry (see bad_name_char); the message states the rule.
void Elaborator::check_name(const std::string& name, const SourceLoc& loc, bool is_key,
                            const char* what) {
  if (name.empty() && !is_key) fail(loc, "a candidate name must not be empty");
  for (char ch : name) {
    const char* bad = bad_name_char(static_cast<unsigned char>(ch), is_key);
    if (!bad) continue;
    std::string shown = json_quote(name);  // escaped: the name may hold a newline
    if (shown.size() > 80) {
      size_t cut = 70;
      while (cut > 0 && (static_cast<unsigned char>(shown[cut]) & 0xC0) == 0x80) --cut;
      shown = shown.substr(0, cut) + "...\"";
    }
    fail(loc, (is_key ? std::string(what) + " key " : std::string("candidate name ")) + shown +
                  " contains " + bad + "; " +
                  (is_key ? "keys must not contain whitespace, control characters, `@`, `#`, "
                            "`\"` or `%`"
                          : "candidate names must not contain whitespace, control characters, "
                            "`/`, `@`, `#`, `\"` or `%`") +
                  " (they appear in instance paths, the IR and graph drawings)");
  }
}

// `seen` holds the names in `out`: a generated choice may have many candidates, and a
// scan of `out` per candidate is quadratic.
void Elaborator::expand_candidates(const std::vector<ast::Candidate>& cands, const std::string& key,
                                   Frame& f, std::vector<EvCandidate>& out,
                                   std::set<std::string>& seen) {
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
    check_name(name, c.name_expr ? c.name_expr->loc : c.loc, /*is_key=*/false, "choice");
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

Value Elaborator::eval_choice(const ast::Expr& e, Frame& f) {
  const char* what = e.is_join ? "join" : "choice";
  std::string key;
  int64_t k = 1;
  for (const auto& a : e.args) {
    Value v = eval(*a.value, f);
    if (v.is_poison()) return v;
    if (a.name == "key" || (a.name.empty() && &a == &e.args[0] && v.kind == Value::Kind::String)) {
      if (v.kind != Value::Kind::String || v.s.empty())
        fail(a.loc,
             std::string(what) + " key must be a non-empty string, got " + value_str(v, true));
      check_name(v.s, a.loc, /*is_key=*/true, what);
      key = v.s;
    } else if (a.name == "k" && e.is_join) {
      if (v.kind != Value::Kind::Int) fail(a.loc, "join k must be int, got " + value_str(v, true));
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
  if (cands.empty()) fail(e.loc, std::string(what) + " `" + key + "` needs at least one candidate");
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

}  // namespace nas::elab
