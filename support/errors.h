// The two error channels of nasc, shared by the compiler, the runtime and the CLI.
//
//   UserError      bad input: a .nas file, a flag, a config, an arch file, a latency table,
//                  a data set, a weights file. It says which input and where in it, and the
//                  CLI exits 1. Compiler front-end diagnostics (file:line:col with a caret)
//                  go through Diagnostics instead; everything else a user can get wrong
//                  throws a UserError (or one of the typed kinds below).
//   InternalError  a broken invariant: a bug in nasc. NAS_CHECK throws it and the CLI exits
//                  2 with "internal error". A UserError is never caught into one, nor the
//                  other way round.
//
// Anything else that escapes (std::bad_alloc, a library's exception) is reported by the CLI
// as an internal error too: a user error is always one of these types.
#pragma once

#include <stdexcept>
#include <string>

namespace nas {

// Bad input. `where()` names the input and the place in it, in the most precise form the
// input allows; `what()` is "where: message", or the message alone when where is empty.
class UserError : public std::runtime_error {
 public:
  UserError(std::string where, std::string message);
  const std::string& where() const { return where_; }
  const std::string& message() const { return message_; }

 private:
  std::string where_;
  std::string message_;
};

// The typed kinds. Each fixes how its place is written, so that every message of a kind
// reads the same way. Catch UserError unless the kind matters.

// A key of a config file (train/search JSON) or of a --set/--data style override:
// "cfg.json: optimizer.lr: must be positive".
class ConfigError : public UserError {
 public:
  ConfigError(const std::string& file, const std::string& key_path, std::string message);
  const std::string& file() const { return file_; }
  const std::string& key_path() const { return key_path_; }

 private:
  std::string file_, key_path_;
};

// A place in a JSON document given as a JSON pointer (arch files, weights headers):
// "arch.json: /choices/op: unknown candidate".
class JsonError : public UserError {
 public:
  JsonError(const std::string& file, const std::string& pointer, std::string message);
  const std::string& file() const { return file_; }
  const std::string& pointer() const { return pointer_; }

 private:
  std::string file_, pointer_;
};

// A data set or binary file, with a byte offset when one is known (-1 when not):
// "train-images-idx3-ubyte: byte 16: ...".
class DataFileError : public UserError {
 public:
  DataFileError(const std::string& file, std::string message, long long byte_offset = -1);
  const std::string& file() const { return file_; }
  long long byte_offset() const { return byte_offset_; }

 private:
  std::string file_;
  long long byte_offset_;
};

// An entry of a latency table: "lut.json: entry \"conv ...\": ...". An empty entry names
// the table as a whole.
class LutEntryError : public UserError {
 public:
  LutEntryError(const std::string& file, const std::string& entry, std::string message);
  const std::string& file() const { return file_; }
  const std::string& entry() const { return entry_; }

 private:
  std::string file_, entry_;
};

// Internal invariant failure: a bug in nasc (exit 2), never a user's mistake.
struct InternalError : std::logic_error {
  using std::logic_error::logic_error;
};
[[noreturn]] void internal_error(const char* file, int line, const std::string& what);

#define NAS_CHECK(cond, msg)                                                                  \
  do {                                                                                        \
    if (!(cond)) ::nas::internal_error(__FILE__, __LINE__, std::string(#cond " : ") + (msg)); \
  } while (0)

}  // namespace nas
