// Writers of small user data sets for tests: .npy files as numpy.save writes them (and
// variants a test breaks on purpose), and folders of PNG/JPEG images per class.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/data/image_decode.h"
#include "tests/file_test_util.h"

namespace nas::test {

// A .npy file: magic, version major.0, the header dict padded with spaces to a multiple of
// 64 bytes with its closing '\n' (numpy's own layout), then `data` as given.
inline std::string npy_file(const std::string& descr, const std::vector<int64_t>& shape,
                            const std::string& data, int major = 1, bool fortran = false) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                     ", 'shape': (" + dims + "), }";
  const size_t len_bytes = major == 1 ? 2 : 4;
  const size_t pre = 8 + len_bytes;
  size_t total = pre + dict.size() + 1;
  total = (total + 63) / 64 * 64;
  dict.resize(total - pre - 1, ' ');
  dict += '\n';
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  for (size_t i = 0; i < len_bytes; ++i) out += static_cast<char>((dict.size() >> (8 * i)) & 0xff);
  return out + dict + data;
}

template <typename T>
std::string raw_bytes(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(&s[0], v.data(), s.size());
  return s;
}

// An image whose pixels are a function of (class, sample, position), so classes differ.
inline DecodedImage test_image(int64_t h, int64_t w, int channels, int cls, int sample) {
  DecodedImage img;
  img.height = h;
  img.width = w;
  img.channels = channels;
  for (int64_t i = 0; i < h * w * channels; ++i)
    img.pixels.push_back(static_cast<uint8_t>((cls * 90 + (i % 7) * 9 + sample * 3) % 256));
  return img;
}

// DIR/<class>/<i>.png (or .jpg): `per_class` images of each class.
inline void write_image_folder(const std::string& dir, const std::vector<std::string>& classes,
                               int per_class, int64_t h, int64_t w, int channels,
                               bool jpeg = false) {
  for (size_t c = 0; c < classes.size(); ++c) {
    std::filesystem::create_directories(dir + "/" + classes[c]);
    for (int i = 0; i < per_class; ++i) {
      DecodedImage img = test_image(h, w, channels, static_cast<int>(c), i);
      write_bytes(dir + "/" + classes[c] + "/" + std::to_string(i) + (jpeg ? ".jpg" : ".png"),
                  jpeg ? encode_jpeg(img) : encode_png(img));
    }
  }
}

}  // namespace nas::test
