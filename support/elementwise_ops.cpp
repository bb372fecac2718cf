#include "support/elementwise_ops.h"

#include <algorithm>
#include <cmath>

namespace nas {
namespace {

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
double relu6(double x) {
  return std::min(std::max(x, 0.0), 6.0);
}

}  // namespace

const std::vector<ElementwiseFn>& elementwise_fns() {
  // Derivatives at the kinks follow oneDNN's choices where a oneDNN kernel runs the op.
  static const std::vector<ElementwiseFn> fns = {
      {"relu", "max(x, 0)", "x > 0 ? 1 : 0", nullptr,
       [](double x, double) { return std::max(x, 0.0); },
       [](double x, double) { return x > 0 ? 1.0 : 0.0; }},
      {"relu6", "min(max(x, 0), 6)", "x > 0 && x < 6 ? 1 : 0", nullptr,
       [](double x, double) { return relu6(x); },
       [](double x, double) { return x > 0 && x < 6 ? 1.0 : 0.0; }},
      {"leaky_relu", "x > 0 ? x : a * x", "x > 0 ? 1 : a", "slope",
       [](double x, double a) { return x > 0 ? x : a * x; },
       [](double x, double a) { return x > 0 ? 1.0 : a; }},
      {"sigmoid", "sigmoid(x)", "sigmoid(x) * (1 - sigmoid(x))", nullptr,
       [](double x, double) { return sigmoid(x); },
       [](double x, double) { return sigmoid(x) * (1 - sigmoid(x)); }},
      {"hard_swish", "x * relu6(x + 3) / 6", "x <= -3 ? 0 : x >= 3 ? 1 : (2 * x + 3) / 6", nullptr,
       [](double x, double) { return x * relu6(x + 3) / 6; },
       [](double x, double) { return x <= -3  ? 0.0
                                     : x >= 3 ? 1.0
                                              : (2 * x + 3) / 6; }},
      {"hard_sigmoid", "relu6(x + 3) / 6", "x > -3 && x < 3 ? 1 / 6 : 0", nullptr,
       [](double x, double) { return relu6(x + 3) / 6; },
       [](double x, double) { return x > -3 && x < 3 ? 1.0 / 6 : 0.0; }},
      {"silu", "x * sigmoid(x)", "sigmoid(x) * (1 + x * (1 - sigmoid(x)))", nullptr,
       [](double x, double) { return x * sigmoid(x); },
       [](double x, double) { return sigmoid(x) * (1 + x * (1 - sigmoid(x))); }},
  };
  return fns;
}

const ElementwiseFn* find_elementwise(std::string_view name) {
  for (const ElementwiseFn& f : elementwise_fns())
    if (name == f.name) return &f;
  return nullptr;
}

}  // namespace nas
