// An in-process Collectives for tests: N threads, one rank each, exchanging through shared
// memory. A reduction publishes each rank's buffer, waits for all of them, and adds them
// in rank order 0..N-1 on every rank, so every rank gets the same bits and repeated runs
// do too (the interface's promise). Every wait is bounded by the timeout and throws
// CollectiveTimeout past it, so a test whose rank failed stops instead of hanging.
//
// run_ranks(N, fn) runs fn(collectives, rank) on N threads and rethrows the first
// exception. Catch's assertions are not thread-safe: the rank functions only compute and
// store results, and the test checks them after run_ranks returns.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/dist/collectives.h"

namespace nas::test {

// What the ranks of one group share: a generation barrier and one published buffer per rank.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), published_(size) {}

  int size() const { return size_; }

  // Every rank waits until all `size` ranks arrive. std::barrier is C++20.
  void arrive_and_wait(double timeout_seconds, const char* what) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
    if (!cv_.wait_until(lock, deadline, [&] { return generation_ != generation || aborted_; }))
      throw CollectiveTimeout("thread collectives", std::string("timed out in ") + what);
    if (generation_ == generation)
      throw CollectiveTimeout("thread collectives", std::string("a rank failed during ") + what);
  }

  // A rank failed: the others stop waiting for it at once.
  void abort() {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
    cv_.notify_all();
  }

  // Rank `rank`'s buffer for the current operation (written before the first barrier of
  // an operation, read by all ranks between its two barriers).
  std::vector<unsigned char>& published(int rank) { return published_[rank]; }

 private:
  const int size_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  std::vector<std::vector<unsigned char>> published_;
};

class ThreadCollectives : public Collectives {
 public:
  ThreadCollectives(ThreadGroup& group, int rank) : group_(group), rank_(rank) { set_timeout(30); }

  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  std::string transport() const override { return "threads"; }

  void sum(float* data, size_t n, const char* what) override {
    reduce(data, n, what, [](float a, float b) { return a + b; });
  }
  void sum(double* data, size_t n, const char* what) override {
    reduce(data, n, what, [](double a, double b) { return a + b; });
  }
  void max(double* data, size_t n, const char* what) override {
    reduce(data, n, what, [](double a, double b) { return a < b ? b : a; });
  }
  void broadcast(void* data, size_t bytes, int root, const char* what) override {
    if (rank_ == root) publish(data, bytes);
    group_.arrive_and_wait(timeout(), what);
    const std::vector<unsigned char>& src = group_.published(root);
    if (src.size() != bytes) throw std::logic_error(std::string("broadcast size differs: ") + what);
    if (rank_ != root) std::memcpy(data, src.data(), bytes);
    group_.arrive_and_wait(timeout(), what);
  }
  void barrier(const char* what) override { group_.arrive_and_wait(timeout(), what); }

  // Done at once: the handle is already finished.
  PendingReduction start_sum(float* data, size_t n, const char* what) override {
    sum(data, n, what);
    return PendingReduction{next_id_++};
  }
  void progress() override {}
  void wait(PendingReduction& pending) override { pending.id = -1; }

  // How many reductions (sum and max) this rank has made.
  int reductions() const { return reductions_; }

 private:
  void publish(const void* data, size_t bytes) {
    std::vector<unsigned char>& mine = group_.published(rank_);
    mine.resize(bytes);
    if (bytes) std::memcpy(mine.data(), data, bytes);
  }

  template <typename T, typename Op>
  void reduce(T* data, size_t n, const char* what, Op op) {
    ++reductions_;
    publish(data, n * sizeof(T));
    group_.arrive_and_wait(timeout(), what);
    std::vector<T> result(n);
    for (int r = 0; r < size(); ++r) {
      const std::vector<unsigned char>& src = group_.published(r);
      if (src.size() != n * sizeof(T))
        throw std::logic_error(std::string("reduction sizes differ between ranks: ") + what);
      const T* values = reinterpret_cast<const T*>(src.data());
      for (size_t i = 0; i < n; ++i) result[i] = r == 0 ? values[i] : op(result[i], values[i]);
    }
    // Nobody publishes the next operation's buffer before every rank has read this one.
    group_.arrive_and_wait(timeout(), what);
    std::copy(result.begin(), result.end(), data);
  }

  ThreadGroup& group_;
  const int rank_;
  int64_t next_id_ = 0;
  int reductions_ = 0;
};

// Runs fn(collectives, rank) for ranks 0..size-1, each on its own thread, and rethrows the
// first exception a rank threw, preferring the cause to the other ranks' aborted waits.
inline void run_ranks(int size, const std::function<void(ThreadCollectives&, int)>& fn) {
  ThreadGroup group(size);
  std::vector<std::exception_ptr> errors(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r)
    threads.emplace_back([&, r] {
      try {
        ThreadCollectives collectives(group, r);
        fn(collectives, r);
      } catch (...) {
        errors[r] = std::current_exception();
        group.abort();
      }
    });
  for (std::thread& t : threads) t.join();
  // A timeout is skipped here; anything else propagates from the try.
  for (const std::exception_ptr& e : errors) {
    if (!e) continue;
    try {
      std::rethrow_exception(e);
    } catch (const CollectiveTimeout&) {
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace nas::test
