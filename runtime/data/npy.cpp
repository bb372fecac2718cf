#include "runtime/data/npy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include "support/little_endian.h"

namespace nas {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;
// numpy itself refuses headers over 10,000 bytes unless told otherwise; a data set's
// header is under 200.
constexpr uint64_t kMaxHeader = 1 << 20;

// A reader of the header's Python dict literal: {'key': value, ...}, where a value is a
// quoted string, True/False, or a tuple of integers. Errors name the byte in the file.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text, uint64_t file_offset)
      : path_(path), s_(text), base_(file_offset) {}

  struct Dict {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<std::vector<int64_t>> shape;
  };

  Dict parse() {
    Dict d;
    skip_space();
    expect('{');
    skip_space();
    while (peek() != '}') {
      const size_t key_at = i_;
      std::string key = string_literal();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (d.descr) fail("the key 'descr' is given twice", key_at);
        d.descr = string_literal();
      } else if (key == "fortran_order") {
        if (d.fortran_order) fail("the key 'fortran_order' is given twice", key_at);
        d.fortran_order = boolean();
      } else if (key == "shape") {
        if (d.shape) fail("the key 'shape' is given twice", key_at);
        d.shape = tuple();
      } else {
        fail("unknown key '" + key + "' (a .npy header has descr, fortran_order and shape)",
             key_at);
      }
      skip_space();
      if (peek() == ',') {
        ++i_;
        skip_space();
      } else if (peek() != '}') {
        fail(std::string("expected ',' or '}' in the header dict, got ") + shown(peek()), i_);
      }
    }
    ++i_;
    skip_space();
    if (i_ != s_.size()) fail("unexpected text after the header dict", i_);
    for (const char* key : {"descr", "fortran_order", "shape"})
      if ((key[0] == 'd' && !d.descr) || (key[0] == 'f' && !d.fortran_order) ||
          (key[0] == 's' && !d.shape))
        fail(std::string("the header dict has no '") + key + "'", 0);
    return d;
  }

 private:
  [[noreturn]] void fail(const std::string& what, size_t at) const {
    throw DataError(path_, "header: " + what, static_cast<long long>(base_ + at));
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  static std::string shown(char c) {
    if (c == '\0') return "the end of the header";
    if (std::isprint(static_cast<unsigned char>(c))) return std::string("'") + c + "'";
    return fmt::format("byte 0x{:02x}", static_cast<unsigned char>(c));
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "', got " + shown(peek()), i_);
    ++i_;
  }
  std::string string_literal() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string, got " + shown(peek()), i_);
    const size_t start = ++i_;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\' || s_[i_] == '\n') fail("escapes and line breaks are not expected", i_);
      ++i_;
    }
    if (i_ >= s_.size()) fail("unterminated string", start - 1);
    return s_.substr(start, i_++ - start);
  }
  bool boolean() {
    for (const char* word : {"True", "False"})
      if (s_.compare(i_, std::strlen(word), word) == 0) {
        i_ += std::strlen(word);
        return word[0] == 'T';
      }
    fail("expected True or False, got " + shown(peek()), i_);
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> dims;
    expect('(');
    skip_space();
    while (peek() != ')') {
      const size_t at = i_;
      if (!std::isdigit(static_cast<unsigned char>(peek())))
        fail("expected a non-negative integer in the shape, got " + shown(peek()), at);
      uint64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        v = v * 10 + static_cast<uint64_t>(s_[i_++] - '0');
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / 10))
          fail("a dimension of the shape is out of range", at);
      }
      if (peek() == 'L') ++i_;  // Python 2's long literal, in files numpy wrote long ago
      dims.push_back(static_cast<int64_t>(v));
      skip_space();
      if (peek() == ',') {
        ++i_;
        skip_space();
      } else if (peek() != ')') {
        fail("expected ',' or ')' in the shape, got " + shown(peek()), i_);
      }
    }
    ++i_;
    return dims;
  }

  const std::string& path_;
  const std::string& s_;
  uint64_t base_;
  size_t i_ = 0;
};

NpyType dtype_of(const std::string& path, const std::string& descr, uint64_t at) {
  // '|' means "byte order not applicable" (one-byte types), '<' little-endian; numpy
  // writes '=' only for native order in memory, never in a file, but a hand-written one is
  // little-endian on every machine nasc runs on.
  if (descr == "|u1" || descr == "<u1" || descr == "=u1") return NpyType::U8;
  if (descr == "<i4") return NpyType::I32;
  if (descr == "<i8") return NpyType::I64;
  if (descr == "<f4") return NpyType::F32;
  std::string hint =
      "; nasc reads uint8 ('|u1') or float32 ('<f4') images and int64, int32 "
      "or uint8 labels: convert with .astype(...)";
  if (!descr.empty() && descr[0] == '>')
    hint = "; big-endian data: convert with .astype('<" + descr.substr(1) + "')";
  throw DataError(path, "unsupported dtype '" + descr + "'" + hint, static_cast<long long>(at));
}

}  // namespace

