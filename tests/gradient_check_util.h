// The finite-difference gradient check shared by the executor tests and the registry-driven
// conformance test: the analytic gradients a ParamStore holds after one run of a plan,
// against central differences of the loss that plan computes.
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "runtime/exec/param_store.h"

namespace nas::test {

// Checks d(loss)/d(`per_tensor` random entries of every trainable parameter, drawn with
// `rng`) and d/d(every alpha entry) against central differences of `loss` (a run of the
// plan that owns `store`, returning the mean loss). The loss is a float32 network summed
// in double: eps 1e-3 keeps the truncation error small and the rounding error near 1e-4.
inline void check_store_gradients(ParamStore& store, const std::function<double()>& loss,
                                  std::mt19937& rng, int per_tensor) {
  store.zero_grads();
  loss();
  // Copies: the runs below add to the gradient buffers again.
  std::vector<std::vector<float>> grads;
  for (const StoredParam& p : store.params())
    grads.push_back(p.grad.empty() ? std::vector<float>{} : store.read(p.grad));
  std::vector<std::vector<float>> alpha_grads;
  for (const StoredArch& a : store.arch()) alpha_grads.push_back(store.read(a.alpha_grad));

  size_t checked = 0, bad = 0;
  // Entry i of a buffer in backend memory, set through an explicit upload.
  auto set = [&](DeviceBuffer& buffer, size_t i, float value) {
    store.backend().upload(buffer, &value, sizeof value, i * sizeof value);
    store.backend().synchronize();
  };
  auto compare = [&](DeviceBuffer& buffer, size_t i, double analytic, const std::string& what) {
    const float eps = 1e-3f;
    const float saved = store.read(buffer)[i];
    const float hi = saved + eps, lo = saved - eps;
    set(buffer, i, hi);
    double up = loss();
    set(buffer, i, lo);
    double down = loss();
    set(buffer, i, saved);
    double numeric = (up - down) / (static_cast<double>(hi) - lo);
    double tol = 3e-3 + 0.05 * std::max(std::abs(numeric), std::abs(analytic));
    ++checked;
    if (std::abs(numeric - analytic) > tol) {
      ++bad;
      UNSCOPED_INFO(what << ": analytic " << analytic << ", numeric " << numeric);
    }
  };
  for (size_t t = 0; t < store.params().size(); ++t) {
    StoredParam& p = store.params()[t];
    if (!p.spec.trainable) continue;
    std::uniform_int_distribution<size_t> pick(0, p.value.size() - 1);
    for (int k = 0; k < per_tensor; ++k) {
      size_t i = pick(rng);
      compare(p.value, i, grads[t][i], p.spec.name + "[" + std::to_string(i) + "]");
    }
  }
  for (size_t g = 0; g < store.arch().size(); ++g) {
    StoredArch& a = store.arch()[g];
    for (size_t i = 0; i < a.alpha.size(); ++i)
      compare(a.alpha, i, alpha_grads[g][i], "alpha " + a.spec.key + "[" + std::to_string(i) + "]");
  }
  INFO(checked << " entries checked");
  CHECK(checked > 0);
  CHECK(bad == 0);
}

}  // namespace nas::test
