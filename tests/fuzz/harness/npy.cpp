// fuzz_npy: the .npy parser (read_npy) and the npy data-set folder (read_npy_folder,
// --data npy:DIR). The input is x.npy, then kNpySeparator, then y.npy, optionally followed
// by x_test.npy and y_test.npy in the same way; the files go to a fresh scratch folder,
// read against a few network input shapes (so that NCHW, NHWC and (N, H, W) all occur).
#include "runtime/data/npy.h"

#include <filesystem>
#include <optional>

#include "runtime/data/user_data.h"
#include "tests/fuzz/harness/dataset_checks.h"
#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

namespace {

const std::string kNpySeparator = "--npy--";

void check_array(const nas::NpyArray& a) {
  if (a.bytes.size() != a.numel() * a.item_size())
    bug("read_npy", "data bytes do not match the shape and dtype");
  for (int64_t d : a.shape)
    if (d < 0) bug("read_npy", "a negative dimension");
}

}  // namespace

bool fuzz_npy(const std::string& input) {
  const std::vector<std::string> parts = split_input(input, kNpySeparator);
  const std::string dir = scratch_dir() + "/npy";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  const char* names[] = {"x.npy", "y.npy", "x_test.npy", "y_test.npy"};
  for (size_t i = 0; i < parts.size() && i < 4; ++i)
    write_scratch(std::string("npy/") + names[i], parts[i]);
  bool any = false;
  for (size_t i = 0; i < parts.size() && i < 4; ++i) {
    std::optional<nas::NpyArray> a;
    if (accepted([&] { a = nas::read_npy(dir + "/" + names[i]); })) check_array(*a);
  }
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{1, 2, 2}, std::vector<int64_t>{3, 2, 2},
        std::vector<int64_t>{2, 2, 2}}) {
    std::optional<nas::UserData> u;
    if (!accepted([&] { u = nas::read_npy_folder(dir, shape); })) continue;
    if (u->train.sample_shape != shape) bug("read_npy_folder", "sample shape is not the input's");
    check_dataset(u->train, "read_npy_folder");
    if (u->test) check_dataset(*u->test, "read_npy_folder (test)");
    any = true;
  }
  return any;
}

}  // namespace nas_fuzz
