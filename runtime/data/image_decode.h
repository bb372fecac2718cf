// PNG and JPEG decoding for image-folder data sets, with Debian's libpng and libjpeg
// (libjpeg-turbo): a whole file in memory to 8-bit pixels, one or three channels.
// Neither library may end the process or print on bad input, so their errors are caught
// (libjpeg's through its error manager) and thrown as DataError naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/dataset.h"

namespace nas {

struct DecodedImage {
  int64_t height = 0, width = 0;
  int channels = 0;             // 1 (gray) or 3 (RGB)
  std::vector<uint8_t> pixels;  // height * width * channels, interleaved (HWC)
};

// Whether `bytes` start like a PNG or a JPEG file.
bool looks_like_png(const std::string& bytes);
bool looks_like_jpeg(const std::string& bytes);

// Decodes a PNG or a JPEG (by its signature, not its name) to gray when the image has no
// colour, else to RGB, keeping the stored values as PIL reads them: palettes are
// expanded, gray below 8 bits scaled up, 16-bit samples keep their high byte, an alpha
// channel is dropped, and no gamma or colour profile is applied. `path` names the file in
// errors. Images over 2^26 pixels are refused before decoding. Throws DataError for
// anything else or corrupt data (libjpeg's corrupt-data warnings included).
DecodedImage decode_image(const std::string& bytes, const std::string& path);

// Encoders for tests and tools that make small data sets: 8-bit gray (channels 1) or RGB
// (channels 3) pixels, HWC. `quality` is JPEG's 1..100.
std::string encode_png(const DecodedImage& image);
std::string encode_jpeg(const DecodedImage& image, int quality = 95);

}  // namespace nas
