// The values a network learns, kept apart from any plan: weights and running statistics
// by name, and one architecture parameter vector (alpha) per choice key. A training plan
// at batch B and an inference plan at batch 1 built from the same network bind to the
// same store by name, so what one learns the other uses.
//
// Everything here lives in the memory of the store's backend (the one its executors
// run on): values, gradients, alphas and their gradients. The host sees them only
// through explicit copies (read, write: checkpoints, weights files, tests).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/exec/backend.h"
#include "runtime/exec/exec_plan.h"
#include "runtime/optim/param_slot.h"

namespace nas {

struct StoredParam {
  ParamSpec spec;
  DeviceBuffer value;
  DeviceBuffer grad;  // empty for non-trainable state
};

struct StoredArch {
  ArchSpec spec;
  DeviceBuffer alpha;       // logits, one per candidate
  DeviceBuffer alpha_grad;  // d(loss)/d(alpha), filled by a full-mode backward
};

class ParamStore {
 public:
  // A store in the memory of `backend`, which every executor bound to it runs on.
  explicit ParamStore(std::shared_ptr<Backend> backend);
  ParamStore();  // on the registry's default backend
  Backend& backend() const { return *backend_; }
  const std::shared_ptr<Backend>& shared_backend() const { return backend_; }

  // Registers every parameter and architecture group of `plan` (already-known names must
  // have the same shape: NAS_CHECK), returns the store index of each plan
  // parameter. New parameters start initialised from `seed` and their name, so the
  // values do not depend on registration order.
  std::vector<int> bind(const ExecPlan& plan, uint64_t seed);
  // Store index of each plan arch group (by key).
  std::vector<int> bind_arch(const ExecPlan& plan, uint64_t seed);

  // A deque: registering more never moves a registered tensor, so slots stay valid.
  std::deque<StoredParam>& params() { return params_; }
  const std::deque<StoredParam>& params() const { return params_; }
  std::deque<StoredArch>& arch() { return arch_; }
  const std::deque<StoredArch>& arch() const { return arch_; }
  int find(const std::string& name) const;  // -1 when absent

  // Explicit host copies of one of the store's buffers (synchronous).
  std::vector<float> read(const DeviceBuffer& b) const { return download_floats(*backend_, b); }
  void write(DeviceBuffer& b, const std::vector<float>& host) { upload_floats(*backend_, b, host); }

  // Slots for an optimizer over the trainable weights (weight decay on all of them, as in
  // the reference DARTS and ProxylessNAS code). Pointers stay valid: the store never
  // reallocates a registered tensor.
  std::vector<ParamSlot> weight_slots();
  std::vector<ParamSlot> arch_slots();
  // The trainable weights' gradient buffers, in weight_slots() order (for clipping and
  // averaging accumulated gradients).
  std::vector<DeviceBuffer*> weight_grads();
  void zero_grads();
  // zero_grads() for the trainable weights whose flag in `weights` (weight_slots() order) is
  // set, every other gradient as it is: a sampled path's step writes only its own weights'
  // gradients, and zeroing a whole supernet's cost a ProxylessNAS step on MobileNet more
  // than its sampled path's convolutions did. Empty `weights`: all of them.
  void zero_grads(const std::vector<char>& weights);
  // The architecture gradients only.
  void zero_arch_grads();
  int64_t trainable_count() const;

 private:
  std::shared_ptr<Backend> backend_;
  std::deque<StoredParam> params_;
  std::deque<StoredArch> arch_;
  std::unordered_map<std::string, int> by_name_;
};

}  // namespace nas
