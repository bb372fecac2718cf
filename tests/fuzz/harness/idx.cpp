// fuzz_idx: the IDX reader (read_idx, MNIST / Fashion-MNIST files, plain or gzip). The
// input is the images file, then kIdxSeparator, then the labels file; each is written to
// a scratch file and read with 10 classes and with "max label + 1" classes.
#include <optional>

#include "runtime/data/dataset.h"
#include "tests/fuzz/harness/dataset_checks.h"
#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

namespace {
const std::string kIdxSeparator = "--labels--";
}

bool fuzz_idx(const std::string& input) {
  std::vector<std::string> parts = split_input(input, kIdxSeparator);
  std::string images = write_scratch("images-idx3-ubyte", parts[0]);
  std::string labels = write_scratch("labels-idx1-ubyte", parts.size() > 1 ? parts[1] : "");
  bool any = false;
  for (int classes : {10, 0}) {
    std::optional<nas::Dataset> data;
    if (!accepted([&] { data = nas::read_idx(images, labels, classes); })) continue;
    check_dataset(*data, "read_idx");
    any = true;
  }
  return any;
}

}  // namespace nas_fuzz
