// A user's own data: the .npy reader (every malformed case), npy folders (NCHW, NHWC,
// (N, H, W), uint8 and float32, labels, test split), PNG/JPEG decoding (gray, RGB,
// corrupt and truncated files), image folders (class order, sizes, channels, stray files,
// train/test), and `nasc train --data npy:DIR | images:DIR` end to end.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "runtime/data/image_decode.h"
#include "runtime/data/loader.h"
#include "runtime/data/npy.h"
#include "runtime/data/user_data.h"
#include "tests/cli_test_util.h"
#include "tests/data_test_util.h"
#include "tests/npy_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;
using test::data_error;
using test::npy_file;
using test::raw_bytes;
using test::TempDir;
using test::write_bytes;

namespace {

#define REQUIRE_DATA_ERROR(expr, path, text) \
  REQUIRE_THAT(data_error([&] { (void)(expr); }), StartsWith((path) + ": ") && Contains(text))

std::string u8s(size_t n, int start = 0) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>((start + i) % 256);
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// .npy files

TEST_CASE("npy: numpy's files of versions 1, 2 and 3 read back", "[data][npy]") {
  TempDir tmp;
  const std::string p = tmp / "a.npy";
  for (int major : {1, 2, 3}) {
    write_bytes(p, npy_file("|u1", {2, 3}, u8s(6), major));
    NpyArray a = read_npy(p);
    CHECK(a.type == NpyType::U8);
    CHECK(a.shape == std::vector<int64_t>{2, 3});
    CHECK(npy_int(a, 5) == 5);
  }
  write_bytes(p, npy_file("<f4", {2}, raw_bytes(std::vector<float>{0.5f, -3.25f})));
  CHECK(npy_float(read_npy(p), 1) == -3.25f);
  write_bytes(p, npy_file("<i8", {2}, raw_bytes(std::vector<int64_t>{7, -1})));
  CHECK(npy_int(read_npy(p), 1) == -1);
  write_bytes(p, npy_file("<i4", {1}, raw_bytes(std::vector<int32_t>{-9})));
  CHECK(npy_int(read_npy(p), 0) == -9);
  // Double quotes, no trailing comma, a scalar, and Python 2's long literals are valid too.
  std::string f = npy_file("|u1", {}, u8s(1));
  write_bytes(p, f);
  CHECK(read_npy(p).shape.empty());
  std::string custom = "{\"descr\": \"|u1\", \"shape\": (2L,), \"fortran_order\": False}\n";
  std::string b =
      std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(custom.size()) + '\0' + custom + "ab";
  write_bytes(p, b);
  CHECK(read_npy(p).shape == std::vector<int64_t>{2});
}

TEST_CASE("npy: malformed files are DataErrors naming the byte", "[data][npy]") {
  TempDir tmp;
  const std::string p = tmp / "x.npy";
  auto expect = [&](const std::string& bytes, const std::string& text) {
    write_bytes(p, bytes);
    REQUIRE_DATA_ERROR(read_npy(p), p, text);
  };
  const std::string good = npy_file("|u1", {2, 3}, u8s(6));
  REQUIRE(read_npy((write_bytes(p, good), p)).numel() == 6);
  REQUIRE_DATA_ERROR(read_npy(tmp / "none.npy"), tmp / "none.npy", "no such file");
  REQUIRE_DATA_ERROR(read_npy(tmp.path.string()), tmp.path.string(), "not a regular file");
  expect("", "byte 0: not a .npy file");
  expect("PK\x03\x04zipzipzip", "byte 0: not a .npy file (it does not start with");
  expect(good.substr(0, 7), "truncated: the file ends inside the preamble");
  expect(good.substr(0, 9), "byte 8: truncated: the file ends inside the header length");
  std::string c = good;
  c[6] = 4;
  expect(c, "byte 6: unsupported .npy version 4.0");
  c = good;
  c[7] = 1;
  expect(c, "unsupported .npy version 1.1");
  c = good;
  c[8] = '\xff';
  c[9] = '\x7f';
  expect(c, "byte 8: the header length 32767 goes beyond the end of the file");
  c = good;
  c[good.find('\n')] = ' ';
  expect(c, "header: does not end with a line break");
  auto dict = [&](const std::string& d) {
    std::string h = d + "\n";
    return std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(h.size()) + '\0' + h;
  };
  expect(dict("{'descr': '|u1', 'fortran_order': False}"),
         "header: the header dict has no 'shape'");
  expect(dict("{'descr': '|u1', 'fortran_order': False, 'shape': (), 'extra': 1}"),
         "header: unknown key 'extra'");
  expect(dict("{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': ()}"),
         "header: the key 'descr' is given twice");
  expect(dict("{'descr': '|u1', 'fortran_order': false, 'shape': ()}"),
         "header: expected True or False, got 'f'");
  expect(dict("{'descr': '|u1', 'fortran_order': False, 'shape': (2, -3)}"),
         "header: expected a non-negative integer in the shape, got '-'");
  expect(dict("{'descr': '|u1', 'fortran_order': False, 'shape': (2; 3)}"),
         "expected ',' or ')' in the shape, got ';'");
  expect(dict("{'descr': '|u1, 'fortran_order': False, 'shape': ()}"), "header:");
  expect(dict("{'descr': '|u1'"), "expected ',' or '}' in the header dict, got the end");
  expect(dict("['descr']"), "header: expected '{', got '['");
  expect(dict("{'descr': '|u1', 'fortran_order': False, 'shape': ()} x"),
         "unexpected text after the header dict");
  expect(dict("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999,)}"),
         "a dimension of the shape is out of range");
  expect(npy_file(">f4", {1}, "abcd"),
         "unsupported dtype '>f4'; big-endian data: convert with "
         ".astype('<f4')");
  expect(npy_file("<f8", {1}, "abcdefgh"), "unsupported dtype '<f8'; nasc reads uint8");
  expect(npy_file("<U3", {1}, "abc"), "unsupported dtype '<U3'");
  expect(npy_file("|u1", {2, 3}, u8s(6), 1, true), "the array is in Fortran order");
  expect(npy_file("|u1", {2, 3}, u8s(5)),
         "truncated: shape (2, 3) of '|u1' needs 6 data bytes, the file has 5");
  expect(npy_file("<f4", {1u << 31, 1u << 31, 1u << 31}, u8s(4)), "needs over 2^64 data bytes");
  expect(npy_file("|u1", {2, 3}, u8s(8)), "2 unexpected bytes after the data of shape (2, 3)");
}

// ---------------------------------------------------------------------------------------
// npy folders

TEST_CASE("npy folder: layouts, dtypes and labels", "[data][npy]") {
  TempDir tmp;
  const std::string d = tmp.path.string();
  auto labels = [&](const std::string& name, std::vector<int64_t> v) {
    write_bytes(tmp / name, npy_file("<i8", {static_cast<int64_t>(v.size())}, raw_bytes(v)));
  };
  SECTION("NCHW uint8 is taken as it is") {
    write_bytes(tmp / "x.npy", npy_file("|u1", {2, 1, 2, 3}, u8s(12)));
    labels("y.npy", {1, 4});
    UserData u = read_npy_folder(d, {1, 2, 3});
    CHECK(u.train.sample_shape == std::vector<int64_t>{1, 2, 3});
    CHECK_FALSE(u.train.floats);
    CHECK(u.train.images == std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    CHECK(u.train.labels == std::vector<int32_t>{1, 4});
    CHECK(u.train.num_classes == 5);
    CHECK_FALSE(u.test.has_value());
  }
  SECTION("NHWC is transposed to CHW") {
    // One 2x2 image of 3 channels, pixel p channel c = 10 * p + c.
    std::string x;
    for (int p = 0; p < 4; ++p)
      for (int c = 0; c < 3; ++c) x += static_cast<char>(10 * p + c);
    write_bytes(tmp / "x.npy", npy_file("|u1", {1, 2, 2, 3}, x));
    write_bytes(tmp / "y.npy", npy_file("|u1", {1}, std::string(1, '\0')));
    UserData u = read_npy_folder(d, {3, 2, 2});
    CHECK(u.train.images == std::vector<uint8_t>{0, 10, 20, 30, 1, 11, 21, 31, 2, 12, 22, 32});
  }
  SECTION("(N, H, W) is one channel; int32 labels") {
    write_bytes(tmp / "x.npy", npy_file("|u1", {3, 2, 2}, u8s(12)));
    write_bytes(tmp / "y.npy", npy_file("<i4", {3}, raw_bytes(std::vector<int32_t>{0, 1, 0})));
    CHECK(read_npy_folder(d, {1, 2, 2}).train.size() == 3);
  }
  SECTION("when both layouts fit, NCHW wins") {
    write_bytes(tmp / "x.npy", npy_file("|u1", {1, 2, 2, 2}, u8s(8)));
    labels("y.npy", {0});
    CHECK(read_npy_folder(d, {2, 2, 2}).train.images ==
          std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7});
  }
  SECTION("float32 images are kept, unscaled, through the loader") {
    std::vector<float> v = {0.5f, -3.25f, 100.0f, 1e-3f, 2.0f, 3.0f, 4.0f, 5.0f};
    write_bytes(tmp / "x.npy", npy_file("<f4", {2, 1, 2, 2}, raw_bytes(v)));
    labels("y.npy", {0, 1});
    UserData u = read_npy_folder(d, {1, 2, 2});
    REQUIRE(u.train.floats);
    CHECK(u.train.images.empty());
    CHECK(u.train.float_images == v);
    LoaderOptions lo;
    lo.batch_size = 2;
    lo.shuffle = false;
    lo.train = false;
    lo.prefetch = false;
    Loader loader(u.train, {0, 1}, lo);
    loader.start_epoch(0);
    Batch b;
    REQUIRE(loader.next(b));
    CHECK(b.images == v);
    auto [mean, stdev] = channel_stats(u.train);
    CHECK(mean[0] == Approx((0.5 - 3.25 + 100 + 1e-3 + 14) / 8));
  }
  SECTION("a test split of its own") {
    write_bytes(tmp / "x.npy", npy_file("|u1", {2, 1, 1, 1}, u8s(2)));
    labels("y.npy", {0, 1});
    write_bytes(tmp / "x_test.npy", npy_file("|u1", {1, 1, 1, 1}, u8s(1)));
    labels("y_test.npy", {6});
    UserData u = read_npy_folder(d, {1, 1, 1});
    REQUIRE(u.test.has_value());
    CHECK(u.test->size() == 1);
    CHECK(u.train.num_classes == 7);  // the largest label of either split
    CHECK(u.test->num_classes == 7);
  }
}

TEST_CASE("npy folder: every mistake names the file", "[data][npy]") {
  TempDir tmp;
  const std::string d = tmp.path.string(), x = tmp / "x.npy", y = tmp / "y.npy";
  auto labels = [&](std::vector<int64_t> v) {
    write_bytes(y, npy_file("<i8", {static_cast<int64_t>(v.size())}, raw_bytes(v)));
  };
  REQUIRE_DATA_ERROR(read_npy_folder(tmp / "none", {1, 2, 2}), tmp / "none",
                     "no such folder (expected x.npy and y.npy in it)");
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 2, 2}), x, "no such file");
  write_bytes(x, npy_file("|u1", {2, 1, 2, 2}, u8s(8)));
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 2, 2}), y, "no such file");
  REQUIRE_DATA_ERROR(read_npy_folder(d, {10}), d,
                     "these are images [C, H, W], but the network's "
                     "input is [10]");
  labels({0, 1, 1});
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 2, 2}), y, "has 3 labels but " + x + " has 2 images");
  labels({0, -1});
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 2, 2}), y,
                     "label -1 of image 1 is out of range: labels are class indices");
  labels({0, 1});
  REQUIRE(read_npy_folder(d, {1, 2, 2}).train.size() == 2);
  // The shape against the network's input.
  REQUIRE_DATA_ERROR(read_npy_folder(d, {3, 2, 2}), x,
                     "shape (2, 1, 2, 2): as NCHW its images are [1,2,2], as NHWC [2,1,2], but "
                     "the network's input is [3,2,2]");
  write_bytes(x, npy_file("|u1", {2, 4}, u8s(8)));
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 2, 2}), x, "shape (2, 4): images need 4 dimensions");
  write_bytes(x, npy_file("|u1", {0, 1, 2, 2}, ""));
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 2, 2}), x, "has no images");
  // Dtypes.
  write_bytes(x, npy_file("<i8", {2, 1, 1, 1}, raw_bytes(std::vector<int64_t>{1, 2})));
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 1, 1}), x,
                     "holds '<i8' values; images must be uint8 ('|u1') or float32 ('<f4')");
  write_bytes(x,
              npy_file("<f4", {2, 1, 1, 1},
                       raw_bytes(std::vector<float>{1, std::numeric_limits<float>::quiet_NaN()})));
  REQUIRE_THAT(data_error([&] {
                 read_npy_folder(d, {1, 1, 1});
               }),
               StartsWith(x + ": byte 132: image 1 holds nan, not a finite number"));
  write_bytes(x, npy_file("|u1", {2, 1, 1, 1}, u8s(2)));
  write_bytes(y, npy_file("<f4", {2}, raw_bytes(std::vector<float>{0, 1})));
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 1, 1}), y, "labels must be integers");
  write_bytes(y, npy_file("<i8", {2, 1}, raw_bytes(std::vector<int64_t>{0, 1})));
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 1, 1}), y,
                     "shape (2, 1): labels are one integer per image, shape (N,)");
  labels({0, 1});
  // Half a test split, and a test split of another dtype.
  write_bytes(tmp / "x_test.npy", npy_file("<f4", {1, 1, 1, 1}, raw_bytes(std::vector<float>{1})));
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 1, 1}), tmp / "y_test.npy",
                     "no such file, but x_test.npy is there");
  write_bytes(tmp / "y_test.npy", npy_file("|u1", {1}, u8s(1)));
  REQUIRE_DATA_ERROR(read_npy_folder(d, {1, 1, 1}), tmp / "x_test.npy",
                     "its dtype differs from x.npy's");
}

