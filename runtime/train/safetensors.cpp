// The safetensors layout (Hugging Face's format, which PyTorch users read with
// safetensors.torch.load_file), as nasc writes and reads it:
//
//   8 bytes    N: the header's length, unsigned 64-bit little-endian
//   N bytes    a JSON object, UTF-8, padded with trailing spaces (nasc pads to a multiple of
//              8, so that the data start 8-byte aligned):
//                {"__metadata__": {"nasc": "<meta as JSON text>",
//                                  "nasc_crc32": "<{name: CRC-32} as JSON text>"},
//                 "conv.weight": {"dtype": "F32", "shape": [8, 1, 3, 3],
//                                 "data_offsets": [0, 288]}, ...}
//   the rest   the data section: each tensor's float32 values, little-endian, row-major, at
//              [begin, end) of this section; the tensors cover it exactly, with no holes
//              (the format forbids them) and no overlap.
//
// Metadata values must be strings in safetensors, so nasc's free-form meta object and the
// per-tensor CRC-32s are stored as JSON text. A file another tool wrote (no "nasc" key)
// is read too, without CRCs to check; what nasc cannot represent (another dtype, a dim of
// 0) is refused with the tensor's name.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

#include "runtime/train/tensor_file_io.h"
#include "support/errors.h"
#include "support/json_file.h"
#include "support/little_endian.h"

namespace nas::tensor_io {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kMetaKey = "nasc";
constexpr const char* kCrcKey = "nasc_crc32";
// safetensors' own reader refuses headers over 100 MB; so does nasc, before allocating.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kHeaderAlign = 8;

class SafetensorsReader {
 public:
  explicit SafetensorsReader(InputFile& in) : in_(in) {}
  TensorFile read();

 private:
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;
  };

  [[noreturn]] void fail(const std::string& what, long long byte = -1) const {
    in_.fail(what, byte);
  }
  json read_header();
  Entry read_entry(const std::string& name, const json& e) const;
  void read_metadata(const json& m, TensorFile& f);
  void check_layout(const std::vector<Entry>& sorted) const;
  void read_data(const std::vector<Entry>& sorted, TensorFile& f);

  InputFile& in_;
  uint64_t data_start_ = 0, data_bytes_ = 0;
  std::optional<json> crcs_;  // name -> CRC-32, from __metadata__.nasc_crc32
};

TensorFile SafetensorsReader::read() {
  const json h = read_header();
  TensorFile f;
  std::vector<Entry> entries;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == kMetadataKey)
      read_metadata(it.value(), f);
    else
      entries.push_back(read_entry(it.key(), it.value()));
  }
  // Every entry is checked before any data is read, so a bad header never causes a huge
  // allocation or a read past the end. File order is data order.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  check_layout(entries);
  read_data(entries, f);
  return f;
}

json SafetensorsReader::read_header() {
  const uint64_t size = in_.size();
  if (size < 8)
    fail("truncated: " + std::to_string(size) +
             " bytes, shorter than the 8-byte header length of a safetensors file",
         0);
  unsigned char n_bytes[8];
  in_.read_at(0, n_bytes, 8);
  const uint64_t n = get_le(n_bytes, 8);
  if (n > size - 8)
    fail(
        "not a weights file, or a truncated one: the first 8 bytes give a safetensors header "
        "of " +
            std::to_string(n) + " bytes, but only " + std::to_string(size - 8) +
            " bytes follow (nor does it start with the older format's \"NASCWTS\")",
        0);
  if (n > kMaxHeaderBytes)
    fail("the safetensors header length " + std::to_string(n) +
             " is over the format's limit of 100,000,000 bytes",
         0);
  if (n < 2)
    fail("the safetensors header length is " + std::to_string(n) + ", too short for a JSON object",
         0);
  std::string text(static_cast<size_t>(n), '\0');
  in_.read_at(8, text.data(), text.size());
  if (text[0] != '{')
    fail(fmt::format("the safetensors header must start with '{{', got byte 0x{:02x}",
                     static_cast<unsigned char>(text[0])),
         8);
  // Trailing spaces are the format's padding; parse_json skips them as whitespace.
  json h;
  try {
    h = parse_json(text, "");
  } catch (const JsonSyntaxError& e) {  // placed in the file, after the 8-byte length
    fail("header is not valid JSON (line " + std::to_string(e.line()) + ", column " +
             std::to_string(e.col()) + " of the header): " + e.message(),
         static_cast<long long>(8 + e.byte()));
  }
  if (!h.is_object()) fail(std::string("header: expected a JSON object, got ") + h.type_name(), 8);
  data_start_ = 8 + n;
  data_bytes_ = size - data_start_;
  return h;
}

