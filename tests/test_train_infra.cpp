// The pieces `nasc train` is built from: the weights file format (round trip, the byte
// layout of docs/train.md read back by hand, and every malformed case), the strict train
// config, the run folder, the progress display with a fake clock, and checkpoints
// (round trip, corruption, interrupted saves).
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "runtime/exec/param_store.h"
#include "runtime/optim/optim_config.h"
#include "runtime/optim/optimizer.h"
#include "runtime/train/checkpoint.h"
#include "runtime/train/progress.h"
#include "runtime/train/run_dir.h"
#include "runtime/train/tensor_file.h"
#include "runtime/train/train_config.h"
#include "support/json_file.h"
#include "tests/file_test_util.h"
#include "tests/safetensors_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using Catch::Matchers::StartsWith;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using test::read_bytes;
using test::TempDir;
using test::write_bytes;

uint64_t le(const std::string& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

void put_le(std::string& b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

NamedTensor tensor(const std::string& name, std::vector<int64_t> shape, float start) {
  NamedTensor t{name, std::move(shape), {}};
  size_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<size_t>(d);
  for (size_t i = 0; i < n; ++i) t.data.push_back(start + 0.25f * static_cast<float>(i));
  return t;
}

// Three tensors: 6 floats, a scalar, and 20 floats (so that the second and third need
// alignment padding).
TensorFile sample_file() {
  TensorFile f;
  f.meta = {{"network", "tiny"}, {"epoch", 3}};
  f.tensors.push_back(tensor("conv1.weight", {2, 3}, -1.0f));
  f.tensors.push_back(tensor("bn.num_batches", {}, 7.0f));
  f.tensors.push_back(tensor("fc.weight", {4, 5}, 0.5f));
  return f;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// The message of the exception of type E that f() throws (another type propagates and
// fails the test).
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("no exception was thrown");
  return "";
}

#define REQUIRE_ERROR(expr, type, matcher) \
  REQUIRE_THAT(message_of<type>([&] { (void)(expr); }), matcher)

// The parts of a written file: its JSON header and its data section.
struct Parts {
  json header;
  std::string data;
};

Parts split_file(const std::string& bytes) {
  uint64_t hb = le(bytes, 16, 8);
  size_t start = (24 + hb + 63) / 64 * 64;
  return {json::parse(bytes.substr(24, hb)), bytes.substr(start)};
}

// Reassembles a file from a (possibly tampered) header and data section, with correct
// preamble and padding, so that each test breaks exactly one thing.
std::string assemble(const json& header, const std::string& data,
                     const std::string& raw_header = "") {
  std::string text = raw_header.empty() ? header.dump() : raw_header;
  std::string b = std::string("NASCWTS\0", 8) + std::string(16, '\0');
  put_le(b, 8, 1, 4);
  put_le(b, 16, text.size(), 8);
  b += text;
  b.resize((b.size() + 63) / 64 * 64, '\0');
  return b + data;
}

#define REQUIRE_FILE_ERROR(expr, path, text) \
  REQUIRE_ERROR(expr, TensorFileError, StartsWith((path) + ": ") && Contains(text))

}  // namespace

// ---------------------------------------------------------------------------------------
// Weights file format

TEST_CASE("tensor file: round trip keeps names, shapes, meta and exact bits", "[train]") {
  TempDir tmp;
  TensorFile f = sample_file();
  f.tensors[0].data[1] = std::numeric_limits<float>::quiet_NaN();
  f.tensors[0].data[2] = -std::numeric_limits<float>::infinity();
  f.tensors[0].data[3] = -0.0f;
  f.tensors[0].data[4] = std::numeric_limits<float>::denorm_min();
  write_tensor_file(tmp / "w.bin", f);
  TensorFile g = read_tensor_file(tmp / "w.bin");
  REQUIRE(g.meta == f.meta);
  REQUIRE(g.tensors.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(g.tensors[i].name == f.tensors[i].name);
    CHECK(g.tensors[i].shape == f.tensors[i].shape);
    CHECK(same_bits(g.tensors[i].data, f.tensors[i].data));
  }
  REQUIRE(g.find("fc.weight") == &g.tensors[2]);
  REQUIRE(g.find("nope") == nullptr);
  REQUIRE_FALSE(fs::exists(tmp / "w.bin.tmp"));

  // Overwriting replaces the file; an empty file (no tensors) is valid too.
  write_tensor_file(tmp / "w.bin", TensorFile{});
  TensorFile e = read_tensor_file(tmp / "w.bin");
  CHECK(e.tensors.empty());
  CHECK(e.meta == json::object());
  CHECK(fs::file_size(tmp / "w.bin") % 8 == 0);  // the header is padded to 8 bytes

  // A file of the older format reads back the same.
  write_nascwts_file(tmp / "old.bin", f);
  TensorFile o = read_tensor_file(tmp / "old.bin");
  CHECK(o.meta == f.meta);
  REQUIRE(o.tensors.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(o.tensors[i].name == f.tensors[i].name);
    CHECK(o.tensors[i].shape == f.tensors[i].shape);
    CHECK(same_bits(o.tensors[i].data, f.tensors[i].data));
  }
}

TEST_CASE("tensor file: the older NASCWTS byte layout is the documented one", "[train]") {
  TempDir tmp;
  TensorFile f = sample_file();
  write_nascwts_file(tmp / "w.bin", f);
  std::string b = read_bytes(tmp / "w.bin");
  REQUIRE(b.substr(0, 8) == std::string("NASCWTS\0", 8));
  CHECK(le(b, 8, 4) == 1);   // version
  CHECK(le(b, 12, 4) == 0);  // reserved
  uint64_t hb = le(b, 16, 8);
  json h = json::parse(b.substr(24, hb));
  CHECK(h["format"] == "nasc-weights");
  CHECK(h["version"] == 1);
  CHECK(h["meta"] == f.meta);
  size_t start = (24 + hb + 63) / 64 * 64;
  CHECK(std::all_of(b.begin() + 24 + hb, b.begin() + start, [](char c) { return c == 0; }));
  REQUIRE(h["tensors"].size() == 3);
  uint64_t end = 0;
  for (size_t i = 0; i < 3; ++i) {
    const json& e = h["tensors"][i];
    CHECK(e["name"] == f.tensors[i].name);
    CHECK(e["shape"] == f.tensors[i].shape);
    CHECK(e["dtype"] == "float32");
    CHECK(e["elements"] == f.tensors[i].data.size());
    uint64_t off = e["offset"];
    CHECK(off % 64 == 0);
    // Little-endian float32 at data start + offset, and the CRC-32 of those bytes.
    std::string bytes = b.substr(start + off, f.tensors[i].data.size() * 4);
    for (size_t k = 0; k < f.tensors[i].data.size(); ++k) {
      uint32_t w = static_cast<uint32_t>(le(bytes, 4 * k, 4));
      float v;
      std::memcpy(&v, &w, 4);
      CHECK(v == f.tensors[i].data[k]);
    }
    CHECK(e["crc32"] ==
          crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
    end = std::max<uint64_t>(end, off + bytes.size());
  }
  CHECK(h["tensors"][1]["offset"] == 64);  // 24 data bytes, then the next 64-byte boundary
  CHECK(b.size() == start + end);          // nothing after the last tensor
}

TEST_CASE("tensor file: writing checks the tensors and keeps the old file on failure", "[train]") {
  TempDir tmp;
  const std::string p = tmp / "w.bin";
  write_tensor_file(p, sample_file());
  const std::string before = read_bytes(p);
  // The tensors come from a parameter store: inconsistent ones are a bug.
  auto rejects = [&](TensorFile f, const std::string& text) {
    REQUIRE_ERROR(write_tensor_file(p, f), InternalError, Contains(p + ": ") && Contains(text));
    REQUIRE(read_bytes(p) == before);
    REQUIRE_FALSE(fs::exists(p + ".tmp"));
  };
  TensorFile f = sample_file();
  f.tensors[1].name = "";
  rejects(f, "empty name");
  f = sample_file();
  f.tensors[2].name = "conv1.weight";
  rejects(f, "two tensors are named 'conv1.weight'");
  f = sample_file();
  f.tensors[0].data.pop_back();
  rejects(f, "has 6 elements but data has 5");
  f = sample_file();
  f.tensors[0].shape = {0, 3};
  rejects(f, "dim < 1");
  f = sample_file();
  f.meta = json::array();
  rejects(f, "meta must be a JSON object");
  f = sample_file();
  f.tensors[1].name = "__metadata__";
  rejects(f, "named '__metadata__', which the format reserves");
  // A name from the network's source that is not UTF-8 is the user's.
  f = sample_file();
  f.tensors[0].name = "bad\xff";
  REQUIRE_ERROR(write_tensor_file(p, f), UserError,
                StartsWith(p + ": cannot write the header: a tensor name or meta string is not "
                               "valid UTF-8"));
  REQUIRE(read_bytes(p) == before);

  REQUIRE_ERROR(write_tensor_file(tmp / "no/such/dir/w.bin", sample_file()), std::runtime_error,
                Contains("no/such/dir/w.bin"));
}

TEST_CASE("tensor file: an interrupted write leaves the previous file intact", "[train]") {
  TempDir tmp;
  const std::string p = tmp / "w.bin";
  write_tensor_file(p, sample_file());
  const std::string before = read_bytes(p);
  {
    AtomicFileWriter w(p);
    w.write("partial", 7);
    REQUIRE(fs::exists(p + ".tmp"));
  }  // destroyed without commit(), as by an exception
  CHECK(read_bytes(p) == before);
  CHECK_FALSE(fs::exists(p + ".tmp"));
  // A leftover temporary file (a crash) is ignored by readers and replaced by the next write.
  write_bytes(p + ".tmp", "garbage");
  CHECK(read_tensor_file(p).tensors.size() == 3);
  write_file_atomic(p, "new");
  CHECK(read_bytes(p) == "new");
  CHECK_FALSE(fs::exists(p + ".tmp"));
}

// --- the safetensors layout (what nasc writes) --------------------------------------------

namespace {

// The parts of a safetensors file: its JSON header (key order kept) and its data section.
struct StParts {
  nlohmann::ordered_json header;
  std::string data;
};

StParts split_safetensors(const std::string& bytes) {
  uint64_t n = le(bytes, 0, 8);
  return {nlohmann::ordered_json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}

// A safetensors file from header text (padded with spaces to 8 bytes) and data.
std::string assemble_safetensors(const std::string& text, const std::string& data) {
  std::string t = text;
  t.resize((t.size() + 7) / 8 * 8, ' ');
  std::string b(8, '\0');
  put_le(b, 0, t.size(), 8);
  return b + t + data;
}

}  // namespace

TEST_CASE("tensor file: the safetensors byte layout is the documented one", "[train]") {
  TempDir tmp;
  TensorFile f = sample_file();
  write_tensor_file(tmp / "w.safetensors", f);
  std::string b = read_bytes(tmp / "w.safetensors");
  const uint64_t n = le(b, 0, 8);
  CHECK(n % 8 == 0);  // padded, so that the data start 8-byte aligned
  const std::string text = b.substr(8, n);
  REQUIRE(text[0] == '{');
  const size_t close = text.find_last_of('}');
  CHECK(text.find_first_not_of(' ', close + 1) == std::string::npos);  // padding: spaces
  json h = json::parse(text);
  REQUIRE(h.contains("__metadata__"));
  const json& m = h["__metadata__"];
  CHECK(json::parse(m["nasc"].get<std::string>()) == f.meta);
  const json crcs = json::parse(m["nasc_crc32"].get<std::string>());
  CHECK(h.size() == 4);  // three tensors and the metadata
  uint64_t at = 0;
  for (const NamedTensor& t : f.tensors) {
    const json& e = h[t.name];
    CHECK(e["dtype"] == "F32");
    CHECK(e["shape"] == t.shape);
    // Contiguous, in the order of f.tensors, from the start of the data section.
    CHECK(e["data_offsets"] == json::array({at, at + t.data.size() * 4}));
    std::string bytes = b.substr(8 + n + at, t.data.size() * 4);
    for (size_t k = 0; k < t.data.size(); ++k) {
      uint32_t w = static_cast<uint32_t>(le(bytes, 4 * k, 4));
      float v;
      std::memcpy(&v, &w, 4);
      CHECK(v == t.data[k]);
    }
    CHECK(crcs[t.name] ==
          crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
    at += bytes.size();
  }
  CHECK(b.size() == 8 + n + at);  // nothing after the last tensor
}

TEST_CASE("tensor file: a safetensors file another tool wrote reads without CRCs", "[train]") {
  TempDir tmp;
  const std::string p = tmp / "torch.safetensors";
  // As safetensors.torch.save_file writes it: its own metadata, keys in any order.
  std::string data(16, '\0');
  float one = 1.0f, two = -2.5f;
  std::memcpy(&data[0], &one, 4);
  std::memcpy(&data[12], &two, 4);
  write_bytes(p, assemble_safetensors(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},)"
                                      R"("__metadata__":{"format":"pt"},)"
                                      R"("a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})",
                                      data));
  TensorFile f = read_tensor_file(p);
  CHECK(f.meta == json::object());
  REQUIRE(f.tensors.size() == 2);
  CHECK(f.tensors[0].name == "a");  // data order
  CHECK(f.tensors[0].data == std::vector<float>{1.0f, 0.0f, 0.0f});
  CHECK(f.tensors[1].name == "b");
  CHECK(f.tensors[1].data == std::vector<float>{-2.5f});
  // No metadata at all, and no tensors at all, are fine too.
  write_bytes(p, assemble_safetensors(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
                                      data.substr(0, 4)));
  CHECK(read_tensor_file(p).tensors[0].shape.empty());
  write_bytes(p, assemble_safetensors("{}", ""));
  CHECK(read_tensor_file(p).tensors.empty());
}

