// nasc's first weights format ("NASCWTS\0", version 1), which nasc wrote before it
// switched to safetensors: read so that older run folders (weights, checkpoints) still
// load, and written only on request (write_nascwts_file: tests, and files for an older
// nasc). The byte layout is documented in docs/train.md ("The older NASCWTS format").
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "runtime/train/tensor_file_io.h"
#include "support/errors.h"
#include "support/json_file.h"
#include "support/little_endian.h"

namespace nas {
namespace tensor_io {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr size_t kPreambleBytes = 24;  // magic, version, reserved, header_bytes

class Reader {
 public:
  explicit Reader(InputFile& in) : in_(in), size_(in.size()) {}

  TensorFile read();

 private:
  struct Preamble {
    uint32_t version;
    uint64_t header_bytes;
  };
  struct Entry {
    size_t index;
    uint64_t offset, elements, crc;
  };

  [[noreturn]] void fail(const std::string& what, long long byte = -1) const {
    in_.fail(what, byte);
  }
  void read_at(uint64_t pos, void* dst, size_t bytes) { in_.read_at(pos, dst, bytes); }
  uint64_t get_uint(const json& obj, const char* key, const std::string& where,
                    uint64_t max = std::numeric_limits<uint64_t>::max());
  const json& get_field(const json& obj, const char* key, const std::string& where);

  // The steps of read(), in the order of its checks (which decides the message a file
  // with several faults gets).
  Preamble read_preamble();
  json read_header_json(uint64_t header_bytes);
  const json& check_header(const json& h, uint32_t version, TensorFile& f);
  Entry read_entry(const json& e, size_t i, uint64_t max_elements, NamedTensor& t);
  void check_unique_names(const TensorFile& f);
  uint64_t check_no_overlap(const std::vector<Entry>& sorted, const TensorFile& f);
  void check_size_and_padding(const std::vector<Entry>& sorted, size_t tensors, uint64_t data_bytes,
                              uint64_t data_start, uint64_t header_bytes);
  void read_data(const std::vector<Entry>& entries, uint64_t data_start, TensorFile& f);

  InputFile& in_;
  uint64_t size_ = 0;
};

const json& Reader::get_field(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(where + ": missing key \"" + key + "\"");
  return *it;
}

uint64_t Reader::get_uint(const json& obj, const char* key, const std::string& where,
                          uint64_t max) {
  const json& v = get_field(obj, key, where);
  if (!v.is_number_integer())
    fail(where + "." + key + ": expected a non-negative integer, got " + v.type_name());
  if (!v.is_number_unsigned())
    fail(where + "." + key + ": must be >= 0, got " + std::to_string(v.get<int64_t>()));
  uint64_t u = v.get<uint64_t>();
  if (u > max) fail(where + "." + key + ": " + std::to_string(u) + " is out of range");
  return u;
}

TensorFile Reader::read() {
  const Preamble pre = read_preamble();
  const json h = read_header_json(pre.header_bytes);
  TensorFile f;
  const json& list = check_header(h, pre.version, f);

  // Every entry is checked before any data is read, so a bad header never causes a huge
  // allocation or a read past the end.
  const uint64_t data_start = round_up(kPreambleBytes + pre.header_bytes, kTensorFileAlign);
  const uint64_t max_elements = (size_ / 4) + 1;  // anything larger cannot fit the file
  std::vector<Entry> entries;
  f.tensors.resize(list.size());
  for (size_t i = 0; i < list.size(); ++i)
    entries.push_back(read_entry(list[i], i, max_elements, f.tensors[i]));
  check_unique_names(f);

  std::vector<Entry> sorted = entries;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Entry& a, const Entry& b) { return a.offset < b.offset; });
  const uint64_t data_bytes = check_no_overlap(sorted, f);
  check_size_and_padding(sorted, entries.size(), data_bytes, data_start, pre.header_bytes);
  read_data(entries, data_start, f);
  return f;
}

