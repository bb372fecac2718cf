#include "runtime/train/checkpoint.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "runtime/train/kill_points.h"

namespace nas {

namespace fs = std::filesystem;

namespace {

std::string checkpoint_path(const std::string& dir) {
  return (fs::path(dir) / kCheckpointFileName).string();
}

[[noreturn]] void not_a_checkpoint(const std::string& path, const std::string& what) {
  throw TensorFileError(path, "not a valid checkpoint: " + what);
}

}  // namespace

void save_checkpoint(const std::string& dir, const Checkpoint& c) {
  const std::string path = checkpoint_path(dir);
  // The trainers fill the checkpoint: these are their invariants, not a user's input.
  NAS_CHECK(c.epoch >= 0 && c.global_step >= 0,
            path + ": epoch and global_step must be >= 0, got " + std::to_string(c.epoch) +
                " and " + std::to_string(c.global_step));
  NAS_CHECK(c.extra.is_object(),
            path + ": extra must be a JSON object, got " + std::string(c.extra.type_name()));
  NAS_CHECK(!c.params.find(kOptimizerStateTensor),
            path + ": a parameter is named \"" + std::string(kOptimizerStateTensor) +
                "\", which is reserved for the optimizer state");

  TensorFile f;
  f.meta = {{"kind", "nasc-checkpoint"},
            {"epoch", c.epoch},
            {"global_step", c.global_step},
            {"optimizer_state_bytes", c.optimizer_state.size()},
            {"extra", c.extra}};
  f.tensors = c.params.tensors;
  if (!c.optimizer_state.empty()) {
    // The bytes are copied into float words as they are: the file stores words in
    // little-endian order and the reader undoes that, so any byte sequence round-trips.
    NamedTensor blob;
    blob.name = kOptimizerStateTensor;
    blob.data.assign((c.optimizer_state.size() + 3) / 4, 0.0f);
    std::memcpy(blob.data.data(), c.optimizer_state.data(), c.optimizer_state.size());
    blob.shape = {static_cast<int64_t>(blob.data.size())};
    f.tensors.push_back(std::move(blob));
  }
  write_tensor_file(path, f, kill_point_in_checkpoint_write);
}

std::optional<Checkpoint> load_checkpoint(const std::string& dir) {
  const std::string path = checkpoint_path(dir);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  TensorFile f = read_tensor_file(path);
  auto fail = [&](const std::string& what) { not_a_checkpoint(path, what); };
  const nlohmann::json& m = f.meta;
  if (m.value("kind", nlohmann::json()) != "nasc-checkpoint")
    fail("meta.kind is not \"nasc-checkpoint\" (a weights file?)");
  auto get_count = [&](const char* key) -> int64_t {
    auto it = m.find(key);
    if (it == m.end() || !it->is_number_unsigned() ||
        it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      not_a_checkpoint(path,
                       std::string("meta.") + key + " is missing or not a non-negative integer");
    return it->get<int64_t>();
  };
  Checkpoint c;
  c.epoch = get_count("epoch");
  c.global_step = get_count("global_step");
  int64_t blob_bytes = get_count("optimizer_state_bytes");
  auto extra = m.find("extra");
  if (extra == m.end() || !extra->is_object()) fail("meta.extra is missing or not an object");
  c.extra = *extra;

  for (NamedTensor& t : f.tensors) {
    if (t.name != kOptimizerStateTensor) {
      c.params.tensors.push_back(std::move(t));
      continue;
    }
    if (static_cast<uint64_t>(blob_bytes) > t.data.size() * 4 ||
        static_cast<uint64_t>(blob_bytes) + 4 <= t.data.size() * 4)
      fail("the optimizer state tensor has " + std::to_string(t.data.size() * 4) +
           " bytes, meta says " + std::to_string(blob_bytes));
    c.optimizer_state.resize(static_cast<size_t>(blob_bytes));
    std::memcpy(c.optimizer_state.data(), t.data.data(), c.optimizer_state.size());
  }
  if (blob_bytes > 0 && c.optimizer_state.empty())
    fail("meta says " + std::to_string(blob_bytes) +
         " bytes of optimizer state, but the file has no \"" + kOptimizerStateTensor + "\"");
  return c;
}

}  // namespace nas
