// fuzz_cifar: the CIFAR-10 binary reader (read_cifar10). An input without kCifarSeparator
// is test_batch.bin (the test split); one with it is the training split, its parts being
// data_batch_1.bin, data_batch_2.bin, ... (a part beyond the fifth is ignored, a missing
// one is a missing file).
#include <filesystem>
#include <optional>

#include "runtime/data/dataset.h"
#include "tests/fuzz/harness/dataset_checks.h"
#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

namespace {
const std::string kCifarSeparator = "--batch--";
}

bool fuzz_cifar(const std::string& input) {
  std::vector<std::string> parts = split_input(input, kCifarSeparator);
  const bool train = parts.size() > 1;
  // A fresh folder per input: files of an earlier input must not fill in missing ones.
  std::error_code ec;
  std::filesystem::remove_all(scratch_dir() + "/cifar", ec);
  if (train) {
    for (size_t i = 0; i < parts.size() && i < 5; ++i)
      write_scratch("cifar/data_batch_" + std::to_string(i + 1) + ".bin", parts[i]);
  } else {
    write_scratch("cifar/test_batch.bin", parts[0]);
  }
  std::optional<nas::Dataset> data;
  if (!accepted([&] { data = nas::read_cifar10(scratch_dir() + "/cifar", train); })) return false;
  check_dataset(*data, "read_cifar10");
  if (data->sample_shape != std::vector<int64_t>{3, 32, 32} || data->num_classes != 10)
    bug("read_cifar10", "not 3 x 32 x 32 with 10 classes");
  return true;
}

}  // namespace nas_fuzz