// A short file that starts like the magic is a truncated weights file; one that does not
// is something else entirely, which deserves the clearer message.
Reader::Preamble Reader::read_preamble() {
  unsigned char pre[kPreambleBytes] = {};
  size_t got = static_cast<size_t>(std::min<uint64_t>(size_, kPreambleBytes));
  read_at(0, pre, got);
  if (std::memcmp(pre, kTensorFileMagic, std::min<size_t>(got, 8)) != 0)
    fail("not a nasc weights file (bad magic; expected \"NASCWTS\\0\")", 0);
  if (got < kPreambleBytes)
    fail("truncated: " + std::to_string(size_) + " bytes, shorter than the " +
         std::to_string(kPreambleBytes) + "-byte preamble");
  uint32_t version = static_cast<uint32_t>(get_le(pre + 8, 4));
  if (version != kTensorFileVersion)
    fail("unsupported version " + std::to_string(version) + " (this build reads version " +
         std::to_string(kTensorFileVersion) + ")");
  uint32_t reserved = static_cast<uint32_t>(get_le(pre + 12, 4));
  if (reserved != 0) fail("reserved preamble field is " + std::to_string(reserved) + ", not 0");
  uint64_t header_bytes = get_le(pre + 16, 8);
  if (header_bytes > size_ - kPreambleBytes)
    fail("truncated: the preamble says the JSON header is " + std::to_string(header_bytes) +
         " bytes, but only " + std::to_string(size_ - kPreambleBytes) + " bytes follow it");
  return {version, header_bytes};
}

json Reader::read_header_json(uint64_t header_bytes) {
  std::string text(static_cast<size_t>(header_bytes), '\0');
  read_at(kPreambleBytes, text.data(), text.size());
  try {
    return parse_json(text, "");
  } catch (const JsonSyntaxError& e) {  // placed in the file, after the preamble
    fail("header is not valid JSON (line " + std::to_string(e.line()) + ", column " +
             std::to_string(e.col()) + " of the header): " + e.message(),
         static_cast<long long>(kPreambleBytes + e.byte()));
  }
}

// The header's own keys; fills f.meta and returns the tensor list.
const json& Reader::check_header(const json& h, uint32_t version, TensorFile& f) {
  if (!h.is_object()) fail(std::string("header: expected a JSON object, got ") + h.type_name());
  for (auto it = h.begin(); it != h.end(); ++it)
    if (it.key() != "format" && it.key() != "version" && it.key() != "meta" &&
        it.key() != "tensors")
      fail("header: unknown key \"" + it.key() + "\"");
  const json& format = get_field(h, "format", "header");
  if (!format.is_string() || format.get<std::string>() != "nasc-weights")
    fail("header.format: expected \"nasc-weights\", got " + format.dump());
  uint64_t hv = get_uint(h, "version", "header");
  if (hv != version)
    fail("header.version " + std::to_string(hv) + " does not match the preamble's version " +
         std::to_string(version));
  f.meta = get_field(h, "meta", "header");
  if (!f.meta.is_object())
    fail(std::string("header.meta: expected an object, got ") + f.meta.type_name());
  const json& list = get_field(h, "tensors", "header");
  if (!list.is_array())
    fail(std::string("header.tensors: expected an array, got ") + list.type_name());
  return list;
}

