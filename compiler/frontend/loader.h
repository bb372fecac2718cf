// Loading a program: the main .nas file plus its transitive imports, with import cycles
// and missing files reported at the import that causes them.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/frontend/ast.h"

namespace nas {

struct Program {
  std::vector<std::unique_ptr<ast::File>> files;  // dependencies before dependants
  const ast::File* main = nullptr;
  std::map<std::string, const ast::ModuleDecl*> modules;  // all modules and networks by name
  std::vector<const ast::ConstDecl*> consts;              // file-level `let`s, dependencies first
};

// Where `import "x.nas"` looks after the importing file's own folder: -I folders, then
// $NASC_STDLIB, then the stdlib of the build tree and of the install prefix.
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
