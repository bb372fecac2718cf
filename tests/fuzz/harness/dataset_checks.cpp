#include "tests/fuzz/harness/dataset_checks.h"

#include <algorithm>
#include <cmath>

#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

void check_dataset(const nas::Dataset& data, const std::string& reader) {
  if (data.sample_shape.size() != 3) bug(reader, "sample shape is not C, H, W");
  for (int64_t d : data.sample_shape)
    if (d < 1) bug(reader, "sample shape has a dim < 1");
  const size_t stored = data.floats ? data.float_images.size() : data.images.size();
  if (stored != data.size() * data.sample_numel() ||
      (data.floats ? !data.images.empty() : !data.float_images.empty()))
    bug(reader, "image elements " + std::to_string(stored) + " != " + std::to_string(data.size()) +
                    " samples of " + std::to_string(data.sample_numel()));
  for (int32_t label : data.labels)
    if (label < 0 || label >= data.num_classes)
      bug(reader,
          "label " + std::to_string(label) + " outside 0.." + std::to_string(data.num_classes - 1));

  // The split: disjoint, sorted, covering every sample.
  auto [train, valid] = nas::split_stratified(data, 0.5, 7);
  if (train.size() + valid.size() != data.size()) bug(reader, "the split loses samples");
  std::vector<size_t> all = train;
  all.insert(all.end(), valid.begin(), valid.end());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i] != i) bug(reader, "the split does not cover every sample exactly once");

  auto [mean, stdev] = nas::channel_stats(data, train);
  if (mean.size() != static_cast<size_t>(data.sample_shape[0]) || stdev.size() != mean.size())
    bug(reader, "channel_stats size differs from the channel count");
  for (size_t c = 0; c < mean.size(); ++c)
    if (!(data.floats ? std::isfinite(mean[c]) : mean[c] >= 0 && mean[c] <= 1) ||
        !std::isfinite(stdev[c]) || stdev[c] < 0)
      bug(reader, "channel_stats out of range");
}

}  // namespace nas_fuzz