TEST_CASE("tensor file: malformed safetensors files are reported with the field", "[train]") {
  TempDir tmp;
  const std::string good = tmp / "good.safetensors";
  write_tensor_file(good, sample_file());
  const std::string b = read_bytes(good);
  const StParts parts = split_safetensors(b);
  const std::string p = tmp / "w.safetensors";
  auto expect_bytes = [&](const std::string& bytes, const std::string& text) {
    write_bytes(p, bytes);
    REQUIRE_FILE_ERROR(read_tensor_file(p), p, text);
  };
  // The good file with `edit` applied to its header (and `data` as its data section).
  auto expect = [&](const std::function<void(nlohmann::ordered_json&)>& edit,
                    const std::string& text, const std::string& data = "\x01") {
    nlohmann::ordered_json h = parts.header;
    edit(h);
    expect_bytes(assemble_safetensors(h.dump(), data == "\x01" ? parts.data : data), text);
  };
  write_bytes(p, assemble_safetensors(parts.header.dump(), parts.data));
  REQUIRE(read_tensor_file(p).tensors.size() == 3);  // reassembling the parts is valid

  // The length and the header's JSON.
  expect_bytes(b.substr(0, 5), "byte 0: truncated: 5 bytes, shorter than the 8-byte header length");
  std::string c = b;
  put_le(c, 0, b.size(), 8);
  expect_bytes(c,
               "byte 0: not a weights file, or a truncated one: the first 8 bytes give a "
               "safetensors header of " +
                   std::to_string(b.size()) + " bytes");
  expect_bytes(b.substr(0, 8 + le(b, 0, 8) / 2), "not a weights file, or a truncated one");
  c = std::string(8, '\0');
  expect_bytes(c, "header length is 0, too short");
  expect_bytes(assemble_safetensors("[1, 2]", ""),
               "byte 8: the safetensors header must start with '{'");
  expect_bytes(assemble_safetensors("{\"a\": ", ""), "header is not valid JSON");
  expect_bytes(assemble_safetensors(R"({"a": {}, "a": {}})", ""), "duplicate key");
  {
    // Over the format's 100 MB limit (a sparse file: nothing is written).
    std::string big(8, '\0');
    put_le(big, 0, 100'000'001, 8);
    write_bytes(p, big);
    fs::resize_file(p, 100'000'100);
    REQUIRE_FILE_ERROR(read_tensor_file(p), p, "over the format's limit of 100,000,000 bytes");
  }

  // The entries.
  expect([](auto& h) { h["conv1.weight"] = 5; }, "tensor 'conv1.weight': expected an object");
  expect([](auto& h) { h["conv1.weight"]["dtype"] = "F16"; },
         "tensor 'conv1.weight'.dtype: \"F16\" is not supported: nasc's weights are float32");
  expect([](auto& h) { h["conv1.weight"]["dtype"] = "BF16"; }, "\"BF16\" is not supported");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    expect([&](auto& h) { h["fc.weight"].erase(key); },
           std::string("tensor 'fc.weight': missing key \"") + key + "\"");
  expect([](auto& h) { h["fc.weight"]["unit"] = "m"; }, "tensor 'fc.weight': unknown key \"unit\"");
  expect([](auto& h) { h["conv1.weight"]["shape"] = "2x3"; }, "shape: expected an array");
  expect(
      [](auto& h) {
        h["conv1.weight"]["shape"] = {3, 2, 0};
      },
      "'conv1.weight'.shape[2]: must be >= 1, got 0 (nasc has no empty tensors)");
  expect([](auto& h) { h["conv1.weight"]["shape"] = {-2, -3}; }, "shape[0]: must be >= 1, got -2");
  expect([](auto& h) { h["conv1.weight"]["shape"] = {2, 2.5}; }, "shape[1]: expected an integer");
  expect([](auto& h) { h["conv1.weight"]["shape"] = {7}; },
         "tensor 'conv1.weight': shape [7] does not match data_offsets [0, 24] (24 bytes, 6 "
         "floats)");
  expect(
      [](auto& h) {
        h["conv1.weight"]["shape"] = {1u << 31, 1u << 31, 1u << 31};
      },
      "does not match data_offsets");
  expect([](auto& h) { h["conv1.weight"]["data_offsets"] = {0}; },
         "data_offsets: expected [begin, end], two non-negative integers, got [0]");
  expect([](auto& h) { h["conv1.weight"]["data_offsets"] = {-4, 20}; }, "expected [begin, end]");
  expect([](auto& h) { h["conv1.weight"]["data_offsets"] = {24, 0}; }, "begin 24 is after end 0");
  expect(
      [](auto& h) {
        h["conv1.weight"]["data_offsets"] = {2, 26};
      },
      "begin 2 is not a multiple of 4 (float32 data must be aligned)");
  expect(
      [](auto& h) {
        h["conv1.weight"]["data_offsets"] = {0, 22};
      },
      "(22 bytes, not a whole number of floats)");

  // The layout of the data section: no overlap, no holes, nothing beyond it or after it.
  expect(
      [](auto& h) {
        h["bn.num_batches"]["data_offsets"] = {20, 24};
      },
      "tensor 'bn.num_batches' (data bytes 20..24) overlaps the tensor before it, which ends "
      "at 24");
  expect(
      [](auto& h) {
        h["bn.num_batches"]["data_offsets"] = {28, 32};
        h["fc.weight"]["data_offsets"] = {32, 112};
      },
      "data bytes 24..28 belong to no tensor (safetensors allows no holes; the next is "
      "'bn.num_batches')",
      parts.data + "abcd");
  expect([](auto&) {}, "truncated: header says 3 tensors (108 data bytes), data ends after 2",
         parts.data.substr(0, 100));
  expect([](auto&) {}, "trailing garbage: 3 bytes after the last tensor", parts.data + "xyz");
  expect([](auto& h) { h.erase("fc.weight"); }, "trailing garbage: 80 bytes");
  expect(
      [](auto& h) {
        h[""] = h["fc.weight"];
        h.erase("fc.weight");
      },
      "header: a tensor has an empty name");

  // The metadata: nasc's meta and CRCs.
  expect([](auto& h) { h["__metadata__"] = json::array(); },
         "header.__metadata__: expected an object");
  expect([](auto& h) { h["__metadata__"]["epoch"] = 3; },
         "header.__metadata__.epoch: safetensors metadata values are strings, got number");
  expect([](auto& h) { h["__metadata__"].erase("nasc_crc32"); },
         "has \"nasc\" but not \"nasc_crc32\" (nasc writes both)");
  expect([](auto& h) { h["__metadata__"].erase("nasc"); }, "has \"nasc_crc32\" but not \"nasc\"");
  expect([](auto& h) { h["__metadata__"]["nasc"] = "{\"network\": "; },
         "header.__metadata__.nasc: not valid JSON text");
  expect([](auto& h) { h["__metadata__"]["nasc"] = "[1]"; },
         "header.__metadata__.nasc: expected a JSON object, got array");
  expect([](auto& h) { h["__metadata__"]["nasc_crc32"] = "{\"conv1.weight\": -1}"; },
         "the CRC of 'conv1.weight' must be an integer in 0..4294967295, got -1");
  auto edit_crcs = [&](const std::function<void(json&)>& edit) {
    return [edit](nlohmann::ordered_json& h) {
      json crcs = json::parse(h["__metadata__"]["nasc_crc32"].get<std::string>());
      edit(crcs);
      h["__metadata__"]["nasc_crc32"] = crcs.dump();
    };
  };
  expect(edit_crcs([](json& c) { c.erase("fc.weight"); }), "no CRC for tensor 'fc.weight'");
  expect(edit_crcs([](json& c) { c["gone"] = 1; }), "a CRC for 'gone', which is no tensor");
  expect(edit_crcs([](json& c) { c["bn.num_batches"] = 12345; }),
         "tensor 'bn.num_batches': CRC mismatch (header 0x00003039");
  c = b;
  c[c.size() - 5] ^= 0x10;  // inside fc.weight
  expect_bytes(c, "tensor 'fc.weight': CRC mismatch");
}

