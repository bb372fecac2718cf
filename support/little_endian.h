// Little-endian integers for nasc's binary files (weights and checkpoints, TensorBoard
// event files, optimizer state blobs): written and read byte by byte, so that a file is
// the same whatever the host's byte order, and float data is swapped only on a
// big-endian host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace nas {

inline bool host_is_little_endian() {
  const uint32_t one = 1;
  uint8_t b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

// Appends the low `bytes` bytes of v (1..8), least significant first.
inline void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void put_le(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>((v >> (8 * i)) & 0xff));
}

// The `bytes`-byte (1..8) little-endian integer at p.
inline uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Swaps each 4-byte word, turning native float32 into little-endian (or back) on a
// big-endian host; the bit patterns (NaN payloads included) are kept.
inline void swap_words(void* data, size_t words) {
  auto* p = static_cast<unsigned char*>(data);
  for (size_t i = 0; i < words; ++i, p += 4) {
    std::swap(p[0], p[3]);
    std::swap(p[1], p[2]);
  }
}

}  // namespace nas
