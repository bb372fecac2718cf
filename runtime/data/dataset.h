// In-memory image classification data sets and their readers: IDX (MNIST, Fashion-MNIST),
// CIFAR-10 binary, and synthetic data; plus the stratified train/validation split. A
// user's own data (.npy arrays, image folders) are read by user_data.h.
//
// Pixels stay as raw bytes (0..255) so that Fashion-MNIST costs 47 MB rather than 188 MB;
// the loader converts a batch to float (x / 255) when it is assembled. Float32 data (a
// user's .npy images) are kept as they are, in `float_images`, and used unscaled: turning
// them into bytes would quantise them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "support/errors.h"

namespace nas {

// A problem with a data set's files: a DataFileError naming the file (or folder), what is
// wrong, and the byte where a malformed file goes wrong ("t10k-labels-idx1-ubyte: byte
// 13: label 10 of sample 5 is out of range"; in a .gz file, a byte of the decompressed
// data). Its own type so that callers of the readers can catch just these.
class DataError : public DataFileError {
 public:
  using DataFileError::DataFileError;
};

struct Dataset {
  std::string name;                   // e.g. "fashion-mnist-train"; for messages and logs
  std::vector<int64_t> sample_shape;  // C, H, W
  int num_classes = 0;
  std::vector<uint8_t> images;  // N * C * H * W bytes, sample-major, CHW within a sample
  // With `floats`: the samples as float32 values, laid out as `images` (which is then
  // empty), fed to the network unscaled (no / 255).
  bool floats = false;
  std::vector<float> float_images;
  std::vector<int32_t> labels;  // N labels in [0, num_classes)

  size_t size() const { return labels.size(); }
  // Elements per sample: C * H * W.
  size_t sample_numel() const;
  const uint8_t* sample(size_t i) const { return images.data() + i * sample_numel(); }
  const float* float_sample(size_t i) const { return float_images.data() + i * sample_numel(); }
  // Sample i as floats in the network's scale: bytes / 255, or the float values as they are.
  void sample_to_float(size_t i, float* out) const;
};

// The Debian package dataset-fashion-mnist installs its IDX files here.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Reads an IDX image file (magic 0x00000803, N x H x W unsigned bytes) and an IDX label
// file (magic 0x00000801, N unsigned bytes). Both may be gzip-compressed or plain (zlib
// reads either). Samples get shape 1 x H x W. Labels must be < num_classes; num_classes 0
// means "max label + 1". Throws DataError on a missing file, a wrong magic number,
// truncated or trailing data, absurd dimensions (over 2^31 bytes) or mismatched counts.
Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 int num_classes = 10);

// Fashion-MNIST from `dir`: train-{images-idx3,labels-idx1}-ubyte[.gz] (60000 samples) or
// t10k-... (10000 samples); 1 x 28 x 28, 10 classes.
Dataset load_fashion_mnist(bool train, const std::string& dir = kFashionMnistDir);

// CIFAR-10, binary version: data_batch_1..5.bin (train, 50000) or test_batch.bin (test,
// 10000) in `dir` or in `dir`/cifar-10-batches-bin. Each record is 1 label byte + 3072
// pixel bytes (R, G, B planes of 32 x 32), so samples are 3 x 32 x 32, 10 classes.
Dataset read_cifar10(const std::string& dir, bool train);

// n samples of the given C,H,W shape, labels balanced over `classes` (sample i has
// class i % classes before a seeded shuffle). Each class has a fixed random prototype
// image (bytes 0..255); a sample is its prototype plus uniform noise in [-48, 48],
// clamped to 0..255. Classes are therefore separable (a nearest-prototype rule is almost
// always right) yet not trivial. The same arguments give the same bytes on every platform.
Dataset make_synthetic(size_t n, const std::vector<int64_t>& shape, int classes, uint64_t seed);

// Splits the indices 0..N-1 per class: a class with n samples gives round(n * portion)
// to the first (train) part, chosen by a seeded shuffle, and the rest to the second.
// Both parts are sorted ascending, disjoint and together cover every index. 0 <
// train_portion < 1 is a precondition (NAS_CHECK).
std::pair<std::vector<size_t>, std::vector<size_t>> split_stratified(const Dataset& data,
                                                                     double train_portion,
                                                                     uint64_t seed);

// Per-channel mean and standard deviation of the samples `indices` (all when empty),
// in the scale the loader feeds to Augment::mean / Augment::std: [0, 1] for byte data,
// the values themselves for float data.
std::pair<std::vector<float>, std::vector<float>> channel_stats(
    const Dataset& data, const std::vector<size_t>& indices = {});

}  // namespace nas
