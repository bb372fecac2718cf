#include "runtime/exec/param_store.h"

#include <cmath>
#include <stdexcept>

#include "support/rng.h"

namespace nas {
namespace {

uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: a stable per-name seed component
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

void initialise(StoredParam& p, uint64_t seed) {
  Rng rng(derive_seed(seed, name_hash(p.spec.name)));
  switch (p.spec.init) {
    case ParamInit::Ones:
      std::fill(p.value.begin(), p.value.end(), 1.0f);
      break;
    case ParamInit::Zeros:
      std::fill(p.value.begin(), p.value.end(), 0.0f);
      break;
    case ParamInit::KaimingUniform: {
      float bound = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(1, p.spec.fan_in)));
      for (float& v : p.value) v = (2.0f * rng.uniform_float() - 1.0f) * bound;
      break;
    }
  }
}

}  // namespace

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
    p.value.assign(shape_elements(spec.shape), 0.0f);
    if (spec.trainable) p.grad.assign(p.value.size(), 0.0f);
    initialise(p, seed);
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
    for (size_t i = 0; i < spec.candidates.size(); ++i)
      a.alpha.push_back(1e-3f * (2.0f * rng.uniform_float() - 1.0f));
    a.alpha_grad.assign(a.alpha.size(), 0.0f);
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
    if (p.spec.trainable) slots.push_back({p.value.data(), p.grad.data(), p.value.size(), true});
  return slots;
}

std::vector<GradSpan> ParamStore::weight_grads() {
  std::vector<GradSpan> spans;
  for (StoredParam& p : params_)
    if (p.spec.trainable) spans.push_back({p.grad.data(), p.grad.size()});
  return spans;
}

std::vector<ParamSlot> ParamStore::arch_slots() {
  std::vector<ParamSlot> slots;
  for (StoredArch& a : arch_)
    slots.push_back({a.alpha.data(), a.alpha_grad.data(), a.alpha.size(), true});
  return slots;
}

void ParamStore::zero_grads() {
  for (StoredParam& p : params_) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
  for (StoredArch& a : arch_) std::fill(a.alpha_grad.begin(), a.alpha_grad.end(), 0.0f);
}

int64_t ParamStore::trainable_count() const {
  int64_t n = 0;
  for (const StoredParam& p : params_)
    if (p.spec.trainable) n += static_cast<int64_t>(p.value.size());
  return n;
}

}  // namespace nas
