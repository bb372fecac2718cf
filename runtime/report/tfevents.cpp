#include "runtime/report/tfevents.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/errors.h"
#include "support/little_endian.h"

namespace nas {

namespace {

constexpr char kFileVersion[] = "brain.Event:2";
constexpr size_t kRecordHeaderBytes = 12;  // uint64 length + its masked CRC
constexpr size_t kRecordFooterBytes = 4;   // masked CRC of the data

// Protobuf wire types (groups, 3 and 4, are not used by these messages).
enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0u);
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// --- encoding ---------------------------------------------------------------------------

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, uint32_t field, Wire wire) {
  put_varint(out, (uint64_t{field} << 3) | wire);
}

void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_key(out, field, kFixed64);
  put_le(out, bits, 8);
}

void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  put_key(out, field, kFixed32);
  put_le(out, bits, 4);
}

void put_bytes(std::string& out, uint32_t field, const std::string& s) {
  put_key(out, field, kBytes);
  put_varint(out, s.size());
  out += s;
}

// Protobuf parsers (TensorBoard's included) reject a string field that is not UTF-8,
// which would make the whole file unreadable to them; better to refuse the tag here.
bool is_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned c = *p++;
    if (c < 0x80) continue;
    int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : -1;
    if (more < 0 || c > 0xf4 || end - p < more) return false;
    uint32_t cp = c & (0x3f >> more);
    for (int i = 0; i < more; ++i, ++p) {
      if ((*p & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (*p & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
    if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return false;
  }
  return true;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// --- decoding ---------------------------------------------------------------------------

// A malformed Event; the record loop adds the file, record and offset to the message.
struct DecodeError {
  std::string what;
};

class ProtoReader {
 public:
  ProtoReader(const unsigned char* p, size_t n) : p_(p), end_(p + n) {}
  bool done() const { return p_ == end_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) throw DecodeError{"truncated varint"};
      unsigned char b = *p_++;
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return v;
    }
    throw DecodeError{"varint longer than 10 bytes"};
  }
  uint64_t fixed(int bytes) {
    if (end_ - p_ < bytes) throw DecodeError{"truncated fixed-size field"};
    uint64_t v = get_le(p_, bytes);
    p_ += bytes;
    return v;
  }
  ProtoReader bytes() {
    uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_))
      throw DecodeError{"a length-delimited field says " + std::to_string(n) + " bytes but only " +
                        std::to_string(end_ - p_) + " remain"};
    ProtoReader sub(p_, static_cast<size_t>(n));
    p_ += n;
    return sub;
  }
  std::string str() {
    ProtoReader r = bytes();
    return std::string(reinterpret_cast<const char*>(r.p_), static_cast<size_t>(r.end_ - r.p_));
  }
  // The next field's number and wire type.
  std::pair<uint32_t, uint32_t> key() {
    uint64_t k = varint();
    if ((k >> 3) == 0 || (k >> 3) > 0x1fffffff)
      throw DecodeError{"invalid field number " + std::to_string(k >> 3)};
    return {static_cast<uint32_t>(k >> 3), static_cast<uint32_t>(k & 7)};
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case kVarint:
        varint();
        break;
      case kFixed64:
        fixed(8);
        break;
      case kBytes:
        bytes();
        break;
      case kFixed32:
        fixed(4);
        break;
      default:
        throw DecodeError{"unsupported wire type " + std::to_string(wire)};
    }
  }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

void expect_wire(const char* message, uint32_t field, uint32_t wire, uint32_t expected) {
  if (wire != expected)
    throw DecodeError{std::string(message) + " field " + std::to_string(field) + " has wire type " +
                      std::to_string(wire) + ", expected " + std::to_string(expected)};
}

struct DecodedValue {
  std::string tag;
  bool has_simple_value = false;
  float simple_value = 0;
};

DecodedValue decode_value(ProtoReader r) {
  DecodedValue v;
  while (!r.done()) {
    auto [field, wire] = r.key();
    if (field == 1) {
      expect_wire("Summary.Value", field, wire, kBytes);
      v.tag = r.str();
    } else if (field == 2) {
      expect_wire("Summary.Value", field, wire, kFixed32);
      uint32_t bits = static_cast<uint32_t>(r.fixed(4));
      std::memcpy(&v.simple_value, &bits, 4);
      v.has_simple_value = true;
    } else {
      r.skip(wire);  // image, histogram, audio, tensor, metadata, ...
    }
  }
  return v;
}

// Appends the scalars of one Event to `out`; a repeated or split summary field merges, as
// protobuf defines it.
void decode_event(ProtoReader r, EventFile& out) {
  double wall_time = 0;
  int64_t step = 0;
  std::vector<DecodedValue> values;
  while (!r.done()) {
    auto [field, wire] = r.key();
    if (field == 1) {
      expect_wire("Event", field, wire, kFixed64);
      uint64_t bits = r.fixed(8);
      std::memcpy(&wall_time, &bits, 8);
    } else if (field == 2) {
      expect_wire("Event", field, wire, kVarint);
      step = static_cast<int64_t>(r.varint());
    } else if (field == 3) {
      expect_wire("Event", field, wire, kBytes);
      out.file_version = r.str();
    } else if (field == 5) {
      expect_wire("Event", field, wire, kBytes);
      ProtoReader summary = r.bytes();
      while (!summary.done()) {
        auto [sf, sw] = summary.key();
        if (sf == 1) {
          expect_wire("Summary", sf, sw, kBytes);
          values.push_back(decode_value(summary.bytes()));
        } else {
          summary.skip(sw);
        }
      }
    } else {
      r.skip(wire);  // graph_def, log_message, session_log, ...
    }
  }
  // wall_time and step may come after the summary in the encoding, so they are applied last.
  for (DecodedValue& v : values)
    if (v.has_simple_value)
      out.scalars.push_back({std::move(v.tag), v.simple_value, step, wall_time});
}

}  // namespace

