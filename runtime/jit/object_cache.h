// The JIT's disk cache of compiled objects (an LLVM ObjectCache): a module compiled once is
// loaded from disk the next time, without optimising or generating code again.
//
// An entry's key is a SHA-1 of everything its object depends on: the module's bitcode before
// optimisation (or, for a plan's schedule, the description it is generated from:
// plan_codegen.h), the host CPU's name and features, the LLVM version and nasc's version.
// The engine names each module by its key (Module::getModuleIdentifier), which is how
// LLVM's compiler asks the cache for it.
//
// Entries are files `<key>.o` in the cache directory, each a header (magic, payload size,
// SHA-1 of the payload) followed by the object. An entry that does not verify (truncated,
// overwritten, from another format) is deleted and compiled again, never loaded. Writes go
// to a temporary file renamed into place, so a reader never sees half an entry and two
// processes compiling the same module both end with a whole one.
//
// The directory is $NASC_CACHE_DIR, else $XDG_CACHE_HOME/nasc/jit, else ~/.cache/nasc/jit;
// NASC_CACHE_DIR=off turns the cache off. A directory that cannot be created or written
// only costs the cache (one warning on stderr), never a run.
//
// The directory is kept under a size limit (cache_limit.h): after each write the least
// recently used entries go. A hit refreshes an entry's modification time, which is what
// "recently used" means.
#pragma once

#include <llvm/ExecutionEngine/ObjectCache.h>
#include <llvm/Support/MemoryBuffer.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/jit/cache_limit.h"

namespace nas {

struct ObjectCacheStats {
  int64_t hits = 0;     // objects loaded from disk
  int64_t misses = 0;   // modules compiled (no entry)
  int64_t corrupt = 0;  // entries that did not verify, deleted and compiled again
  int64_t written = 0;  // entries stored
  int64_t evicted = 0;  // entries deleted to keep the directory under its size limit
};

class DiskObjectCache : public llvm::ObjectCache {
 public:
  // `dir` empty: no disk cache (every lookup a miss, nothing stored).
  explicit DiskObjectCache(std::string dir, uint64_t max_bytes = cache_max_bytes_from_env());

  // The cache directory of this process's environment (see above); "" when turned off.
  static std::string default_dir();

  const std::string& dir() const { return dir_; }
  // Whether `key` has a verified entry; it is then kept in memory for getObject. A corrupt
  // entry is deleted here (and counted).
  bool contains(const std::string& key);
  ObjectCacheStats stats() const;

  // The object of a key contains() found, handed over (a second call finds none: an
  // InternalError), for a module the engine loads without generating it.
  std::unique_ptr<llvm::MemoryBuffer> object(const std::string& key);

  // llvm::ObjectCache: the module's identifier is its key.
  void notifyObjectCompiled(const llvm::Module* module, llvm::MemoryBufferRef object) override;
  std::unique_ptr<llvm::MemoryBuffer> getObject(const llvm::Module* module) override;

  // The path of `key`'s entry (tests corrupt it on purpose).
  std::string entry_path(const std::string& key) const;

 private:
  std::unique_ptr<llvm::MemoryBuffer> load_verified(const std::string& key);
  void warn_once(const std::string& message);

  std::string dir_;
  uint64_t max_bytes_;
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<llvm::MemoryBuffer>> loaded_;
  ObjectCacheStats stats_;
  bool warned_ = false;
};

// The SHA-1 of `text`, as 40 hex digits.
std::string sha1_hex(const std::string& text);

}  // namespace nas
