// Compile-time values of the elaborator: numbers, strings, lists and tensors (a tensor
// is a reference to the IR node that produces it). Poison marks the result of an
// expression that already failed, so that one mistake gives one diagnostic.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nas {

struct Value {
  enum class Kind { None, Int, Float, Bool, String, List, Tensor, Poison };
  Kind kind = Kind::None;
  int64_t i = 0;  // Int; Tensor: node id
  double f = 0;
  bool b = false;
  std::string s;
  std::shared_ptr<const std::vector<Value>> list;

  static Value none() { return {}; }
  static Value poison() { return make(Kind::Poison); }
  static Value of_int(int64_t v) {
    Value r = make(Kind::Int);
    r.i = v;
    return r;
  }
  static Value of_float(double v) {
    Value r = make(Kind::Float);
    r.f = v;
    return r;
  }
  static Value of_bool(bool v) {
    Value r = make(Kind::Bool);
    r.b = v;
    return r;
  }
  static Value of_string(std::string v) {
    Value r = make(Kind::String);
    r.s = std::move(v);
    return r;
  }
  static Value of_tensor(int node) {
    Value r = make(Kind::Tensor);
    r.i = node;
    return r;
  }
  static Value of_list(std::vector<Value> v) {
    Value r = make(Kind::List);
    r.list = std::make_shared<const std::vector<Value>>(std::move(v));
    return r;
  }

  bool is_poison() const { return kind == Kind::Poison; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float; }
  double as_double() const { return kind == Kind::Int ? static_cast<double>(i) : f; }

 private:
  static Value make(Kind k) {
    Value r;
    r.kind = k;
    return r;
  }
};

const char* kind_name(Value::Kind k);
// Renders a value for messages: 3, 0.5, "a" (quoted when `quote`), [1, 2]. Long lists
// are abbreviated ("... (N elements)"), so this is for messages only.
std::string value_str(const Value& v, bool quote = false);
// The whole text of a value, as str() gives it (strings unquoted at the top level, quoted
// inside lists), or nullopt when it would be longer than max_chars.
std::optional<std::string> value_text(const Value& v, size_t max_chars);
// The value as JSON text: ints and finite floats as numbers, bools, strings quoted and
// escaped, lists as arrays, whole (never abbreviated); nullopt when longer than
// max_chars. Graph::params holds this text for each network parameter.
std::optional<std::string> value_json(const Value& v, size_t max_chars);

}  // namespace nas
