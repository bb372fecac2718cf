#include "compiler/frontend/loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "compiler/frontend/builtins.h"
#include "compiler/frontend/parser.h"
#include "compiler/ir/op_registry.h"

namespace nas {
namespace fs = std::filesystem;

namespace {

// The installed stdlib beside the binary or library this code was linked into
// (PREFIX/bin/nasc, PREFIX/lib/libnasc.so or PREFIX/lib/<multiarch>/libnasc.so ->
// PREFIX/share/nasc/stdlib), found from where that file is now, so that an installed
// prefix can be moved. "" when there is none (an uninstalled build).
std::string installed_stdlib_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&default_search_paths), &info) == 0 ||
      info.dli_fname == nullptr)
    return {};
  std::error_code ec;
  fs::path self = fs::canonical(info.dli_fname, ec);
  if (ec) return {};
  for (const char* up : {"..", "../.."}) {
    fs::path dir = self.parent_path() / up / "share" / "nasc" / "stdlib";
    if (fs::is_directory(dir, ec)) return fs::weakly_canonical(dir, ec).string();
  }
  return {};
}

}  // namespace

std::vector<std::string> default_search_paths(const std::vector<std::string>& extra) {
  std::vector<std::string> paths = extra;
  if (const char* env = std::getenv("NASC_STDLIB")) paths.push_back(env);
  static const std::string installed = installed_stdlib_dir();
  if (!installed.empty()) paths.push_back(installed);
  paths.push_back(NASC_STDLIB_DIR);  // the source tree's: an uninstalled build
  return paths;
}

std::string read_file_or_empty(const std::string& path, bool* ok) {
  std::error_code ec;
  *ok = false;
  if (fs::is_directory(path, ec)) return {};
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream buf;
  buf << in.rdbuf();
  *ok = !in.bad();
  return buf.str();
}

namespace {

// Why a file could not be read, for the message: the common cases in words.
std::string unreadable(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return "no such file";
  if (fs::is_directory(path, ec)) return "it is a directory";
  return "permission denied or I/O error";
}

class Loader {
 public:
  Loader(const std::vector<std::string>& search, Diagnostics& diags)
      : search_(search), diags_(diags) {}

  bool load(const std::string& path, std::string text, Program& program) {
    std::string key = canonical(path);
    auto source = std::make_shared<const SourceFile>(path, std::move(text));
    stack_.push_back(key);
    bool ok = parse_and_follow(source, program);
    stack_.pop_back();
    return ok;
  }

 private:
  static std::string canonical(const std::string& path) {
    std::error_code ec;
    fs::path p = fs::weakly_canonical(fs::path(path), ec);
    return ec ? path : p.string();
  }

  bool parse_and_follow(const std::shared_ptr<const SourceFile>& source, Program& program) {
    auto file = parse_source(source, diags_);
    if (!file) return false;
    bool ok = true;
    FileScope scope;
    auto import_file = [&](const std::string& key) {
      auto loaded = files_.find(key);  // absent when it failed to parse: reported already
      if (loaded == files_.end()) return;
      auto& imports = scope.imports;
      if (std::find(imports.begin(), imports.end(), loaded->second) == imports.end())
        imports.push_back(loaded->second);
    };
    fs::path dir = fs::path(source->path).parent_path();
    for (const auto& imp : file->imports) {
      std::string found = resolve(imp.path, dir);
      if (found.empty()) {
        std::string where;
        where += dir.empty() ? "." : dir.string();
        for (const auto& s : search_) where += ", " + s;
        diags_.error(imp.loc, "cannot find import \"" + imp.path + "\" (searched " + where + ")");
        ok = false;
        continue;
      }
      std::string key = canonical(found);
      auto cycle_at = std::find(stack_.begin(), stack_.end(), key);
      if (cycle_at != stack_.end()) {
        std::string chain;
        for (auto it = cycle_at; it != stack_.end(); ++it)
          chain += fs::path(*it).filename().string() + " -> ";
        chain += fs::path(key).filename().string();
        diags_.error(imp.loc, "import cycle: " + chain);
        ok = false;
        continue;
      }
      if (loaded_.count(key)) {  // already part of the program (diamond import)
        import_file(key);
        continue;
      }
      bool read_ok = false;
      std::string text = read_file_or_empty(found, &read_ok);
      if (!read_ok) {
        diags_.error(imp.loc, "cannot read import \"" + found + "\": " + unreadable(found));
        ok = false;
        continue;
      }
      loaded_.insert(key);
      stack_.push_back(key);
      ok = parse_and_follow(std::make_shared<const SourceFile>(found, std::move(text)), program) &&
           ok;
      stack_.pop_back();
      import_file(key);
    }
    for (const auto& m : file->modules) {
      std::string shadow = shadowed_builtin(m);
      if (!shadow.empty()) {
        diags_.error(m.loc, shadow);
        ok = false;
        continue;
      }
      auto [it, inserted] = scope.modules.emplace(m.name, &m);
      if (!inserted) {
        diags_.error(m.loc, std::string(m.is_network ? "network" : "module") + " `" + m.name +
                                "` is defined twice in this file");
        diags_.note(it->second->loc, "first definition of `" + m.name + "` is here");
        ok = false;
      }
      program.file_of[&m] = file.get();
    }
    // Registered after the imports, so that the files vector lists dependencies first.
    files_[canonical(source->path)] = file.get();
    program.scopes[file.get()] = std::move(scope);
    program.files.push_back(std::move(file));
    return ok;
  }