size_t NpyArray::item_size() const {
  switch (type) {
    case NpyType::U8:
      return 1;
    case NpyType::I32:
    case NpyType::F32:
      return 4;
    case NpyType::I64:
      return 8;
  }
  return 1;
}

uint64_t NpyArray::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

NpyArray read_npy(const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) throw DataError(path, "no such file");
  if (!std::filesystem::is_regular_file(st)) throw DataError(path, "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, "cannot open file");
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw DataError(path, "cannot read the file size (" + ec.message() + ")");

  unsigned char pre[12] = {};
  in.read(reinterpret_cast<char*>(pre), static_cast<std::streamsize>(std::min<uint64_t>(size, 12)));
  if (size < kMagicBytes || std::memcmp(pre, kMagic, kMagicBytes) != 0)
    throw DataError(path,
                    "not a .npy file (it does not start with \"\\x93NUMPY\"; save arrays "
                    "with numpy.save)",
                    0);
  if (size < 8) throw DataError(path, "truncated: the file ends inside the preamble", 6);
  const int major = pre[6], minor = pre[7];
  if (minor != 0 || major < 1 || major > 3)
    throw DataError(path,
                    fmt::format("unsupported .npy version {}.{} (nasc reads 1.0, 2.0 and "
                                "3.0)",
                                major, minor),
                    6);
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (size < 8 + len_bytes)
    throw DataError(path, "truncated: the file ends inside the header length", 8);
  const uint64_t header_len = get_le(pre + 8, static_cast<int>(len_bytes));
  const uint64_t header_at = 8 + len_bytes;
  if (header_len > kMaxHeader || header_len > size - header_at)
    throw DataError(path,
                    fmt::format("the header length {} goes beyond the end of the file "
                                "({} bytes)",
                                header_len, size),
                    8);
  std::string header(static_cast<size_t>(header_len), '\0');
  in.seekg(static_cast<std::streamoff>(header_at));
  in.read(header.data(), static_cast<std::streamsize>(header.size()));
  if (header.empty() || header.back() != '\n')
    throw DataError(path, "header: does not end with a line break",
                    static_cast<long long>(header_at + header_len));
  HeaderParser::Dict d = HeaderParser(path, header, header_at).parse();

  NpyArray a;
  a.descr = *d.descr;
  a.type = dtype_of(path, a.descr, header_at);
  if (*d.fortran_order)
    throw DataError(path,
                    "the array is in Fortran order; save it in C order "
                    "(numpy.ascontiguousarray)",
                    static_cast<long long>(header_at));
  a.shape = *d.shape;
  a.data_offset = header_at + header_len;
  // The shape's byte count; a count that overflows cannot fit any file.
  const uint64_t avail = size - a.data_offset;
  uint64_t want = a.item_size();
  bool overflow = false;
  for (int64_t dim : a.shape)
    overflow = overflow || __builtin_mul_overflow(want, static_cast<uint64_t>(dim), &want);
  if (overflow || want > avail)
    throw DataError(
        path,
        fmt::format("truncated: shape ({}) of '{}' needs {} data bytes, the file has {}",
                    fmt::join(a.shape, ", "), a.descr,
                    overflow ? "over 2^64" : std::to_string(want), avail),
        static_cast<long long>(size));
  if (want < avail)
    throw DataError(path,
                    fmt::format("{} unexpected bytes after the data of shape ({})", avail - want,
                                fmt::join(a.shape, ", ")),
                    static_cast<long long>(a.data_offset + want));
  a.bytes.resize(static_cast<size_t>(want));
  in.seekg(static_cast<std::streamoff>(a.data_offset));
  in.read(reinterpret_cast<char*>(a.bytes.data()), static_cast<std::streamsize>(want));
  if (static_cast<uint64_t>(in.gcount()) != want)
    throw DataError(path, "read error (was the file changed while reading?)",
                    static_cast<long long>(a.data_offset + in.gcount()));
  return a;
}

int64_t npy_int(const NpyArray& a, size_t i) {
  const unsigned char* p = a.bytes.data() + i * a.item_size();
  switch (a.type) {
    case NpyType::U8:
      return p[0];
    case NpyType::I32:
      return static_cast<int32_t>(static_cast<uint32_t>(get_le(p, 4)));
    case NpyType::I64:
      return static_cast<int64_t>(get_le(p, 8));
    case NpyType::F32:
      break;
  }
  NAS_CHECK(false, "npy_int on a float32 array");
  return 0;
}

float npy_float(const NpyArray& a, size_t i) {
  NAS_CHECK(a.type == NpyType::F32, "npy_float on an integer array");
  uint32_t w = static_cast<uint32_t>(get_le(a.bytes.data() + i * 4, 4));
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}

}  // namespace nas
