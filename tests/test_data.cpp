// The data pipeline: IDX and CIFAR-10 readers against tiny files written here (and every
// malformed case), Fashion-MNIST when installed, synthetic data, the stratified split,
// augmentation against hand-computed examples, and the prefetching loader's determinism.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "runtime/data/augment.h"
#include "runtime/data/dataset.h"
#include "runtime/data/loader.h"
#include "support/rng.h"
#include "tests/data_test_util.h"
#include "tests/file_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

namespace {

using test::data_error;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes, bool gz = false) {
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    if (!bytes.empty()) REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) > 0);
    gzclose(f);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
}

std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols,
                                const std::vector<uint8_t>& pixels, uint32_t magic = 0x803) {
  std::vector<uint8_t> v;
  put_be32(v, magic);
  put_be32(v, n);
  put_be32(v, rows);
  put_be32(v, cols);
  v.insert(v.end(), pixels.begin(), pixels.end());
  return v;
}

std::vector<uint8_t> idx_labels(uint32_t n, const std::vector<uint8_t>& labels,
                                uint32_t magic = 0x801) {
  std::vector<uint8_t> v;
  put_be32(v, magic);
  put_be32(v, n);
  v.insert(v.end(), labels.begin(), labels.end());
  return v;
}

std::vector<uint8_t> iota_bytes(size_t n, int start = 0) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((start + i * 7) % 256);
  return v;
}

std::vector<uint8_t> cifar_records(const std::vector<uint8_t>& labels, int seed) {
  std::vector<uint8_t> v;
  for (size_t r = 0; r < labels.size(); ++r) {
    v.push_back(labels[r]);
    auto px = iota_bytes(3072, seed + static_cast<int>(r));
    v.insert(v.end(), px.begin(), px.end());
  }
  return v;
}

std::vector<Batch> epoch_batches(Loader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

}  // namespace

TEST_CASE("read_idx reads plain and gzip IDX files exactly", "[data][idx]") {
  TempDir dir;
  auto pixels = iota_bytes(3 * 2 * 3);
  std::vector<uint8_t> labels = {0, 9, 4};
  for (bool gz : {false, true}) {
    std::string ip = dir / (gz ? "img.gz" : "img"), lp = dir / (gz ? "lab.gz" : "lab");
    write_file(ip, idx_images(3, 2, 3, pixels), gz);
    write_file(lp, idx_labels(3, labels), gz);
    Dataset ds = read_idx(ip, lp);
    CHECK(ds.size() == 3);
    CHECK(ds.sample_shape == std::vector<int64_t>{1, 2, 3});
    CHECK(ds.sample_numel() == 6);
    CHECK(ds.num_classes == 10);
    CHECK(ds.images == pixels);
    CHECK(ds.labels == std::vector<int32_t>{0, 9, 4});
    CHECK(ds.sample(1)[0] == pixels[6]);
  }
  SECTION("num_classes 0 infers max label + 1") {
    write_file(dir / "i", idx_images(3, 2, 3, pixels));
    write_file(dir / "l", idx_labels(3, {0, 2, 1}));
    CHECK(read_idx(dir / "i", dir / "l", 0).num_classes == 3);
  }
}

