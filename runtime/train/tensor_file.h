// The `weights` file: named float32 tensors plus free-form JSON meta, as written by `nasc
// train` (weights, checkpoints) and read back to resume, fine-tune (--init), evaluate or
// export a network.
//
// Files are written in the safetensors layout (safetensors.cpp), so that PyTorch users read
// them with safetensors.torch.load_file; nasc's meta and a CRC-32 per tensor travel in its
// __metadata__. Files of nasc's older format (magic "NASCWTS\0", tensor_file_nascwts.cpp)
// are still read: read_tensor_file tells the two apart by their first bytes. Both byte
// layouts are documented in docs/train.md ("Weights file format"). Reading is strict: a
// weights file is the product of hours of training, and a silently half-read one is worse
// than a clear refusal.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/errors.h"

namespace nas {

// A malformed or unreadable tensor file: a DataFileError naming the file, with the byte
// where it goes wrong when that is known, and what is wrong ("w.bin: truncated: header
// says 3 tensors, data ends after 2"). Its own type so that callers of the reader can
// catch just these.
class TensorFileError : public DataFileError {
 public:
  using DataFileError::DataFileError;
};

struct NamedTensor {
  std::string name;            // unique within a file, non-empty
  std::vector<int64_t> shape;  // every dim >= 1; [] is a scalar (one element)
  std::vector<float> data;     // product(shape) values, row-major
};

struct TensorFile {
  nlohmann::json meta = nlohmann::json::object();  // free-form, must be an object
  std::vector<NamedTensor> tensors;                // in file order

  // The tensor called `name`, or nullptr.
  const NamedTensor* find(const std::string& name) const;
};

// The older NASCWTS format's magic, version and data alignment.
inline constexpr char kTensorFileMagic[8] = {'N', 'A', 'S', 'C', 'W', 'T', 'S', '\0'};
inline constexpr uint32_t kTensorFileVersion = 1;
inline constexpr size_t kTensorFileAlign = 64;

// Writes `f` to `path` atomically (see write_file_atomic) as a safetensors file, tensors in
// the order of f.tensors. An inconsistent `f` (empty or duplicate name, a tensor named
// "__metadata__", a dim < 1, data size != product of the shape, meta not an object) is an
// InternalError naming the path and the tensor; otherwise it throws DataFileError
// naming the path on an I/O error (a full disk, a file size limit, a read-only folder);
// the previous file at `path`, if any, is then intact. `halfway`, when given, is called
// once while the temporary file holds half of the bytes: the crash tests' kill point
// (kill_points.h).
void write_tensor_file(const std::string& path, const TensorFile& f,
                       const std::function<void()>& halfway = {});

// Reads and fully checks a tensor file of either format: header length against the file
// size, JSON validity, every field's presence and type, unique non-empty names, dtype
// F32, shapes against the data offsets, offsets aligned and tiling the data without holes
// or overlap, the CRC-32 of every tensor (when the file has them: a safetensors file
// written by another tool has none), truncation and trailing bytes. Throws
// TensorFileError naming the file and the byte or header field.
TensorFile read_tensor_file(const std::string& path);

// Writes `f` in nasc's older NASCWTS format (for an older nasc, and for the tests of the
// reader of old files); the same checks and atomicity as write_tensor_file.
void write_nascwts_file(const std::string& path, const TensorFile& f);

// Writes a file so that a reader (or a crash) sees either the old content or the new one,
// never a mix: the bytes go to `path` + ".tmp" in the same folder, which is flushed to
// disk and renamed over `path`. A leftover ".tmp" from an interrupted write is harmless
// and is overwritten by the next write. Throws DataFileError (support/errors.h) naming
// the path and saying that the previous file is left as it was.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();  // without commit(): removes the temporary file
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t bytes);
  void commit();  // fsync, rename over the target, fsync the folder
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace nas
