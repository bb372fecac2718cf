#include "support/config_section.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "support/did_you_mean.h"

namespace nas {

using nlohmann::json;

std::string json_kind(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

std::string config_number_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

ConfigSection::ConfigSection(const json& j, std::string file, std::string path)
    : j_(j), file_(std::move(file)), path_(std::move(path)) {
  if (!j_.is_object()) fail("", "expected an object, got " + json_kind(j_));
}

std::string ConfigSection::key_path(const std::string& key) const {
  if (key.empty()) return path_;
  return path_.empty() ? key : path_ + "." + key;
}

void ConfigSection::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(file_, key_path(key), message);
}

const json* ConfigSection::find(const char* key) const {
  auto it = j_.find(key);
  return it == j_.end() ? nullptr : &*it;
}

ConfigSection ConfigSection::section(const char* key) const {
  const json* v = find(key);
  NAS_CHECK(v != nullptr, std::string("section `") + key + "` read without checking for it");
  return ConfigSection(*v, file_, key_path(key));
}

void ConfigSection::check_keys(const std::vector<std::string>& allowed,
                               const std::string& kind) const {
  for (auto it = j_.begin(); it != j_.end(); ++it)
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end())
      fail(it.key(), "unknown key" + (kind.empty() ? "" : " for " + kind) +
                         did_you_mean_or_choices(it.key(), allowed));
}

int64_t ConfigSection::get_int(const char* key, int64_t def, int64_t min, int64_t max) const {
  const json* v = find(key);
  if (!v) return def;
  if (!v->is_number_integer()) fail(key, "expected an integer, got " + json_kind(*v));
  if (v->is_number_unsigned() &&
      v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    fail(key, "must be <= " + std::to_string(max) + ", got " + v->dump());
  int64_t i = v->get<int64_t>();
  if (i < min || i > max)
    fail(key, max == std::numeric_limits<int64_t>::max()
                  ? "must be >= " + std::to_string(min) + ", got " + std::to_string(i)
                  : "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " +
                        std::to_string(i));
  return i;
}

uint64_t ConfigSection::get_uint64(const char* key, uint64_t def) const {
  const json* v = find(key);
  if (!v) return def;
  if (!v->is_number_integer()) fail(key, "expected an integer, got " + json_kind(*v));
  if (!v->is_number_unsigned()) fail(key, "must be >= 0, got " + v->dump());
  return v->get<uint64_t>();
}

double ConfigSection::get_number(const char* key, double def, double min, double max,
                                 bool min_exclusive) const {
  const json* v = find(key);
  if (!v) return def;
  if (!v->is_number()) fail(key, "expected a number, got " + json_kind(*v));
  double d = v->get<double>();
  bool below = min_exclusive ? !(d > min) : !(d >= min);
  if (below || !(d <= max) || !std::isfinite(d)) {
    std::string rule = std::isinf(max)
                           ? std::string(min_exclusive ? "> " : ">= ") + config_number_text(min)
                           : std::string(min_exclusive ? "in (" : "in [") +
                                 config_number_text(min) + ", " + config_number_text(max) + "]";
    fail(key, "must be " + rule + ", got " + config_number_text(d));
  }
  return d;
}

bool ConfigSection::get_bool(const char* key, bool def) const {
  const json* v = find(key);
  if (!v) return def;
  if (!v->is_boolean()) fail(key, "expected true or false, got " + json_kind(*v));
  return v->get<bool>();
}

std::string ConfigSection::get_string(const char* key, const std::string& def) const {
  const json* v = find(key);
  if (!v) return def;
  if (!v->is_string()) fail(key, "expected a string, got " + json_kind(*v));
  return v->get<std::string>();
}

std::string ConfigSection::get_one_of(const char* key, const std::string& def,
                                      const std::vector<std::string>& values) const {
  const json* v = find(key);
  if (!v) return def;
  std::string all;
  for (const std::string& s : values) all += (all.empty() ? "" : ", ") + s;
  if (!v->is_string()) fail(key, "expected one of " + all + ", got " + v->dump());
  std::string s = v->get<std::string>();
  if (std::find(values.begin(), values.end(), s) == values.end()) {
    std::string near = closest_name(s, values);
    fail(key, "expected one of " + all + ", got " + v->dump() +
                  (near.empty() ? "" : " (did you mean " + near + "?)"));
  }
  return s;
}

std::string ConfigSection::require_string(const char* key) const {
  if (!has(key)) fail(key, "missing required key");
  return get_string(key, "");
}

}  // namespace nas