SafetensorsReader::Entry SafetensorsReader::read_entry(const std::string& name,
                                                       const json& e) const {
  const std::string where = "header: tensor '" + name + "'";
  if (name.empty()) fail("header: a tensor has an empty name");
  if (!e.is_object()) fail(where + ": expected an object, got " + std::string(e.type_name()));
  for (auto it = e.begin(); it != e.end(); ++it)
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
      fail(where + ": unknown key \"" + it.key() + "\"");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!e.contains(key)) fail(where + ": missing key \"" + key + "\"");
  const json& dtype = e["dtype"];
  if (!dtype.is_string() || dtype.get<std::string>() != "F32")
    fail(where + ".dtype: " + dtype.dump() +
         " is not supported: nasc's weights are float32 (\"F32\"); convert the tensor with "
         ".float() before saving it");
  const json& shape = e["shape"];
  if (!shape.is_array())
    fail(where + ".shape: expected an array, got " + std::string(shape.type_name()));
  Entry en;
  en.name = name;
  // Saturate at a bound no file can reach: the product is only compared with the bytes.
  const uint64_t cap = in_.size() / 4 + 1;
  uint64_t elements = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    const json& d = shape[k];
    const std::string wk = where + ".shape[" + std::to_string(k) + "]";
    if (!d.is_number_integer()) fail(wk + ": expected an integer, got " + d.dump());
    if (!d.is_number_unsigned() || d.get<uint64_t>() < 1)
      fail(wk + ": must be >= 1, got " + d.dump() + " (nasc has no empty tensors)");
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(wk + ": " + std::to_string(dim) + " is out of range");
    elements = dim > cap / elements ? cap + 1 : elements * dim;
    en.shape.push_back(static_cast<int64_t>(dim));
  }
  const json& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned())
    fail(where + ".data_offsets: expected [begin, end], two non-negative integers, got " +
         off.dump());
  en.begin = off[0].get<uint64_t>();
  en.end = off[1].get<uint64_t>();
  if (en.begin > en.end)
    fail(where + ".data_offsets: begin " + std::to_string(en.begin) + " is after end " +
         std::to_string(en.end));
  if (en.begin % 4 != 0)
    fail(where + ".data_offsets: begin " + std::to_string(en.begin) +
         " is not a multiple of 4 (float32 data must be aligned)");
  const uint64_t bytes = en.end - en.begin;
  if (elements > cap || elements * 4 != bytes)
    fail(where + ": shape " + shape.dump() + " does not match data_offsets [" +
         std::to_string(en.begin) + ", " + std::to_string(en.end) + "] (" + std::to_string(bytes) +
         " bytes, " +
         (bytes % 4 ? "not a whole number of floats" : std::to_string(bytes / 4) + " floats") +
         ")");
  return en;
}

void SafetensorsReader::read_metadata(const json& m, TensorFile& f) {
  const std::string where = std::string("header.") + kMetadataKey;
  if (!m.is_object()) fail(where + ": expected an object, got " + std::string(m.type_name()));
  for (auto it = m.begin(); it != m.end(); ++it)
    if (!it->is_string())
      fail(where + "." + it.key() + ": safetensors metadata values are strings, got " +
           it->type_name());
  auto meta = m.find(kMetaKey);
  auto crcs = m.find(kCrcKey);
  if (meta == m.end() && crcs == m.end()) return;  // written by another tool
  if (meta == m.end() || crcs == m.end())
    fail(where + ": has \"" + (meta == m.end() ? kCrcKey : kMetaKey) + "\" but not \"" +
         (meta == m.end() ? kMetaKey : kCrcKey) + "\" (nasc writes both)");
  auto parse_inner = [&](const json& text, const char* key) {
    try {
      return parse_json(text.get<std::string>(), "");
    } catch (const JsonSyntaxError& e) {
      fail(where + "." + key + ": not valid JSON text (" + std::to_string(e.line()) + ":" +
           std::to_string(e.col()) + "): " + e.message());
    }
  };
  f.meta = parse_inner(*meta, kMetaKey);
  if (!f.meta.is_object())
    fail(where + "." + kMetaKey + ": expected a JSON object, got " + f.meta.type_name());
  json c = parse_inner(*crcs, kCrcKey);
  if (!c.is_object())
    fail(where + "." + kCrcKey + ": expected a JSON object, got " + std::string(c.type_name()));
  for (auto it = c.begin(); it != c.end(); ++it)
    if (!it->is_number_unsigned() || it->get<uint64_t>() > 0xffffffffu)
      fail(where + "." + kCrcKey + ": the CRC of '" + it.key() +
           "' must be an integer in 0..4294967295, got " + it->dump());
  crcs_ = std::move(c);
}

