#include "runtime/exec/choice_weights.h"

#include <algorithm>
#include <cmath>

#include "support/errors.h"

namespace nas {

std::vector<float> choice_softmax(const std::vector<float>& x) {
  NAS_CHECK(!x.empty(), "softmax of an empty choice group");
  float max = x[0];
  for (float v : x) max = std::max(max, v);
  const double m = max;
  double sum = 0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - m);
  const double lse = m + std::log(sum);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) - lse));
  return y;
}

std::vector<float> choice_softmax_backward(const std::vector<float>& y,
                                           const std::vector<float>& dy) {
  NAS_CHECK(y.size() == dy.size(), "softmax backward: sizes differ");
  double dot = 0;
  for (size_t i = 0; i < y.size(); ++i) dot += static_cast<double>(dy[i]) * y[i];
  std::vector<float> dx(y.size());
  for (size_t i = 0; i < y.size(); ++i)
    dx[i] = static_cast<float>(static_cast<double>(y[i]) * (static_cast<double>(dy[i]) - dot));
  return dx;
}

}  // namespace nas
