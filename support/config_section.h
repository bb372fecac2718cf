// Strict reading of one object of a JSON config (a train or search config, an optimizer
// section): unknown keys, wrong types and values out of range are ConfigErrors that name
// the file and the key path ("cfg.json: data.batch_sze: unknown key (did you mean
// batch_size?)"), because a misspelt key silently falling back to its default wastes a
// whole run. Every config reader of the runtime reads through this one class, so that
// their messages read the same.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/errors.h"

namespace nas {

// The kind of a JSON value in messages: "integer" and "number" apart (nlohmann calls both
// "number"), else "string", "boolean", "array", "object", "null".
std::string json_kind(const nlohmann::json& v);

// A number for messages: the shortest "%g" form (0.1, 1e-05, 3).
std::string config_number_text(double v);

class ConfigSection {
 public:
  // `j` is the section's value and must outlive the section; `file` names the config in
  // messages ("" for none), `path` is the section's key path ("" for the top level,
  // "data", "optimizer.schedule"). Throws ConfigError unless `j` is an object.
  ConfigSection(const nlohmann::json& j, std::string file, std::string path);

  const nlohmann::json& value() const { return j_; }
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  // path.key, or key at the top level.
  std::string key_path(const std::string& key) const;

  // A ConfigError at `key` of this section (the section itself when key is empty).
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  const nlohmann::json* find(const char* key) const;
  bool has(const char* key) const { return find(key) != nullptr; }
  // The object under `key`; ConfigError when it is not one. The key must be present.
  ConfigSection section(const char* key) const;

  // Every key must be one of `allowed`: "unknown key (did you mean x?)", or "unknown key
  // for <kind> (...)" when `kind` is given ("optimizer 'sgd'").
  void check_keys(const std::vector<std::string>& allowed, const std::string& kind = "") const;

  // Typed reads: the default when the key is absent, else the value, checked.
  int64_t get_int(const char* key, int64_t def, int64_t min,
                  int64_t max = std::numeric_limits<int64_t>::max()) const;
  uint64_t get_uint64(const char* key, uint64_t def) const;  // any integer >= 0
  // A finite number in [min, max] (min excluded when min_exclusive).
  double get_number(const char* key, double def, double min,
                    double max = std::numeric_limits<double>::infinity(),
                    bool min_exclusive = false) const;
  bool get_bool(const char* key, bool def) const;
  std::string get_string(const char* key, const std::string& def) const;
  // A string that must be one of `values` ("expected one of a, b, got \"c\"").
  std::string get_one_of(const char* key, const std::string& def,
                         const std::vector<std::string>& values) const;
  // A string that must be present: "missing required key".
  std::string require_string(const char* key) const;

 private:
  const nlohmann::json& j_;
  std::string file_;
  std::string path_;
};

}  // namespace nas
