// Parameter update rules with PyTorch semantics (torch.optim.SGD and torch.optim.Adam),
// so that a search run here can be compared step by step with the reference DARTS code.
// State (momentum buffers, Adam moments) lives in backend memory beside the parameters,
// and every update is a backend operation (Backend::sgd_update, adam_update); the step
// count and hyperparameters are host values. The state can be saved and loaded as a flat
// byte blob (downloaded and uploaded explicitly); a run resumed from a blob is bitwise identical to
// an uninterrupted one. The blob layout is documented in docs/optim.md and below.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/optim/param_slot.h"

namespace nas {

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // One update of every slot from its current gradient, with learning rate lr() (the
  // caller sets it from a schedule before each step, as PyTorch schedulers do).
  virtual void step() = 0;

  double lr() const { return lr_; }
  void set_lr(double lr);  // lr < 0 or non-finite is a caller's bug (InternalError)

  // Number of step() calls so far (also restored by load_state).
  int64_t steps_done() const { return steps_; }

  const std::vector<ParamSlot>& slots() const { return slots_; }
  // Slots with active[s] == 0 are left alone by step(): no update, no weight decay, no
  // momentum or moment update, as PyTorch skips parameters whose grad is None (the
  // branches a sampled path did not use). Empty (the default) = every slot is active.
  // Adam's bias correction still counts optimizer steps, not per-slot steps.
  void set_active(std::vector<char> active);
  // Points the optimizer at new buffers (the executor may re-plan its arena); the
  // number and sizes of slots must be unchanged because state is kept per slot.
  void rebind(std::vector<ParamSlot> slots);

  // Blob layout (native byte order, no padding):
  //   char[4] magic "NOPT" | uint32 version (1) | uint32 kind (1 = sgd, 2 = adam)
  //   | uint32 slot count n | int64 steps_done | uint64 size[n]
  //   | kind-specific payload (see Sgd / Adam).
  // Hyperparameters are not stored: they come from the config of the resumed run.
  std::vector<uint8_t> save_state() const;
  // Throws DataFileError at `source` (the checkpoint the blob came from) when the blob is
  // malformed or does not match this optimizer's kind and slot sizes; on failure the
  // current state is unchanged.
  void load_state(const std::vector<uint8_t>& blob, const std::string& source = "");

 protected:
  Optimizer(Backend& backend, std::vector<ParamSlot> slots, double lr, uint32_t kind);
  virtual void save_payload(std::vector<uint8_t>& out) const = 0;
  // Reads exactly the payload from [p, end); returns false when the size is wrong.
  virtual bool load_payload(const uint8_t* p, const uint8_t* end) = 0;

  bool is_active(size_t slot) const { return active_.empty() || active_[slot] != 0; }

  Backend& backend_;
  std::vector<ParamSlot> slots_;
  std::vector<char> active_;
  double lr_ = 0;
  int64_t steps_ = 0;

 private:
  uint32_t kind_;
};

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0;
  bool nesterov = false;  // requires momentum > 0, as in PyTorch
  double weight_decay = 0;
};

// torch.optim.SGD with dampening 0:
//   d = g + wd * w;  buf = d on the first step, else buf = momentum * buf + d;
//   d = nesterov ? d + momentum * buf : buf;  w -= lr * d.
// Payload: uint8 has_buffers, then (when set) the momentum buffer of every slot in slot
// order as float32 (sum of sizes floats). No payload buffers when momentum == 0.
class Sgd : public Optimizer {
 public:
  Sgd(Backend& backend, std::vector<ParamSlot> slots, const SgdOptions& opt);
  void step() override;
  const SgdOptions& options() const { return opt_; }

 protected:
  void save_payload(std::vector<uint8_t>& out) const override;
  bool load_payload(const uint8_t* p, const uint8_t* end) override;

 private:
  SgdOptions opt_;
  std::vector<DeviceBuffer> buf_;  // empty until the first step (PyTorch: None)
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // L2 added to the gradient (Adam, not AdamW)
};

// torch.optim.Adam (amsgrad off):
//   g += wd * w;  m = lerp(m, g, 1 - b1);  v = b2 * v + (1 - b2) * g * g;
//   w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// Payload: exp_avg of every slot in slot order, then exp_avg_sq of every slot, float32.
class Adam : public Optimizer {
 public:
  Adam(Backend& backend, std::vector<ParamSlot> slots, const AdamOptions& opt);
  void step() override;
  const AdamOptions& options() const { return opt_; }

 protected:
  void save_payload(std::vector<uint8_t>& out) const override;
  bool load_payload(const uint8_t* p, const uint8_t* end) override;

 private:
  AdamOptions opt_;
  std::vector<DeviceBuffer> m_, v_;
};

}  // namespace nas
