// A small deterministic random number generator: the data pipeline, parameter
// initialisation and the searchers all draw from it.
//
// The standard distributions (std::uniform_int_distribution, ...) are implementation
// defined, so the same seed gives different batches under libstdc++ and libc++. Everything
// here is specified bit-for-bit: SplitMix64 for the stream, Lemire's multiply-shift for
// bounded integers, and the top 24 bits for floats. Runs are reproducible across platforms.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

// The draws below are also device functions in the CUDA backend's kernels (nvcc), so that
// both backends draw with one definition.
#ifdef __CUDACC__
#define NASC_HOST_DEVICE __host__ __device__
#else
#define NASC_HOST_DEVICE
#endif

namespace nas {

// SplitMix64's stream advances by this (2^64 / the golden ratio) per draw.
inline constexpr uint64_t kSplitMixIncrement = 0x9e3779b97f4a7c15ULL;
// derive_seed's offset of the mixed value.
inline constexpr uint64_t kDeriveSeedOffset = 0x632be59bd9b4e019ULL;

// The SplitMix64 finalizer: a bijective 64-bit mixer, also used to derive seeds.
NASC_HOST_DEVICE inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Combines a seed with one more value (epoch, batch index, class, purpose tag). Mixing
// before and after keeps (seed, 1, 2) and (seed, 2, 1) unrelated.
NASC_HOST_DEVICE inline uint64_t derive_seed(uint64_t seed, uint64_t value) {
  return mix64(mix64(seed) ^ (mix64(value + kSplitMixIncrement) + kDeriveSeedOffset));
}

// Dropout's draws. Element k of sample b (its index in the global batch, so that a
// data-parallel rank draws what one process would) at a dropout node is kept when the k-th
// (from 0) uniform_float() of Rng(derive_seed(node_seed, b)) is >= p, node_seed being
// derive_seed(the run's dropout seed, the node's id). That draw is a function of (b, k)
// alone, so every executor draws any element on its own: in parallel, inside a fused
// region, in generated code, on a GPU; and the backward pass recomputes the mask instead
// of storing it. uniform_float() >= p compares k24 / 2^24 with p, which holds exactly when
// the draw's top 24 bits k24 are >= dropout_threshold(p).
NASC_HOST_DEVICE inline uint64_t dropout_threshold(double p) {
  return static_cast<uint64_t>(std::ceil(p * 16777216.0));
}
// The factor kept elements (and drop path's kept samples) are scaled by, 1 / (1 - p) as a
// float: every backend's forward and gradient multiply by this one value.
NASC_HOST_DEVICE inline float dropout_keep_scale(double p) {
  return static_cast<float>(1.0 / (1.0 - p));
}

// Sample b's stream: derive_seed(node_seed, b).
NASC_HOST_DEVICE inline uint64_t dropout_sample_stream(uint64_t node_seed, int64_t sample) {
  return derive_seed(node_seed, static_cast<uint64_t>(sample));
}
NASC_HOST_DEVICE inline bool dropout_keeps(uint64_t sample_stream, int64_t k, uint64_t threshold) {
  return (mix64(sample_stream + static_cast<uint64_t>(k + 1) * kSplitMixIncrement) >> 40) >=
         threshold;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next_u64() {
    state_ += kSplitMixIncrement;
    return mix64(state_);
  }

  // Uniform in [0, n); n must be > 0. Lemire's multiply-shift: the bias is below 2^-64 * n,
  // irrelevant here, and the result is the same everywhere.
  uint64_t uniform(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next_u64()) * n) >> 64);
  }

  // Uniform in [lo, hi], inclusive.
  int64_t uniform_int(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(uniform(static_cast<uint64_t>(hi - lo) + 1));
  }

  // Uniform in [0, 1) with 24 random bits: exact in a float.
  float uniform_float() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }

  bool coin() { return (next_u64() >> 63) != 0; }

  // Fisher-Yates, from the back, drawing uniform(i + 1).
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(uniform(i));
      std::swap(v[i - 1], v[j]);
    }
  }

 private:
  uint64_t state_;
};

}  // namespace nas
