#include "runtime/data/user_data.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/data/image_decode.h"
#include "runtime/data/npy.h"

namespace nas {

namespace fs = std::filesystem;

namespace {

// As for the other readers: the whole data set in memory, refused beyond 2^31 bytes (of
// bytes or of floats) before it is allocated.
constexpr uint64_t kMaxBytes = uint64_t{1} << 31;
// No image file of a training set comes close; a bigger one is not read into memory.
constexpr uint64_t kMaxImageFileBytes = uint64_t{256} << 20;

std::string shape_str(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ","));
}

std::string tuple_str(const std::vector<int64_t>& s) {
  return fmt::format("({}{})", fmt::join(s, ", "), s.size() == 1 ? "," : "");
}

void require_folder(const std::string& dir, const std::string& expected) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(dir, "no such folder (" + expected + ")");
}

void check_input_shape(const std::string& what, const std::vector<int64_t>& input_shape) {
  if (input_shape.size() != 3)
    throw DataError(
        what, "these are images [C, H, W], but the network's input is " + shape_str(input_shape));
}

// --- npy ---------------------------------------------------------------------------------

// The images of x.npy as a Dataset with no labels yet, CHW per sample.
Dataset npy_images(const std::string& path, const std::vector<int64_t>& input_shape) {
  const NpyArray x = read_npy(path);
  if (x.type != NpyType::U8 && x.type != NpyType::F32)
    throw DataError(
        path, "holds '" + x.descr + "' values; images must be uint8 ('|u1') or float32 ('<f4')");
  const std::vector<int64_t>& s = x.shape;
  const int64_t c = input_shape[0], h = input_shape[1], w = input_shape[2];
  bool nhwc = false;
  if (s.size() == 3 && c == 1 && s[1] == h && s[2] == w) {
    // (N, H, W): one channel.
  } else if (s.size() == 4 && s[1] == c && s[2] == h && s[3] == w) {
    // NCHW, also when NHWC would fit too (PyTorch's layout wins the tie).
  } else if (s.size() == 4 && s[3] == c && s[1] == h && s[2] == w) {
    nhwc = true;
  } else {
    std::string reading;
    if (s.size() == 4)
      reading = fmt::format("as NCHW its images are [{},{},{}], as NHWC [{},{},{}]", s[1], s[2],
                            s[3], s[3], s[1], s[2]);
    else if (s.size() == 3)
      reading = fmt::format("as (N, H, W) its images are [1,{},{}]", s[1], s[2]);
    else
      reading = "images need 4 dimensions, (N, C, H, W) or (N, H, W, C), or 3 for one channel";
    throw DataError(path, fmt::format("shape {}: {}, but the network's input is {}", tuple_str(s),
                                      reading, shape_str(input_shape)));
  }
  Dataset d;
  d.sample_shape = input_shape;
  d.floats = x.type == NpyType::F32;
  const size_t n = static_cast<size_t>(s[0]);
  if (n == 0) throw DataError(path, "has no images (shape " + tuple_str(s) + ")");
  const size_t numel = d.sample_numel(), plane = static_cast<size_t>(h * w);
  if (x.bytes.size() > kMaxBytes)
    throw DataError(path,
                    fmt::format("{} bytes of images, over the 2^31-byte limit", x.bytes.size()));
  // Element e of sample i in CHW order, from wherever the file's layout keeps it.
  auto source = [&](size_t i, size_t e) {
    if (!nhwc) return i * numel + e;
    const size_t ch = e / plane, px = e % plane;
    return i * numel + px * static_cast<size_t>(c) + ch;
  };
  if (d.floats) {
    d.float_images.resize(n * numel);
    for (size_t i = 0; i < n; ++i)
      for (size_t e = 0; e < numel; ++e) {
        const size_t k = source(i, e);
        const float v = npy_float(x, k);
        if (!std::isfinite(v))
          throw DataError(path, fmt::format("image {} holds {}, not a finite number", i, v),
                          static_cast<long long>(x.data_offset + 4 * k));
        d.float_images[i * numel + e] = v;
      }
  } else {
    d.images.resize(n * numel);
    for (size_t i = 0; i < n; ++i)
      for (size_t e = 0; e < numel; ++e) d.images[i * numel + e] = x.bytes[source(i, e)];
  }
  return d;
}

