#include "runtime/optim/optimizer.h"

#include <cmath>
#include <cstring>
#include <string>

#include "support/errors.h"

namespace nas {

namespace {

constexpr char kMagic[4] = {'N', 'O', 'P', 'T'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kSgd = 1, kAdam = 2;

// Hyperparameters come from a parsed config, which has checked them: a bad one here is a
// caller's bug.
[[noreturn]] void bad(const std::string& field, const std::string& rule, double got) {
  internal_error(__FILE__, __LINE__, field + ": " + rule + ", got " + std::to_string(got));
}

void check_lr(double lr) {
  if (!std::isfinite(lr) || lr < 0) bad("lr", "must be a finite number >= 0", lr);
}

void check_slots(const std::vector<ParamSlot>& slots) {
  for (size_t i = 0; i < slots.size(); ++i) {
    NAS_CHECK(slots[i].value && slots[i].grad && slots[i].grad->size() == slots[i].value->size(),
              "slot " + std::to_string(i) + ": null value or grad buffer, or sizes differ");
  }
}

template <typename T>
void put(std::vector<uint8_t>& out, const T& v) {
  const auto* b = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), b, b + sizeof(T));
}

// Appends the buffer's floats (downloaded) to the blob.
void put_buffer(std::vector<uint8_t>& out, Backend& backend, const DeviceBuffer& b) {
  const size_t at = out.size();
  out.resize(at + b.bytes());
  if (b.bytes() > 0) backend.download(out.data() + at, b, b.bytes());
}

template <typename T>
bool get(const uint8_t*& p, const uint8_t* end, T& v) {
  if (static_cast<size_t>(end - p) < sizeof(T)) return false;
  std::memcpy(&v, p, sizeof(T));
  p += sizeof(T);
  return true;
}

// Reads one buffer per slot, sized like the slots, into new backend memory.
bool get_buffers(const uint8_t*& p, const uint8_t* end, Backend& backend,
                 const std::vector<ParamSlot>& slots, std::vector<DeviceBuffer>& out) {
  std::vector<DeviceBuffer> bufs;
  for (const ParamSlot& slot : slots) {
    size_t bytes = slot.size() * sizeof(float);
    if (static_cast<size_t>(end - p) < bytes) return false;
    bufs.emplace_back(backend, slot.size());
    if (bytes > 0) backend.upload(bufs.back(), p, bytes);
    p += bytes;
  }
  backend.synchronize();  // the blob is the caller's
  out = std::move(bufs);
  return true;
}

// Zero-filled state buffers, one per slot.
std::vector<DeviceBuffer> zero_buffers(Backend& backend, const std::vector<ParamSlot>& slots) {
  std::vector<DeviceBuffer> bufs;
  for (const ParamSlot& slot : slots) {
    bufs.emplace_back(backend, slot.size());
    backend.fill(bufs.back(), 0.0f);
  }
  return bufs;
}

}  // namespace

Optimizer::Optimizer(Backend& backend, std::vector<ParamSlot> slots, double lr, uint32_t kind)
    : backend_(backend), slots_(std::move(slots)), kind_(kind) {
  check_slots(slots_);
  set_lr(lr);
}

void Optimizer::set_lr(double lr) {
  check_lr(lr);
  lr_ = lr;
}

void Optimizer::rebind(std::vector<ParamSlot> slots) {
  NAS_CHECK(slots.size() == slots_.size(), "rebind: slot count changed from " +
                                               std::to_string(slots_.size()) + " to " +
                                               std::to_string(slots.size()));
  for (size_t i = 0; i < slots.size(); ++i)
    NAS_CHECK(slots[i].size() == slots_[i].size(),
              "rebind: slot " + std::to_string(i) + " size changed");
  check_slots(slots);
  slots_ = std::move(slots);
}

std::vector<uint8_t> Optimizer::save_state() const {
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  put(out, kVersion);
  put(out, kind_);
  put(out, static_cast<uint32_t>(slots_.size()));
  put(out, steps_);
  for (const auto& s : slots_) put(out, static_cast<uint64_t>(s.size()));
  save_payload(out);
  return out;
}

void Optimizer::load_state(const std::vector<uint8_t>& blob, const std::string& source) {
  const uint8_t* p = blob.data();
  const uint8_t* end = p + blob.size();
  // The blob comes from a checkpoint file, which a user can damage or pair with another
  // config: its problems are user errors, located at the file.
  auto fail = [&](const std::string& why) {
    throw DataFileError(source, "optimizer state: " + why);
  };
  if (blob.size() < 4 || std::memcmp(p, kMagic, 4) != 0) fail("bad magic (not a NOPT blob)");
  p += 4;
  uint32_t version = 0, kind = 0, n = 0;
  int64_t steps = 0;
  if (!get(p, end, version) || !get(p, end, kind) || !get(p, end, n) || !get(p, end, steps))
    fail("truncated header");
  if (version != kVersion) fail("unsupported version " + std::to_string(version));
  if (kind != kind_)
    fail(std::string("saved by ") +
         (kind == kSgd    ? "sgd"
          : kind == kAdam ? "adam"
                          : "unknown") +
         ", loading into " + (kind_ == kSgd ? "sgd" : "adam"));
  if (n != slots_.size())
    fail("slot count " + std::to_string(n) + " != " + std::to_string(slots_.size()));
  for (size_t i = 0; i < n; ++i) {
    uint64_t size = 0;
    if (!get(p, end, size)) fail("truncated slot sizes");
    if (size != slots_[i].size())
      fail("slot " + std::to_string(i) + " size " + std::to_string(size) +
           " != " + std::to_string(slots_[i].size()));
  }
  if (steps < 0) fail("negative step count");
  if (!load_payload(p, end)) fail("payload size does not match the slots");
  steps_ = steps;
}