uint32_t crc32c(const void* data, size_t bytes) {
  const auto& table = crc32c_table();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < bytes; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t mask_crc32c(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

double unix_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// --- writing ------------------------------------------------------------------------------

EventWriter::EventWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UserError(dir, "cannot create the folder: " + ec.message());
  double now = unix_time_now();
  std::string base =
      (std::filesystem::path(dir) /
       ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." + host_name()))
          .string();
  // "x" (O_EXCL): two writers started in the same second must not share one file.
  for (int n = 0; !file_; ++n) {
    path_ = n == 0 ? base : base + "." + std::to_string(n);
    file_ = std::fopen(path_.c_str(), "wbxe");
    int err = errno;
    if (!file_ && (err != EEXIST || n == 999))
      fail(std::string("cannot create: ") + std::strerror(err));
  }
  try {
    std::string event;
    put_double(event, 1, now);
    put_bytes(event, 3, kFileVersion);
    write_record(event);
    flush();
  } catch (...) {
    std::fclose(file_);
    throw;
  }
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::fail(const std::string& what) {
  throw UserError(path_, what);
}

void EventWriter::write_record(const std::string& data) {
  std::string head;
  put_le(head, data.size(), 8);
  put_le(head, mask_crc32c(crc32c(head.data(), 8)), 4);
  std::string foot;
  put_le(foot, mask_crc32c(crc32c(data.data(), data.size())), 4);
  if (std::fwrite(head.data(), 1, head.size(), file_) != head.size() ||
      std::fwrite(data.data(), 1, data.size(), file_) != data.size() ||
      std::fwrite(foot.data(), 1, foot.size(), file_) != foot.size())
    fail(std::string("cannot write: ") + std::strerror(errno));
}

void EventWriter::scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  // Tags are nasc's own metric names: a bad one is a bug, which TensorBoard would meet as
  // an unreadable file.
  NAS_CHECK(!tag.empty(), path_ + ": a scalar needs a non-empty tag");
  NAS_CHECK(is_utf8(tag), path_ + ": scalar tag '" + tag + "' is not valid UTF-8");
  std::string v;
  put_bytes(v, 1, tag);
  put_float(v, 2, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, 1, v);
  std::string event;
  put_double(event, 1, wall_time);
  if (step != 0) {
    put_key(event, 2, kVarint);
    put_varint(event, static_cast<uint64_t>(step));  // negative: 10 bytes, two's complement
  }
  put_bytes(event, 5, summary);
  write_record(event);
}

void EventWriter::flush() {
  if (std::fflush(file_) != 0) fail(std::string("cannot write: ") + std::strerror(errno));
}

// --- reading ------------------------------------------------------------------------------

EventFile read_event_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw DataFileError(path, "is a folder, not an event file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataFileError(path, std::string("cannot open: ") + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw DataFileError(path, "read error");
  const std::string bytes = ss.str();
  const auto* base = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t size = bytes.size();

  EventFile out;
  size_t pos = 0;
  for (size_t index = 0; pos < size; ++index) {
    auto fail = [&](const std::string& what) {
      throw DataFileError(path, "record " + std::to_string(index) + ": " + what,
                          static_cast<long long>(pos));
    };
    auto check_crc = [&](const char* what, const unsigned char* p, size_t n, uint32_t stored) {
      uint32_t computed = mask_crc32c(crc32c(p, n));
      if (computed == stored) return;
      char msg[128];
      std::snprintf(msg, sizeof msg, "CRC mismatch on the %s (stored 0x%08x, computed 0x%08x)",
                    what, static_cast<unsigned>(stored), static_cast<unsigned>(computed));
      fail(std::string(msg) + ": the file is corrupt");
    };
    const size_t left = size - pos;
    if (left < kRecordHeaderBytes)
      fail("truncated: " + std::to_string(left) + " bytes left, fewer than the " +
           std::to_string(kRecordHeaderBytes) + "-byte record header");
    const unsigned char* p = base + pos;
    uint64_t length = get_le(p, 8);
    check_crc("length", p, 8, static_cast<uint32_t>(get_le(p + 8, 4)));
    // Compared without adding to `length`, which is untrusted and could overflow.
    if (length > left - kRecordHeaderBytes ||
        left - kRecordHeaderBytes - length < kRecordFooterBytes)
      fail("truncated: the record has " + std::to_string(length) + " data bytes and a " +
           std::to_string(kRecordFooterBytes) + "-byte CRC, but only " +
           std::to_string(left - kRecordHeaderBytes) + " bytes follow its header");
    const unsigned char* data = p + kRecordHeaderBytes;
    check_crc("data", data, length, static_cast<uint32_t>(get_le(data + length, 4)));
    try {
      decode_event(ProtoReader(data, static_cast<size_t>(length)), out);
    } catch (const DecodeError& e) {
      fail("malformed Event: " + e.what);
    }
    pos += kRecordHeaderBytes + length + kRecordFooterBytes;
  }
  return out;
}

}  // namespace nas
