// The host half of the architecture parameters: softmax(alpha) into choice weights and
// its backward. A group holds a handful of candidates, so this runs on the host on
// explicit copies (the executor downloads alpha once per run and uploads alpha's
// gradient after it; see RunState::choice_weights). Numerically it is the CPU kernels'
// softmax (double accumulation), so searches report the probabilities they train with.
#pragma once

#include <cstddef>
#include <vector>

namespace nas {

// y = softmax(x); x non-empty.
std::vector<float> choice_softmax(const std::vector<float>& x);
// dx = y * (dy - <dy, y>), for y = softmax(x).
std::vector<float> choice_softmax_backward(const std::vector<float>& y,
                                           const std::vector<float>& dy);

}  // namespace nas