// Entry i of header.tensors; fills t's name and shape.
Reader::Entry Reader::read_entry(const json& e, size_t i, uint64_t max_elements, NamedTensor& t) {
  std::string where = "header.tensors[" + std::to_string(i) + "]";
  if (!e.is_object()) fail(where + ": expected an object, got " + std::string(e.type_name()));
  for (auto it = e.begin(); it != e.end(); ++it) {
    static const char* known[] = {"name", "shape", "dtype", "offset", "elements", "crc32"};
    if (std::none_of(std::begin(known), std::end(known),
                     [&](const char* k) { return it.key() == k; }))
      fail(where + ": unknown key \"" + it.key() + "\"");
  }
  const json& name = get_field(e, "name", where);
  if (!name.is_string()) fail(where + ".name: expected a string, got " + name.type_name());
  t.name = name.get<std::string>();
  if (t.name.empty()) fail(where + ".name: empty");
  // No nasc parameter has this name (theirs contain a '.'), and safetensors, the format
  // the file is written back in, keeps it for its metadata.
  if (t.name == "__metadata__") fail(where + ".name: \"__metadata__\" is reserved");
  where += " ('" + t.name + "')";
  const json& dtype = get_field(e, "dtype", where);
  if (!dtype.is_string() || dtype.get<std::string>() != "float32")
    fail(where + ".dtype: expected \"float32\", got " + dtype.dump());
  const json& shape = get_field(e, "shape", where);
  if (!shape.is_array())
    fail(where + ".shape: expected an array, got " + std::string(shape.type_name()));
  Entry en{i, 0, 0, 0};
  en.elements = get_uint(e, "elements", where, max_elements);
  uint64_t product = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    const json& d = shape[k];
    std::string wk = where + ".shape[" + std::to_string(k) + "]";
    if (!d.is_number_integer()) fail(wk + ": expected an integer, got " + d.type_name());
    if (!d.is_number_unsigned() || d.get<uint64_t>() < 1)
      fail(wk + ": must be >= 1, got " + d.dump());
    uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(wk + ": " + std::to_string(dim) + " is out of range");
    // Saturate: a product beyond max_elements cannot equal `elements` anyway.
    product = dim > max_elements / product ? max_elements + 1 : product * dim;
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  if (product != en.elements)
    fail(where + ": shape " + shape.dump() + " does not have " + std::to_string(en.elements) +
         " elements");
  en.offset = get_uint(e, "offset", where, size_);
  if (en.offset % kTensorFileAlign != 0)
    fail(where + ".offset: " + std::to_string(en.offset) + " is not a multiple of " +
         std::to_string(kTensorFileAlign));
  en.crc = get_uint(e, "crc32", where, 0xffffffffu);
  return en;
}

void Reader::check_unique_names(const TensorFile& f) {
  std::vector<size_t> by_name(f.tensors.size());
  for (size_t i = 0; i < by_name.size(); ++i) by_name[i] = i;
  std::sort(by_name.begin(), by_name.end(),
            [&](size_t a, size_t b) { return f.tensors[a].name < f.tensors[b].name; });
  for (size_t k = 1; k < by_name.size(); ++k)
    if (f.tensors[by_name[k]].name == f.tensors[by_name[k - 1]].name)
      fail("header.tensors: two tensors are named '" + f.tensors[by_name[k]].name + "'");
}

// `sorted` is by offset; returns the end of the data (bytes from the data start).
uint64_t Reader::check_no_overlap(const std::vector<Entry>& sorted, const TensorFile& f) {
  uint64_t data_bytes = 0;
  for (size_t k = 0; k < sorted.size(); ++k) {
    uint64_t end_k = sorted[k].offset + sorted[k].elements * 4;
    if (k + 1 < sorted.size() && end_k > sorted[k + 1].offset)
      fail("header.tensors: '" + f.tensors[sorted[k].index].name + "' (bytes " +
           std::to_string(sorted[k].offset) + ".." + std::to_string(end_k) + ") overlaps '" +
           f.tensors[sorted[k + 1].index].name + "' (from byte " +
           std::to_string(sorted[k + 1].offset) + ")");
    data_bytes = std::max(data_bytes, end_k);
  }
  return data_bytes;
}