// ---------------------------------------------------------------------------------------
// PNG and JPEG

TEST_CASE("images: PNG and JPEG decode, gray and RGB", "[data][images]") {
  for (int channels : {1, 3}) {
    DecodedImage img = test::test_image(5, 7, channels, 1, 2);
    DecodedImage png = decode_image(encode_png(img), "a.png");
    CHECK(png.height == 5);
    CHECK(png.width == 7);
    CHECK(png.channels == channels);
    CHECK(png.pixels == img.pixels);  // lossless
    DecodedImage jpg = decode_image(encode_jpeg(img, 100), "a.jpg");
    CHECK(jpg.channels == channels);
    REQUIRE(jpg.pixels.size() == img.pixels.size());
    int worst = 0;
    for (size_t i = 0; i < img.pixels.size(); ++i)
      worst = std::max(worst, std::abs(int{jpg.pixels[i]} - int{img.pixels[i]}));
    CHECK(worst < 40);  // lossy, but the same picture
  }
}

TEST_CASE("images: PNG's stored values are kept: 16-bit, alpha, palette", "[data][images]") {
  // The hand-written seeds of the fuzz corpus (tests/fuzz/README.md).
  auto seed = [](const std::string& name) {
    const std::string path = std::string(NASC_SOURCE_DIR) + "/tests/fuzz/corpus/images/" + name;
    return decode_image(test::slurp(path), path);
  };
  // 16-bit gray 0x1234, 0xffff: the high bytes, not a gamma-encoded 76 for 0x1234.
  DecodedImage g16 = seed("seed_gray16.png");
  CHECK(g16.channels == 1);
  CHECK(g16.pixels == std::vector<uint8_t>{0x12, 0xff});
  // RGBA: the alpha is dropped, the colour kept as stored.
  DecodedImage rgba = seed("seed_rgba.png");
  CHECK(rgba.channels == 3);
  CHECK(rgba.pixels == std::vector<uint8_t>{0x10, 0x20, 0x30, 0x50, 0x60, 0x70});
  // A palette of red and green.
  DecodedImage pal = seed("seed_palette.png");
  CHECK(pal.pixels == std::vector<uint8_t>{255, 0, 0, 0, 255, 0});
}

