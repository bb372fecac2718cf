#include "runtime/data/dataset.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "support/rng.h"

namespace nas {

namespace fs = std::filesystem;

namespace {

// Refuse anything larger before allocating: a corrupt header must not turn into a 40 GB
// allocation (or an overflowed small one).
constexpr uint64_t kMaxBytes = uint64_t{1} << 31;

constexpr uint32_t kIdxImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension

void require_file(const std::string& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (!fs::exists(st)) throw DataError(path, "no such file");
  if (!fs::is_regular_file(st)) throw DataError(path, "not a regular file");
}

// A gzip-or-plain input file; gzread passes plain files through unchanged.
class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)) {
    require_file(path_);
    f_ = gzopen(path_.c_str(), "rb");
    if (!f_) throw DataError(path_, "cannot open file");
  }
  ~GzReader() {
    if (f_) gzclose(f_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; returns how many were read (fewer only at the end of the file).
  size_t read(void* dst, size_t n) {
    size_t total = 0;
    auto* p = static_cast<unsigned char*>(dst);
    while (total < n) {
      // gzread takes an unsigned count; read in chunks of 1 GiB.
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - total, size_t{1} << 30));
      int got = gzread(f_, p + total, chunk);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(f_, &err);
        throw DataError(
            path_, fmt::format("corrupt or unreadable gzip data ({})", msg ? msg : "unknown error"),
            static_cast<long long>(pos_ + total));
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    pos_ += total;
    return total;
  }

  void read_exact(void* dst, size_t n, const char* what) {
    size_t got = read(dst, n);
    if (got != n)
      throw DataError(path_, fmt::format("truncated {}: expected {} bytes, got {}", what, n, got),
                      static_cast<long long>(pos_));
  }

  // read_exact into `out`, grown as the data arrives: a header claiming 2 GB of a short
  // file must not allocate 2 GB before the read comes up short.
  void read_exact_into(std::vector<uint8_t>& out, uint64_t n, const char* what) {
    constexpr uint64_t kChunk = uint64_t{1} << 20;
    out.clear();
    while (out.size() < n) {
      size_t at = out.size();
      size_t want = static_cast<size_t>(std::min(n - at, kChunk));
      out.resize(at + want);
      size_t got = read(out.data() + at, want);
      out.resize(at + got);
      if (got != want)
        throw DataError(path_,
                        fmt::format("truncated {}: expected {} bytes, got {}", what, n, out.size()),
                        static_cast<long long>(pos_));
    }
  }

  uint32_t read_be32(const char* what) {
    unsigned char b[4];
    read_exact(b, 4, what);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }

  // The IDX format has no trailing data; extra bytes mean the header dimensions are wrong.
  void expect_end() {
    unsigned char buf[4096];
    const uint64_t end = pos_;
    size_t extra = 0, got;
    while ((got = read(buf, sizeof buf)) > 0) extra += got;
    if (extra > 0)
      throw DataError(path_,
                      fmt::format("{} unexpected bytes after the data (the header dimensions do "
                                  "not match the file)",
                                  extra),
                      static_cast<long long>(end));
  }

 private:
  std::string path_;
  gzFile f_ = nullptr;
  uint64_t pos_ = 0;  // bytes read so far (of the decompressed data for a .gz file)
};

void check_magic(const std::string& path, uint32_t got, uint32_t expected, const char* kind) {
  if (got == expected) return;
  std::string hint;
  if (got == kIdxImagesMagic) hint = " (this is an IDX images file)";
  if (got == kIdxLabelsMagic) hint = " (this is an IDX labels file)";
  if ((got >> 16) == 0x1f8b) hint = " (gzip data that zlib did not decompress)";
  throw DataError(path,
                  fmt::format("wrong magic number 0x{:08x}, expected 0x{:08x} for an IDX {} file{}",
                              got, expected, kind, hint),
                  0);
}

}  // namespace

size_t Dataset::sample_numel() const {
  size_t n = 1;
  for (int64_t d : sample_shape) n *= static_cast<size_t>(d);
  return n;
}

void Dataset::sample_to_float(size_t i, float* out) const {
  const size_t numel = sample_numel();
  if (floats) {
    std::copy(float_sample(i), float_sample(i) + numel, out);
    return;
  }
  const uint8_t* src = sample(i);
  for (size_t e = 0; e < numel; ++e) out[e] = static_cast<float>(src[e]) / 255.0f;
}

