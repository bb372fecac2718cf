// A small thread-safe cache of immutable CPU kernels keyed by their signature string, so that
// oneDNN primitives (costly to create: they pick and JIT an implementation) are made once per
// signature and reused by every step that needs them.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nas {

template <typename Kernel>
class KernelCache {
 public:
  // Returns the kernel for `key`, calling `make` only if none exists yet. The lock is held
  // while building, so concurrent first requests for one signature build it exactly once;
  // kernels are built rarely (once per signature), so the serialisation costs nothing.
  std::shared_ptr<const Kernel> get(const std::string& key,
                                    const std::function<std::shared_ptr<const Kernel>()>& make) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = kernels_.find(key);
    if (it != kernels_.end()) return it->second;
    std::shared_ptr<const Kernel> kernel = make();
    ++created_;
    kernels_.emplace(key, kernel);
    return kernel;
  }

  std::size_t created() const { return created_.load(); }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const Kernel>> kernels_;
  std::atomic<std::size_t> created_{0};
};

}  // namespace nas