TEST_CASE("images: corrupt and truncated files are DataErrors", "[data][images]") {
  DecodedImage img = test::test_image(8, 8, 3, 0, 0);
  const std::string png = encode_png(img), jpg = encode_jpeg(img);
  REQUIRE_DATA_ERROR(decode_image("GIF89a....", "g.png"), std::string("g.png"),
                     "byte 0: neither a PNG nor a JPEG file");
  REQUIRE_DATA_ERROR(decode_image(png.substr(0, png.size() / 2), "t.png"), std::string("t.png"),
                     "corrupt PNG");
  std::string bad = png;
  bad[bad.size() - 20] ^= 0x55;  // inside the image data: its CRC no longer matches
  REQUIRE_DATA_ERROR(decode_image(bad, "c.png"), std::string("c.png"), "corrupt PNG");
  bad = png;
  bad[16] = '\x7f';  // the width: 2 billion pixels wide
  REQUIRE_THAT(data_error([&] { decode_image(bad, "w.png"); }), StartsWith("w.png: "));
  REQUIRE_DATA_ERROR(decode_image(jpg.substr(0, jpg.size() / 2), "t.jpg"), std::string("t.jpg"),
                     "corrupt or unsupported JPEG");
  REQUIRE_DATA_ERROR(decode_image(jpg.substr(0, 20), "h.jpg"), std::string("h.jpg"),
                     "corrupt or unsupported JPEG");
}