Dataset read_idx(const std::string& images_path, const std::string& labels_path, int num_classes) {
  Dataset ds;
  uint32_t n_images = 0, rows = 0, cols = 0;
  {
    GzReader in(images_path);
    check_magic(images_path, in.read_be32("header"), kIdxImagesMagic, "images");
    n_images = in.read_be32("header");
    rows = in.read_be32("header");
    cols = in.read_be32("header");
    if (rows == 0 || cols == 0)
      throw DataError(images_path, fmt::format("image size {}x{} is empty", rows, cols), 8);
    uint64_t total = uint64_t{n_images} * rows;  // < 2^64: both factors are < 2^32
    if (total > kMaxBytes || total * cols > kMaxBytes)
      throw DataError(images_path,
                      fmt::format("header claims {} images of {}x{}, over the 2^31-byte limit; "
                                  "the header is probably corrupt",
                                  n_images, rows, cols),
                      4);
    total *= cols;
    in.read_exact_into(ds.images, total, "pixel data");
    in.expect_end();
  }
  std::vector<uint8_t> raw_labels;
  {
    GzReader in(labels_path);
    check_magic(labels_path, in.read_be32("header"), kIdxLabelsMagic, "labels");
    uint32_t n_labels = in.read_be32("header");
    if (n_labels != n_images)
      throw DataError(
          labels_path,
          fmt::format("has {} labels but {} has {} images", n_labels, images_path, n_images), 4);
    in.read_exact_into(raw_labels, n_labels, "label data");
    in.expect_end();
  }
  int max_label = -1;
  for (uint8_t l : raw_labels) max_label = std::max<int>(max_label, l);
  if (num_classes <= 0) num_classes = max_label + 1;
  for (size_t i = 0; i < raw_labels.size(); ++i)
    if (raw_labels[i] >= num_classes)
      throw DataError(labels_path,
                      fmt::format("label {} of sample {} is out of range: expected 0..{}",
                                  raw_labels[i], i, num_classes - 1),
                      static_cast<long long>(8 + i));  // after the 8-byte header
  ds.name = fs::path(images_path).filename().string();
  ds.sample_shape = {1, static_cast<int64_t>(rows), static_cast<int64_t>(cols)};
  ds.num_classes = num_classes;
  ds.labels.assign(raw_labels.begin(), raw_labels.end());
  return ds;
}

Dataset load_fashion_mnist(bool train, const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw DataError(dir,
                    "no such folder; Fashion-MNIST is installed by the Debian package "
                    "dataset-fashion-mnist");
  std::string prefix = train ? "train" : "t10k";
  // Prefer the packaged .gz files, but accept files a user has already decompressed.
  auto pick = [&](const std::string& stem) {
    fs::path gz = fs::path(dir) / (stem + ".gz");
    fs::path plain = fs::path(dir) / stem;
    if (!fs::exists(gz, ec) && fs::exists(plain, ec)) return plain.string();
    return gz.string();
  };
  Dataset ds = read_idx(pick(prefix + "-images-idx3-ubyte"), pick(prefix + "-labels-idx1-ubyte"));
  ds.name = train ? "fashion-mnist-train" : "fashion-mnist-test";
  return ds;
}

Dataset read_cifar10(const std::string& dir, bool train) {
  constexpr size_t kRecord = 1 + 3 * 32 * 32;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw DataError(dir, "no such folder (expected the CIFAR-10 binary version)");
  std::vector<std::string> names;
  if (train) {
    for (int i = 1; i <= 5; ++i) names.push_back(fmt::format("data_batch_{}.bin", i));
  } else {
    names.push_back("test_batch.bin");
  }
  // The official archive unpacks into cifar-10-batches-bin/; accept its parent too.
  fs::path base = dir;
  if (!fs::exists(base / names[0], ec) && fs::is_directory(base / "cifar-10-batches-bin", ec))
    base /= "cifar-10-batches-bin";

  std::vector<std::string> paths;
  uint64_t total_records = 0;
  for (const auto& name : names) {
    std::string path = (base / name).string();
    require_file(path);
    uint64_t size = fs::file_size(path, ec);
    if (ec) throw DataError(path, "cannot read the file size (" + ec.message() + ")");
    if (size % kRecord != 0)
      throw DataError(path, fmt::format("size {} bytes is not a multiple of the 3073-byte CIFAR-10 "
                                        "record (1 label byte + 3072 pixel bytes)",
                                        size));
    total_records += size / kRecord;
    if (total_records * kRecord > kMaxBytes)
      throw DataError(path, "the data set exceeds the 2^31-byte limit");
    paths.push_back(path);
  }

  Dataset ds;
  ds.name = train ? "cifar10-train" : "cifar10-test";
  ds.sample_shape = {3, 32, 32};
  ds.num_classes = 10;
  ds.images.resize(total_records * (kRecord - 1));
  ds.labels.resize(total_records);
  std::vector<uint8_t> buf;
  size_t at = 0;
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DataError(path, "cannot open file");
    uint64_t size = fs::file_size(path, ec);
    buf.resize(size);
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(size));
    if (static_cast<uint64_t>(in.gcount()) != size)
      throw DataError(path,
                      fmt::format("truncated read: expected {} bytes, got {}", size, in.gcount()),
                      static_cast<long long>(in.gcount()));
    for (size_t r = 0; r < size / kRecord; ++r, ++at) {
      const uint8_t* rec = buf.data() + r * kRecord;
      if (rec[0] > 9)
        throw DataError(
            path, fmt::format("label {} of record {} is out of range: expected 0..9", rec[0], r),
            static_cast<long long>(r * kRecord));
      ds.labels[at] = rec[0];
      std::copy(rec + 1, rec + kRecord, ds.images.begin() + at * (kRecord - 1));
    }
  }
  return ds;
}

