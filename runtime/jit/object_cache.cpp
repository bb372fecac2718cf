#include "runtime/jit/object_cache.h"

#include <llvm/IR/Module.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/SHA1.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>

#include "runtime/jit/cache_limit.h"
#include "support/errors.h"

namespace nas {
namespace {

constexpr char kMagic[8] = {'N', 'A', 'S', 'C', 'O', 'B', 'J', '1'};
constexpr size_t kDigest = 20;
constexpr size_t kHeader = sizeof kMagic + sizeof(uint64_t) + kDigest;

std::string sha1_raw(llvm::StringRef data) {
  llvm::SHA1 hasher;
  hasher.update(data);
  return hasher.final().str();
}

}  // namespace

std::string sha1_hex(const std::string& text) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : sha1_raw(text)) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

DiskObjectCache::DiskObjectCache(std::string dir, uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {}

std::string DiskObjectCache::default_dir() {
  if (const char* d = std::getenv("NASC_CACHE_DIR"); d && *d)
    return std::string(d) == "off" ? "" : std::string(d);
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/nasc/jit";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/nasc/jit";
  return "";
}

std::string DiskObjectCache::entry_path(const std::string& key) const {
  return dir_ + "/" + key + ".o";
}

ObjectCacheStats DiskObjectCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void DiskObjectCache::warn_once(const std::string& message) {
  if (warned_) return;
  warned_ = true;
  std::cerr << "nasc: warning: JIT object cache: " << message
            << " (compiled code is not cached; set NASC_CACHE_DIR to another directory)\n";
}

// Reads and verifies `key`'s entry; null when there is none or it did not verify (then it
// is deleted). The caller holds the mutex.
std::unique_ptr<llvm::MemoryBuffer> DiskObjectCache::load_verified(const std::string& key) {
  if (dir_.empty()) return nullptr;
  const std::string path = entry_path(key);
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!file) return nullptr;  // no entry
  llvm::StringRef data = (*file)->getBuffer();
  bool ok = data.size() >= kHeader && std::memcmp(data.data(), kMagic, sizeof kMagic) == 0;
  uint64_t size = 0;
  if (ok) {
    std::memcpy(&size, data.data() + sizeof kMagic, sizeof size);
    ok = size == data.size() - kHeader &&
         sha1_raw(data.substr(kHeader)) == data.substr(sizeof kMagic + sizeof size, kDigest).str();
  }
  if (!ok) {
    ++stats_.corrupt;
    std::remove(path.c_str());
    return nullptr;
  }
  // A hit makes the entry the most recently used (evict_least_recently_used keeps it).
  std::error_code ignored;
  std::filesystem::last_write_time(path, std::filesystem::file_time_type::clock::now(), ignored);
  return llvm::MemoryBuffer::getMemBufferCopy(data.substr(kHeader), key);
}

bool DiskObjectCache::contains(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (loaded_.count(key)) return true;
  std::unique_ptr<llvm::MemoryBuffer> object = load_verified(key);
  if (!object) return false;
  loaded_[key] = std::move(object);
  return true;
}

std::unique_ptr<llvm::MemoryBuffer> DiskObjectCache::object(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = loaded_.find(key);
  NAS_CHECK(it != loaded_.end(), "no cached object " + key + " was found before it was asked for");
  std::unique_ptr<llvm::MemoryBuffer> found = std::move(it->second);
  loaded_.erase(it);
  ++stats_.hits;
  return found;
}

std::unique_ptr<llvm::MemoryBuffer> DiskObjectCache::getObject(const llvm::Module* module) {
  const std::string key = module->getModuleIdentifier();
  std::lock_guard<std::mutex> lock(mutex_);
  std::unique_ptr<llvm::MemoryBuffer> object;
  if (auto it = loaded_.find(key); it != loaded_.end()) {
    object = std::move(it->second);
    loaded_.erase(it);
  } else {
    object = load_verified(key);
  }
  if (object)
    ++stats_.hits;
  else
    ++stats_.misses;
  return object;
}

void DiskObjectCache::notifyObjectCompiled(const llvm::Module* module,
                                           llvm::MemoryBufferRef object) {
  if (dir_.empty()) return;
  const std::string key = module->getModuleIdentifier();
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::error_code ec = llvm::sys::fs::create_directories(dir_)) {
    warn_once("cannot create " + dir_ + ": " + ec.message());
    return;
  }
  const std::string path = entry_path(key);
  const std::string temp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    const llvm::StringRef data = object.getBuffer();
    const uint64_t size = data.size();
    out.write(kMagic, sizeof kMagic);
    out.write(reinterpret_cast<const char*>(&size), sizeof size);
    out << sha1_raw(data);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) {
      std::remove(temp.c_str());
      warn_once("cannot write " + temp);
      return;
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    warn_once("cannot rename " + temp + " to " + path);
    return;
  }
  ++stats_.written;
  stats_.evicted += evict_least_recently_used(dir_, max_bytes_);
}

}  // namespace nas
