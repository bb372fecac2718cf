#include "runtime/data/loader.h"

#include <fmt/format.h>

#include "support/errors.h"

namespace nas {

namespace {
// Purpose tags keep the order stream and the batch streams independent.
constexpr uint64_t kOrderTag = 0x6f72646572;  // "order"
constexpr uint64_t kBatchTag = 0x6261746368;  // "batch"
// One batch waits while the consumer trains on the previous one: enough to hide assembly.
constexpr size_t kPrefetchDepth = 1;
}  // namespace

Loader::Loader(const Dataset& data, std::vector<size_t> indices, LoaderOptions options)
    : data_(data), indices_(std::move(indices)), options_(std::move(options)) {
  // The trainers build the options and indices from a checked config and the data set
  // itself (a constant channel is refused before normalization gets here).
  NAS_CHECK(options_.batch_size > 0, "Loader: batch size must be positive");
  NAS_CHECK(
      options_.shards >= 1 && options_.shard >= 0 && options_.shard < options_.shards,
      "Loader: shard " + std::to_string(options_.shard) + " of " + std::to_string(options_.shards));
  NAS_CHECK(data_.sample_shape.size() == 3,
            fmt::format("Loader: data set '{}' samples are not C,H,W", data_.name));
  for (size_t i : indices_)
    NAS_CHECK(i < data_.size(),
              fmt::format("Loader: index {} is out of range for data set '{}' of {} samples", i,
                          data_.name, data_.size()));
  std::string bad = options_.augment.check(static_cast<int>(data_.sample_shape[0]));
  NAS_CHECK(bad.empty(), "Loader: " + bad);
  if (options_.prefetch) worker_ = std::thread([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  // The worker finishes at most the batch it is building, then sees stop_.
  if (worker_.joinable()) worker_.join();
}

size_t Loader::batches_per_epoch() const {
  size_t n = indices_.size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::start_epoch(int64_t epoch) {
  auto order = std::make_shared<std::vector<size_t>>(indices_);
  if (options_.shuffle) {
    Rng rng(derive_seed(derive_seed(options_.seed, kOrderTag), static_cast<uint64_t>(epoch)));
    rng.shuffle(*order);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    next_to_build_ = 0;
    next_to_take_ = 0;
    ready_.clear();
    error_ = nullptr;
  }
  cv_.notify_all();
}

void Loader::assemble(const std::vector<size_t>& order, int64_t epoch, size_t b, Batch& out) const {
  const auto& shape = data_.sample_shape;
  int c = static_cast<int>(shape[0]), h = static_cast<int>(shape[1]),
      w = static_cast<int>(shape[2]);
  size_t numel = data_.sample_numel();
  const size_t whole = std::min(options_.batch_size, order.size() - b * options_.batch_size);
  const size_t shards = static_cast<size_t>(options_.shards),
               shard = static_cast<size_t>(options_.shard);
  const size_t first = shard * whole / shards;
  const size_t n = (shard + 1) * whole / shards - first;
  const size_t begin = b * options_.batch_size + first;
  out.epoch = epoch;
  out.index = static_cast<int64_t>(b);
  out.first = first;
  out.shape = {static_cast<int64_t>(n), shape[0], shape[1], shape[2]};
  out.images.resize(n * numel);
  out.labels.resize(n);
  out.indices.assign(order.begin() + begin, order.begin() + begin + n);
  std::vector<float> scratch(numel);
  const uint64_t batch_seed = derive_seed(
      derive_seed(derive_seed(options_.seed, kBatchTag), static_cast<uint64_t>(epoch)), b);
  for (size_t k = 0; k < n; ++k) {
    size_t i = out.indices[k];
    float* dst = out.images.data() + k * numel;
    data_.sample_to_float(i, dst);
    Rng rng(derive_seed(batch_seed, first + k));
    apply_augment(options_.augment, dst, c, h, w, rng, scratch.data(), options_.train);
    out.labels[k] = data_.labels[i];
  }
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] {
      return stop_ || (started_ && !error_ && next_to_build_ < batches_per_epoch() &&
                       ready_.size() < kPrefetchDepth);
    });
    if (stop_) return;
    uint64_t gen = generation_;
    int64_t epoch = epoch_;
    size_t b = next_to_build_++;
    auto order = order_;  // keeps this epoch's order alive if start_epoch replaces it
    lock.unlock();
    Batch batch;
    std::exception_ptr err;
    try {
      assemble(*order, epoch, b, batch);
    } catch (...) {
      err = std::current_exception();
    }
    lock.lock();
    if (gen != generation_) continue;  // start_epoch ran meanwhile: drop the stale batch
    if (err)
      error_ = err;
    else
      ready_.push_back(std::move(batch));
    cv_.notify_all();
  }
}

bool Loader::next(Batch& out) {
  if (!options_.prefetch) {
    std::shared_ptr<const std::vector<size_t>> order;
    size_t b;
    int64_t epoch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      NAS_CHECK(started_, "Loader::next called before start_epoch");
      if (next_to_take_ >= batches_per_epoch()) return false;
      b = next_to_take_++;
      order = order_;
      epoch = epoch_;
    }
    assemble(*order, epoch, b, out);
    return true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  NAS_CHECK(started_, "Loader::next called before start_epoch");
  if (next_to_take_ >= batches_per_epoch()) return false;
  cv_.wait(lock, [&] { return !ready_.empty() || error_; });
  if (ready_.empty()) {
    // Let a later start_epoch retry; the error belongs to this epoch.
    std::rethrow_exception(error_);
  }
  out = std::move(ready_.front());
  ready_.pop_front();
  ++next_to_take_;
  lock.unlock();
  cv_.notify_all();
  return true;
}

}  // namespace nas
