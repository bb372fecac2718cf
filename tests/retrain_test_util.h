// What the tests of `nasc search --retrain` and of resuming with recorded --set values
// share: a small space whose network parameters change the network after its one choice,
// so that a retrain can widen what the search ran on, what a finished run must hold
// however it was interrupted, and writing a scratch input file.
#pragma once

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
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

// What a finished `nasc search --retrain` run folder holds that must not depend on where
// (or whether) it was interrupted: the retrain's outcome (run_outcome), the search's
// arch.json and config.json, and result.json's test accuracy.
inline std::map<std::string, std::string> retrain_run_outcome(const std::string& dir) {
  std::map<std::string, std::string> o = run_outcome(dir + "/retrain", {"weights", "config.json"});
  o["arch.json"] = slurp(dir + "/arch.json");
  o["config.json"] = slurp(dir + "/config.json");
  o["test_accuracy"] = nlohmann::json::parse(slurp(dir + "/result.json"))["test_accuracy"].dump();
  return o;
}

// `text` written to a fresh scratch path for `name`; the path.
inline std::string write_scratch_file(const std::string& name, const std::string& text) {
  const std::string path = scratch_path(name);
  std::ofstream(path) << text;
  return path;
}

}  // namespace nas::test
