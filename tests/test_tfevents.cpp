// TensorBoard event files: CRC32C against its published check value and a bit-at-a-time
// reference, scalars written and read back, one record's bytes against the encoding
// worked out by hand from the format in docs/search.md, and every truncation and every
// flipped byte of a file refused with the file, record and reason in the message.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>

#include "runtime/report/tfevents.h"
#include "support/errors.h"
#include "tests/file_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

namespace {

using test::read_bytes;
using test::TempDir;
using test::write_bytes;

std::string bytes_of(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

// The textbook definition, one bit at a time, to check the table-driven version.
uint32_t crc32c_bitwise(const std::string& s) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0u);
  }
  return ~c;
}

// Frames `data` as one TFRecord, for Events built by hand below.
std::string frame(const std::string& data) {
  auto le = [](uint64_t v, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
  };
  std::string len = le(data.size(), 8);
  return len + le(mask_crc32c(crc32c(len.data(), 8)), 4) + data +
         le(mask_crc32c(crc32c(data.data(), data.size())), 4);
}

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

// The first record of every file: Event{wall_time, file_version "brain.Event:2"}, whose
// data is 9 + 2 + 13 = 24 bytes, framed in 8 + 4 + 24 + 4.
constexpr size_t kVersionRecordBytes = 40;

// A file with the version record and three scalars (records 1 to 3).
std::string sample_file(const TempDir& tmp) {
  EventWriter w((tmp.path / "run").string());
  w.scalar("loss", 0.5, 1, 10.0);
  w.scalar("loss", 0.25, 2, 11.0);
  w.scalar("acc", 0.75, 2, 11.0);
  w.flush();
  return w.path();
}

}  // namespace

TEST_CASE("tfevents: CRC32C matches its check value and a bitwise reference", "[tfevents]") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c("", 0) == 0u);
  CHECK(mask_crc32c(0xE3069283u) == 0xc78ab0e5u);
  CHECK(mask_crc32c(0) == 0xa282ead8u);
  std::string s;
  for (int i = 0; i < 1000; ++i) {
    s.push_back(static_cast<char>((i * 131 + 7) & 0xff));
    if (i % 97 == 0 || i < 20) {
      INFO("length " << s.size());
      CHECK(crc32c(s.data(), s.size()) == crc32c_bitwise(s));
    }
  }
}

TEST_CASE("tfevents: scalars round trip with their tags, steps and times", "[tfevents]") {
  TempDir tmp;
  const std::string dir = tmp / "runs/a";  // created, parents included
  const double before = unix_time_now();
  std::string path;
  {
    EventWriter w(dir);
    path = w.path();
    REQUIRE(fs::path(path).parent_path() == fs::path(dir));
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    CHECK(std::regex_match(fs::path(path).filename().string(),
                           std::regex("events\\.out\\.tfevents\\.[0-9]+\\." +
                                      std::regex_replace(host, std::regex("\\W"), "\\$&"))));
    w.scalar("train/loss", 2.5, 1, 1000.5);
    w.scalar("train/loss", 0.1, 300, 1001.25);  // a two-byte varint step; 0.1 is not a float
    w.scalar("valid/acc", 0, 0, 1002);          // zero step (omitted) and zero value (kept)
    w.scalar("x", -7.25, -3, 1003);             // a negative step: a ten-byte varint
    w.scalar("x", std::numeric_limits<double>::infinity(), int64_t{1} << 40, 1004);
    w.scalar("arch/\xce\xb1", 1e-3, std::numeric_limits<int64_t>::max(), 1005);
    w.scalar("now", 1, 7);
    w.flush();
    // Flushed: a reader sees everything while the writer is still open.
    EventFile f = read_event_file(path);
    CHECK(f.scalars.size() == 7);
  }
  const double after = unix_time_now();
  EventFile f = read_event_file(path);
  CHECK(f.file_version == "brain.Event:2");
  REQUIRE(f.scalars.size() == 7);
  struct Want {
    const char* tag;
    double value;
    int64_t step;
    double wall_time;
  };
  const Want want[] = {
      {"train/loss", 2.5, 1, 1000.5},
      {"train/loss", static_cast<float>(0.1), 300, 1001.25},
      {"valid/acc", 0, 0, 1002},
      {"x", -7.25, -3, 1003},
      {"x", std::numeric_limits<double>::infinity(), int64_t{1} << 40, 1004},
      {"arch/\xce\xb1", static_cast<float>(1e-3), std::numeric_limits<int64_t>::max(), 1005},
  };
  for (size_t i = 0; i < 6; ++i) {
    INFO("scalar " << i);
    CHECK(f.scalars[i].tag == want[i].tag);
    CHECK(f.scalars[i].value == want[i].value);
    CHECK(f.scalars[i].step == want[i].step);
    CHECK(f.scalars[i].wall_time == want[i].wall_time);
  }
  CHECK(f.scalars[6].tag == "now");
  CHECK(f.scalars[6].step == 7);
  CHECK(f.scalars[6].wall_time >= before);
  CHECK(f.scalars[6].wall_time <= after);

  // NaN survives too (compared apart: NaN != NaN).
  EventWriter w(dir);
  w.scalar("nan", std::nan(""), 1, 1);
  w.flush();
  EventFile g = read_event_file(w.path());
  REQUIRE(g.scalars.size() == 1);
  CHECK(std::isnan(g.scalars[0].value));
}