TEST_CASE("tensor file: an independent reader of the safetensors spec reads what nasc writes",
          "[train]") {
  TempDir tmp;
  TensorFile f = sample_file();
  f.tensors[0].data[1] = std::numeric_limits<float>::quiet_NaN();
  f.tensors[0].data[3] = -0.0f;
  write_tensor_file(tmp / "w.safetensors", f);
  CHECK(test::python_sees(tmp / "w.safetensors", f) == "");
  // An empty file of tensors too.
  write_tensor_file(tmp / "e.safetensors", TensorFile{});
  CHECK(test::python_sees(tmp / "e.safetensors", TensorFile{}) == "");
  // The reader is strict itself: it refuses what breaks the format (so this test can fail).
  write_bytes(tmp / "bad.safetensors", read_bytes(tmp / "w.safetensors") + "xyz");
  test::PythonRead bad = test::read_with_python(tmp / "bad.safetensors");
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Contains("3 bytes after the last tensor"));
  // A file in the older format is no safetensors file.
  write_nascwts_file(tmp / "old.bin", f);
  CHECK(test::read_with_python(tmp / "old.bin").status == 1);
}

// --- the older NASCWTS format (still read) ---------------------------------------------

TEST_CASE("tensor file: truncation anywhere in an older NASCWTS file is reported", "[train]") {
  TempDir tmp;
  const std::string good = tmp / "good.bin";
  write_nascwts_file(good, sample_file());
  const std::string b = read_bytes(good);
  const size_t hb = le(b, 16, 8), start = (24 + hb + 63) / 64 * 64;
  const std::string p = tmp / "w.bin";
  auto cut = [&](size_t n) {
    write_bytes(p, b.substr(0, n));
    return p;
  };
  REQUIRE_FILE_ERROR(read_tensor_file(cut(0)), p, "empty file");
  REQUIRE_FILE_ERROR(read_tensor_file(cut(5)), p, "truncated: 5 bytes, shorter than the 24-byte");
  REQUIRE_FILE_ERROR(read_tensor_file(cut(8)), p, "truncated: 8 bytes, shorter than the 24-byte");
  REQUIRE_FILE_ERROR(read_tensor_file(cut(23)), p, "truncated");
  REQUIRE_FILE_ERROR(read_tensor_file(cut(24 + hb / 2)), p,
                     "truncated: the preamble says the JSON header is " + std::to_string(hb));
  REQUIRE_FILE_ERROR(read_tensor_file(cut(24 + hb + 1)), p,
                     "header says 3 tensors (" + std::to_string(b.size() - start) +
                         " data bytes), data ends after 0");
  REQUIRE_FILE_ERROR(read_tensor_file(cut(start + 10)), p, "data ends after 0");
  REQUIRE_FILE_ERROR(read_tensor_file(cut(start + 64 + 4)), p, "data ends after 2");
  REQUIRE_FILE_ERROR(read_tensor_file(cut(b.size() - 1)), p, "data ends after 2");
  REQUIRE_FILE_ERROR(read_tensor_file(tmp / "missing.bin"), tmp / "missing.bin",
                     "cannot open: No such file");
  REQUIRE_FILE_ERROR(read_tensor_file(tmp.path.string()), tmp.path.string(), "is a folder");
}

TEST_CASE("tensor file: bad NASCWTS preambles are reported", "[train]") {
  TempDir tmp;
  const std::string good = tmp / "good.bin";
  write_nascwts_file(good, sample_file());
  const std::string b = read_bytes(good);
  const std::string p = tmp / "w.bin";
  auto with = [&](size_t at, uint64_t v, int n) {
    std::string c = b;
    put_le(c, at, v, n);
    write_bytes(p, c);
    return p;
  };
  std::string c = b;
  c[3] = 'X';
  write_bytes(p, c);
  // No longer the old magic: read as safetensors, whose header length is then absurd.
  REQUIRE_FILE_ERROR(read_tensor_file(p), p, "not a weights file, or a truncated one");
  write_bytes(p, "PK\x03\x04 this is a zip file");
  REQUIRE_FILE_ERROR(read_tensor_file(p), p, "byte 0: not a weights file");
  REQUIRE_FILE_ERROR(read_tensor_file(with(8, 2, 4)), p, "unsupported version 2");
  REQUIRE_FILE_ERROR(read_tensor_file(with(12, 5, 4)), p, "reserved preamble field is 5");
  REQUIRE_FILE_ERROR(read_tensor_file(with(16, uint64_t{1} << 62, 8)), p,
                     "truncated: the preamble says the JSON header is");
  REQUIRE_FILE_ERROR(read_tensor_file(with(16, le(b, 16, 8) - 1, 8)), p,
                     "header is not valid JSON");
}

