#include "compiler/ir/ir.h"

#include <charconv>
#include <limits>

#include "compiler/ir/op_registry.h"

namespace nas {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(s[i]);
  }
  return out + "]";
}

// Saturates instead of overflowing: shape inference rejects any shape above its element
// limit, but it must be able to compute the oversized count first to say so.
int64_t shape_numel(const Shape& s) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t n = 1;
  for (int64_t d : s) {
    if (d <= 0) return 0;
    n = n > kMax / d ? kMax : n * d;
  }
  return n;
}

namespace {

// Shortest text that reads back as the same double, and always looks like a float (so
// that the textual IR keeps int and float attributes apart): 1.0, 0.1, 1e-05.
std::string double_str(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  NAS_CHECK(ec == std::errc(), "to_chars failed");
  std::string s(buf, end);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // 'n': inf and nan
  return s;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char* kHex = "0123456789abcdef";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

template <typename T, typename F>
std::string list_str(const std::vector<T>& items, F item_str) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += item_str(items[i]);
  }
  return out + "]";
}

}  // namespace

std::string attr_str(const AttrValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) return double_str(*d);
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* s = std::get_if<std::string>(&v)) return quoted(*s);
  if (auto* l = std::get_if<IntList>(&v))
    return list_str(*l, [](int64_t x) { return std::to_string(x); });
  return list_str(std::get<StringList>(v), quoted);
}

namespace {

// Attribute access after complete_attrs: a missing or mistyped attribute is a compiler
// bug (the registry fills defaults and converts types), not a user error.
template <typename T>
const T& typed_attr(const Node& n, const std::string& key, const char* type) {
  auto it = n.attrs.find(key);
  NAS_CHECK(it != n.attrs.end(), "node `" + n.name + "` has no attribute `" + key + "`");
  const T* v = std::get_if<T>(&it->second);
  NAS_CHECK(v != nullptr, "attribute `" + key + "` of node `" + n.name + "` is not " + type);
  return *v;
}

}  // namespace

std::string node_place(const Graph& g, int id) {
  if (id >= 0 && id < static_cast<int>(g.nodes.size()) && g.nodes[id].loc.known())
    return g.nodes[id].loc.str();
  return "network `" + g.name + "`";
}

int64_t Node::int_attr(const std::string& key) const {
  return typed_attr<int64_t>(*this, key, "int");
}
double Node::float_attr(const std::string& key) const {
  return typed_attr<double>(*this, key, "float");
}
bool Node::bool_attr(const std::string& key) const {
  return typed_attr<bool>(*this, key, "bool");
}
const std::string& Node::string_attr(const std::string& key) const {
  return typed_attr<std::string>(*this, key, "string");
}
const StringList& Node::strings_attr(const std::string& key) const {
  return typed_attr<StringList>(*this, key, "string list");
}

const ArchGroup* Graph::find_group(const std::string& key) const {
  for (const ArchGroup& g : arch)
    if (g.key == key) return &g;
  return nullptr;
}

ArchGroup* Graph::find_group(const std::string& key) {
  return const_cast<ArchGroup*>(static_cast<const Graph*>(this)->find_group(key));
}

// A node that reads the same input twice (add(x, x)) is listed once as its consumer, so
// that "all consumers are dead" checks count nodes, not edges. Lists are ascending.
std::vector<std::vector<int>> Graph::consumers() const {
  std::vector<std::vector<int>> out(nodes.size());
  for (const Node& n : nodes) {
    for (int in : n.inputs) {
      NAS_CHECK(in >= 0 && static_cast<size_t>(in) < nodes.size(),
                "node `" + n.name + "` has an input id out of range");
      auto& list = out[in];
      if (list.empty() || list.back() != n.id) list.push_back(n.id);
    }
  }
  return out;
}

static bool op_is(const Node& n, const char* name) {
  return n.op != nullptr && n.op->name == name;
}

bool is_choice(const Node& n) {
  return op_is(n, "choice");
}
bool is_zero(const Node& n) {
  return op_is(n, "zero");
}
bool is_input(const Node& n) {
  return op_is(n, "input");
}

}  // namespace nas
