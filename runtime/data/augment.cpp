#include "runtime/data/augment.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace nas {
namespace {

// A double uniform in [0, 1) from 53 random bits (the share and ratio draws of erasing need
// finer steps than uniform_float's 2^-24 to follow torchvision's continuous draws).
double unit_double(Rng& rng) {
  return static_cast<double>(rng.next_u64() >> 11) * (1.0 / 9007199254740992.0);
}

double uniform_between(Rng& rng, double lo, double hi) {
  return lo + (hi - lo) * unit_double(rng);
}

}  // namespace

std::string RandomErasing::check() const {
  if (!(p >= 0 && p <= 1)) return fmt::format("random erasing probability {} is not in [0, 1]", p);
  if (!(scale_min > 0 && scale_min <= scale_max && scale_max <= 1))
    return fmt::format("random erasing scale [{}, {}] is not 0 < min <= max <= 1", scale_min,
                       scale_max);
  if (!(ratio_min > 0 && ratio_min <= ratio_max && std::isfinite(ratio_max)))
    return fmt::format("random erasing ratio [{}, {}] is not 0 < min <= max", ratio_min, ratio_max);
  if (!std::isfinite(value)) return fmt::format("random erasing value {} is not finite", value);
  return {};
}

std::string Augment::check(int channels) const {
  if (mean.size() != std.size())
    return fmt::format("normalization has {} means but {} standard deviations", mean.size(),
                       std.size());
  if (!mean.empty() && mean.size() != static_cast<size_t>(channels))
    return fmt::format("normalization has {} means but the samples have {} channels", mean.size(),
                       channels);
  for (float s : std)
    if (!(s > 0.0f)) return fmt::format("normalization standard deviation {} is not positive", s);
  if (crop_padding < 0) return fmt::format("crop padding {} is negative", crop_padding);
  if (cutout < 0) return fmt::format("cutout length {} is negative", cutout);
  return erasing.check();
}

void normalize(float* x, int c, int h, int w, const float* mean, const float* std) {
  size_t plane = static_cast<size_t>(h) * w;
  for (int ch = 0; ch < c; ++ch) {
    // Divide rather than multiply by a reciprocal: results then equal (x - mean) / std exactly.
    float m = mean[ch], s = std[ch];
    float* p = x + ch * plane;
    for (size_t k = 0; k < plane; ++k) p[k] = (p[k] - m) / s;
  }
}

void crop_padded(const float* in, float* out, int c, int h, int w, int pad, int dy, int dx) {
  for (int ch = 0; ch < c; ++ch) {
    const float* src = in + static_cast<size_t>(ch) * h * w;
    float* dst = out + static_cast<size_t>(ch) * h * w;
    for (int y = 0; y < h; ++y) {
      int sy = y + dy - pad;
      float* row = dst + static_cast<size_t>(y) * w;
      if (sy < 0 || sy >= h) {
        std::fill(row, row + w, 0.0f);
        continue;
      }
      for (int x = 0; x < w; ++x) {
        int sx = x + dx - pad;
        row[x] = (sx >= 0 && sx < w) ? src[static_cast<size_t>(sy) * w + sx] : 0.0f;
      }
    }
  }
}

void hflip(float* x, int c, int h, int w) {
  for (int r = 0; r < c * h; ++r)
    std::reverse(x + static_cast<size_t>(r) * w, x + (r + 1) * static_cast<size_t>(w));
}

void cutout(float* x, int c, int h, int w, int cy, int cx, int len) {
  int y1 = std::clamp(cy - len / 2, 0, h), y2 = std::clamp(cy + len / 2, 0, h);
  int x1 = std::clamp(cx - len / 2, 0, w), x2 = std::clamp(cx + len / 2, 0, w);
  for (int ch = 0; ch < c; ++ch)
    for (int y = y1; y < y2; ++y) {
      float* row = x + (static_cast<size_t>(ch) * h + y) * w;
      std::fill(row + x1, row + x2, 0.0f);
    }
}

ErasingBox draw_erasing_box(const RandomErasing& e, int h, int w, Rng& rng) {
  const double area = static_cast<double>(h) * w;
  const double log_lo = std::log(e.ratio_min), log_hi = std::log(e.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform_between(rng, e.scale_min, e.scale_max);
    const double ratio = std::exp(uniform_between(rng, log_lo, log_hi));
    // nearbyint rounds half to even in the default rounding mode, as Python's round.
    const int rows = static_cast<int>(std::nearbyint(std::sqrt(target * ratio)));
    const int cols = static_cast<int>(std::nearbyint(std::sqrt(target / ratio)));
    if (!(rows < h && cols < w)) continue;
    ErasingBox box;
    box.h = rows;
    box.w = cols;
    box.y = static_cast<int>(rng.uniform_int(0, h - rows));
    box.x = static_cast<int>(rng.uniform_int(0, w - cols));
    return box;
  }
  return {};
}

void erase(float* x, int c, int h, int w, const ErasingBox& box, float value) {
  for (int ch = 0; ch < c; ++ch)
    for (int y = box.y; y < box.y + box.h; ++y) {
      float* row = x + (static_cast<size_t>(ch) * h + y) * w;
      std::fill(row + box.x, row + box.x + box.w, value);
    }
}

void apply_augment(const Augment& aug, float* x, int c, int h, int w, Rng& rng, float* scratch,
                   bool train) {
  if (train && aug.crop_padding > 0) {
    int span = 2 * aug.crop_padding;
    int dy = static_cast<int>(rng.uniform_int(0, span));
    int dx = static_cast<int>(rng.uniform_int(0, span));
    crop_padded(x, scratch, c, h, w, aug.crop_padding, dy, dx);
    std::memcpy(x, scratch, sizeof(float) * static_cast<size_t>(c) * h * w);
  }
  if (train && aug.hflip && rng.coin()) hflip(x, c, h, w);
  if (!aug.mean.empty()) normalize(x, c, h, w, aug.mean.data(), aug.std.data());
  // Cutout after normalization, as DARTS does: the square is 0 in normalized space.
  if (train && aug.cutout > 0) {
    int cy = static_cast<int>(rng.uniform(static_cast<uint64_t>(h)));
    int cx = static_cast<int>(rng.uniform(static_cast<uint64_t>(w)));
    cutout(x, c, h, w, cy, cx, aug.cutout);
  }
  if (train && aug.erasing.p > 0 && unit_double(rng) < aug.erasing.p)
    erase(x, c, h, w, draw_erasing_box(aug.erasing, h, w, rng), aug.erasing.value);
}

}  // namespace nas
