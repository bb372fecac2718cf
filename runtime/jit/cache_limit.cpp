#include "runtime/jit/cache_limit.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <vector>

namespace nas {

uint64_t cache_max_bytes_from_env() {
  constexpr uint64_t kMb = 1 << 20;
  const char* text = std::getenv("NASC_CACHE_MAX_MB");
  if (!text || !*text) return kDefaultCacheMb * kMb;
  char* end = nullptr;
  errno = 0;
  const unsigned long long mb = std::strtoull(text, &end, 10);
  if (errno == 0 && *end == '\0' && text[0] != '-' && mb >= 1 && mb <= 1000000) return mb * kMb;
  static std::once_flag reported;
  std::call_once(reported, [&] {
    std::cerr << "nasc: warning: NASC_CACHE_MAX_MB must be a whole number of megabytes from 1 to "
                 "1000000, got \""
              << text << "\"; the JIT object cache keeps its default limit of " << kDefaultCacheMb
              << " MB\n";
  });
  return kDefaultCacheMb * kMb;
}

int64_t evict_least_recently_used(const std::string& dir, uint64_t max_bytes) {
  namespace fs = std::filesystem;
  struct Entry {
    fs::file_time_type used;
    uint64_t bytes;
    fs::path path;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".o") continue;
    std::error_code stat_ec;
    const uint64_t bytes = it->file_size(stat_ec);
    const fs::file_time_type used = it->last_write_time(stat_ec);
    if (stat_ec) continue;  // gone meanwhile
    entries.push_back({used, bytes, it->path()});
    total += bytes;
  }
  if (total <= max_bytes) return 0;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.used < b.used; });
  int64_t evicted = 0;
  for (const Entry& e : entries) {
    if (total <= max_bytes / 4 * 3) break;
    std::error_code remove_ec;
    if (fs::remove(e.path, remove_ec)) ++evicted;
    total -= e.bytes;
  }
  return evicted;
}

}  // namespace nas