// The header must be followed by its zero padding and exactly the data.
void Reader::check_size_and_padding(const std::vector<Entry>& sorted, size_t tensors,
                                    uint64_t data_bytes, uint64_t data_start,
                                    uint64_t header_bytes) {
  if (size_ < data_start || size_ - data_start < data_bytes) {
    uint64_t avail = size_ > data_start ? size_ - data_start : 0;
    size_t complete = 0;
    for (const Entry& e : sorted)
      if (e.offset + e.elements * 4 <= avail) ++complete;
    fail("truncated: header says " + std::to_string(tensors) + " tensors (" +
         std::to_string(data_bytes) + " data bytes), data ends after " + std::to_string(complete) +
         " (file is " + std::to_string(size_) + " bytes, expected " +
         std::to_string(data_start + data_bytes) + ")");
  }
  if (size_ - data_start > data_bytes)
    fail("trailing garbage: " + std::to_string(size_ - data_start - data_bytes) +
         " bytes after the last tensor");
  size_t pad = static_cast<size_t>(data_start - kPreambleBytes - header_bytes);
  if (pad > 0) {
    unsigned char zeros[kTensorFileAlign];
    read_at(kPreambleBytes + header_bytes, zeros, pad);
    if (std::any_of(zeros, zeros + pad, [](unsigned char c) { return c != 0; }))
      fail("the padding after the JSON header is not zero");
  }
}

// Reads each tensor in header order and checks its CRC.
void Reader::read_data(const std::vector<Entry>& entries, uint64_t data_start, TensorFile& f) {
  for (const Entry& e : entries) {
    NamedTensor& t = f.tensors[e.index];
    t.data.resize(static_cast<size_t>(e.elements));
    read_at(data_start + e.offset, t.data.data(), t.data.size() * 4);
    uint32_t crc = crc_update(crc_init(), t.data.data(), t.data.size() * 4);
    if (crc != e.crc) {
      char msg[96];
      std::snprintf(msg, sizeof msg, "CRC mismatch (header 0x%08x, data 0x%08x)",
                    static_cast<unsigned>(e.crc), static_cast<unsigned>(crc));
      fail("tensor '" + t.name + "': " + msg + ": the data is corrupt");
    }
    if (!host_is_little_endian()) swap_words(t.data.data(), t.data.size());
  }
}

}  // namespace

TensorFile read_nascwts(InputFile& in) {
  return Reader(in).read();
}

}  // namespace tensor_io

using namespace tensor_io;

void write_nascwts_file(const std::string& path, const TensorFile& f) {
  check_for_write(path, f, "");
  ordered_json header;
  header["format"] = "nasc-weights";
  header["version"] = kTensorFileVersion;
  header["meta"] = f.meta;
  header["tensors"] = ordered_json::array();
  std::vector<uint64_t> offsets;
  uint64_t cursor = 0;
  for (const NamedTensor& t : f.tensors) {
    uint64_t offset = round_up(cursor, kTensorFileAlign);
    offsets.push_back(offset);
    ordered_json e;
    e["name"] = t.name;
    e["shape"] = t.shape;
    e["dtype"] = "float32";
    e["offset"] = offset;
    e["elements"] = t.data.size();
    e["crc32"] = tensor_crc(t.data);
    header["tensors"].push_back(std::move(e));
    cursor = offset + t.data.size() * 4;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // a name from the network's source
    throw UserError(path, std::string("cannot write the header: a tensor name or meta string "
                                      "is not valid UTF-8 (") +
                              e.what() + ")");
  }

  std::string head(kTensorFileMagic, 8);
  put_le(head, kTensorFileVersion, 4);
  put_le(head, 0, 4);
  put_le(head, text.size(), 8);
  head += text;
  head.resize(round_up(head.size(), kTensorFileAlign), '\0');

  HalfwayWriter out(path, head.size() + cursor, {});
  out.put(head.data(), head.size());
  static const char zeros[kTensorFileAlign] = {};
  uint64_t written = 0;
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    out.put(zeros, static_cast<size_t>(offsets[i] - written));
    const std::vector<float>& d = f.tensors[i].data;
    out.put_floats(d);
    written = offsets[i] + d.size() * 4;
  }
  out.commit();
}

}  // namespace nas