// ---------------------------------------------------------------------------------------
// Image folders

TEST_CASE("image folder: classes in name order, channels and splits", "[data][images]") {
  TempDir tmp;
  const std::string d = tmp.path.string();
  SECTION("class index = sorted folder name; PNG and JPEG mix; hidden files skipped") {
    test::write_image_folder(d, {"dog", "cat"}, 2, 4, 3, 1);
    test::write_image_folder(d, {"zebra"}, 1, 4, 3, 1, true);
    write_bytes(tmp / "cat/.DS_Store", "junk");
    UserData u = read_image_folder(d, {1, 4, 3});
    CHECK(u.train.num_classes == 3);
    CHECK(u.train.size() == 5);
    CHECK(u.train.labels == std::vector<int32_t>{0, 0, 1, 1, 2});  // cat, cat, dog, dog, zebra
    // cat is class 0 but was written as class 1 by test_image: its pixels say so.
    DecodedImage cat = test::test_image(4, 3, 1, 1, 0);
    CHECK(std::vector<uint8_t>(u.train.images.begin(), u.train.images.begin() + 12) == cat.pixels);
    CHECK_FALSE(u.test.has_value());
  }
  SECTION("RGB to CHW; gray images fill all three channels") {
    test::write_image_folder(d, {"a"}, 1, 2, 2, 3);
    test::write_image_folder(d, {"b"}, 1, 2, 2, 1);
    UserData u = read_image_folder(d, {3, 2, 2});
    DecodedImage rgb = test::test_image(2, 2, 3, 0, 0);
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 4; ++p) CHECK(u.train.images[c * 4 + p] == rgb.pixels[p * 3 + c]);
    DecodedImage gray = test::test_image(2, 2, 1, 0, 0);
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 4; ++p) CHECK(u.train.images[12 + c * 4 + p] == gray.pixels[p]);
  }
  SECTION("train/ and test/") {
    test::write_image_folder(d + "/train", {"a", "b"}, 3, 2, 2, 1);
    test::write_image_folder(d + "/test", {"a", "b"}, 1, 2, 2, 1);
    UserData u = read_image_folder(d, {1, 2, 2});
    CHECK(u.train.size() == 6);
    REQUIRE(u.test.has_value());
    CHECK(u.test->size() == 2);
    CHECK(u.test->labels == std::vector<int32_t>{0, 1});
    fs::rename(d + "/test/b", d + "/test/c");
    REQUIRE_DATA_ERROR(read_image_folder(d, {1, 2, 2}), d + "/test",
                       "its class folders (a, c) are not train/'s (a, b)");
  }
}