TEST_CASE("tensor file: bad NASCWTS headers are reported with the field", "[train]") {
  TempDir tmp;
  const std::string good = tmp / "good.bin";
  write_nascwts_file(good, sample_file());
  const Parts parts = split_file(read_bytes(good));
  const std::string p = tmp / "w.bin";
  // Writes the good file with `edit` applied to its header, then expects `text`.
  auto expect = [&](const std::function<void(json&)>& edit, const std::string& text) {
    json h = parts.header;
    edit(h);
    write_bytes(p, assemble(h, parts.data));
    REQUIRE_FILE_ERROR(read_tensor_file(p), p, text);
  };
  // Sanity: reassembling the untouched parts gives a valid file.
  write_bytes(p, assemble(parts.header, parts.data));
  REQUIRE(read_tensor_file(p).tensors.size() == 3);

  write_bytes(p, assemble(json(), parts.data, "{\"format\": \"nasc-weights\", "));
  REQUIRE_FILE_ERROR(read_tensor_file(p), p, "header is not valid JSON");
  expect([](json& h) { h = json::array(); }, "header: expected a JSON object");
  expect([](json& h) { h.erase("tensors"); }, "header: missing key \"tensors\"");
  expect([](json& h) { h.erase("meta"); }, "header: missing key \"meta\"");
  expect([](json& h) { h["format"] = "safetensors"; }, "header.format: expected \"nasc-weights\"");
  expect([](json& h) { h["version"] = 2; }, "header.version 2 does not match");
  expect([](json& h) { h["meta"] = 3; }, "header.meta: expected an object");
  expect([](json& h) { h["tensors"] = json::object(); }, "header.tensors: expected an array");
  expect([](json& h) { h["extra"] = 1; }, "header: unknown key \"extra\"");
  expect([](json& h) { h["tensors"][0] = 5; }, "header.tensors[0]: expected an object");
  for (const char* key : {"name", "shape", "dtype", "offset", "elements", "crc32"})
    expect([&](json& h) { h["tensors"][1].erase(key); },
           std::string("missing key \"") + key + "\"");
  expect([](json& h) { h["tensors"][1]["name"] = 7; }, "tensors[1].name: expected a string");
  expect([](json& h) { h["tensors"][1]["name"] = ""; }, "tensors[1].name: empty");
  expect([](json& h) { h["tensors"][1]["name"] = "__metadata__"; },
         "tensors[1].name: \"__metadata__\" is reserved");
  expect([](json& h) { h["tensors"][2]["name"] = "conv1.weight"; },
         "two tensors are named 'conv1.weight'");
  expect([](json& h) { h["tensors"][0]["dtype"] = "float16"; },
         "tensors[0] ('conv1.weight').dtype: expected \"float32\"");
  expect([](json& h) { h["tensors"][0]["shape"] = "2x3"; }, "shape: expected an array");
  expect([](json& h) { h["tensors"][0]["shape"] = {3, 2, 0}; }, "shape[2]: must be >= 1, got 0");
  expect([](json& h) { h["tensors"][0]["shape"] = {-2, -3}; }, "shape[0]: must be >= 1, got -2");
  expect([](json& h) { h["tensors"][0]["shape"] = {2, 2.5}; }, "shape[1]: expected an integer");
  expect([](json& h) { h["tensors"][0]["shape"] = {7}; }, "shape [7] does not have 6 elements");
  expect(
      [](json& h) {
        h["tensors"][0]["shape"] = {1u << 31, 1u << 31, 1u << 31};
      },
      "does not have 6 elements");
  expect([](json& h) { h["tensors"][0]["offset"] = -64; }, "offset: must be >= 0, got -64");
  expect([](json& h) { h["tensors"][0]["offset"] = "0"; }, "offset: expected a non-negative");
  expect([](json& h) { h["tensors"][0]["offset"] = 1e30; }, "offset: expected a non-negative");
  expect([](json& h) { h["tensors"][2]["offset"] = 1ull << 40; }, "offset: 1099511627776 is out");
  expect([](json& h) { h["tensors"][1]["offset"] = 32; }, "offset: 32 is not a multiple of 64");
  expect(
      [](json& h) {
        h["tensors"][0]["offset"] = 128;
        h["tensors"][2]["offset"] = 0;
      },
      "'fc.weight' (bytes 0..80) overlaps 'bn.num_batches' (from byte 64)");
  expect([](json& h) { h["tensors"][0]["crc32"] = 1ull << 32; }, "crc32: 4294967296 is out");
  expect([](json& h) { h["tensors"][0]["crc32"] = 12345; },
         "tensor 'conv1.weight': CRC mismatch (header 0x00003039");
  expect([](json& h) { h["tensors"][1]["unit"] = "m"; }, "unknown key \"unit\"");
  // Dropping the last tensor leaves its bytes behind: trailing garbage.
  expect([](json& h) { h["tensors"].erase(2); }, "trailing garbage: 140 bytes after the last");
}

TEST_CASE("tensor file: corrupt data and trailing bytes of a NASCWTS file are reported",
          "[train]") {
  TempDir tmp;
  const std::string p = tmp / "w.bin";
  write_nascwts_file(p, sample_file());
  std::string b = read_bytes(p);
  std::string c = b;
  c[c.size() - 5] ^= 0x10;  // inside fc.weight
  write_bytes(p, c);
  REQUIRE_FILE_ERROR(read_tensor_file(p), p, "tensor 'fc.weight': CRC mismatch");
  write_bytes(p, b + "x");
  REQUIRE_FILE_ERROR(read_tensor_file(p), p, "trailing garbage: 1 bytes after the last tensor");
  c = b;
  c[24 + le(b, 16, 8)] = 1;  // the first padding byte after the JSON header
  write_bytes(p, c);
  REQUIRE_FILE_ERROR(read_tensor_file(p), p, "padding after the JSON header is not zero");
}

// ---------------------------------------------------------------------------------------
// Train config

namespace {

TrainConfig parse(const std::string& text) {
  return parse_train_config(json::parse(text), "cfg.json");
}

#define REQUIRE_CONFIG_ERROR(text, message) \
  REQUIRE_ERROR(parse(text), ConfigError,   \
                Catch::Matchers::Equals(std::string("cfg.json: ") + (message)))

}  // namespace

TEST_CASE("train config: defaults", "[train]") {
  TrainConfig d = default_train_config();
  CHECK(parse("{}") == d);
  CHECK(d.epochs == 10);
  CHECK(d.data.name == "fashion-mnist");
  CHECK(d.data.dir == "/usr/share/datasets/fashion-mnist");
  CHECK(d.data.batch_size == 128);
  CHECK(d.data.mini_batch == 128);
  CHECK(d.data.normalize);
  CHECK(d.optimizer.name == "sgd");
  CHECK(d.optimizer.lr == 0.05);
  CHECK(d.optimizer.momentum == 0.9);
  CHECK(d.optimizer.nesterov);
  CHECK(d.optimizer.weight_decay == 3e-4);
  CHECK(d.optimizer.schedule.name == "cosine");
  // The defaults are a valid optimizer.
  ParamStore store;
  DeviceBuffer w(store.backend(), 3), g(store.backend(), 3);
  REQUIRE_NOTHROW(make_optimizer(d.optimizer, store.backend(), {{&w, &g}}));
}

