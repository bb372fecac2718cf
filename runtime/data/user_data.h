// A user's own data: `--data npy:DIR` (NumPy arrays) and `--data images:DIR` (a folder of
// PNG/JPEG files per class). Both are read against the network's input shape [C, H, W],
// which decides the layout of the arrays and is checked with errors that name the file
// and its shape. The formats and conventions are documented in docs/data.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/data/dataset.h"

namespace nas {

struct UserData {
  Dataset train;
  // The folder's own test split (x_test.npy / y_test.npy, or images' test/); without one
  // the caller holds part of `train` out.
  std::optional<Dataset> test;
};

// DIR/x.npy: images, uint8 (kept as bytes, / 255 when batched) or float32 (kept as they
// are), shaped (N, C, H, W) or (N, H, W, C), or (N, H, W) for one channel: the layout
// whose [C, H, W] is the network's input is taken, NCHW when both are. DIR/y.npy: N
// integer labels (int64, int32 or uint8) >= 0. DIR/x_test.npy and DIR/y_test.npy, when
// present, are the test split. num_classes is the largest label + 1 (of both splits).
// Throws DataError naming the file (and byte) for a missing or malformed file, another
// dtype, a shape that fits neither layout, mismatched counts, a negative label, a NaN or
// infinite pixel.
UserData read_npy_folder(const std::string& dir, const std::vector<int64_t>& input_shape);

// DIR/<class>/<image>: one sub-folder per class, the class index being the folder's place
// in sorted (byte-wise) name order; PNG or JPEG files (.png, .jpg, .jpeg, any case), gray
// or colour, all of one size equal to the network's H x W. A network with 3 channels takes
// gray images as RGB (replicated); one with 1 channel refuses colour images. When DIR holds
// exactly the sub-folders train/ and test/, each is such a folder (same class names):
// the two splits. Hidden files (names starting with '.') are skipped; any other file is
// an error. Throws DataError naming the file or folder.
UserData read_image_folder(const std::string& dir, const std::vector<int64_t>& input_shape);

}  // namespace nas