TEST_CASE("image folder: every mistake names the file or folder", "[data][images]") {
  TempDir tmp;
  const std::string d = tmp.path.string();
  REQUIRE_DATA_ERROR(read_image_folder(tmp / "none", {1, 2, 2}), tmp / "none", "no such folder");
  REQUIRE_DATA_ERROR(read_image_folder(d, {1, 2, 2}), d, "has no class sub-folders");
  fs::create_directories(d + "/a");
  REQUIRE_DATA_ERROR(read_image_folder(d, {1, 2, 2}), d + "/a", "has no images (an empty class)");
  test::write_image_folder(d, {"a", "b"}, 2, 2, 2, 1);
  REQUIRE(read_image_folder(d, {1, 2, 2}).train.size() == 4);
  // Sizes: against the network, and against each other.
  REQUIRE_DATA_ERROR(read_image_folder(d, {1, 3, 2}), d + "/a/0.png",
                     "the image is 2x2 (height x width), but the network's input is [1,3,2]");
  write_bytes(d + "/b/9.png", encode_png(test::test_image(2, 3, 1, 0, 0)));
  REQUIRE_DATA_ERROR(read_image_folder(d, {1, 2, 2}), d + "/b/9.png",
                     "the image is 2x3, but " + d +
                         "/a/0.png is 2x2: all images must have one "
                         "size");
  // Channels.
  write_bytes(d + "/b/9.png", encode_png(test::test_image(2, 2, 3, 0, 0)));
  REQUIRE_DATA_ERROR(read_image_folder(d, {1, 2, 2}), d + "/b/9.png",
                     "a colour image, but the network's input has 1 channel [1,2,2]");
  REQUIRE_DATA_ERROR(read_image_folder(d, {4, 2, 2}), d + "/a/0.png",
                     "image folders give 1 (gray) or 3 (RGB) channels");
  fs::remove(d + "/b/9.png");
  // Stray files and folders; corrupt images.
  write_bytes(d + "/b/notes.txt", "hello");
  REQUIRE_DATA_ERROR(read_image_folder(d, {1, 2, 2}), d + "/b/notes.txt",
                     "not a .png, .jpg or .jpeg file");
  fs::remove(d + "/b/notes.txt");
  fs::create_directories(d + "/b/more");
  REQUIRE_DATA_ERROR(read_image_folder(d, {1, 2, 2}), d + "/b/more", "a folder inside the class");
  fs::remove(d + "/b/more");
  write_bytes(d + "/README", "x");
  REQUIRE_DATA_ERROR(read_image_folder(d, {1, 2, 2}), d + "/README", "a file beside the class");
  fs::remove(d + "/README");
  write_bytes(d + "/a/broken.JPG", "\xff\xd8\xff\xe0 not really");
  REQUIRE_DATA_ERROR(read_image_folder(d, {1, 2, 2}), d + "/a/broken.JPG",
                     "corrupt or unsupported JPEG");
}