TEST_CASE("read_idx reports malformed files by name", "[data][idx]") {
  TempDir dir;
  auto pixels = iota_bytes(2 * 2 * 2);
  std::string ip = dir / "images.idx", lp = dir / "labels.idx.gz";
  write_file(ip, idx_images(2, 2, 2, pixels));
  write_file(lp, idx_labels(2, {1, 2}), true);
  REQUIRE(read_idx(ip, lp).size() == 2);

  SECTION("missing files") {
    auto msg = data_error([&] { read_idx(dir / "nope", lp); });
    CHECK_THAT(msg, Contains(dir / "nope") && Contains("no such file"));
    msg = data_error([&] { read_idx(ip, dir / "nolabels"); });
    CHECK_THAT(msg, Contains(dir / "nolabels") && Contains("no such file"));
    msg = data_error([&] { read_idx(dir.path.string(), lp); });
    CHECK_THAT(msg, Contains("not a regular file"));
  }
  SECTION("wrong magic, e.g. swapped files") {
    auto msg = data_error([&] { read_idx(lp, ip); });
    CHECK_THAT(msg, Contains(lp) && Contains("wrong magic number 0x00000801") &&
                        Contains("expected 0x00000803") && Contains("labels file"));
    write_file(ip, idx_images(2, 2, 2, pixels, 0x12345678));
    msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, Contains(ip) && Contains("0x12345678") && Contains("expected 0x00000803"));
    write_file(ip, idx_images(2, 2, 2, pixels));
    write_file(lp, idx_labels(2, {1, 2}, 0x0803));
    msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, Contains(lp) && Contains("expected 0x00000801"));
  }
  SECTION("truncated header and data") {
    write_file(ip, {0, 0, 8});
    auto msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, StartsWith(ip + ": byte 3: truncated header: expected 4 bytes, got 3"));
    write_file(ip, idx_images(2, 2, 2, iota_bytes(5)), true);
    msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, Contains(ip) && Contains("truncated pixel data: expected 8 bytes, got 5"));
    write_file(ip, idx_images(2, 2, 2, pixels));
    write_file(lp, idx_labels(2, {1}));
    msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, Contains(lp) && Contains("truncated label data: expected 2 bytes, got 1"));
  }
  SECTION("trailing data") {
    auto more = pixels;
    more.push_back(1);
    write_file(ip, idx_images(2, 2, 2, more));
    auto msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, Contains(ip) && Contains("1 unexpected bytes after the data"));
  }
  SECTION("count mismatch") {
    write_file(lp, idx_labels(3, {1, 2, 3}));
    auto msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(
        msg, Contains(lp) && Contains(ip) && Contains("has 3 labels") && Contains("has 2 images"));
  }
  SECTION("label out of range") {
    write_file(lp, idx_labels(2, {3, 10}));
    auto msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(
        msg, StartsWith(lp + ": byte 9: label 10 of sample 1 is out of range") && Contains("0..9"));
  }
  SECTION("absurd and empty dimensions, refused before allocating") {
    write_file(ip, idx_images(0xffffffffu, 0xffffffffu, 0xffffffffu, {}));
    auto msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, Contains(ip) && Contains("2^31"));
    write_file(ip, idx_images(100000, 200, 200, {}));
    msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, Contains(ip) && Contains("2^31"));
    write_file(ip, idx_images(2, 0, 2, {}));
    msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, Contains(ip) && Contains("0x2 is empty"));
  }
  SECTION("corrupt gzip stream") {
    // A valid gzip header followed by garbage deflate data.
    write_file(ip, {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
    auto msg = data_error([&] { read_idx(ip, lp); });
    CHECK_THAT(msg, Contains(ip));
  }
}

TEST_CASE("Fashion-MNIST loads from the Debian package", "[data][fashion]") {
  // scripts/setup.sh installs it: its absence is a broken setup, not a reason to pass.
  INFO(kFashionMnistDir << " is missing: install dataset-fashion-mnist (scripts/setup.sh)");
  REQUIRE(fs::is_directory(kFashionMnistDir));
  Dataset train = load_fashion_mnist(true);
  Dataset test = load_fashion_mnist(false);
  CHECK(train.name == "fashion-mnist-train");
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  for (const Dataset* d : {&train, &test}) {
    CHECK(d->sample_shape == std::vector<int64_t>{1, 28, 28});
    CHECK(d->num_classes == 10);
    CHECK(d->images.size() == d->size() * 784);
  }
  // Fashion-MNIST is balanced: 6000 / 1000 per class.
  std::map<int, int> counts;
  for (int32_t l : train.labels) counts[l]++;
  CHECK(counts.size() == 10);
  for (auto& [label, count] : counts) CHECK(count == 6000);
  auto [mean, stdev] = channel_stats(train);
  CHECK(mean[0] == Approx(0.2860).margin(0.001));
  CHECK(stdev[0] == Approx(0.3530).margin(0.001));

  auto msg = data_error([] { load_fashion_mnist(true, "/nonexistent/fmnist"); });
  CHECK_THAT(msg, Contains("/nonexistent/fmnist") && Contains("dataset-fashion-mnist"));
}

TEST_CASE("read_cifar10 reads the binary batches exactly", "[data][cifar]") {
  TempDir dir;
  for (int i = 1; i <= 5; ++i)
    write_file(dir / ("data_batch_" + std::to_string(i) + ".bin"),
               cifar_records({static_cast<uint8_t>(i), static_cast<uint8_t>(9 - i)}, i * 10));
  write_file(dir / "test_batch.bin", cifar_records({0, 5, 9}, 100));

  Dataset train = read_cifar10(dir.path.string(), true);
  CHECK(train.size() == 10);
  CHECK(train.sample_shape == std::vector<int64_t>{3, 32, 32});
  CHECK(train.num_classes == 10);
  CHECK(train.labels == std::vector<int32_t>{1, 8, 2, 7, 3, 6, 4, 5, 5, 4});
  auto px = iota_bytes(3072, 31);  // data_batch_3.bin, record 1
  CHECK(std::equal(px.begin(), px.end(), train.sample(5)));
  Dataset test = read_cifar10(dir.path.string(), false);
  CHECK(test.labels == std::vector<int32_t>{0, 5, 9});
  px = iota_bytes(3072, 102);
  CHECK(std::equal(px.begin(), px.end(), test.sample(2)));

  SECTION("the archive's cifar-10-batches-bin subfolder is found") {
    TempDir parent;
    fs::create_directories(parent.path / "cifar-10-batches-bin");
    fs::copy_file(dir / "test_batch.bin", parent / "cifar-10-batches-bin/test_batch.bin");
    CHECK(read_cifar10(parent.path.string(), false).size() == 3);
  }
  SECTION("missing folder and files") {
    auto msg = data_error([&] { read_cifar10(dir / "absent", true); });
    CHECK_THAT(msg, Contains(dir / "absent") && Contains("no such folder"));
    fs::remove(dir / "data_batch_3.bin");
    msg = data_error([&] { read_cifar10(dir.path.string(), true); });
    CHECK_THAT(msg, Contains("data_batch_3.bin") && Contains("no such file"));
  }
  SECTION("size not a multiple of 3073") {
    auto bytes = cifar_records({1}, 0);
    bytes.pop_back();
    write_file(dir / "test_batch.bin", bytes);
    auto msg = data_error([&] { read_cifar10(dir.path.string(), false); });
    CHECK_THAT(msg, Contains("test_batch.bin") && Contains("size 3072 bytes") &&
                        Contains("not a multiple of the 3073-byte"));
  }
  SECTION("label above 9") {
    write_file(dir / "data_batch_2.bin", cifar_records({3, 10}, 0));
    auto msg = data_error([&] { read_cifar10(dir.path.string(), true); });
    CHECK_THAT(msg, Contains("data_batch_2.bin: byte 3073: label 10 of record 1 is out of range"));
  }
}

TEST_CASE("synthetic data is deterministic, balanced and learnable", "[data][synthetic]") {
  Dataset a = make_synthetic(400, {2, 6, 5}, 4, 7);
  Dataset b = make_synthetic(400, {2, 6, 5}, 4, 7);
  Dataset c = make_synthetic(400, {2, 6, 5}, 4, 8);
  CHECK(a.images == b.images);
  CHECK(a.labels == b.labels);
  CHECK(a.images != c.images);
  CHECK(a.sample_shape == std::vector<int64_t>{2, 6, 5});
  CHECK(a.num_classes == 4);
  std::map<int, int> counts;
  for (int32_t l : a.labels) counts[l]++;
  for (auto& [label, count] : counts) CHECK(count == 100);
  // Nearest class mean (from the first half) classifies the second half.
  size_t numel = a.sample_numel();
  std::vector<std::vector<double>> means(4, std::vector<double>(numel, 0.0));
  std::vector<int> seen(4, 0);
  for (size_t i = 0; i < 200; ++i) {
    for (size_t k = 0; k < numel; ++k) means[a.labels[i]][k] += a.sample(i)[k];
    seen[a.labels[i]]++;
  }
  for (int cl = 0; cl < 4; ++cl)
    for (auto& m : means[cl]) m /= seen[cl];
  int correct = 0;
  for (size_t i = 200; i < 400; ++i) {
    int best = -1;
    double best_d = 1e300;
    for (int cl = 0; cl < 4; ++cl) {
      double d = 0;
      for (size_t k = 0; k < numel; ++k) d += std::pow(a.sample(i)[k] - means[cl][k], 2);
      if (d < best_d) best_d = d, best = cl;
    }
    correct += best == a.labels[i];
  }
  CHECK(correct >= 190);
  CHECK_THROWS_AS(make_synthetic(10, {1, 2}, 2, 0), InternalError);  // the config checks these
  CHECK_THROWS_AS(make_synthetic(10, {1, 2, 2}, 0, 0), InternalError);
}

TEST_CASE("split_stratified is proportional, disjoint, complete and seeded", "[data][split]") {
  Dataset ds = make_synthetic(1000, {1, 2, 2}, 10, 3);
  // Unbalance one class to see per-class rounding: relabel 50 samples of class 0 as 1.
  int moved = 0;
  for (auto& l : ds.labels)
    if (l == 0 && moved < 50) l = 1, ++moved;
  auto [tr, va] = split_stratified(ds, 0.5, 42);
  std::set<size_t> all(tr.begin(), tr.end());
  for (size_t i : va) CHECK(all.insert(i).second);  // disjoint
  CHECK(all.size() == 1000);                        // covers everything
  CHECK(std::is_sorted(tr.begin(), tr.end()));
  std::map<int, int> per_class;
  for (size_t i : tr) per_class[ds.labels[i]]++;
  CHECK(per_class[0] == 25);  // 50 samples
  CHECK(per_class[1] == 75);  // 150 samples
  for (int cl = 2; cl < 10; ++cl) CHECK(per_class[cl] == 50);

  auto again = split_stratified(ds, 0.5, 42);
  CHECK(again.first == tr);
  CHECK(split_stratified(ds, 0.5, 43).first != tr);
  auto [tr8, va8] = split_stratified(ds, 0.8, 1);
  CHECK(tr8.size() == 800);
  CHECK(va8.size() == 200);
  for (double bad : {0.0, 1.0, -0.5, 1.5, std::nan("")})
    CHECK_THROWS_AS(split_stratified(ds, bad, 0), InternalError);
}

TEST_CASE("augmentation primitives match hand-computed examples", "[data][augment]") {
  // One channel, 3x3: 1..9.
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> out(9);
  SECTION("crop with zero padding") {
    crop_padded(x.data(), out.data(), 1, 3, 3, 1, 1, 1);  // the centre: identity
    CHECK(out == x);
    crop_padded(x.data(), out.data(), 1, 3, 3, 1, 0, 0);  // shifted down-right
    CHECK(out == std::vector<float>{0, 0, 0, 0, 1, 2, 0, 4, 5});
    crop_padded(x.data(), out.data(), 1, 3, 3, 1, 2, 1);  // shifted up
    CHECK(out == std::vector<float>{4, 5, 6, 7, 8, 9, 0, 0, 0});
    crop_padded(x.data(), out.data(), 1, 3, 3, 2, 4, 0);  // dy = 2 * pad: two rows of zeros
    CHECK(out == std::vector<float>{0, 0, 7, 0, 0, 0, 0, 0, 0});
  }
  SECTION("horizontal flip, every channel") {
    std::vector<float> y = {1, 2, 3, 4, 5, 6, 7, 8};  // 2 channels of 2x2
    hflip(y.data(), 2, 2, 2);
    CHECK(y == std::vector<float>{2, 1, 4, 3, 6, 5, 8, 7});
  }
  SECTION("cutout, clipped at the borders") {
    std::vector<float> y(16, 1.0f);      // 4x4
    cutout(y.data(), 1, 4, 4, 0, 3, 2);  // rows [-1,1) -> [0,1), cols [2,4)
    CHECK(y == std::vector<float>{1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
    std::fill(y.begin(), y.end(), 1.0f);
    cutout(y.data(), 1, 4, 4, 2, 2, 3);  // odd length 3: side 2 as in DARTS, rows/cols [1,3)
    CHECK(y == std::vector<float>{1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1});
    std::fill(y.begin(), y.end(), 1.0f);
    cutout(y.data(), 1, 4, 4, 1, 1, 16);  // larger than the image: all zero
    CHECK(y == std::vector<float>(16, 0.0f));
  }
  SECTION("per-channel normalization") {
    std::vector<float> y = {0.5f, 1.0f, 0.0f, 0.25f};  // 2 channels of 1x2
    float mean[] = {0.5f, 0.25f}, stdev[] = {0.5f, 0.25f};
    normalize(y.data(), 2, 1, 2, mean, stdev);
    CHECK(y == std::vector<float>{0.0f, 1.0f, -1.0f, 0.0f});
  }
  SECTION("configuration checks") {
    Augment a;
    CHECK(a.check(3).empty());
    a.mean = {0.5f};
    a.std = {0.5f};
    CHECK_THAT(a.check(3), Contains("1 means but the samples have 3 channels"));
    a.std = {0.0f};
    CHECK_THAT(a.check(1), Contains("not positive"));
    a = Augment{};
    a.cutout = -1;
    CHECK_THAT(a.check(1), Contains("negative"));
  }
  SECTION("apply_augment draws in a fixed order and only normalizes for evaluation") {
    Augment a;
    a.crop_padding = 1;
    a.hflip = true;
    a.cutout = 2;
    a.mean = {0.0f};
    a.std = {2.0f};
    std::vector<float> y = x, scratch(9);
    Rng rng(5);
    apply_augment(a, y.data(), 1, 3, 3, rng, scratch.data());
    // Replay the same draws by hand.
    Rng ref(5);
    int dy = static_cast<int>(ref.uniform_int(0, 2)), dx = static_cast<int>(ref.uniform_int(0, 2));
    std::vector<float> expect(9);
    crop_padded(x.data(), expect.data(), 1, 3, 3, 1, dy, dx);
    if (ref.coin()) hflip(expect.data(), 1, 3, 3);
    for (auto& v : expect) v /= 2.0f;
    int cy = static_cast<int>(ref.uniform(3)), cx = static_cast<int>(ref.uniform(3));
    cutout(expect.data(), 1, 3, 3, cy, cx, 2);
    CHECK(y == expect);

    y = x;
    Rng eval_rng(5);
    apply_augment(a, y.data(), 1, 3, 3, eval_rng, scratch.data(), /*train=*/false);
    CHECK(y == std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4, 4.5f});
    CHECK(eval_rng.next_u64() == Rng(5).next_u64());  // nothing drawn
  }
}

TEST_CASE("Rng is specified bit for bit", "[data][rng]") {
  // SplitMix64 reference values for seed 0 (Vigna's splitmix64.c).
  Rng r(0);
  CHECK(r.next_u64() == 0xe220a8397b1dcdafULL);
  CHECK(r.next_u64() == 0x6e789e6aa1b965f4ULL);
  Rng u(1);
  for (int i = 0; i < 1000; ++i) {
    auto v = u.uniform_int(-3, 3);
    CHECK((v >= -3 && v <= 3));
    float f = u.uniform_float();
    CHECK((f >= 0.0f && f < 1.0f));
  }
}

TEST_CASE("dropout's draws are its sample's Rng stream, element by element", "[data][rng]") {
  // dropout_keeps(stream, k, threshold(p)) is "the k-th uniform_float() of Rng(stream) >= p"
  // for any k, drawn without the draws before it.
  for (double p : {0.0, 0.1, 0.25, 0.5, 0.999}) {
    const uint64_t threshold = dropout_threshold(p);
    for (int64_t sample : {0, 1, 7}) {
      const uint64_t stream = dropout_sample_stream(derive_seed(42, 9), sample);
      Rng rng(stream);
      int kept = 0;
      for (int64_t k = 0; k < 2000; ++k) {
        const bool want = rng.uniform_float() >= p;
        CHECK(dropout_keeps(stream, k, threshold) == want);
        kept += want;
      }
      CHECK(std::abs(kept / 2000.0 - (1 - p)) < 0.05);
    }
  }
  // The boundary: a draw equal to p is kept (>=), one just below is not.
  CHECK(dropout_threshold(0.5) == 8388608);
  CHECK(dropout_threshold(0.0) == 0);
  CHECK(dropout_threshold(1.0 / 16777216.0) == 1);
  CHECK(dropout_threshold(1.5 / 16777216.0) == 2);
}

TEST_CASE("Loader batches are deterministic and cover each index once", "[data][loader]") {
  Dataset ds = make_synthetic(103, {3, 8, 8}, 5, 11);
  std::vector<size_t> all(ds.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.seed = 99;
  opt.augment.crop_padding = 2;
  opt.augment.hflip = true;
  opt.augment.cutout = 3;
  opt.augment.mean = {0.5f, 0.5f, 0.5f};
  opt.augment.std = {0.25f, 0.25f, 0.25f};

  Loader a(ds, all, opt);
  CHECK(a.batches_per_epoch() == 7);
  auto e0 = epoch_batches(a, 0);
  REQUIRE(e0.size() == 7);
  CHECK(e0.back().size() == 103 - 6 * 16);
  CHECK(e0.back().shape == std::vector<int64_t>{7, 3, 8, 8});
  std::multiset<size_t> seen;
  for (auto& b : e0) {
    CHECK(b.epoch == 0);
    CHECK(b.images.size() == b.size() * 192);
    for (size_t k = 0; k < b.size(); ++k) {
      seen.insert(b.indices[k]);
      CHECK(b.labels[k] == ds.labels[b.indices[k]]);
    }
  }
  CHECK(seen == std::multiset<size_t>(all.begin(), all.end()));

  SECTION("same seed: identical batches, prefetched or not, with a slow consumer") {
    LoaderOptions sync = opt;
    sync.prefetch = false;
    Loader b(ds, all, sync);
    auto s0 = epoch_batches(b, 0);
    Loader c(ds, all, opt);
    c.start_epoch(0);
    std::vector<Batch> p0;
    Batch batch;
    while (c.next(batch)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      p0.push_back(batch);
    }
    REQUIRE(s0.size() == e0.size());
    REQUIRE(p0.size() == e0.size());
    for (size_t i = 0; i < e0.size(); ++i) {
      CHECK(s0[i].indices == e0[i].indices);
      CHECK(s0[i].images == e0[i].images);
      CHECK(p0[i].images == e0[i].images);
      CHECK(p0[i].labels == e0[i].labels);
    }
    // Replaying an epoch gives the same batches.
    auto again = epoch_batches(a, 0);
    CHECK(again[3].images == e0[3].images);
  }
  SECTION("a different epoch or seed gives a different order") {
    auto e1 = epoch_batches(a, 1);
    CHECK(e1[0].indices != e0[0].indices);
    LoaderOptions other = opt;
    other.seed = 100;
    Loader b(ds, all, other);
    CHECK(epoch_batches(b, 0)[0].indices != e0[0].indices);
  }
  SECTION("no shuffle keeps the index order; evaluation only normalizes") {
    LoaderOptions eval = opt;
    eval.shuffle = false;
    eval.train = false;
    Loader b(ds, {5, 3, 1}, eval);
    auto batches = epoch_batches(b, 4);
    REQUIRE(batches.size() == 1);
    CHECK(batches[0].indices == std::vector<size_t>{5, 3, 1});
    CHECK(batches[0].images[192] == Approx((ds.sample(3)[0] / 255.0f - 0.5f) / 0.25f));
  }
  SECTION("drop_last") {
    LoaderOptions d = opt;
    d.drop_last = true;
    Loader b(ds, all, d);
    CHECK(b.batches_per_epoch() == 6);
    auto batches = epoch_batches(b, 0);
    CHECK(batches.size() == 6);
    for (auto& batch : batches) CHECK(batch.size() == 16);
    Loader tiny(ds, {1, 2}, d);  // fewer samples than a batch: no batches at all
    CHECK(epoch_batches(tiny, 0).empty());
  }
  SECTION("restarting an epoch midway and destroying mid-epoch are clean") {
    for (int trial = 0; trial < 20; ++trial) {
      Loader b(ds, all, opt);
      b.start_epoch(0);
      Batch batch;
      REQUIRE(b.next(batch));
      b.start_epoch(2);  // discards the rest of epoch 0
      REQUIRE(b.next(batch));
      CHECK(batch.epoch == 2);
      CHECK(batch.index == 0);
      if (trial % 2) b.start_epoch(3);  // destroyed with a batch being built
    }
    Loader never_started(ds, all, opt);  // destroyed before any epoch
  }
  SECTION("misuse is reported") {
    Loader b(ds, all, opt);
    Batch batch;
    CHECK_THROWS_AS(b.next(batch), InternalError);
    LoaderOptions zero = opt;
    zero.batch_size = 0;
    CHECK_THROWS_AS(Loader(ds, all, zero), InternalError);
    CHECK_THROWS_AS(Loader(ds, {0, 103}, opt), InternalError);
    LoaderOptions bad = opt;
    bad.augment.mean = {0.5f};
    bad.augment.std = {0.5f};
    CHECK_THROWS_AS(Loader(ds, all, bad), InternalError);
  }
}