TEST_CASE("tfevents: a scalar record has the documented bytes", "[tfevents]") {
  TempDir tmp;
  EventWriter w(tmp.path.string());
  w.scalar("a", 1.0, 3, 2.0);
  w.flush();
  const std::string b = read_bytes(w.path());
  REQUIRE(b.size() == kVersionRecordBytes + 39);

  // The version record, but for its wall_time (now) and the CRC of its data.
  CHECK(b.substr(0, 12) == bytes_of({24, 0, 0, 0, 0, 0, 0, 0,         // length 24
                                     0xa3, 0x7f, 0x4b, 0x22}));       // masked CRC32C of it
  CHECK(b[12] == 0x09);                                               // field 1, fixed64
  CHECK(b.substr(21, 15) == bytes_of({0x1a, 13}) + "brain.Event:2");  // field 3, 13 bytes

  // Summary.Value: tag (1, bytes) "a"; simple_value (2, fixed32) 1.0f = 0x3f800000.
  const std::string value = bytes_of({0x0a, 1, 'a', 0x15, 0x00, 0x00, 0x80, 0x3f});
  // Summary: value (1, bytes) of 8 bytes.
  const std::string summary = bytes_of({0x0a, 8}) + value;
  // Event: wall_time (1, fixed64) 2.0 = 0x4000000000000000; step (2, varint) 3;
  // summary (5, bytes) of 10 bytes. 9 + 2 + 12 = 23 bytes.
  const std::string event =
      bytes_of({0x09, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x10, 3, 0x2a, 10}) + summary;
  REQUIRE(event.size() == 23);
  // Framing; the two CRCs were computed with the bitwise definition, independently of
  // the library.
  const std::string record = bytes_of({23, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0xce, 0xf8, 0x1e}) + event +
                             bytes_of({0x12, 0x43, 0x71, 0x7c});
  CHECK(b.substr(kVersionRecordBytes) == record);
}

TEST_CASE("tfevents: non-scalar events and unknown fields are skipped", "[tfevents]") {
  TempDir tmp;
  const std::string p = tmp / "events.out.tfevents.1.h";
  // Event{wall_time 0, step 5, graph_def (4) "xyz", summary{value{tag "t", tensor (8) {}},
  // value{node_name (7) "n", simple_value 2.0f, tag "u"}}, unknown varint field 99}.
  const std::string tensor_value = bytes_of({0x0a, 1, 't', 0x42, 0});
  const std::string scalar_value =
      bytes_of({0x3a, 1, 'n', 0x15, 0, 0, 0, 0x40, 0x0a, 1, 'u'});  // tag after the value
  const std::string summary =
      bytes_of({0x0a, static_cast<int>(tensor_value.size())}) + tensor_value +
      bytes_of({0x0a, static_cast<int>(scalar_value.size())}) + scalar_value;
  const std::string event = bytes_of({0x2a, static_cast<int>(summary.size())}) + summary +
                            bytes_of({0x10, 5, 0x22, 3, 'x', 'y', 'z', 0x98, 0x06, 1});
  write_bytes(p, frame(event));
  EventFile f = read_event_file(p);
  CHECK(f.file_version.empty());
  REQUIRE(f.scalars.size() == 1);
  CHECK(f.scalars[0].tag == "u");
  CHECK(f.scalars[0].value == 2.0);
  CHECK(f.scalars[0].step == 5);  // given after the summary, still applies to it
  CHECK(f.scalars[0].wall_time == 0);

  // An empty file is an event file with no events.
  write_bytes(p, "");
  CHECK(read_event_file(p).scalars.empty());
}

