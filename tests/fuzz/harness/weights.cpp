// fuzz_weights: the weights file reader (read_tensor_file) and the checkpoint reader
// (load_checkpoint, a weights file with checkpoint metadata), on the same input. What
// either accepts must write back and read back unchanged: the file is the product of
// hours of training, so a round trip that loses or alters anything is a bug.
#include <cstring>
#include <optional>

#include "runtime/train/checkpoint.h"
#include "runtime/train/tensor_file.h"
#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

namespace {

// Bitwise, so that NaN payloads count as data to keep.
bool same_tensors(const nas::TensorFile& a, const nas::TensorFile& b) {
  if (a.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const nas::NamedTensor &x = a.tensors[i], &y = b.tensors[i];
    if (x.name != y.name || x.shape != y.shape || x.data.size() != y.data.size()) return false;
    if (!x.data.empty() && std::memcmp(x.data.data(), y.data.data(), x.data.size() * 4) != 0)
      return false;
  }
  return true;
}

void check_tensor_file(const nas::TensorFile& f) {
  if (!f.meta.is_object()) bug("read_tensor_file", "meta is not an object");
  for (const nas::NamedTensor& t : f.tensors) {
    if (t.name.empty()) bug("read_tensor_file", "a tensor without a name");
    size_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 1) bug("read_tensor_file", "tensor '" + t.name + "' has a dim < 1");
      n *= static_cast<size_t>(d);
    }
    if (n != t.data.size()) bug("read_tensor_file", "tensor '" + t.name + "': shape != data");
    if (f.find(t.name) != &t) bug("read_tensor_file", "two tensors named '" + t.name + "'");
  }
}

void round_trip_weights(const nas::TensorFile& f) {
  const std::string path = scratch_dir() + "/written-weights";
  nas::write_tensor_file(path, f);
  std::optional<nas::TensorFile> back;
  if (!accepted([&] { back = nas::read_tensor_file(path); }))
    bug("weights round trip", "write_tensor_file wrote a file read_tensor_file refuses");
  if (!same_tensors(f, *back) || f.meta != back->meta)
    bug("weights round trip", "the file read back differs from the one written");
}

void round_trip_checkpoint(const nas::Checkpoint& c) {
  const std::string dir = scratch_dir() + "/written-checkpoint";
  write_scratch("written-checkpoint/.keep", "");
  nas::save_checkpoint(dir, c);
  std::optional<nas::Checkpoint> back;
  if (!accepted([&] { back = nas::load_checkpoint(dir); }) || !back)
    bug("checkpoint round trip", "save_checkpoint wrote a file load_checkpoint refuses");
  if (back->epoch != c.epoch || back->global_step != c.global_step ||
      back->optimizer_state != c.optimizer_state || back->extra != c.extra ||
      !same_tensors(c.params, back->params))
    bug("checkpoint round trip", "the checkpoint read back differs from the one saved");
}

}  // namespace

bool fuzz_weights(const std::string& input) {
  const std::string path = write_scratch("run/checkpoint", input);
  std::optional<nas::TensorFile> weights;
  bool any = false;
  if (accepted([&] { weights = nas::read_tensor_file(path); })) {
    check_tensor_file(*weights);
    round_trip_weights(*weights);
    any = true;
  }
  std::optional<nas::Checkpoint> checkpoint;
  if (accepted([&] { checkpoint = nas::load_checkpoint(scratch_dir() + "/run"); })) {
    if (!checkpoint) bug("load_checkpoint", "no checkpoint although the file exists");
    if (!weights) bug("load_checkpoint", "accepted a file read_tensor_file refuses");
    if (checkpoint->epoch < 0 || checkpoint->global_step < 0)
      bug("load_checkpoint", "negative epoch or step");
    check_tensor_file(checkpoint->params);
    round_trip_checkpoint(*checkpoint);
    any = true;
  }
  return any;
}

}  // namespace nas_fuzz