TEST_CASE("train config: to_json writes every key and parses back to the same config", "[train]") {
  TrainConfig d = default_train_config();
  auto j = train_config_to_json(d);
  for (const char* k : {"epochs", "seed", "threads", "data", "optimizer", "network", "log_every",
                        "checkpoint_every"})
    CHECK(j.contains(k));
  for (const char* k : {"name", "dir", "batch_size", "mini_batch", "eval_batch_size",
                        "train_portion", "limit_train", "limit_test", "augment"})
    CHECK(j["data"].contains(k));
  CHECK(j["data"]["augment"].size() == 5);
  CHECK_FALSE(j["data"].contains("synthetic_samples"));
  CHECK(parse_train_config(json::parse(j.dump()), "") == d);

  TrainConfig c = parse(R"({
    "epochs": 3, "seed": 18446744073709551615, "threads": 4, "log_every": 7,
    "checkpoint_every": 2,
    "data": {"name": "synthetic", "batch_size": 64, "mini_batch": 16, "eval_batch_size": 100,
             "train_portion": 0.5, "limit_train": 500, "limit_test": 50,
             "augment": {"crop_padding": 2, "hflip": true, "cutout": 8, "normalize": false},
             "synthetic_samples": 300, "synthetic_classes": 3, "synthetic_shape": [3, 8, 8]},
    "optimizer": {"name": "adam", "lr": 0.001, "betas": [0.5, 0.99], "eps": 1e-6,
                  "weight_decay": 0.001, "grad_clip": null,
                  "schedule": {"name": "step", "unit": "step", "step_size": 10, "gamma": 0.5}},
    "network": {"C": 16, "drop": 0.25, "scale": 2.0, "tiny": 1e-5, "act": "relu",
                "aux": false, "settings": [[16, 1, 1], [24, 2, 2]], "names": ["a", "b"]}
  })");
  CHECK(c.seed == std::numeric_limits<uint64_t>::max());
  CHECK(c.data.mini_batch == 16);
  CHECK(c.data.dir.empty());
  CHECK(c.data.augment.crop_padding == 2);
  CHECK_FALSE(c.data.normalize);
  CHECK(c.data.synthetic_shape == std::vector<int64_t>{3, 8, 8});
  CHECK(c.optimizer.beta1 == 0.5);
  CHECK(c.optimizer.schedule.step_size == 10);
  using P = std::vector<std::pair<std::string, std::string>>;
  CHECK(c.network == P{{"C", "16"},
                       {"act", "\"relu\""},
                       {"aux", "false"},
                       {"drop", "0.25"},
                       {"names", "[\"a\", \"b\"]"},
                       {"scale", "2.0"},
                       {"settings", "[[16, 1, 1], [24, 2, 2]]"},
                       {"tiny", "1.0e-05"}});
  auto cj = train_config_to_json(c);
  CHECK(cj["data"]["synthetic_classes"] == 3);
  CHECK_FALSE(cj["data"].contains("dir"));
  CHECK(cj["network"]["scale"].is_number_float());
  CHECK(cj["network"]["C"].is_number_integer());
  CHECK(parse_train_config(json::parse(cj.dump()), "") == c);

  TrainConfig cifar = parse(R"({"data": {"name": "cifar10", "dir": "/data/cifar"}})");
  CHECK(cifar.data.dir == "/data/cifar");
  CHECK(parse_train_config(json::parse(train_config_to_json(cifar).dump()), "") == cifar);

  // A change to any field is visible to ==.
  TrainConfig other = c;
  other.network[0].second = "17";
  CHECK(other != c);
  other = c;
  other.optimizer.eps = 1e-7;
  CHECK(other != c);
}

TEST_CASE("optimizer config: to_json round trips every optimizer and schedule", "[train]") {
  for (const char* name : {"sgd", "adam"})
    for (const char* sched : {"constant", "cosine", "step", "warmup_cosine"}) {
      OptimizerConfig c;
      c.name = name;
      c.lr = 0.125;
      c.weight_decay = 1e-4;
      c.grad_clip = 2.5;
      if (c.name == "sgd") {
        c.momentum = 0.8;
        c.nesterov = true;
      } else {
        c.beta1 = 0.5;
        c.beta2 = 0.75;
        c.eps = 1e-6;
      }
      c.schedule.name = sched;
      c.schedule.unit = "step";
      c.schedule.eta_min = 0.01;
      c.schedule.step_size = 7;
      c.schedule.gamma = 0.5;
      c.schedule.warmup = 3;
      auto j = optimizer_config_to_json(c);
      INFO(j.dump());
      OptimizerConfig back = parse_optimizer_config(json::parse(j.dump()));
      CHECK(optimizer_config_to_json(back) == j);
      CHECK(back.lr == c.lr);
      CHECK(back.grad_clip == c.grad_clip);
      CHECK(back.schedule.unit == "step");
      if (c.name == "sgd") CHECK(back.nesterov);
      if (c.name == "adam") CHECK(back.beta2 == 0.75);
      if (c.schedule.name == "step") CHECK(back.schedule.step_size == 7);
      if (c.schedule.name == "warmup_cosine") CHECK(back.schedule.warmup == 3);
      CHECK(j.contains("momentum") == (c.name == "sgd"));
      CHECK(j.contains("betas") == (c.name == "adam"));
    }
}

TEST_CASE("train config: partial sections keep the other defaults", "[train]") {
  TrainConfig c = parse(R"({"data": {"batch_size": 256}, "optimizer": {"lr": 0.1}})");
  CHECK(c.data.batch_size == 256);
  CHECK(c.data.mini_batch == 256);  // follows batch_size
  CHECK(c.data.dir == "/usr/share/datasets/fashion-mnist");
  CHECK(c.optimizer.lr == 0.1);
  CHECK(c.optimizer.momentum == 0.9);  // from the default optimizer
  CHECK(c.optimizer.schedule.name == "cosine");
  c = parse(R"({"optimizer": {"schedule": {"eta_min": 0.001}}})");
  CHECK(c.optimizer.schedule.name == "cosine");
  CHECK(c.optimizer.schedule.eta_min == 0.001);
  // Another schedule or optimizer starts from its own defaults.
  c = parse(R"({"optimizer": {"schedule": {"name": "constant"}}})");
  CHECK(c.optimizer.schedule.name == "constant");
  CHECK(c.optimizer.lr == 0.05);
  c = parse(R"({"optimizer": {"name": "adam", "lr": 0.001}})");
  CHECK(c.optimizer.weight_decay == 0);
  CHECK(c.optimizer.schedule.name == "constant");
}

TEST_CASE("train config: unknown keys are errors with a did-you-mean", "[train]") {
  REQUIRE_CONFIG_ERROR(R"({"epoch": 3})", "epoch: unknown key (did you mean epochs?)");
  REQUIRE_CONFIG_ERROR(R"({"data": {"batch_sze": 3}})",
                       "data.batch_sze: unknown key (did you mean batch_size?)");
  REQUIRE_CONFIG_ERROR(R"({"data": {"augment": {"hfilp": true}}})",
                       "data.augment.hfilp: unknown key (did you mean hflip?)");
  REQUIRE_CONFIG_ERROR(R"({"optimizer": {"momentun": 0.9}})",
                       "optimizer.momentun: unknown key (did you mean momentum?)");
  REQUIRE_CONFIG_ERROR(R"({"optimizer": {"schedule": {"eta_mn": 0}}})",
                       "optimizer.schedule.eta_mn: unknown key (did you mean eta_min?)");
  REQUIRE_CONFIG_ERROR(R"({"xyzzy": 1})",
                       "xyzzy: unknown key (expected one of: epochs, seed, threads, data, "
                       "optimizer, network, log_every, checkpoint_every, label_smoothing, "
                       "drop_path_prob, test_every_epoch)");
  // A key of another optimizer is the optimizer parser's error.
  REQUIRE_ERROR(parse(R"({"optimizer": {"betas": [0.9, 0.99]}})"), ConfigError,
                StartsWith("cfg.json: optimizer.betas: unknown key for optimizer 'sgd'"));
  REQUIRE_CONFIG_ERROR(
      R"({"data": {"name": "fashion_mnist"}})",
      "data.name: unknown data set \"fashion_mnist\" (did you mean fashion-mnist?)");
  REQUIRE_CONFIG_ERROR(R"({"data": {"name": "imagenet"}})",
                       "data.name: unknown data set \"imagenet\" (expected one of: fashion-mnist, "
                       "cifar10, npy, images, synthetic)");
}

