// The values a network learns, kept apart from any plan: weights and running statistics
// by name, and one architecture parameter vector (alpha) per choice key. A training plan
// at batch B and an inference plan at batch 1 built from the same network bind to the
// same store by name, so what one learns the other uses.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/exec/exec_plan.h"
#include "runtime/optim/param_slot.h"

namespace nas {

struct StoredParam {
  ParamSpec spec;
  std::vector<float> value;
  std::vector<float> grad;  // empty for non-trainable state
};

struct StoredArch {
  ArchSpec spec;
  std::vector<float> alpha;       // logits, one per candidate
  std::vector<float> alpha_grad;  // d(loss)/d(alpha), filled by a full-mode backward
};

class ParamStore {
 public:
  // Registers every parameter and architecture group of `plan` (already-known names must
  // have the same shape: NAS_CHECK), returns the store index of each plan
  // parameter. New parameters start initialised from `seed` and their name, so the
  // values do not depend on registration order.
  std::vector<int> bind(const ExecPlan& plan, uint64_t seed);
  // Store index of each plan arch group (by key).
  std::vector<int> bind_arch(const ExecPlan& plan, uint64_t seed);

  std::vector<StoredParam>& params() { return params_; }
  const std::vector<StoredParam>& params() const { return params_; }
  std::vector<StoredArch>& arch() { return arch_; }
  const std::vector<StoredArch>& arch() const { return arch_; }
  int find(const std::string& name) const;  // -1 when absent

  // Slots for an optimizer over the trainable weights (weight decay on all of them, as in
  // the reference DARTS and ProxylessNAS code). Pointers stay valid: the store never
  // reallocates a registered tensor.
  std::vector<ParamSlot> weight_slots();
  std::vector<ParamSlot> arch_slots();
  // The trainable weights' gradient buffers, in weight_slots() order (for clipping and
  // averaging accumulated gradients).
  std::vector<GradSpan> weight_grads();
  void zero_grads();
  int64_t trainable_count() const;

 private:
  std::vector<StoredParam> params_;
  std::vector<StoredArch> arch_;
  std::unordered_map<std::string, int> by_name_;
};

}  // namespace nas
