#include "compiler/frontend/pytorch_hints.h"

#include <algorithm>

namespace nas {
namespace {

// A torch.nn keyword and the .nas parameter names that mean the same, in order of
// preference: ops use `out`, the stdlib blocks `c_out`.
struct KeywordAlias {
  const char* pytorch;
  std::vector<const char*> nas;
};

const std::vector<KeywordAlias>& keyword_aliases() {
  static const std::vector<KeywordAlias> aliases = {
      {"kernel_size", {"kernel"}},
      {"padding", {"pad"}},
      {"out_channels", {"out", "c_out"}},
      {"out_features", {"out", "c_out"}},
      {"negative_slope", {"slope"}},  // LeakyReLU
      {"dim", {"axis"}},              // torch.cat
      {"depth_multiplier", {"multiplier"}},
      {"num_classes", {"classes"}},
  };
  return aliases;
}

// PyTorch keywords with no .nas counterpart, and what to do instead.
struct KeywordWithout {
  const char* pytorch;
  const char* advice;
};

const std::vector<KeywordWithout>& keywords_without_counterpart() {
  static const std::vector<KeywordWithout> keywords = {
      {"in_channels", "the input channels come from the input tensor's shape"},
      {"in_features", "the input features come from the input tensor's shape"},
      {"num_features", "the channels come from the input tensor's shape"},
      {"inplace", "ops never work in place here"},
  };
  return keywords;
}

}  // namespace

std::string pytorch_keyword_hint(std::string_view name, const std::vector<std::string>& known) {
  for (const KeywordAlias& a : keyword_aliases()) {
    if (name != a.pytorch) continue;
    for (const char* candidate : a.nas)
      if (std::find(known.begin(), known.end(), candidate) != known.end())
        return "; did you mean `" + std::string(candidate) + "`? (`" + std::string(name) +
               "` is PyTorch's name for it)";
  }
  for (const KeywordWithout& k : keywords_without_counterpart())
    if (name == k.pytorch)
      return "; " + std::string(k.advice) + ", so leave `" + std::string(name) + "` out";
  return {};
}

std::string python_literal_hint(std::string_view name) {
  if (name == "True") return "; did you mean `true`?";
  if (name == "False") return "; did you mean `false`?";
  if (name == "None")
    return "; .nas has no `None` (no null value): leave an optional argument out to get its "
           "default";
  return {};
}

std::string floor_division_note(std::string_view left, std::string_view right) {
  std::string example = !left.empty() && !right.empty()
                            ? std::string(left) + " / " + std::string(right)
                            : std::string("a / b");
  return "`//` starts a comment in .nas; for integer (floor) division write `" + example +
         "` (`/` on two ints)";
}

}  // namespace nas
