// TensorBoard event files: `nasc search` and `nasc train` write their per-epoch scalars
// (losses, accuracies, architecture statistics) here so that `tensorboard --logdir RUN`
// plots them live, and the tests read them back to check what was written.
//
// The few fields involved are encoded by hand: the runtime then needs no protobuf library
// or generated code. So that the encoding is not only checked by a reader written by the
// same hand (read_event_file, below), ctest also decodes a search's event file with code
// protoc generates from TensorBoard's schema (tests/tfevents_protoc_check.py). The
// format, also described in docs/search.md ("TensorBoard events"):
//
//   file     = record*                      (events.out.tfevents.<unix secs>.<hostname>)
//   record   = uint64 length (LE) | uint32 masked_crc32c(the 8 length bytes) |
//              data (length bytes: one serialized Event) | uint32 masked_crc32c(data)
//   masked_crc32c(b) = ((c >> 15) | (c << 17)) + 0xa282ead8, c = CRC32C(b), mod 2^32
//   CRC32C   = CRC-32 with the Castagnoli polynomial (reflected 0x82F63B78), init and
//              final xor 0xffffffff; crc32c("123456789") = 0xE3069283
//
//   Event         { double wall_time = 1 (fixed64); int64 step = 2 (varint);
//                   string file_version = 3; Summary summary = 5 }
//   Summary       { repeated Value value = 1 }
//   Summary.Value { string tag = 1; float simple_value = 2 (fixed32) }
//
// The first record is Event{wall_time, file_version: "brain.Event:2"}; each scalar is
// then one Event{wall_time, step, summary{value{tag, simple_value}}}. As proto3 does, a
// zero step is left out. simple_value is always written, zero included: it is a member
// of a oneof, and a Value without it would not be a scalar to TensorBoard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace nas {

// CRC32C (Castagnoli) of `bytes` bytes, and the TFRecord masking of a CRC (which keeps a
// CRC of data that itself contains CRCs from being trivially predictable).
uint32_t crc32c(const void* data, size_t bytes);
uint32_t mask_crc32c(uint32_t crc);

// Seconds since the Unix epoch, with sub-second precision (the wall_time of an Event).
double unix_time_now();

// Writes one event file into a folder. Writes are buffered: call flush() at the end of
// each epoch so that a running TensorBoard sees the new points. I/O errors throw a
// UserError naming the file.
class EventWriter {
 public:
  // Creates `dir` if needed and the file dir/events.out.tfevents.<secs>.<host> in it,
  // never replacing an existing one (a second writer in the same second gets a ".1"
  // suffix, which TensorBoard accepts: it reads every file whose name has "tfevents").
  // Writes the file_version event "brain.Event:2" and flushes it.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();  // flushes and closes; errors there are lost, so call flush() first
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // One Event holding Summary{value{tag, simple_value}}. `value` is stored as a float
  // (what TensorBoard's simple_value holds), so it is rounded to float precision.
  // An empty or non-UTF-8 `tag` is an InternalError (tags are nasc's metric names).
  void scalar(const std::string& tag, double value, int64_t step,
              double wall_time = unix_time_now());
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  [[noreturn]] void fail(const std::string& what);
  std::string path_;
  std::FILE* file_ = nullptr;
};

struct ScalarEvent {
  std::string tag;
  double value;  // the stored float, widened
  int64_t step;
  double wall_time;
};

struct EventFile {
  std::string file_version;          // "brain.Event:2" for files written above
  std::vector<ScalarEvent> scalars;  // in file order; one per simple_value
};

// Reads an event file back: checks the TFRecord framing (both masked CRC32Cs of every
// record) and decodes the Events. Events that are not scalars (graphs, images, tensor
// summaries) and unknown fields are skipped. Throws DataFileError naming the file, the
// record's byte offset and the record (counted from 0) on truncation, a CRC mismatch or a
// malformed Event.
EventFile read_event_file(const std::string& path);

}  // namespace nas