TEST_CASE("train config: wrong types and out-of-range values name the key", "[train]") {
  REQUIRE_CONFIG_ERROR("[]", "expected a JSON object at the top level, got array");
  REQUIRE_CONFIG_ERROR(R"({"epochs": "10"})", "epochs: expected an integer, got string");
  REQUIRE_CONFIG_ERROR(R"({"epochs": 0})", "epochs: must be >= 1, got 0");
  REQUIRE_CONFIG_ERROR(R"({"epochs": 2.5})", "epochs: expected an integer, got number");
  REQUIRE_CONFIG_ERROR(R"({"seed": -1})", "seed: must be >= 0, got -1");
  REQUIRE_CONFIG_ERROR(R"({"threads": -2})", "threads: must be in [0, 65536], got -2");
  REQUIRE_CONFIG_ERROR(R"({"log_every": 0})", "log_every: must be >= 1, got 0");
  REQUIRE_CONFIG_ERROR(R"({"checkpoint_every": 0})", "checkpoint_every: must be >= 1, got 0");
  REQUIRE_CONFIG_ERROR(R"({"data": 5})", "data: expected an object, got integer");
  REQUIRE_CONFIG_ERROR(R"({"data": {"batch_size": 0}})", "data.batch_size: must be >= 1, got 0");
  REQUIRE_CONFIG_ERROR(R"({"data": {"batch_size": 12.5}})",
                       "data.batch_size: expected an integer, got number");
  REQUIRE_CONFIG_ERROR(R"({"data": {"mini_batch": 48}})",
                       "data.mini_batch: must divide data.batch_size (128), got 48");
  REQUIRE_CONFIG_ERROR(R"({"data": {"batch_size": 64, "mini_batch": 128}})",
                       "data.mini_batch: must divide data.batch_size (64), got 128");
  REQUIRE_CONFIG_ERROR(R"({"data": {"mini_batch": -1}})", "data.mini_batch: must be >= 0, got -1");
  REQUIRE_CONFIG_ERROR(R"({"data": {"eval_batch_size": 0}})",
                       "data.eval_batch_size: must be >= 1, got 0");
  REQUIRE_CONFIG_ERROR(R"({"data": {"train_portion": 0}})",
                       "data.train_portion: must be in (0, 1], got 0");
  REQUIRE_CONFIG_ERROR(R"({"data": {"train_portion": 1.5}})",
                       "data.train_portion: must be in (0, 1], got 1.5");
  REQUIRE_CONFIG_ERROR(R"({"data": {"train_portion": "half"}})",
                       "data.train_portion: expected a number, got string");
  REQUIRE_CONFIG_ERROR(R"({"data": {"limit_train": -5}})",
                       "data.limit_train: must be >= 0, got -5");
  REQUIRE_CONFIG_ERROR(R"({"data": {"augment": {"hflip": 1}}})",
                       "data.augment.hflip: expected true or false, got integer");
  REQUIRE_CONFIG_ERROR(R"({"data": {"augment": {"cutout": -1}}})",
                       "data.augment.cutout: must be in [0, 4096], got -1");
  REQUIRE_CONFIG_ERROR(R"({"data": {"augment": []}})",
                       "data.augment: expected an object, got array");
  REQUIRE_CONFIG_ERROR(R"({"data": {"name": "cifar10"}})",
                       "data.dir: required for cifar10: the folder holding data_batch_1.bin .. "
                       "test_batch.bin (or cifar-10-batches-bin/)");
  REQUIRE_CONFIG_ERROR(R"({"data": {"dir": 3}})", "data.dir: expected a string, got integer");
  REQUIRE_CONFIG_ERROR(R"({"data": {"name": "synthetic", "dir": "/x"}})",
                       "data.dir: not used with synthetic data");
  REQUIRE_CONFIG_ERROR(R"({"data": {"synthetic_samples": 10}})",
                       "data.synthetic_samples: only for \"name\": \"synthetic\" (data.name is "
                       "\"fashion-mnist\")");
  REQUIRE_CONFIG_ERROR(R"({"data": {"name": "synthetic", "synthetic_shape": [3, 8]}})",
                       "data.synthetic_shape: expected [C, H, W], got an array of 2");
  REQUIRE_CONFIG_ERROR(R"({"data": {"name": "synthetic", "synthetic_shape": [3, 0, 8]}})",
                       "data.synthetic_shape[1]: must be in [1, 65536], got 0");
  REQUIRE_CONFIG_ERROR(R"({"data": {"name": "synthetic", "synthetic_classes": 1}})",
                       "data.synthetic_classes: must be in [2, 1048576], got 1");
  REQUIRE_CONFIG_ERROR(
      R"({"data": {"name": "synthetic", "synthetic_samples": 100000000, "synthetic_shape": [3, 32, 32]}})",
      "data.synthetic_samples: 100000000 samples of this shape need over 2 GiB");
  REQUIRE_CONFIG_ERROR(R"({"optimizer": {"lr": -1}})", "optimizer.lr: must be >= 0, got -1");
  REQUIRE_CONFIG_ERROR(R"({"optimizer": {"name": "adam"}})", "optimizer.lr: missing required key");
  REQUIRE_CONFIG_ERROR(R"({"optimizer": {"name": "rmsprop", "lr": 1}})",
                       "optimizer.name: unknown optimizer 'rmsprop' (expected sgd or adam)");
  REQUIRE_CONFIG_ERROR(R"({"optimizer": {"momentum": 0}})",
                       "optimizer.nesterov: requires momentum > 0 (\"nesterov\" comes from the "
                       "default optimizer settings; set it explicitly)");
  REQUIRE_CONFIG_ERROR(R"({"optimizer": []})", "optimizer: expected an object, got array");
  REQUIRE_CONFIG_ERROR(R"({"network": [1]})", "network: expected an object, got array");
  REQUIRE_CONFIG_ERROR(R"({"network": {"2x": 1}})",
                       "network.2x: not a parameter name (letters, digits and _, not starting "
                       "with a digit)");
  REQUIRE_CONFIG_ERROR(R"({"network": {"C": null}})",
                       "network.C: expected a number, string, boolean or list, got null");
  REQUIRE_CONFIG_ERROR(R"({"network": {"C": {"a": 1}}})",
                       "network.C: expected a number, string, boolean or list, got object");
  REQUIRE_CONFIG_ERROR(R"({"network": {"op": "say \"hi\""}})",
                       "network.op: strings with quotes, backslashes or control characters "
                       "cannot be passed to the network");
  REQUIRE_CONFIG_ERROR(R"({"network": {"ops": ["a,b"]}})",
                       "network.ops[0]: strings with quotes, backslashes or control characters "
                       "(or, in a list, commas and brackets) cannot be passed to the network");
  REQUIRE_CONFIG_ERROR(R"({"network": {"C": 9223372036854775808}})",
                       "network.C: integer 9223372036854775808 is out of range");
  // No file name: no prefix.
  REQUIRE_ERROR(parse_train_config(json::parse(R"({"epochs": 0})"), ""), ConfigError,
                Catch::Matchers::Equals("epochs: must be >= 1, got 0"));
}

TEST_CASE("train config: .nas literals for network parameters", "[train]") {
  CHECK(json_to_nas_literal(16, "x") == "16");
  CHECK(json_to_nas_literal(-3, "x") == "-3");
  CHECK(json_to_nas_literal(0.1, "x") == "0.1");
  CHECK(json_to_nas_literal(2.0, "x") == "2.0");
  CHECK(json_to_nas_literal(-1e-5, "x") == "-1.0e-05");
  CHECK(json_to_nas_literal(1.5e300, "x") == "1.5e+300");
  CHECK(json_to_nas_literal(true, "x") == "true");
  CHECK(json_to_nas_literal("sep_conv_3x3", "x") == "\"sep_conv_3x3\"");
  CHECK(json_to_nas_literal(json::array(), "x") == "[]");
  CHECK(json_to_nas_literal(json::parse(R"([1, [2.5, "a"], false])"), "x") ==
        "[1, [2.5, \"a\"], false]");
  for (const char* text : {"16", "-3", "0.1", "2.0", "-1.0e-05", "true", "\"a b\"", "[]",
                           "[1, [2.5, \"a\"], false]", "0.30000000000000004"}) {
    json v = nas_literal_to_json(text);
    CHECK(json_to_nas_literal(v, "x") == text);
  }
  CHECK(nas_literal_to_json("2.0").is_number_float());
  CHECK(nas_literal_to_json("7").is_number_integer());
  CHECK(nas_literal_to_json("relu") == "relu");  // unquoted, as --set accepts it
}

TEST_CASE("train config: loading a file", "[train]") {
  TempDir tmp;
  const std::string p = tmp / "cfg.json";
  write_bytes(p, R"({"epochs": 2, "data": {"name": "synthetic"}})");
  TrainConfig c = load_train_config(p);
  CHECK(c.epochs == 2);
  CHECK(c.data.name == "synthetic");
  write_bytes(p, "{\n  \"epochs\": 2,\n  \"data\": {\"batch_size\": }\n}\n");
  REQUIRE_ERROR(load_train_config(p), JsonSyntaxError,
                StartsWith(p + ":3:26: invalid JSON: syntax error"));
  // A key twice is refused at the second one, whichever was meant.
  write_bytes(p, "{\"epochs\": 2, \"data\": {\"batch_size\": 8, \"batch_size\": 16}}");
  REQUIRE_ERROR(load_train_config(p), JsonSyntaxError,
                Catch::Matchers::Equals(p + ":1:41: duplicate key data.batch_size"));
  // A number beyond a double is a located error, even under a key that is never read.
  write_bytes(p, "{\"epochs\": 2,\n \"note\": [1, 1e999999]}");
  REQUIRE_ERROR(load_train_config(p), JsonSyntaxError,
                StartsWith(p + ":2:14: number 1e999999 is too large"));
  write_bytes(p, R"({"epochs": 2, "data": {"batch_sze": 8}})");
  REQUIRE_ERROR(
      load_train_config(p), ConfigError,
      Catch::Matchers::Equals(p + ": data.batch_sze: unknown key (did you mean batch_size?)"));
  REQUIRE_ERROR(load_train_config(tmp / "none.json"), UserError,
                StartsWith(tmp / "none.json" + ": cannot read"));
}