// --- SGD ---------------------------------------------------------------------------------

Sgd::Sgd(Backend& backend, std::vector<ParamSlot> slots, const SgdOptions& opt)
    : Optimizer(backend, std::move(slots), opt.lr, kSgd), opt_(opt) {
  if (!std::isfinite(opt.momentum) || opt.momentum < 0)
    bad("momentum", "must be a finite number >= 0", opt.momentum);
  if (!std::isfinite(opt.weight_decay) || opt.weight_decay < 0)
    bad("weight_decay", "must be a finite number >= 0", opt.weight_decay);
  if (opt.nesterov && opt.momentum <= 0) bad("nesterov", "requires momentum > 0", opt.momentum);
}

void Optimizer::set_active(std::vector<char> active) {
  NAS_CHECK(active.empty() || active.size() == slots_.size(),
            "set_active: " + std::to_string(active.size()) + " flags for " +
                std::to_string(slots_.size()) + " slots");
  active_ = std::move(active);
}

void Sgd::step() {
  SgdUpdate u;
  // Scalars are float like PyTorch's float32 tensors, so results match it closely.
  u.lr = static_cast<float>(lr_);
  u.momentum = static_cast<float>(opt_.momentum);
  u.nesterov = opt_.nesterov;
  const bool use_mom = opt_.momentum != 0;
  u.first = use_mom && buf_.empty();
  // Every slot gets its buffer on the first step, the inactive ones too (zeros).
  if (u.first) buf_ = zero_buffers(backend_, slots_);
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (!is_active(s)) continue;
    const ParamSlot& slot = slots_[s];
    u.weight_decay = slot.decay ? static_cast<float>(opt_.weight_decay) : 0.0f;
    backend_.sgd_update(u, *slot.value, *slot.grad, use_mom ? &buf_[s] : nullptr);
  }
  ++steps_;
}

void Sgd::save_payload(std::vector<uint8_t>& out) const {
  put(out, static_cast<uint8_t>(buf_.empty() ? 0 : 1));
  for (const auto& b : buf_) put_buffer(out, backend_, b);
}

bool Sgd::load_payload(const uint8_t* p, const uint8_t* end) {
  uint8_t has = 0;
  if (!get(p, end, has) || has > 1) return false;
  std::vector<DeviceBuffer> buf;
  if (has && !get_buffers(p, end, backend_, slots_, buf)) return false;
  if (p != end) return false;
  buf_ = std::move(buf);
  return true;
}

// --- Adam --------------------------------------------------------------------------------

Adam::Adam(Backend& backend, std::vector<ParamSlot> slots, const AdamOptions& opt)
    : Optimizer(backend, std::move(slots), opt.lr, kAdam), opt_(opt) {
  if (!(opt.beta1 >= 0 && opt.beta1 < 1)) bad("betas[0]", "must be in [0, 1)", opt.beta1);
  if (!(opt.beta2 >= 0 && opt.beta2 < 1)) bad("betas[1]", "must be in [0, 1)", opt.beta2);
  if (!std::isfinite(opt.eps) || opt.eps < 0) bad("eps", "must be a finite number >= 0", opt.eps);
  if (!std::isfinite(opt.weight_decay) || opt.weight_decay < 0)
    bad("weight_decay", "must be a finite number >= 0", opt.weight_decay);
  m_ = zero_buffers(backend_, slots_);
  v_ = zero_buffers(backend_, slots_);
}

void Adam::step() {
  ++steps_;
  // Bias corrections in double, as PyTorch computes them on Python floats.
  const double t = static_cast<double>(steps_);
  const double bc1 = 1 - std::pow(opt_.beta1, t);
  const double bc2_sqrt = std::sqrt(1 - std::pow(opt_.beta2, t));
  AdamUpdate u;
  u.step_size = static_cast<float>(lr_ / bc1);
  u.bc2_sqrt = static_cast<float>(bc2_sqrt);
  u.w1 = static_cast<float>(1 - opt_.beta1);
  u.b2 = static_cast<float>(opt_.beta2);
  u.w2 = static_cast<float>(1 - opt_.beta2);
  u.eps = static_cast<float>(opt_.eps);
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (!is_active(s)) continue;
    const ParamSlot& slot = slots_[s];
    u.weight_decay = slot.decay ? static_cast<float>(opt_.weight_decay) : 0.0f;
    backend_.adam_update(u, *slot.value, *slot.grad, m_[s], v_[s]);
  }
}

void Adam::save_payload(std::vector<uint8_t>& out) const {
  for (const auto& m : m_) put_buffer(out, backend_, m);
  for (const auto& v : v_) put_buffer(out, backend_, v);
}

bool Adam::load_payload(const uint8_t* p, const uint8_t* end) {
  std::vector<DeviceBuffer> m, v;
  if (!get_buffers(p, end, backend_, slots_, m) || !get_buffers(p, end, backend_, slots_, v) ||
      p != end)
    return false;
  m_ = std::move(m);
  v_ = std::move(v);
  return true;
}

}  // namespace nas
