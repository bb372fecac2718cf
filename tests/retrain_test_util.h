// What the tests of `nasc search --retrain` and of resuming with recorded --set values
// share: a small space whose network parameters change the network after its one choice,
// so that a retrain can widen what the search ran on, and writing a scratch input file.
#pragma once

#include <fstream>
#include <string>

#include "tests/cli_test_util.h"

namespace nas::test {

// Only `conv` carries the input's information. `width` (the 1x1 convolution after the
// choice) changes the shapes; `gain` does not, so a checkpoint of one gain loads into a
// network of another.
inline const char* const kWidenableSpace = R"(
network widenable(x: tensor[4, 12, 12], gain: float = 1.0, width: int = 4) {
  let h = choice "op" { zero: zero(x), mute: mul(x, 0.0), conv: conv(x, 4, kernel=3, pad=1) };
  h = relu(conv(relu(mul(h, gain)), width, kernel=1));
  return linear(flatten(max_pool(h, 4)), 4);
}
)";

// `text` written to a fresh scratch path for `name`; the path.
inline std::string write_scratch_file(const std::string& name, const std::string& text) {
  const std::string path = scratch_path(name);
  std::ofstream(path) << text;
  return path;
}

}  // namespace nas::test