TEST_CASE("train config: the examples in docs/train.md are valid", "[train]") {
  std::string doc = read_bytes(std::string(NASC_SOURCE_DIR) + "/docs/train.md");
  size_t from = doc.find("\n## Config file"), to = doc.find("\n## ", from + 1);
  REQUIRE(from != std::string::npos);
  std::string section = doc.substr(from, to - from);
  std::vector<std::string> blocks;
  for (size_t at = section.find("```json\n"); at != std::string::npos;
       at = section.find("```json\n", at + 1)) {
    size_t end = section.find("```", at + 8);
    blocks.push_back(section.substr(at + 8, end - at - 8));
  }
  REQUIRE(blocks.size() == 3);
  for (const std::string& b : blocks) {
    INFO(b);
    CHECK_NOTHROW(parse_train_config(json::parse(b), "docs/train.md"));
  }
  // The first one is the default config, spelt out in full.
  json first = json::parse(blocks[0]);
  CHECK(parse_train_config(first, "") == default_train_config());
  CHECK(first == json::parse(train_config_to_json(default_train_config()).dump()));
}

// ---------------------------------------------------------------------------------------
// Run folder

TEST_CASE("run dir: files, log lines and metrics records", "[train]") {
  TempDir tmp;
  const std::string dir = tmp / "runs/a/b";
  RunDir run(dir, true);
  REQUIRE(fs::is_directory(dir));
  CHECK(run.path("log.txt") == dir + "/log.txt");
  nlohmann::ordered_json cfg = {{"epochs", 3}, {"data", {{"name", "x"}}}};
  run.write_json("config.json", cfg);
  CHECK(read_bytes(run.path("config.json")) == cfg.dump(2) + "\n");
  CHECK_FALSE(fs::exists(run.path("config.json.tmp")));
  run.log("epoch 1/3 done");
  run.log("epoch 2/3 done");
  CHECK(read_bytes(run.path("log.txt")) == "epoch 1/3 done\nepoch 2/3 done\n");
  run.metrics({{"epoch", 1}, {"train_loss", 0.5}});
  run.metrics({{"epoch", 2}, {"train_loss", 0.25}});
  CHECK(read_bytes(run.path("metrics.jsonl")) ==
        "{\"epoch\":1,\"train_loss\":0.5}\n{\"epoch\":2,\"train_loss\":0.25}\n");
}

TEST_CASE("run dir: fresh runs refuse an old run's folder, resume needs a checkpoint or config",
          "[train]") {
  TempDir tmp;
  const std::string dir = tmp / "run";
  {
    RunDir first(dir, true);
    first.write_json("config.json", {{"a", 1}});
  }
  // Only config.json so far (e.g. a run that failed while loading data): reusable.
  REQUIRE_NOTHROW(RunDir(dir, true).log("started"));
  REQUIRE_ERROR(RunDir(dir, true), RunDirError,
                Catch::Matchers::Equals(dir + ": already holds a run (log.txt); use "
                                              "--resume to continue it, or -o with "
                                              "another folder"));
  // Stopped before its first checkpoint: --resume starts it over from its config.json.
  {
    fs::copy(dir, tmp / "over");
    RunDir again(tmp / "over", false);
    again.metrics({{"epoch", 1}});
    again.start_over();
    CHECK(read_bytes(again.path("metrics.jsonl")).empty());
    CHECK_THAT(read_bytes(again.path("log.txt")), Contains(kStartingOver));
  }
  fs::create_directories(tmp / "bare");
  REQUIRE_ERROR(RunDir(tmp / "bare", false), RunDirError,
                StartsWith(tmp / "bare" + ": no checkpoint or config.json to resume from"));
  REQUIRE_ERROR(RunDir(tmp / "absent", false), RunDirError,
                StartsWith(tmp / "absent" + ": no such run folder"));
  write_bytes(tmp / "file", "x");
  REQUIRE_ERROR(RunDir(tmp / "file", true), RunDirError, Contains("exists and is not a folder"));
  Checkpoint c;
  save_checkpoint(dir, c);
  REQUIRE_NOTHROW(RunDir(dir, false));
  fs::remove(dir + "/log.txt");
  REQUIRE_ERROR(RunDir(dir, true), RunDirError, Contains("already holds a run (checkpoint)"));
  fs::create_directories(tmp / "m");
  write_bytes(tmp / "m/metrics.jsonl", "");
  REQUIRE_ERROR(RunDir(tmp / "m", true), RunDirError, Contains("(metrics.jsonl)"));
}

TEST_CASE("run dir: resume drops the metrics of the interrupted epoch", "[train]") {
  TempDir tmp;
  RunDir run(tmp / "run", true);
  run.truncate_metrics_after(0);  // no metrics.jsonl yet: nothing to do
  CHECK_FALSE(fs::exists(run.path("metrics.jsonl")));
  const std::string lines =
      "{\"epoch\":1,\"test_acc\":0.8}\n"
      "{\"note\":\"no epoch\"}\n"
      "not json at all\n"
      "{\"epoch\":2,\"test_acc\":0.85}\n"
      "{\"epoch\":3,\"step\":10}\n"
      "{\"epoch\":\"3\"}\n"
      "{\"epoch\":3,\"test_a";  // a crash in the middle of an append
  write_bytes(run.path("metrics.jsonl"), lines);
  run.truncate_metrics_after(2);
  CHECK(read_bytes(run.path("metrics.jsonl")) ==
        "{\"epoch\":1,\"test_acc\":0.8}\n{\"note\":\"no epoch\"}\nnot json at all\n"
        "{\"epoch\":2,\"test_acc\":0.85}\n{\"epoch\":\"3\"}\n");
  run.metrics({{"epoch", 3}});
  run.truncate_metrics_after(0);
  CHECK(read_bytes(run.path("metrics.jsonl")) ==
        "{\"note\":\"no epoch\"}\nnot json at all\n{\"epoch\":\"3\"}\n");
}

// ---------------------------------------------------------------------------------------
// Progress

TEST_CASE("progress: plain lines every plain_every steps and at the end", "[train]") {
  double now = 100.0;
  std::ostringstream out;
  Progress p(out, "epoch 1/3", 5, ProgressOptions{false, 2, 30}, [&] { return now; });
  for (int step = 1; step <= 5; ++step) {
    now += 0.5;
    p.update(step, 128 * step, 1.0 / step, 0.1 * step);
  }
  p.finish("epoch 1/3 train loss 0.2000 acc 50.00%");
  CHECK(out.str() ==
        "epoch 1/3 step 2/5 loss 0.5000 acc 20.00% 256 img/s ETA 0:02\n"
        "epoch 1/3 step 4/5 loss 0.2500 acc 40.00% 256 img/s ETA 0:01\n"
        "epoch 1/3 step 5/5 loss 0.2000 acc 50.00% 256 img/s ETA 0:00\n"
        "epoch 1/3 train loss 0.2000 acc 50.00%\n");
}

TEST_CASE("progress: a terminal gets one line redrawn at most ~10 times a second", "[train]") {
  double now = 0.0;
  std::ostringstream out;
  Progress p(out, "epoch 3/10", 10, ProgressOptions{true, 50, 20}, [&] { return now; });
  now = 2.0;
  p.update(5, 5000, 0.41234, 0.85211);
  const std::string first = out.str();
  CHECK(first ==
        "\repoch 3/10 [##########..........]  5/10 loss 0.4123 acc 85.21% 2,500 img/s ETA "
        "0:02\x1b[K");
  now = 2.05;
  p.update(6, 6000, 0.4, 0.86);  // too soon: skipped
  CHECK(out.str() == first);
  now = 2.2;
  p.update(7, 7000, 0.4, 0.86);
  CHECK(out.str().size() > first.size());
  size_t before = out.str().size();
  now = 2.21;
  p.update(10, 10000, 0.3, 0.9);  // the last step is always drawn
  CHECK(out.str().substr(before) ==
        "\repoch 3/10 [####################] 10/10 loss 0.3000 acc 90.00% 4,525 img/s ETA "
        "0:00\x1b[K");
  p.finish("epoch 3/10 loss 0.3000 acc 90.00% (2.2 s)");
  CHECK_THAT(out.str(), EndsWith("\repoch 3/10 loss 0.3000 acc 90.00% (2.2 s)\x1b[K\n"));
  const std::string all = out.str();
  CHECK(std::count(all.begin(), all.end(), '\n') == 1);
}

TEST_CASE("progress: before any time has passed, and bad arguments", "[train]") {
  std::ostringstream out;
  Progress p(out, "e", 3, ProgressOptions{false, 1, 30}, [] { return 5.0; });
  p.update(1, 10, 2.0, 0.0);
  CHECK(out.str() == "e step 1/3 loss 2.0000 acc 0.00% - img/s ETA -:--\n");
  CHECK_THROWS_AS(Progress(out, "e", -1, ProgressOptions{}), InternalError);
  CHECK_THROWS_AS(Progress(out, "e", 3, ProgressOptions{false, 0, 30}), InternalError);
  CHECK_THROWS_AS(Progress(out, "e", 3, ProgressOptions{true, 1, 0}), InternalError);
  Progress empty(out, "e", 0, ProgressOptions{true, 1, 4}, [] { return 0.0; });
  empty.update(0, 0, 0, 0);
  CHECK_THAT(out.str(), EndsWith("\re [####] 0/0 loss 0.0000 acc 0.00% - img/s ETA -:--\x1b[K"));
}

