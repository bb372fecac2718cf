// Mini-batches over a Dataset: shuffled per epoch, augmented, converted to float NCHW, and
// prefetched one batch ahead on a worker thread so that batch assembly overlaps training.
//
// Determinism: the epoch order comes from (seed, epoch) and each sample's random numbers
// from (seed, epoch, batch index, position in the batch), so the batches are identical
// whatever the thread timing, with or without prefetching, and however they are sharded.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/data/augment.h"
#include "runtime/data/dataset.h"

namespace nas {

struct Batch {
  std::vector<float> images;    // N * C * H * W, pixels / 255 then augmented
  std::vector<int32_t> labels;  // N
  std::vector<size_t> indices;  // N data set indices, for debugging and evaluation
  size_t first = 0;             // this shard's first row in the whole batch
  std::vector<int64_t> shape;   // N, C, H, W
  int64_t epoch = 0;
  int64_t index = 0;  // batch index within the epoch

  size_t size() const { return labels.size(); }
};

struct LoaderOptions {
  size_t batch_size = 64;
  bool shuffle = true;     // reshuffle every epoch (false: the index list's order)
  bool drop_last = false;  // drop a final batch smaller than batch_size
  bool train = true;       // false: no random augmentation, only normalization
  bool prefetch = true;    // assemble the next batch on a worker thread
  uint64_t seed = 0;
  Augment augment;
  // Data parallelism: each batch of batch_size samples (the global batch) is cut into
  // `shards` consecutive parts and this loader yields part `shard` only (rows shard * n /
  // shards up to (shard + 1) * n / shards of a batch of n). Order, batch count and each
  // sample's augmentation are those of the whole batch, so the parts together are exactly
  // what one loader with shards = 1 yields.
  int shard = 0, shards = 1;
};

class Loader {
 public:
  // `data` must outlive the loader. batch_size 0, an index out of range, or an
  // augmentation that does not fit the samples is an InternalError (a caller's bug).
  Loader(const Dataset& data, std::vector<size_t> indices, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts (or restarts) epoch `epoch`; batches of an unfinished epoch are discarded.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch into `out`; false when the epoch is over.
  // Calling it before the first start_epoch is an InternalError.
  bool next(Batch& out);

  size_t batches_per_epoch() const;
  size_t num_samples() const { return indices_.size(); }
  const LoaderOptions& options() const { return options_; }

 private:
  // Builds batch `b` of `epoch` over `order`: a pure function of its arguments.
  void assemble(const std::vector<size_t>& order, int64_t epoch, size_t b, Batch& out) const;
  void worker_loop();

  const Dataset& data_;
  std::vector<size_t> indices_;
  LoaderOptions options_;

  // Shared with the worker, guarded by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stop_ = false;
  uint64_t generation_ = 0;  // bumped by start_epoch; stale work is dropped
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<size_t>> order_;
  size_t next_to_build_ = 0;  // the worker's next batch index
  size_t next_to_take_ = 0;   // the consumer's next batch index
  std::deque<Batch> ready_;   // built, in order, at most one ahead
  std::exception_ptr error_;
  std::thread worker_;
};

}  // namespace nas