// ---------------------------------------------------------------------------------------
// nasc train on a user's data

namespace {

const char* kQuick = R"({"epochs": 1, "seed": 1, "threads": 1,
  "data": {"batch_size": 16, "eval_batch_size": 50}})";

// 1x28x28 images of 4 classes, each class a different brightness: learnable in an epoch.
void write_npy_data(const std::string& dir, bool floats_nhwc) {
  fs::create_directories(dir);
  const int n = 160;
  std::vector<int64_t> labels;
  std::string x;
  std::vector<float> xf;
  for (int i = 0; i < n; ++i) {
    labels.push_back(i % 4);
    for (int p = 0; p < 28 * 28; ++p) {
      const int v = (i % 4) * 60 + (p * 7 + i) % 20;
      x += static_cast<char>(v);
      xf.push_back(static_cast<float>(v) / 255.0f);
    }
  }
  write_bytes(dir + "/x.npy", floats_nhwc ? npy_file("<f4", {n, 28, 28, 1}, raw_bytes(xf))
                                          : npy_file("|u1", {n, 1, 28, 28}, x));
  write_bytes(dir + "/y.npy", npy_file("<i8", {n}, raw_bytes(labels)));
}

}  // namespace

TEST_CASE("nasc train --data npy:DIR and images:DIR train a network end to end",
          "[data][cli][train]") {
  const std::string cfg = test::scratch_path("user_cfg.json");
  std::ofstream(cfg) << kQuick;
  auto train = [&](const std::string& data, const std::string& out) {
    test::CliResult r =
        test::run_nasc("train examples/tiny.nas --arch examples/tiny_conv.json -c " + cfg +
                       " --data " + data + " -o " + out);
    INFO(r.err << r.out);
    REQUIRE(r.status == 0);
    CHECK(test::count_lines(out + "/metrics.jsonl") == 1);
    return nlohmann::json::parse(test::slurp(out + "/config.json"));
  };
  const std::string npy = test::scratch_path("user_npy"), npyf = test::scratch_path("user_npyf");
  write_npy_data(npy, false);
  write_npy_data(npyf, true);
  nlohmann::json c = train("npy:" + npy, test::scratch_path("user_npy_run"));
  CHECK(c["data"]["name"] == "npy");
  CHECK(c["data"]["dir"] == npy);
  train("npy:" + npyf, test::scratch_path("user_npyf_run"));
  // A search reads the same data (its weight and architecture halves come from the
  // training part).
  const std::string search = test::scratch_path("user_npy_search");
  test::CliResult r0 = test::run_nasc("search examples/tiny.nas -c " + cfg + " --data npy:" + npyf +
                                      " -o " + search);
  INFO(r0.err);
  CHECK(r0.status == 0);
  CHECK(fs::exists(search + "/arch.json"));

  const std::string images = test::scratch_path("user_images");
  test::write_image_folder(images, {"a", "b", "c"}, 20, 28, 28, 1);
  test::write_image_folder(images, {"d"}, 20, 28, 28, 1, true);
  c = train("images:" + images, test::scratch_path("user_images_run"));
  CHECK(c["data"]["name"] == "images");
  // The config's own data section works the same (and --resume reads it back).
  const std::string own = test::scratch_path("user_own.json");
  std::ofstream(own) << R"({"epochs": 1, "threads": 1, "data": {"name": "images", "dir": ")" +
                            images + R"(", "batch_size": 16}})";
  test::CliResult r = test::run_nasc("train examples/tiny.nas --arch examples/tiny_conv.json -c " +
                                     own + " -o " + test::scratch_path("user_own_run"));
  INFO(r.err);
  CHECK(r.status == 0);
}

