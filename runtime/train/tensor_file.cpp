#include "runtime/train/tensor_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "runtime/train/tensor_file_io.h"
#include "support/errors.h"
#include "support/little_endian.h"

namespace nas {

namespace tensor_io {

uint32_t crc_init() {
  return static_cast<uint32_t>(crc32(0, Z_NULL, 0));
}

// zlib's crc32 takes a 32-bit length; tensors can be larger.
uint32_t crc_update(uint32_t crc, const void* data, size_t bytes) {
  const auto* p = static_cast<const Bytef*>(data);
  while (bytes > 0) {
    uInt n = static_cast<uInt>(std::min<size_t>(bytes, 1u << 30));
    crc = static_cast<uint32_t>(crc32(crc, p, n));
    p += n;
    bytes -= n;
  }
  return crc;
}

namespace {
constexpr size_t kChunkFloats = 1 << 18;  // 1 MiB of staging for big-endian hosts
}

uint32_t tensor_crc(const std::vector<float>& data) {
  uint32_t crc = crc_init();
  if (host_is_little_endian()) return crc_update(crc, data.data(), data.size() * 4);
  std::vector<float> chunk;
  for (size_t i = 0; i < data.size(); i += kChunkFloats) {
    size_t n = std::min(kChunkFloats, data.size() - i);
    chunk.assign(data.begin() + i, data.begin() + i + n);
    swap_words(chunk.data(), n);
    crc = crc_update(crc, chunk.data(), n * 4);
  }
  return crc;
}

size_t round_up(size_t v, size_t align) {
  return (v + align - 1) / align * align;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void check_for_write(const std::string& path, const TensorFile& f, const std::string& reserved) {
  auto bad = [&](const std::string& what) {
    internal_error(__FILE__, __LINE__, path + ": " + what);
  };
  if (!f.meta.is_object())
    bad(std::string("meta must be a JSON object, got ") + f.meta.type_name());
  std::vector<const std::string*> names;
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const NamedTensor& t = f.tensors[i];
    if (t.name.empty()) bad("tensor " + std::to_string(i) + " has an empty name");
    if (!reserved.empty() && t.name == reserved)
      bad("tensor " + std::to_string(i) + " is named '" + reserved +
          "', which the format reserves");
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 1) bad("tensor '" + t.name + "': shape " + shape_str(t.shape) + " has a dim < 1");
      if (static_cast<uint64_t>(d) > (uint64_t{1} << 61) / n)
        bad("tensor '" + t.name + "': shape " + shape_str(t.shape) + " is too large");
      n *= static_cast<uint64_t>(d);
    }
    if (n != t.data.size())
      bad("tensor '" + t.name + "': shape " + shape_str(t.shape) + " has " + std::to_string(n) +
          " elements but data has " + std::to_string(t.data.size()));
    names.push_back(&t.name);
  }
  std::sort(names.begin(), names.end(), [](auto* a, auto* b) { return *a < *b; });
  for (size_t i = 1; i < names.size(); ++i)
    if (*names[i] == *names[i - 1]) bad("two tensors are named '" + *names[i] + "'");
}

HalfwayWriter::HalfwayWriter(const std::string& path, uint64_t total, std::function<void()> halfway)
    : out_(path), half_(total / 2), halfway_(std::move(halfway)) {}

// Every byte goes through here, which splits the write that crosses the middle of the
// file so that `halfway` sees a temporary file exactly half written.
void HalfwayWriter::put(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  if (halfway_ && written_ + bytes >= half_) {
    const size_t first = static_cast<size_t>(half_ - written_);
    out_.write(p, first);
    written_ += first;
    auto call = std::move(halfway_);
    halfway_ = nullptr;  // once
    call();
    p += first;
    bytes -= first;
  }
  out_.write(p, bytes);
  written_ += bytes;
}

void HalfwayWriter::put_floats(const std::vector<float>& d) {
  if (host_is_little_endian()) return put(d.data(), d.size() * 4);
  std::vector<float> chunk;
  for (size_t k = 0; k < d.size(); k += kChunkFloats) {
    size_t n = std::min(kChunkFloats, d.size() - k);
    chunk.assign(d.begin() + k, d.begin() + k + n);
    swap_words(chunk.data(), n);
    put(chunk.data(), n * 4);
  }
}

InputFile::InputFile(const std::string& path) : path_(path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path_, ec)) fail("is a folder, not a weights file");
  in_.open(path_, std::ios::binary);
  if (!in_) fail(std::string("cannot open: ") + std::strerror(errno));
  in_.seekg(0, std::ios::end);
  std::streamoff end = in_.tellg();
  if (end < 0) fail("cannot determine the file size");
  size_ = static_cast<uint64_t>(end);
}

void InputFile::read_at(uint64_t pos, void* dst, size_t bytes) {
  in_.seekg(static_cast<std::streamoff>(pos));
  in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes));
  if (!in_ || static_cast<size_t>(in_.gcount()) != bytes)
    fail("read error at byte " + std::to_string(pos) + " (was the file changed while reading?)");
}

}  // namespace tensor_io

const NamedTensor* TensorFile::find(const std::string& name) const {
  for (const NamedTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

void write_tensor_file(const std::string& path, const TensorFile& f,
                       const std::function<void()>& halfway) {
  tensor_io::write_safetensors(path, f, halfway);
}

TensorFile read_tensor_file(const std::string& path) {
  tensor_io::InputFile in(path);
  if (in.size() == 0)
    in.fail("empty file (not a weights file: neither safetensors nor nasc's older NASCWTS format)");
  // The older format starts with its magic; a safetensors file with a u64 header length,
  // which as "NASCWTS\0" would be about 6e15 bytes, so the two cannot be confused. A short
  // file that starts like the magic is a truncated old file.
  unsigned char first[8] = {};
  const size_t got = static_cast<size_t>(std::min<uint64_t>(in.size(), 8));
  in.read_at(0, first, got);
  if (std::memcmp(first, kTensorFileMagic, got) == 0) return tensor_io::read_nascwts(in);
  return tensor_io::read_safetensors(in);
}

// --- atomic writes ----------------------------------------------------------------------

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp";
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(std::string("cannot create ") + tmp_ + ": " + std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::fail(const std::string& failure) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  committed_ = true;  // nothing left to clean up
  // Say what survives: after a full disk the user's first question is whether the last
  // good checkpoint or weights file is still there.
  const std::string what = failure + "; the previous " +
                           std::filesystem::path(path_).filename().string() +
                           ", if any, is left as it was";
  throw DataFileError(path_, what);
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  NAS_CHECK(fd_ >= 0, path_ + ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::write(fd_, p, std::min<size_t>(bytes, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write " + tmp_ + ": " + std::strerror(n < 0 ? errno : EIO));
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  NAS_CHECK(fd_ >= 0, path_ + ": commit twice");
  // The data must be on disk before the rename is, or a crash could leave the new name
  // pointing at an empty file.
  if (::fsync(fd_) != 0) fail(std::string("cannot flush to disk: ") + std::strerror(errno));
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) fail(std::string("cannot write: ") + std::strerror(errno));
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail("cannot rename " + tmp_ + " to it: " + std::strerror(errno));
  committed_ = true;
  // Make the rename itself durable; failing to is not an error for the caller (the new
  // content is complete under one name or the other).
  std::string dir = std::filesystem::path(path_).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicFileWriter out(path);
  out.write(contents.data(), contents.size());
  out.commit();
}

}  // namespace nas