TEST_CASE("tfevents: every truncation is reported with its record", "[tfevents]") {
  TempDir tmp;
  const std::string good = sample_file(tmp);
  const std::string b = read_bytes(good);
  REQUIRE(read_event_file(good).scalars.size() == 3);
  const std::string p = tmp / "cut";
  // TFRecord has no end marker, so a file cut between two records is a valid shorter
  // file; every other cut must be refused.
  std::vector<size_t> ends;
  for (size_t at = 0; at < b.size(); at += 12 + static_cast<unsigned char>(b[at]) + 4)
    ends.push_back(at + 12 + static_cast<unsigned char>(b[at]) + 4);
  REQUIRE(ends.size() == 4);
  REQUIRE(ends.front() == kVersionRecordBytes);
  REQUIRE(ends.back() == b.size());
  for (size_t n = 1; n < b.size(); ++n) {
    INFO("cut to " << n << " of " << b.size() << " bytes");
    write_bytes(p, b.substr(0, n));
    auto end = std::find(ends.begin(), ends.end(), n);
    if (end != ends.end()) {
      EventFile f = read_event_file(p);
      CHECK(f.file_version == "brain.Event:2");
      CHECK(f.scalars.size() == static_cast<size_t>(end - ends.begin()));
    } else if (n < kVersionRecordBytes) {
      REQUIRE_ERROR(read_event_file(p), DataFileError,
                    StartsWith(p + ": byte 0: record 0: ") && Contains("truncated"));
    } else {
      REQUIRE_ERROR(read_event_file(p), DataFileError,
                    StartsWith(p + ": byte ") && Contains(": record ") && Contains("truncated"));
    }
  }
  write_bytes(p, b.substr(0, kVersionRecordBytes + 5));
  REQUIRE_ERROR(read_event_file(p), DataFileError,
                StartsWith(p + ": byte 40: record 1: truncated: 5 bytes left"));
  write_bytes(p, b.substr(0, b.size() - 1));
  REQUIRE_ERROR(read_event_file(p), DataFileError,
                StartsWith(p + ": byte " + std::to_string(ends[2]) + ": record 3: ") &&
                    Contains("truncated: the record has 25 data bytes and a 4-byte CRC, but "
                             "only 28 bytes follow its header"));
  REQUIRE_ERROR(read_event_file(tmp / "missing"), DataFileError,
                StartsWith(tmp / "missing" + ": cannot open"));
  REQUIRE_ERROR(read_event_file(tmp.path.string()), DataFileError, Contains("is a folder"));
}

TEST_CASE("tfevents: every flipped byte is caught by a CRC", "[tfevents]") {
  TempDir tmp;
  const std::string good = sample_file(tmp);
  const std::string b = read_bytes(good);
  const std::string p = tmp / "flipped";
  for (size_t i = 0; i < b.size(); ++i) {
    INFO("byte " << i << " of " << b.size());
    std::string bad = b;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    write_bytes(p, bad);
    REQUIRE_ERROR(read_event_file(p), DataFileError,
                  StartsWith(p + ": byte ") && Contains(": record ") && Contains("CRC mismatch"));
  }
  // The message says which record and which CRC.
  std::string bad = b;
  bad[kVersionRecordBytes + 2] ^= 0x40;  // in record 1's length
  write_bytes(p, bad);
  REQUIRE_ERROR(read_event_file(p), DataFileError,
                StartsWith(p + ": byte 40: record 1: CRC mismatch on the length"));
  bad = b;
  bad[kVersionRecordBytes + 20] ^= 0x40;  // in record 1's data
  write_bytes(p, bad);
  REQUIRE_ERROR(read_event_file(p), DataFileError,
                StartsWith(p + ": byte 40: record 1: CRC mismatch on the data"));
}

TEST_CASE("tfevents: malformed Events and bad writes are refused", "[tfevents]") {
  TempDir tmp;
  const std::string p = tmp / "events.out.tfevents.1.h";
  const std::string good = frame(bytes_of({0x10, 1}));
  // Valid framing around bad protobuf: a cut varint, a field longer than the Event, a
  // group (field 4, wire type 3), a wall_time sent as a varint.
  const std::string bad_events[] = {bytes_of({0x10, 0x80}), bytes_of({0x1a, 5, 'a'}),
                                    bytes_of({0x23}), bytes_of({0x08, 1})};
  const char* reasons[] = {"truncated varint", "says 5 bytes but only 1 remain",
                           "unsupported wire type 3", "Event field 1 has wire type 0"};
  for (int i = 0; i < 4; ++i) {
    INFO(reasons[i]);
    write_bytes(p, good + frame(bad_events[i]));
    REQUIRE_ERROR(
        read_event_file(p), DataFileError,
        StartsWith(p + ": byte " + std::to_string(good.size()) + ": record 1: malformed Event: ") &&
            Contains(reasons[i]));
  }

  EventWriter w(tmp.path.string());
  REQUIRE_ERROR(w.scalar("", 1, 1), InternalError, Contains(w.path() + ": "));
  REQUIRE_ERROR(w.scalar("bad\xff", 1, 1), InternalError,
                Contains(w.path() + ": ") && Contains("not valid UTF-8"));
  REQUIRE_ERROR(w.scalar("\xc0\x80", 1, 1), InternalError, Contains("UTF-8"));  // overlong
  w.flush();
  CHECK(read_event_file(w.path()).scalars.empty());

  // A second writer in the same folder gets its own file.
  EventWriter w2(tmp.path.string());
  CHECK(w2.path() != w.path());

  // A folder that cannot be created (its parent is a file).
  write_bytes(tmp / "file", "x");
  REQUIRE_ERROR(EventWriter(tmp / "file/run"), UserError,
                StartsWith(tmp / "file/run" + ": cannot create the folder"));
}