TEST_CASE("progress: number and duration formatting", "[train]") {
  CHECK(format_thousands(0) == "0");
  CHECK(format_thousands(999) == "999");
  CHECK(format_thousands(2310) == "2,310");
  CHECK(format_thousands(1234567) == "1,234,567");
  CHECK(format_thousands(-1234567) == "-1,234,567");
  CHECK(format_thousands(std::numeric_limits<int64_t>::min()) == "-9,223,372,036,854,775,808");
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(42.4) == "0:42");
  CHECK(format_duration(59.6) == "1:00");
  CHECK(format_duration(3725) == "1:02:05");
  CHECK(format_duration(-1) == "-:--");
  CHECK(format_duration(std::nan("")) == "-:--");
}

// ---------------------------------------------------------------------------------------
// Checkpoints

namespace {

Checkpoint sample_checkpoint() {
  Checkpoint c;
  c.epoch = 4;
  c.global_step = 1876;
  c.params.tensors.push_back(tensor("conv.w", {2, 2}, 1.0f));
  c.params.tensors.push_back(tensor("bn.running_mean", {2}, -3.0f));
  for (int i = 0; i < 259; ++i) c.optimizer_state.push_back(static_cast<uint8_t>(i * 7));
  c.extra = {{"best_test_acc", 0.9123}, {"alphas", {1, 2, 3}}};
  return c;
}

void check_same(const Checkpoint& a, const Checkpoint& b) {
  CHECK(a.epoch == b.epoch);
  CHECK(a.global_step == b.global_step);
  CHECK(a.optimizer_state == b.optimizer_state);
  CHECK(a.extra == b.extra);
  REQUIRE(a.params.tensors.size() == b.params.tensors.size());
  for (size_t i = 0; i < a.params.tensors.size(); ++i) {
    CHECK(a.params.tensors[i].name == b.params.tensors[i].name);
    CHECK(a.params.tensors[i].shape == b.params.tensors[i].shape);
    CHECK(same_bits(a.params.tensors[i].data, b.params.tensors[i].data));
  }
}

}  // namespace

TEST_CASE("checkpoint: round trip, and none yet", "[train]") {
  TempDir tmp;
  CHECK_FALSE(load_checkpoint(tmp.path.string()).has_value());
  Checkpoint c = sample_checkpoint();
  save_checkpoint(tmp.path.string(), c);
  std::optional<Checkpoint> back = load_checkpoint(tmp.path.string());
  REQUIRE(back.has_value());
  check_same(*back, c);
  CHECK_FALSE(fs::exists(tmp / "checkpoint.tmp"));

  // Every blob length (mod 4) and an empty one.
  for (size_t n : {0, 1, 2, 3, 4, 5}) {
    c.optimizer_state.assign(n, 0xff);
    save_checkpoint(tmp.path.string(), c);
    CHECK(load_checkpoint(tmp.path.string())->optimizer_state == c.optimizer_state);
  }
}

TEST_CASE("checkpoint: a resumed optimizer continues bit for bit", "[train]") {
  TempDir tmp;
  ParamStore store;  // for its backend's memory and explicit copies
  DeviceBuffer w(store.backend(), 3), g(store.backend(), 3);
  store.write(w, {1.0f, -2.0f, 0.5f});
  auto run_steps = [&](Optimizer& o, int from, int to) {
    for (int s = from; s < to; ++s) {
      std::vector<float> grad(3);
      for (size_t i = 0; i < grad.size(); ++i) grad[i] = std::sin(float(s + i));
      store.write(g, grad);
      o.step();
    }
  };
  OptimizerConfig oc = default_train_config().optimizer;
  auto a = make_optimizer(oc, store.backend(), {{&w, &g}});
  run_steps(*a, 0, 3);
  Checkpoint c;
  c.epoch = 1;
  c.global_step = 3;
  c.params.tensors.push_back({"w", {3}, store.read(w)});
  c.optimizer_state = a->save_state();
  save_checkpoint(tmp.path.string(), c);
  run_steps(*a, 3, 6);
  const std::vector<float> expected = store.read(w);

  Checkpoint back = *load_checkpoint(tmp.path.string());
  store.write(w, back.params.find("w")->data);
  auto b = make_optimizer(oc, store.backend(), {{&w, &g}});
  b->load_state(back.optimizer_state);
  run_steps(*b, 3, 6);
  CHECK(same_bits(store.read(w), expected));
}

TEST_CASE("checkpoint: corrupt, truncated or foreign files are reported", "[train]") {
  TempDir tmp;
  const std::string dir = tmp.path.string(), p = tmp / "checkpoint";
  save_checkpoint(dir, sample_checkpoint());
  const std::string b = read_bytes(p);
  write_bytes(p, b.substr(0, b.size() - 100));
  REQUIRE_FILE_ERROR(load_checkpoint(dir), p, "truncated");
  std::string c = b;
  c[c.size() - 1] ^= 1;  // inside the optimizer state
  write_bytes(p, c);
  REQUIRE_FILE_ERROR(load_checkpoint(dir), p, "tensor '#optimizer_state': CRC mismatch");
  write_bytes(p, "");
  REQUIRE_FILE_ERROR(load_checkpoint(dir), p, "empty file");

  // A weights file is not a checkpoint.
  write_tensor_file(p, sample_file());
  REQUIRE_FILE_ERROR(load_checkpoint(dir), p, "not a valid checkpoint: meta.kind");
  // Meta fields are checked.
  // The checkpoint's meta is the "nasc" entry of the safetensors metadata.
  auto with_meta = [&](const std::function<void(json&)>& edit) {
    StParts parts = split_safetensors(b);
    json meta = json::parse(parts.header["__metadata__"]["nasc"].get<std::string>());
    edit(meta);
    parts.header["__metadata__"]["nasc"] = meta.dump();
    write_bytes(p, assemble_safetensors(parts.header.dump(), parts.data));
  };
  with_meta([](json& m) { m.erase("epoch"); });
  REQUIRE_FILE_ERROR(load_checkpoint(dir), p, "meta.epoch is missing or not a non-negative");
  with_meta([](json& m) { m["global_step"] = -1; });
  REQUIRE_FILE_ERROR(load_checkpoint(dir), p, "meta.global_step is missing");
  with_meta([](json& m) { m["extra"] = "x"; });
  REQUIRE_FILE_ERROR(load_checkpoint(dir), p, "meta.extra is missing or not an object");
  with_meta([](json& m) { m["optimizer_state_bytes"] = 300; });
  REQUIRE_FILE_ERROR(load_checkpoint(dir), p,
                     "the optimizer state tensor has 260 bytes, meta says 300");
}

TEST_CASE("checkpoint: one in the older NASCWTS format still loads", "[train]") {
  TempDir tmp;
  const std::string dir = tmp.path.string(), p = tmp / "checkpoint";
  const Checkpoint c = sample_checkpoint();
  save_checkpoint(dir, c);
  write_nascwts_file(p, read_tensor_file(p));  // as an older nasc saved it
  REQUIRE(read_bytes(p).substr(0, 8) == std::string("NASCWTS\0", 8));
  check_same(*load_checkpoint(dir), c);
}

TEST_CASE("checkpoint: an interrupted save does not break load", "[train]") {
  TempDir tmp;
  const std::string dir = tmp.path.string();
  Checkpoint c = sample_checkpoint();
  save_checkpoint(dir, c);
  // A crash while writing the next one leaves a partial temporary file behind.
  write_bytes(tmp / "checkpoint.tmp", read_bytes(tmp / "checkpoint").substr(0, 100));
  check_same(*load_checkpoint(dir), c);
  // And the next save goes through, replacing both.
  c.epoch = 5;
  save_checkpoint(dir, c);
  CHECK(load_checkpoint(dir)->epoch == 5);
  CHECK_FALSE(fs::exists(tmp / "checkpoint.tmp"));
  // Only a temporary file, no checkpoint yet: there is none.
  TempDir other;
  write_bytes(other / "checkpoint.tmp", "partial");
  CHECK_FALSE(load_checkpoint(other.path.string()).has_value());
}

TEST_CASE("checkpoint: bad input to save is rejected", "[train]") {
  TempDir tmp;
  const std::string dir = tmp.path.string();
  Checkpoint c = sample_checkpoint();
  c.params.tensors.push_back({"#optimizer_state", {1}, {0.0f}});
  REQUIRE_ERROR(save_checkpoint(dir, c), InternalError,
                Contains("reserved for the optimizer state"));
  c = sample_checkpoint();
  c.epoch = -1;
  REQUIRE_THROWS_AS(save_checkpoint(dir, c), InternalError);
  c = sample_checkpoint();
  c.extra = 3;
  REQUIRE_ERROR(save_checkpoint(dir, c), InternalError, Contains("extra must be a JSON object"));
  CHECK_FALSE(fs::exists(tmp / "checkpoint"));
}