  std::string resolve(const std::string& name, const fs::path& dir) const {
    std::error_code ec;
    std::vector<fs::path> candidates;
    if (fs::path(name).is_absolute()) {
      candidates.push_back(name);
    } else {
      candidates.push_back(dir / name);
      for (const auto& s : search_) candidates.push_back(fs::path(s) / name);
    }
    for (const auto& c : candidates)
      if (fs::is_regular_file(c, ec)) return c.string();
    return {};
  }

  const std::vector<std::string>& search_;
  Diagnostics& diags_;
  std::vector<std::string> stack_;
  std::set<std::string> loaded_;
  std::map<std::string, const ast::File*> files_;  // by canonical path, once parsed
};

}  // namespace

std::vector<const ast::ModuleDecl*> Program::modules_named(const ast::File& from,
                                                           const std::string& name) const {
  const FileScope& scope = scopes.at(&from);
  auto own = scope.modules.find(name);
  if (own != scope.modules.end()) return {own->second};
  std::vector<const ast::ModuleDecl*> found;
  for (const ast::File* imported : scope.imports) {
    const auto& theirs = scopes.at(imported).modules;
    auto it = theirs.find(name);
    if (it != theirs.end()) found.push_back(it->second);
  }
  return found;
}

std::vector<std::string> Program::visible_module_names(const ast::File& from) const {
  const FileScope& scope = scopes.at(&from);
  std::vector<std::string> names;
  for (const auto& [name, m] : scope.modules) names.push_back(name);
  for (const ast::File* imported : scope.imports)
    for (const auto& [name, m] : scopes.at(imported).modules) names.push_back(name);
  return names;
}

// Checked at the definition because a module is looked up before the ops when called:
// a module `relu` would silently replace the op for every caller of that file.
std::string shadowed_builtin(const ast::ModuleDecl& m) {
  const OpDef* op = find_op(m.name);
  const char* what =
      op && !op->internal ? "op"
      : is_builtin_function(m.name) || m.name == "sum" || m.name == "channels" || m.name == "shape"
          ? "function"
          : nullptr;
  if (!what) return {};
  return std::string(m.is_network ? "network" : "module") + " `" + m.name +
         "` shadows the built-in " + what + " `" + m.name + "`; rename it";
}

std::unique_ptr<Program> load_program_from_text(const std::string& path, std::string text,
                                                const std::vector<std::string>& search_paths,
                                                Diagnostics& diags) {
  auto program = std::make_unique<Program>();
  Loader loader(search_paths, diags);
  bool ok = loader.load(path, std::move(text), *program);
  if (!ok || program->files.empty()) return nullptr;
  program->main = program->files.back().get();
  return program;
}

std::unique_ptr<Program> load_program(const std::string& path,
                                      const std::vector<std::string>& search_paths,
                                      Diagnostics& diags) {
  bool ok = false;
  std::string text = read_file_or_empty(path, &ok);
  if (!ok) {
    diags.error({}, "cannot read \"" + path + "\": " + unreadable(path));
    return nullptr;
  }
  return load_program_from_text(path, std::move(text), search_paths, diags);
}

}  // namespace nas
