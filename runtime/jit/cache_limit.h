// The size limit of the JIT's object cache (object_cache.h), free of LLVM's headers.
//
// A search compiles a plan for every architecture it trains or times, so without a limit
// the cache directory would grow with every run. The limit is $NASC_CACHE_MAX_MB megabytes
// (default 512). When a write takes the entries over it, the least recently used entries
// (oldest modification time) are deleted until they fill at most three quarters of it, so
// that the next few writes do not each trim again.
#pragma once

#include <cstdint>
#include <string>

namespace nas {

inline constexpr uint64_t kDefaultCacheMb = 512;

// The limit in bytes from $NASC_CACHE_MAX_MB. A value that is not a whole number of
// megabytes from 1 to 1,000,000 is reported once on stderr, and the default is used.
uint64_t cache_max_bytes_from_env();

// Deletes entries (`*.o` files) of `dir`, least recently used first, when together they
// fill more than `max_bytes`, until they fill at most 3/4 of it; returns how many were
// deleted. Another process may trim the same directory: an entry already gone is skipped.
int64_t evict_least_recently_used(const std::string& dir, uint64_t max_bytes);

}  // namespace nas