TEST_CASE("nasc train --data npy:DIR | images:DIR: mistakes are exit 1 naming the file",
          "[data][cli][errors]") {
  auto fails = [](const std::string& args, const std::string& fragment) {
    test::CliResult r = test::run_nasc(args);
    INFO(args << "\n" << r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(fragment));
  };
  const std::string out = test::scratch_path("user_bad_run");
  const std::string tiny = "train examples/tiny.nas --arch examples/tiny_conv.json --epochs 1 ";
  fails(tiny + "--data npy: -o " + out, "--data npy:DIR needs the folder: holding x.npy and y.npy");
  fails(tiny + "--data images -o " + out, "--data takes fashion-mnist, cifar10:DIR, npy:DIR");
  fails(tiny + "--data npy:/nonexistent_npy -o " + out, "/nonexistent_npy: no such folder");
  const std::string npy = test::scratch_path("user_bad_npy");
  write_npy_data(npy, false);
  fails("train examples/mobilenet_v2.nas --data npy:" + npy + " -o " + out,
        npy + "/x.npy: shape (160, 1, 28, 28): as NCHW its images are [1,28,28]");
  const std::string images = test::scratch_path("user_bad_images");
  test::write_image_folder(images, {"a", "b"}, 2, 32, 32, 3);
  fails(tiny + "--data images:" + images + " -o " + out,
        images +
            "/a/0.png: the image is 32x32 (height x width), but the network's input is "
            "[1,28,28]");
  // More classes than the network's logits.
  const std::string many = test::scratch_path("user_many");
  std::vector<std::string> classes;
  for (int k = 0; k < 11; ++k) classes.push_back("c" + std::to_string(k));
  test::write_image_folder(many, classes, 2, 28, 28, 1);
  fails(tiny + "--data images:" + many + " -o " + out,
        "data.name: images:" + many + " has 11 classes but the network returns 10 logits");
  const std::string cfg = test::scratch_path("user_nodir.json");
  std::ofstream(cfg) << R"({"data": {"name": "npy"}})";
  fails(tiny + "-c " + cfg + " -o " + out,
        "data.dir: required for npy: the folder holding x.npy and y.npy");
}