// `sorted` is by begin: the tensors must tile the data section exactly.
void SafetensorsReader::check_layout(const std::vector<Entry>& sorted) const {
  uint64_t at = 0;
  for (const Entry& e : sorted) {
    if (e.begin < at)
      fail("header: tensor '" + e.name + "' (data bytes " + std::to_string(e.begin) + ".." +
           std::to_string(e.end) + ") overlaps the tensor before it, which ends at " +
           std::to_string(at));
    if (e.begin > at)
      fail("header: data bytes " + std::to_string(at) + ".." + std::to_string(e.begin) +
           " belong to no tensor (safetensors allows no holes; the next is '" + e.name + "')");
    at = e.end;
  }
  if (at > data_bytes_) {
    size_t complete = 0;
    for (const Entry& e : sorted)
      if (e.end <= data_bytes_) ++complete;
    fail("truncated: header says " + std::to_string(sorted.size()) + " tensors (" +
         std::to_string(at) + " data bytes), data ends after " + std::to_string(complete) +
         " (file is " + std::to_string(in_.size()) + " bytes, expected " +
         std::to_string(data_start_ + at) + ")");
  }
  if (at < data_bytes_)
    fail("trailing garbage: " + std::to_string(data_bytes_ - at) + " bytes after the last tensor",
         static_cast<long long>(data_start_ + at));
  if (crcs_) {
    for (const Entry& e : sorted)
      if (!crcs_->contains(e.name))
        fail(std::string("header.__metadata__.") + kCrcKey + ": no CRC for tensor '" + e.name +
             "'");
    if (crcs_->size() != sorted.size())
      for (auto it = crcs_->begin(); it != crcs_->end(); ++it)
        if (std::none_of(sorted.begin(), sorted.end(),
                         [&](const Entry& e) { return e.name == it.key(); }))
          fail(std::string("header.__metadata__.") + kCrcKey + ": a CRC for '" + it.key() +
               "', which is no tensor of the file");
  }
}

void SafetensorsReader::read_data(const std::vector<Entry>& sorted, TensorFile& f) {
  for (const Entry& e : sorted) {
    NamedTensor t{e.name, e.shape, {}};
    t.data.resize(static_cast<size_t>((e.end - e.begin) / 4));
    in_.read_at(data_start_ + e.begin, t.data.data(), t.data.size() * 4);
    if (crcs_) {
      const uint32_t want = (*crcs_)[e.name].get<uint32_t>();
      const uint32_t crc = crc_update(crc_init(), t.data.data(), t.data.size() * 4);
      if (crc != want) {
        char msg[96];
        std::snprintf(msg, sizeof msg, "CRC mismatch (header 0x%08x, data 0x%08x)",
                      static_cast<unsigned>(want), static_cast<unsigned>(crc));
        fail("tensor '" + t.name + "': " + msg + ": the data is corrupt",
             static_cast<long long>(data_start_ + e.begin));
      }
    }
    if (!host_is_little_endian()) swap_words(t.data.data(), t.data.size());
    f.tensors.push_back(std::move(t));
  }
}

}  // namespace

TensorFile read_safetensors(InputFile& in) {
  return SafetensorsReader(in).read();
}

void write_safetensors(const std::string& path, const TensorFile& f,
                       const std::function<void()>& halfway) {
  check_for_write(path, f, kMetadataKey);
  ordered_json crcs = ordered_json::object();
  for (const NamedTensor& t : f.tensors) crcs[t.name] = tensor_crc(t.data);
  ordered_json header = ordered_json::object();
  uint64_t cursor = 0;
  std::string text;
  try {
    header[kMetadataKey] = {{kMetaKey, f.meta.dump()}, {kCrcKey, crcs.dump()}};
    for (const NamedTensor& t : f.tensors) {
      const uint64_t end = cursor + t.data.size() * 4;
      header[t.name] = {{"dtype", "F32"},
                        {"shape", t.shape},
                        {"data_offsets", ordered_json::array({cursor, end})}};
      cursor = end;
    }
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // a name from the network's source
    throw UserError(path, std::string("cannot write the header: a tensor name or meta string "
                                      "is not valid UTF-8 (") +
                              e.what() + ")");
  }
  text.resize(round_up(text.size(), kHeaderAlign), ' ');
  std::string head;
  put_le(head, text.size(), 8);
  head += text;
  HalfwayWriter out(path, head.size() + cursor, halfway);
  out.put(head.data(), head.size());
  for (const NamedTensor& t : f.tensors) out.put_floats(t.data);
  out.commit();
}

}  // namespace nas::tensor_io
