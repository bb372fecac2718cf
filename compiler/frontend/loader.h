// Loading a program: the main .nas file plus its transitive imports, with import cycles
// and missing files reported at the import that causes them, and each file's scope (what
// its names mean).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/frontend/ast.h"

namespace nas {

// Names resolve per file: a file sees its own modules and constants, then those of the
// files it imports directly (not theirs in turn), so that an import never changes what a
// name means inside another file.
struct FileScope {
  std::map<std::string, const ast::ModuleDecl*> modules;  // its own, networks included
  std::vector<const ast::File*> imports;                  // direct, in import order, each once
};

struct Program {
  std::vector<std::unique_ptr<ast::File>> files;  // dependencies before dependants
  const ast::File* main = nullptr;
  std::map<const ast::File*, FileScope> scopes;
  std::map<const ast::ModuleDecl*, const ast::File*> file_of;  // where each module is defined

  // What `name` means as a module called from `from`: its own module, else the modules of
  // that name in its direct imports. Several results are an ambiguity for the caller to
  // report; none, an unknown name.
  std::vector<const ast::ModuleDecl*> modules_named(const ast::File& from,
                                                    const std::string& name) const;
  // Every module name `from` can call, for "did you mean" suggestions.
  std::vector<std::string> visible_module_names(const ast::File& from) const;
};

// "module `relu` shadows the built-in op `relu`; rename it" when a module or network name
// is that of a built-in op or function; empty otherwise.
std::string shadowed_builtin(const ast::ModuleDecl& m);

// Where `import "x.nas"` looks after the importing file's own folder: -I folders, then
// $NASC_STDLIB, then the installed stdlib found relative to the nasc binary or library at
// run time (a relocatable prefix), then the source tree's (an uninstalled build).
std::vector<std::string> default_search_paths(const std::vector<std::string>& extra = {});

std::string read_file_or_empty(const std::string& path, bool* ok);

// Loads `path` and its imports. Returns nullptr if any file failed to load or parse.
std::unique_ptr<Program> load_program(const std::string& path,
                                      const std::vector<std::string>& search_paths,
                                      Diagnostics& diags);
// Same, with the main file's text given (tests, fuzzing). Imports resolve from the
// folder of `path`.
std::unique_ptr<Program> load_program_from_text(const std::string& path, std::string text,
                                                const std::vector<std::string>& search_paths,
                                                Diagnostics& diags);

}  // namespace nas
