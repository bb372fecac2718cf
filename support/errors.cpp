#include "support/errors.h"

#include <utility>

namespace nas {

namespace {
std::string join_where(const std::string& where, const std::string& message) {
  return where.empty() ? message : where + ": " + message;
}
std::string place(const std::string& file, const std::string& inner) {
  if (file.empty()) return inner;
  return inner.empty() ? file : file + ": " + inner;
}
}  // namespace

UserError::UserError(std::string where, std::string message)
    : std::runtime_error(join_where(where, message)),
      where_(std::move(where)),
      message_(std::move(message)) {}

ConfigError::ConfigError(const std::string& file, const std::string& key_path, std::string message)
    : UserError(place(file, key_path), std::move(message)), file_(file), key_path_(key_path) {}

JsonError::JsonError(const std::string& file, const std::string& pointer, std::string message)
    : UserError(place(file, pointer), std::move(message)), file_(file), pointer_(pointer) {}

DataFileError::DataFileError(const std::string& file, std::string message, long long byte_offset)
    : UserError(place(file, byte_offset >= 0 ? "byte " + std::to_string(byte_offset) : ""),
                std::move(message)),
      file_(file),
      byte_offset_(byte_offset) {}

LutEntryError::LutEntryError(const std::string& file, const std::string& entry, std::string message)
    : UserError(place(file, entry.empty() ? "" : "entry \"" + entry + "\""), std::move(message)),
      file_(file),
      entry_(entry) {}

namespace {

// __FILE__ is the path the compiler was given (absolute in CMake builds); from the
// top-level folder on it is shorter and the same on every machine.
std::string source_path(const char* file) {
  std::string path = file;
  for (const char* top : {"/support/", "/compiler/", "/runtime/", "/tools/", "/tests/"}) {
    size_t at = path.rfind(top);
    if (at != std::string::npos) return path.substr(at + 1);
  }
  return path;
}

}  // namespace

void internal_error(const char* file, int line, const std::string& what) {
  throw InternalError("internal error: " + what + " (at " + source_path(file) + ":" +
                      std::to_string(line) + ")");
}

}  // namespace nas
