// Internal to the tensor file readers and writers (tensor_file.cpp, safetensors.cpp,
// tensor_file_nascwts.cpp): the pieces both formats share. Not part of the API; include
// runtime/train/tensor_file.h instead.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "runtime/train/tensor_file.h"

namespace nas::tensor_io {

// zlib's CRC-32 of `bytes` bytes at `data`, continuing `crc` (start from crc_init()).
uint32_t crc_init();
uint32_t crc_update(uint32_t crc, const void* data, size_t bytes);
// CRC-32 of the tensor's little-endian bytes, as stored (on any host).
uint32_t tensor_crc(const std::vector<float>& data);

size_t round_up(size_t v, size_t align);
std::string shape_str(const std::vector<int64_t>& shape);

// The checks of write_tensor_file: an inconsistent file is an InternalError naming
// `path` (the tensors come from a parameter store, which keeps names unique and shapes
// whole). `reserved` is a name the format keeps for itself ("" for none).
void check_for_write(const std::string& path, const TensorFile& f, const std::string& reserved);

// An AtomicFileWriter that calls `halfway` (when given) once the temporary file holds
// exactly half of `total` bytes: the crash tests' kill point (kill_points.h).
class HalfwayWriter {
 public:
  HalfwayWriter(const std::string& path, uint64_t total, std::function<void()> halfway);
  void put(const void* data, size_t bytes);
  // The floats as little-endian words (swapped in chunks on a big-endian host).
  void put_floats(const std::vector<float>& data);
  void commit() { out_.commit(); }

 private:
  AtomicFileWriter out_;
  uint64_t half_, written_ = 0;
  std::function<void()> halfway_;
};

// A file opened for reading at any offset; every failure is a TensorFileError naming it.
class InputFile {
 public:
  explicit InputFile(const std::string& path);  // refuses a folder or an unopenable file
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  void read_at(uint64_t pos, void* dst, size_t bytes);
  [[noreturn]] void fail(const std::string& what, long long byte = -1) const {
    throw TensorFileError(path_, what, byte);
  }

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0;
};

// The readers of the two formats; read_tensor_file picks one by the first bytes.
TensorFile read_safetensors(InputFile& in);
TensorFile read_nascwts(InputFile& in);

// write_tensor_file's format.
void write_safetensors(const std::string& path, const TensorFile& f,
                       const std::function<void()>& halfway);

}  // namespace nas::tensor_io
