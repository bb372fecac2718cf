// The plain kernels' parameter structs (plain_kernels.h): their checks and derived sizes,
// apart from the kernels so that the CUDA backend's plugin, whose kernels take the same
// structs, builds them without the CPU loops.
#include <fmt/format.h>

#include <string>

#include "runtime/cpu/plain_kernels.h"
#include "support/errors.h"

namespace nas::plain {
namespace {

// The backends fill kernel parameters from plans nasc lowered: a bad one is a bug.
[[noreturn]] void fail(const char* op, const std::string& msg) {
  internal_error(__FILE__, __LINE__, fmt::format("{}: {}", op, msg));
}

void require_positive(const char* op, const char* field, int64_t v) {
  if (v < 1) fail(op, fmt::format("{} must be positive, got {}", field, v));
}

}  // namespace

void CrossEntropyParams::validate() const {
  require_positive("softmax_cross_entropy", "batch", batch);
  require_positive("softmax_cross_entropy", "classes", classes);
  if (!(smoothing >= 0 && smoothing < 1))
    fail("softmax_cross_entropy", fmt::format("smoothing must be in [0, 1), got {}", smoothing));
}

void WeightedSumParams::validate() const {
  require_positive("weighted_sum", "inputs", inputs);
  require_positive("weighted_sum", "size", size);
}

void AddParams::validate() const {
  require_positive("add", "inputs", inputs);
  require_positive("add", "size", size);
}

ConcatParams ConcatParams::from_shapes(int64_t batch,
                                       const std::vector<std::vector<int64_t>>& shapes,
                                       int64_t axis) {
  require_positive("concat", "batch", batch);
  if (shapes.empty()) fail("concat", "needs at least one input");
  const auto& first = shapes[0];
  const int64_t rank = static_cast<int64_t>(first.size());
  if (axis < 0 || axis >= rank)
    fail("concat",
         fmt::format("axis must be in [0, {}) for {}-D inputs, got {}", rank, rank, axis));
  ConcatParams p;
  p.outer = batch;
  for (int64_t d = 0; d < axis; ++d) p.outer *= first[d];
  for (int64_t d = axis + 1; d < rank; ++d) p.inner *= first[d];
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto& s = shapes[i];
    if (static_cast<int64_t>(s.size()) != rank)
      fail("concat",
           fmt::format("input {} has rank {} but input 0 has rank {}", i, s.size(), rank));
    for (int64_t d = 0; d < rank; ++d)
      if (d != axis && s[d] != first[d])
        fail("concat", fmt::format("input {} has size {} on axis {} but input 0 has {}", i, s[d], d,
                                   first[d]));
    p.sizes.push_back(s[axis]);
  }
  p.validate();
  return p;
}

void ConcatParams::validate() const {
  require_positive("concat", "outer", outer);
  require_positive("concat", "inner", inner);
  if (sizes.empty()) fail("concat", "needs at least one input");
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] < 1)
      fail("concat", fmt::format("sizes[{}] must be positive, got {}", i, sizes[i]));
}

int64_t ConcatParams::total() const {
  int64_t t = 0;
  for (int64_t s : sizes) t += s;
  return t;
}

void DropoutParams::validate() const {
  require_positive("dropout", "per_sample", per_sample);
  if (first_sample < 0) fail("dropout", fmt::format("first_sample is negative: {}", first_sample));
  if (!(p >= 0 && p < 1)) fail("dropout", fmt::format("p must be in [0, 1), got {}", p));
}

void MulParams::validate() const {
  require_positive("mul", "factors", factors);
  require_positive("mul", "inner", inner);
  if (!std::isfinite(scale)) fail("mul", fmt::format("scale must be finite, got {}", scale));
}

void GlobalAvgPoolParams::validate() const {
  require_positive("global_avg_pool", "batch", batch);
  require_positive("global_avg_pool", "channels", channels);
  require_positive("global_avg_pool", "height", height);
  require_positive("global_avg_pool", "width", width);
}

void CropParams::validate() const {
  require_positive("crop", "batch", batch);
  require_positive("crop", "channels", channels);
  require_positive("crop", "height", height);
  require_positive("crop", "width", width);
  for (auto [name, v] : {std::pair<const char*, int64_t>{"top", top},
                         {"left", left},
                         {"bottom", bottom},
                         {"right", right}})
    if (v < 0) fail("crop", fmt::format("{} must be >= 0, got {}", name, v));
  if (out_height() < 1 || out_width() < 1)
    fail("crop", fmt::format("must leave at least 1 row and 1 column: top {} + bottom {} of {} "
                             "rows, left {} + right {} of {} columns",
                             top, bottom, height, left, right, width));
}

void ChannelSliceParams::validate() const {
  require_positive("channel_slice", "batch", batch);
  require_positive("channel_slice", "channels", channels);
  require_positive("channel_slice", "inner", inner);
  require_positive("channel_slice", "count", count);
  if (start < 0 || start + count > channels)
    fail("channel_slice", fmt::format("channels [{}, {}) are not within the input's {}", start,
                                      start + count, channels));
}

void ChannelShuffleParams::validate() const {
  require_positive("channel_shuffle", "batch", batch);
  require_positive("channel_shuffle", "channels", channels);
  require_positive("channel_shuffle", "inner", inner);
  require_positive("channel_shuffle", "groups", groups);
  if (channels % groups != 0)
    fail("channel_shuffle",
         fmt::format("{} groups do not divide the input's {} channels", groups, channels));
}

}  // namespace nas::plain
