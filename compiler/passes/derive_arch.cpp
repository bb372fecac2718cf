#include "compiler/passes/derive_arch.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "compiler/frontend/loader.h"
#include "compiler/passes/dce.h"
#include "compiler/passes/shape_inference.h"
#include "compiler/passes/zero_prune.h"
#include "support/json_file.h"

namespace nas {
namespace {

SourceLoc loc_at_byte(const std::shared_ptr<const SourceFile>& file, size_t byte) {
  TextPosition pos = text_position(file->text, byte);
  return {file, pos.line, pos.col};
}

// Locates `"key":` in the text, so that errors about a key point at it. The `:` tells
// the key from the same text used as a value (`"edge": "zero", "zero": ...`).
SourceLoc loc_of_key(const std::shared_ptr<const SourceFile>& file, const std::string& key) {
  const std::string& text = file->text;
  const std::string quoted = "\"" + key + "\"";
  for (size_t at = text.find(quoted); at != std::string::npos; at = text.find(quoted, at + 1)) {
    size_t next = text.find_first_not_of(" \t\r\n", at + quoted.size());
    if (next != std::string::npos && text[next] == ':') return loc_at_byte(file, at);
  }
  return loc_at_byte(file, 0);
}

std::string join_names(const std::vector<std::string>& names, size_t max = 12) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > max) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

}  // namespace

std::optional<Selection> parse_arch(const Graph& g, const std::string& path,
                                    const std::string& text, Diagnostics& diags) {
  auto file = std::make_shared<const SourceFile>(path, text);
  nlohmann::json doc;
  // The one strict reader (support/json_file.h) refuses a key given twice (nlohmann would
  // keep the last, silently picking one of two candidates) and numbers beyond a double;
  // its errors carry line:col, reported here as diagnostics like the rest of the file's.
  try {
    doc = parse_json(text, path);
  } catch (const JsonSyntaxError& e) {
    diags.error({file, e.line(), e.col()}, "arch file: " + e.message());
    return std::nullopt;
  }
  if (!doc.is_object() || !doc.contains("choices") || !doc["choices"].is_object()) {
    diags.error({file, 1, 1},
                "arch file must be a JSON object with a \"choices\" object "
                "(choice key -> candidate name)");
    return std::nullopt;
  }
  if (doc.contains("network")) {
    if (!doc["network"].is_string() || doc["network"].get<std::string>() != g.name) {
      diags.error(loc_of_key(file, "network"),
                  "arch file is for network " + doc["network"].dump() + ", not `" + g.name + "`");
      return std::nullopt;
    }
  }
  Selection sel;
  sel.chosen.resize(g.arch.size());
  std::vector<std::string> keys;
  for (const auto& group : g.arch) keys.push_back(group.key);
  bool ok = true;
  for (const auto& [key, value] : doc["choices"].items()) {
    const ArchGroup* group = g.find_group(key);
    if (!group) {
      diags.error(loc_of_key(file, key), "arch file names choice `" + key + "`, which `" + g.name +
                                             "` does not have (its choices: " + join_names(keys) +
                                             ")");
      ok = false;
      continue;
    }
    std::vector<std::string> names;
    if (value.is_string()) {
      names.push_back(value.get<std::string>());
    } else if (value.is_array()) {
      for (const auto& v : value) {
        if (!v.is_string()) {
          names.clear();
          break;
        }
        names.push_back(v.get<std::string>());
      }
    }
    if (names.empty()) {
      diags.error(loc_of_key(file, key), "choice `" + key +
                                             "` must be a candidate name (string) or a list of " +
                                             "names, got " + value.dump());
      ok = false;
      continue;
    }
    if (static_cast<int>(names.size()) != group->k) {
      diags.error(loc_of_key(file, key), "choice `" + key + "` picks " + std::to_string(group->k) +
                                             " candidate(s), the arch file gives " +
                                             std::to_string(names.size()));
      ok = false;
      continue;
    }
    size_t gi = group - g.arch.data();
    for (const auto& name : names) {
      auto it = std::find(group->candidates.begin(), group->candidates.end(), name);
      if (it == group->candidates.end()) {
        diags.error(loc_of_key(file, key), "choice `" + key + "` has no candidate `" + name +
                                               "` (candidates: " + join_names(group->candidates) +
                                               ")");
        ok = false;
        break;
      }
      int index = static_cast<int>(it - group->candidates.begin());
      if (std::find(sel.chosen[gi].begin(), sel.chosen[gi].end(), index) != sel.chosen[gi].end()) {
        diags.error(loc_of_key(file, key),
                    "choice `" + key + "` names candidate `" + name + "` twice");
        ok = false;
        break;
      }
      sel.chosen[gi].push_back(index);
    }
  }
  std::vector<std::string> missing;
  for (size_t i = 0; i < g.arch.size(); ++i)
    if (sel.chosen[i].empty() && !doc["choices"].contains(g.arch[i].key))
      missing.push_back(g.arch[i].key);
  if (!missing.empty()) {
    diags.error({file, 1, 1}, "arch file does not fix " + std::to_string(missing.size()) +
                                  " choice(s) of `" + g.name + "`: " + join_names(missing));
    ok = false;
  }
  if (!ok) return std::nullopt;
  return sel;
}

std::optional<Selection> load_arch(const Graph& g, const std::string& path, Diagnostics& diags) {
  bool ok = false;
  std::string text = read_file_or_empty(path, &ok);
  if (!ok) {
    std::error_code ec;
    diags.error({},
                "cannot read arch file \"" + path + "\": " +
                    (!std::filesystem::exists(path, ec)        ? "no such file"
                     : std::filesystem::is_directory(path, ec) ? "it is a directory"
                                                               : "permission denied or I/O error"));
    return std::nullopt;
  }
  return parse_arch(g, path, text, diags);
}

std::string arch_to_json(const Graph& g, const Selection& sel) {
  nlohmann::ordered_json doc;
  doc["network"] = g.name;
  nlohmann::ordered_json choices = nlohmann::ordered_json::object();
  for (size_t i = 0; i < g.arch.size(); ++i) {
    const ArchGroup& group = g.arch[i];
    if (group.k == 1) {
      choices[group.key] = group.candidates[sel.chosen[i][0]];
    } else {
      nlohmann::ordered_json names = nlohmann::ordered_json::array();
      for (int c : sel.chosen[i]) names.push_back(group.candidates[c]);
      choices[group.key] = names;
    }
  }
  doc["choices"] = choices;
  // Names may hold invalid UTF-8 (a string indexed byte-wise, "é"[0]); dump() would
  // throw on those, so they are written with U+FFFD instead.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Graph derive_fixed_network(const Graph& g, const Selection& sel) {
  Graph fixed = zero_prune(g, sel);
  Diagnostics diags;
  bool ok = infer_shapes(fixed, diags);
  NAS_CHECK(ok, "pruned graph fails shape inference: " + diags.render());
  return fixed;
}

}  // namespace nas
