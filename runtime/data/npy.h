// NumPy's .npy files (numpy.save), read without numpy: the magic "\x93NUMPY", a version
// byte pair (1.0, 2.0 or 3.0), the header length (2 bytes in 1.0, 4 in 2.0 and 3.0,
// little-endian), a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape':
// (N, H, W), } padded with spaces and ending in '\n', then the array's bytes in C order.
// Only what a data set needs is accepted: little-endian (or byte-sized) uint8, int32,
// int64 and float32, C order; anything else is a DataError that says how to convert.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/dataset.h"

namespace nas {

enum class NpyType { U8, I32, I64, F32 };

struct NpyArray {
  NpyType type = NpyType::U8;
  std::string descr;           // as written, e.g. "<f4", "|u1"
  std::vector<int64_t> shape;  // () is a scalar
  uint64_t data_offset = 0;    // where the data start in the file
  std::vector<uint8_t> bytes;  // the data as stored (little-endian), numel * item_size

  size_t item_size() const;
  uint64_t numel() const;
};

// Reads and checks `path` whole: magic, version, header length, the header dict (exactly
// the keys descr, fortran_order, shape; no duplicates), the dtype, C order, and a data
// size equal to the shape's (so truncated and trailing data are errors). Throws DataError
// naming the file, the byte, and what is wrong.
NpyArray read_npy(const std::string& path);

// Element i of an integer array (U8, I32 or I64) as int64.
int64_t npy_int(const NpyArray& a, size_t i);
// Element i of an F32 array.
float npy_float(const NpyArray& a, size_t i);

}  // namespace nas