// The labels of y.npy for `images` images read from `x_path`.
std::vector<int32_t> npy_labels(const std::string& path, size_t images, const std::string& x_path) {
  const NpyArray y = read_npy(path);
  if (y.type == NpyType::F32)
    throw DataError(
        path, "holds '" + y.descr + "' values; labels must be integers: int64, int32 or uint8");
  if (y.shape.size() != 1)
    throw DataError(
        path, "shape " + tuple_str(y.shape) + ": labels are one integer per image, shape (N,)");
  if (static_cast<size_t>(y.shape[0]) != images)
    throw DataError(path,
                    fmt::format("has {} labels but {} has {} images", y.shape[0], x_path, images));
  std::vector<int32_t> labels(images);
  for (size_t i = 0; i < images; ++i) {
    const int64_t v = npy_int(y, i);
    if (v < 0 || v >= (int64_t{1} << 20))
      throw DataError(path,
                      fmt::format("label {} of image {} is out of range: labels are class "
                                  "indices 0, 1, 2, ... (below 2^20)",
                                  v, i),
                      static_cast<long long>(y.data_offset + i * y.item_size()));
    labels[i] = static_cast<int32_t>(v);
  }
  return labels;
}

Dataset npy_split(const std::string& dir, const std::string& x_name, const std::string& y_name,
                  const std::vector<int64_t>& input_shape) {
  const std::string x_path = (fs::path(dir) / x_name).string();
  const std::string y_path = (fs::path(dir) / y_name).string();
  Dataset d = npy_images(x_path, input_shape);
  const size_t n =
      d.floats ? d.float_images.size() / d.sample_numel() : d.images.size() / d.sample_numel();
  d.labels = npy_labels(y_path, n, x_path);
  return d;
}

int label_classes(const Dataset& d) {
  int32_t top = -1;
  for (int32_t l : d.labels) top = std::max(top, l);
  return top + 1;
}

// --- image folders ------------------------------------------------------------------------

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool hidden(const fs::path& p) {
  return p.filename().string().rfind('.', 0) == 0;
}

// The entries of `dir` but hidden ones, sorted by name.
std::vector<fs::path> listing(const std::string& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (!hidden(it->path())) out.push_back(it->path());
  if (ec) throw DataError(dir, "cannot list the folder (" + ec.message() + ")");
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_image_file(const fs::path& p) {
  std::error_code ec;
  const uint64_t size = fs::file_size(p, ec);
  if (ec) throw DataError(p.string(), "cannot read the file size (" + ec.message() + ")");
  if (size > kMaxImageFileBytes)
    throw DataError(p.string(), fmt::format("is {} bytes, over the 256 MiB an image file may "
                                            "take",
                                            size));
  std::ifstream in(p, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in && !in.eof()) throw DataError(p.string(), "cannot read the file");
  return buf.str();
}

// Reads the class folders of `root` into a Dataset; `classes` gets their names.
class ImageFolderReader {
 public:
  ImageFolderReader(const std::vector<int64_t>& input_shape) : shape_(input_shape) {}

  Dataset read(const std::string& root, std::vector<std::string>& classes) {
    Dataset d;
    d.sample_shape = shape_;
    classes.clear();
    for (const fs::path& p : listing(root)) {
      std::error_code ec;
      if (!fs::is_directory(p, ec))
        throw DataError(p.string(),
                        "a file beside the class folders: an image folder holds one "
                        "sub-folder per class, with the images inside");
      classes.push_back(p.filename().string());
    }
    if (classes.empty())
      throw DataError(root, "has no class sub-folders (one folder of images per class)");
    for (size_t k = 0; k < classes.size(); ++k) read_class(root, classes[k], k, d);
    d.num_classes = static_cast<int>(classes.size());
    return d;
  }

 private:
  void read_class(const std::string& root, const std::string& name, size_t k, Dataset& d) {
    const fs::path folder = fs::path(root) / name;
    size_t count = 0;
    for (const fs::path& p : listing(folder.string())) {
      std::error_code ec;
      const std::string ext = lower(p.extension().string());
      if (fs::is_directory(p, ec))
        throw DataError(p.string(), "a folder inside the class folder " + folder.string() +
                                        " (class folders hold image files only)");
      if (ext != ".png" && ext != ".jpg" && ext != ".jpeg")
        throw DataError(p.string(),
                        "not a .png, .jpg or .jpeg file (class folders hold image "
                        "files only; names starting with '.' are skipped)");
      add_image(p.string(), decode_image(read_image_file(p), p.string()), d);
      d.labels.push_back(static_cast<int32_t>(k));
      ++count;
    }
    if (count == 0) throw DataError(folder.string(), "has no images (an empty class)");
  }

  void add_image(const std::string& path, const DecodedImage& img, Dataset& d) {
    const int64_t c = shape_[0], h = shape_[1], w = shape_[2];
    if (first_.empty()) {
      first_ = path;
      if (img.height != h || img.width != w)
        throw DataError(path, fmt::format("the image is {}x{} (height x width), but the network's "
                                          "input is {}",
                                          img.height, img.width, shape_str(shape_)));
    } else if (img.height != h || img.width != w) {
      throw DataError(path, fmt::format("the image is {}x{}, but {} is {}x{}: all images must "
                                        "have one size",
                                        img.height, img.width, first_, h, w));
    }
    if (c != 1 && c != 3)
      throw DataError(path, fmt::format("image folders give 1 (gray) or 3 (RGB) channels, but the "
                                        "network's input is {}",
                                        shape_str(shape_)));
    if (c == 1 && img.channels == 3)
      throw DataError(path, "a colour image, but the network's input has 1 channel " +
                                shape_str(shape_) + " (convert the images to gray)");
    const size_t plane = static_cast<size_t>(h * w), numel = plane * static_cast<size_t>(c);
    if (d.images.size() + numel > kMaxBytes)
      throw DataError(path, "the images exceed the 2^31-byte limit of a data set");
    const size_t at = d.images.size();
    d.images.resize(at + numel);
    // HWC to CHW; a gray image fills every channel.
    for (size_t px = 0; px < plane; ++px)
      for (size_t ch = 0; ch < static_cast<size_t>(c); ++ch)
        d.images[at + ch * plane + px] =
            img.pixels[px * static_cast<size_t>(img.channels) + (img.channels == 1 ? 0 : ch)];
  }

  std::vector<int64_t> shape_;
  std::string first_;  // the first image read, for the size message
};

}  // namespace

