#include "runtime/exec/param_store.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "runtime/exec/backend_registry.h"
#include "support/rng.h"

namespace nas {
namespace {

uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: a stable per-name seed component
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The initial values on the host, uploaded once.
std::vector<float> initial_values(const ParamSpec& spec, uint64_t seed) {
  std::vector<float> value(static_cast<size_t>(shape_elements(spec.shape)), 0.0f);
  Rng rng(derive_seed(seed, name_hash(spec.name)));
  switch (spec.init) {
    case ParamInit::Ones:
      std::fill(value.begin(), value.end(), 1.0f);
      break;
    case ParamInit::Zeros:
      break;
    case ParamInit::KaimingUniform: {
      float bound = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(1, spec.fan_in)));
      for (float& v : value) v = (2.0f * rng.uniform_float() - 1.0f) * bound;
      break;
    }
  }
  return value;
}

}  // namespace

ParamStore::ParamStore(std::shared_ptr<Backend> backend) : backend_(std::move(backend)) {
  NAS_CHECK(backend_ != nullptr, "a ParamStore needs a backend");
}

ParamStore::ParamStore() : ParamStore(make_backend(default_backend_name())) {}

std::vector<int> ParamStore::bind(const ExecPlan& plan, uint64_t seed) {
  std::vector<int> index;
  for (const ParamSpec& spec : plan.params) {
    auto it = by_name_.find(spec.name);
    if (it != by_name_.end()) {
      const ParamSpec& have = params_[it->second].spec;
      // Plans sharing a store come from one network; weights files are checked against
      // the plan before they reach the store.
      NAS_CHECK(have.shape == spec.shape && have.trainable == spec.trainable,
                "parameter `" + spec.name + "` is " + shape_text(have.shape) +
                    " in the store but " + shape_text(spec.shape) + " in the plan");
      index.push_back(it->second);
      continue;
    }
    StoredParam p;
    p.spec = spec;
    p.value = DeviceBuffer(*backend_, static_cast<size_t>(shape_elements(spec.shape)));
    write(p.value, initial_values(spec, seed));
    if (spec.trainable) {
      p.grad = DeviceBuffer(*backend_, p.value.size());
      backend_->fill(p.grad, 0.0f);
    }
    by_name_[spec.name] = static_cast<int>(params_.size());
    index.push_back(static_cast<int>(params_.size()));
    params_.push_back(std::move(p));
  }
  return index;
}

std::vector<int> ParamStore::bind_arch(const ExecPlan& plan, uint64_t seed) {
  std::vector<int> index;
  for (const ArchSpec& spec : plan.arch) {
    int found = -1;
    for (size_t i = 0; i < arch_.size(); ++i)
      if (arch_[i].spec.key == spec.key) found = static_cast<int>(i);
    if (found >= 0) {
      NAS_CHECK(arch_[found].spec.candidates == spec.candidates,
                "choice `" + spec.key + "` has different candidates in the store and the plan");
      index.push_back(found);
      continue;
    }
    // DARTS initialises alpha as 1e-3 * N(0, 1); a uniform of the same spread keeps the
    // softmax near uniform while breaking ties the same way for a given seed.
    StoredArch a;
    a.spec = spec;
    Rng rng(derive_seed(seed, name_hash("alpha:" + spec.key)));
    std::vector<float> alpha;
    for (size_t i = 0; i < spec.candidates.size(); ++i)
      alpha.push_back(1e-3f * (2.0f * rng.uniform_float() - 1.0f));
    a.alpha = DeviceBuffer(*backend_, alpha.size());
    write(a.alpha, alpha);
    a.alpha_grad = DeviceBuffer(*backend_, alpha.size());
    backend_->fill(a.alpha_grad, 0.0f);
    index.push_back(static_cast<int>(arch_.size()));
    arch_.push_back(std::move(a));
  }
  return index;
}

int ParamStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

std::vector<ParamSlot> ParamStore::weight_slots() {
  std::vector<ParamSlot> slots;
  for (StoredParam& p : params_)
    if (p.spec.trainable) slots.push_back({&p.value, &p.grad, true});
  return slots;
}

std::vector<DeviceBuffer*> ParamStore::weight_grads() {
  std::vector<DeviceBuffer*> grads;
  for (StoredParam& p : params_)
    if (p.spec.trainable) grads.push_back(&p.grad);
  return grads;
}

std::vector<ParamSlot> ParamStore::arch_slots() {
  std::vector<ParamSlot> slots;
  for (StoredArch& a : arch_) slots.push_back({&a.alpha, &a.alpha_grad, true});
  return slots;
}

void ParamStore::zero_grads() {
  for (StoredParam& p : params_)
    if (!p.grad.empty()) backend_->fill(p.grad, 0.0f);
  zero_arch_grads();
}

void ParamStore::zero_grads(const std::vector<char>& weights) {
  if (weights.empty()) return zero_grads();
  const int64_t slots = std::count_if(params_.begin(), params_.end(),
                                      [](const StoredParam& p) { return p.spec.trainable; });
  NAS_CHECK(static_cast<int64_t>(weights.size()) == slots,
            "zero_grads: " + std::to_string(weights.size()) + " flags for " +
                std::to_string(slots) + " weights");
  size_t slot = 0;
  for (StoredParam& p : params_) {
    const bool zero = !p.spec.trainable || weights[slot] != 0;
    slot += p.spec.trainable ? 1 : 0;
    if (zero && !p.grad.empty()) backend_->fill(p.grad, 0.0f);
  }
  zero_arch_grads();
}

void ParamStore::zero_arch_grads() {
  for (StoredArch& a : arch_) backend_->fill(a.alpha_grad, 0.0f);
}

int64_t ParamStore::trainable_count() const {
  int64_t n = 0;
  for (const StoredParam& p : params_)
    if (p.spec.trainable) n += static_cast<int64_t>(p.value.size());
  return n;
}

}  // namespace nas