Dataset make_synthetic(size_t n, const std::vector<int64_t>& shape, int classes, uint64_t seed) {
  // The config parser and resolve_synthetic_data check these against the network.
  NAS_CHECK(shape.size() == 3 && shape[0] > 0 && shape[1] > 0 && shape[2] > 0,
            "make_synthetic: shape must be C,H,W with positive sizes");
  NAS_CHECK(classes > 0, "make_synthetic: classes must be positive");
  Dataset ds;
  ds.name = "synthetic";
  ds.sample_shape = shape;
  ds.num_classes = classes;
  size_t numel = ds.sample_numel();
  NAS_CHECK(n * numel <= kMaxBytes, "make_synthetic: over 2^31 bytes");

  // Separate streams per purpose, so that changing n does not change the prototypes.
  Rng proto_rng(derive_seed(seed, 1));
  std::vector<uint8_t> protos(static_cast<size_t>(classes) * numel);
  for (auto& b : protos) b = static_cast<uint8_t>(proto_rng.uniform(256));

  ds.labels.resize(n);
  for (size_t i = 0; i < n; ++i) ds.labels[i] = static_cast<int32_t>(i % classes);
  Rng label_rng(derive_seed(seed, 2));
  label_rng.shuffle(ds.labels);

  Rng noise_rng(derive_seed(seed, 3));
  ds.images.resize(n * numel);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = protos.data() + static_cast<size_t>(ds.labels[i]) * numel;
    uint8_t* out = ds.images.data() + i * numel;
    for (size_t k = 0; k < numel; ++k) {
      int v = p[k] + static_cast<int>(noise_rng.uniform_int(-48, 48));
      out[k] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
  return ds;
}

std::pair<std::vector<size_t>, std::vector<size_t>> split_stratified(const Dataset& data,
                                                                     double train_portion,
                                                                     uint64_t seed) {
  NAS_CHECK(train_portion > 0.0 && train_portion < 1.0,
            fmt::format("split_stratified: train portion {} must be in (0, 1)", train_portion));
  int classes = data.num_classes;
  for (int32_t l : data.labels) classes = std::max(classes, l + 1);
  std::vector<std::vector<size_t>> by_class(static_cast<size_t>(std::max(classes, 0)));
  for (size_t i = 0; i < data.labels.size(); ++i)
    by_class[static_cast<size_t>(data.labels[i])].push_back(i);

  std::pair<std::vector<size_t>, std::vector<size_t>> out;
  for (size_t c = 0; c < by_class.size(); ++c) {
    auto& idx = by_class[c];
    Rng rng(derive_seed(seed, c));
    rng.shuffle(idx);
    auto n_train =
        static_cast<size_t>(std::llround(static_cast<double>(idx.size()) * train_portion));
    out.first.insert(out.first.end(), idx.begin(), idx.begin() + n_train);
    out.second.insert(out.second.end(), idx.begin() + n_train, idx.end());
  }
  std::sort(out.first.begin(), out.first.end());
  std::sort(out.second.begin(), out.second.end());
  return out;
}

std::pair<std::vector<float>, std::vector<float>> channel_stats(
    const Dataset& data, const std::vector<size_t>& indices) {
  size_t c = data.sample_shape.empty() ? 0 : static_cast<size_t>(data.sample_shape[0]);
  size_t plane = c ? data.sample_numel() / c : 0;
  std::vector<double> sum(c, 0.0), sq(c, 0.0);
  size_t count = 0;
  auto add = [&](size_t i) {
    const uint8_t* bytes = data.floats ? nullptr : data.sample(i);
    const float* values = data.floats ? data.float_sample(i) : nullptr;
    for (size_t ch = 0; ch < c; ++ch)
      for (size_t k = 0; k < plane; ++k) {
        double v = values ? values[ch * plane + k] : bytes[ch * plane + k] / 255.0;
        sum[ch] += v;
        sq[ch] += v * v;
      }
    ++count;
  };
  if (indices.empty()) {
    for (size_t i = 0; i < data.size(); ++i) add(i);
  } else {
    for (size_t i : indices) add(i);
  }
  std::vector<float> mean(c, 0.0f), stdev(c, 1.0f);
  if (count == 0 || plane == 0) return {mean, stdev};
  double n = static_cast<double>(count * plane);
  for (size_t ch = 0; ch < c; ++ch) {
    double m = sum[ch] / n;
    mean[ch] = static_cast<float>(m);
    stdev[ch] = static_cast<float>(std::sqrt(std::max(0.0, sq[ch] / n - m * m)));
  }
  return {mean, stdev};
}

}  // namespace nas