UserData read_npy_folder(const std::string& dir, const std::vector<int64_t>& input_shape) {
  require_folder(dir, "expected x.npy and y.npy in it");
  check_input_shape(dir, input_shape);
  UserData u;
  u.train = npy_split(dir, "x.npy", "y.npy", input_shape);
  u.train.name = "npy-train";
  std::error_code ec;
  const bool x_test = fs::exists(fs::path(dir) / "x_test.npy", ec);
  const bool y_test = fs::exists(fs::path(dir) / "y_test.npy", ec);
  if (x_test != y_test)
    throw DataError((fs::path(dir) / (x_test ? "y_test.npy" : "x_test.npy")).string(),
                    std::string("no such file, but ") + (x_test ? "x_test.npy" : "y_test.npy") +
                        " is there (the test split needs both)");
  int classes = label_classes(u.train);
  if (x_test) {
    u.test = npy_split(dir, "x_test.npy", "y_test.npy", input_shape);
    u.test->name = "npy-test";
    if (u.test->floats != u.train.floats)
      throw DataError((fs::path(dir) / "x_test.npy").string(),
                      "its dtype differs from x.npy's (one is uint8, the other float32)");
    classes = std::max(classes, label_classes(*u.test));
    u.test->num_classes = classes;
  }
  u.train.num_classes = classes;
  return u;
}

UserData read_image_folder(const std::string& dir, const std::vector<int64_t>& input_shape) {
  require_folder(dir, "expected one sub-folder of images per class");
  check_input_shape(dir, input_shape);
  std::vector<fs::path> top = listing(dir);
  const bool splits = top.size() == 2 && top[0].filename() == "test" &&
                      top[1].filename() == "train" && fs::is_directory(top[0]) &&
                      fs::is_directory(top[1]);
  ImageFolderReader reader(input_shape);
  UserData u;
  std::vector<std::string> classes;
  if (!splits) {
    u.train = reader.read(dir, classes);
    u.train.name = "images-train";
    return u;
  }
  u.train = reader.read((fs::path(dir) / "train").string(), classes);
  u.train.name = "images-train";
  std::vector<std::string> test_classes;
  u.test = reader.read((fs::path(dir) / "test").string(), test_classes);
  u.test->name = "images-test";
  if (test_classes != classes)
    throw DataError((fs::path(dir) / "test").string(),
                    fmt::format("its class folders ({}) are not train/'s ({}): the class index "
                                "is the folder's place in name order, so both need the same",
                                fmt::join(test_classes, ", "), fmt::join(classes, ", ")));
  return u;
}

}  // namespace nas
