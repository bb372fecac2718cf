// Training-time augmentation of one float CHW sample, as in the DARTS CIFAR-10 pipeline:
// random crop with zero padding, horizontal flip, per-channel normalization, cutout; and
// random erasing (Zhong et al. 2020) as torchvision's RandomErasing does it.
//
// The primitives take their random choices as arguments, so tests can check them against
// hand-computed results; apply_augment draws those choices from an Rng in a fixed order.
#pragma once

#include <string>
#include <vector>

#include "support/rng.h"

namespace nas {

// Random erasing: with probability p, one rectangle of the image (every channel) is set to
// `value`. Its area is a uniform share in [scale_min, scale_max] of the image's, its aspect
// ratio h / w log-uniform in [ratio_min, ratio_max]; defaults are torchvision's, except p,
// which is 0 (off) until a config asks for erasing.
struct RandomErasing {
  double p = 0;
  double scale_min = 0.02, scale_max = 0.33;
  double ratio_min = 0.3, ratio_max = 3.3;
  float value = 0;  // in normalized space: erasing runs after normalization

  bool operator==(const RandomErasing& o) const {
    return p == o.p && scale_min == o.scale_min && scale_max == o.scale_max &&
           ratio_min == o.ratio_min && ratio_max == o.ratio_max && value == o.value;
  }
  // The empty string when the settings are valid, else what is wrong.
  std::string check() const;
};

// The rectangle rows [y, y + h) x columns [x, x + w); h == 0 or w == 0 erases nothing.
struct ErasingBox {
  int y = 0, x = 0, h = 0, w = 0;
};

struct Augment {
  // Per-channel normalization x' = (x - mean[c]) / std[c], applied to every sample
  // (training and evaluation) when `mean` is non-empty. Values are in the [0, 1] scale.
  std::vector<float> mean;
  std::vector<float> std;
  // Random crop: pad by `crop_padding` zeros on each side, take an H x W window at a
  // uniform offset (0 = off). DARTS uses 4 on CIFAR-10.
  int crop_padding = 0;
  // Flip left-right with probability 1/2.
  bool hflip = false;
  // Cutout (DeVries & Taylor 2017, as in DARTS): zero one square of side `cutout` centred at
  // a uniform pixel, clipped at the borders (0 = off). DARTS uses 16 on CIFAR-10.
  int cutout = 0;
  RandomErasing erasing;  // off while erasing.p is 0

  // Whether any random transformation is on (normalization alone is deterministic).
  bool random() const { return crop_padding > 0 || hflip || cutout > 0 || erasing.p > 0; }
  // The empty string when the configuration fits `channels`, else what is wrong.
  std::string check(int channels) const;
};

// In place: x[c][y][x] = (x - mean[c]) / std[c].
void normalize(float* x, int c, int h, int w, const float* mean, const float* std);

// out = the H x W window at (dy, dx) of `in` padded by `pad` zeros on every side, i.e.
// out[y][x] = in[y + dy - pad][x + dx - pad], 0 outside; dy, dx in [0, 2 * pad].
// `out` must not alias `in`.
void crop_padded(const float* in, float* out, int c, int h, int w, int pad, int dy, int dx);

// In place: mirror every row.
void hflip(float* x, int c, int h, int w);

// In place: zero rows [cy - len/2, cy + len/2) x columns [cx - len/2, cx + len/2), clipped
// to the image, in every channel. (An odd len gives side len - 1, exactly as DARTS does.)
void cutout(float* x, int c, int h, int w, int cy, int cx, int len);

// The rectangle torchvision's RandomErasing.get_params picks for an h x w image: up to 10
// attempts, each drawing an area (a uniform share of h * w in the scale range) and a
// log-uniform aspect ratio r, giving rows round(sqrt(area * r)) and columns
// round(sqrt(area / r)) (round half to even, as Python's round); the first that fits
// strictly inside the image (rows < h, columns < w) is placed at a uniform offset (drawn
// row first). When no attempt fits, the box is empty.
ErasingBox draw_erasing_box(const RandomErasing& e, int h, int w, Rng& rng);

// In place: x[ch][y][x] = value inside `box`, in every channel.
void erase(float* x, int c, int h, int w, const ErasingBox& box, float value);

// Applies the whole configuration to one sample in place: crop (draws dy, then dx), flip
// (draws a coin), normalize, cutout (draws cy, then cx), random erasing (draws whether,
// then the box). `scratch` holds c*h*w floats.
// With `train` false only normalization runs and no random numbers are drawn.
void apply_augment(const Augment& aug, float* x, int c, int h, int w, Rng& rng, float* scratch,
                   bool train = true);

}  // namespace nas
