#include "runtime/exec/executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "runtime/exec/backend_registry.h"
#include "runtime/exec/choice_weights.h"
#include "runtime/exec/step_gate.h"

namespace nas {

Executor::Executor(ExecPlan plan, ParamStore& store, uint64_t seed)
    : plan_(std::move(plan)), store_(store), backend_(store.shared_backend()) {
  check_plan();
  build_regions();
  for (const Step& s : plan_.steps)
    computes_arch_grads_ = computes_arch_grads_ || step_gate(s).arch_grad;
  param_index_ = store_.bind(plan_, seed);
  arch_index_ = store_.bind_arch(plan_, seed);
  prepared_ = backend_->prepare(plan_);
  Backend& b = *backend_;
  output_ = DeviceBuffer(b, static_cast<size_t>(plan_.values[plan_.output].elements));
  input_ = DeviceBuffer(b, static_cast<size_t>(plan_.values[plan_.input].elements));
  labels_ = DeviceBuffer(b, static_cast<size_t>(plan_.batch), DType::I32);
  metrics_ = DeviceBuffer(b, 2, DType::F64);

  state_.values.assign(plan_.values.size(), nullptr);
  state_.computed.assign(plan_.values.size(), 0);
  state_.values[plan_.input] = input_.data();
  state_.param.resize(plan_.params.size());
  state_.param_generation.resize(plan_.params.size());
  state_.grad.resize(plan_.params.size());
  for (size_t i = 0; i < plan_.params.size(); ++i) {
    StoredParam& p = store_.params()[param_index_[i]];
    state_.param[i] = p.value.data();
    state_.grad[i] = p.grad.empty() ? nullptr : p.grad.data();
  }
  state_.metrics = static_cast<double*>(metrics_.raw());
  state_.choice_weights.resize(plan_.arch.size());
  state_.choice_weight_grads.resize(plan_.arch.size());
  for (size_t g = 0; g < plan_.arch.size(); ++g) {
    state_.choice_weights[g].assign(plan_.arch[g].candidates.size(), 0.0f);
    state_.choice_weight_grads[g].assign(plan_.arch[g].candidates.size(), 0.0);
  }
}

Executor::~Executor() = default;

// Plans, selections, masks and batch sizes all come from nasc itself (the compiler and
// the trainers): a mismatch is a bug, so these are NAS_CHECKs. A backend without an op the
// user's network has is a limit of that backend, which the user chose: a UserError.
void Executor::check_plan() const {
  for (const Step& s : plan_.steps)
    if (!backend_->supports(s))
      throw UserError("--backend " + backend_->name(),
                      "this backend does not run op `" + s.op + "` yet (step `" + s.name +
                          "`); --backend " + default_backend_name() + " runs every op");
  for (size_t v = 0; v < plan_.values.size(); ++v) {
    const ValueSlot& slot = plan_.values[v];
    NAS_CHECK(backend_->supports(slot.dtype, slot.layout),
              "backend " + backend_->name() + " cannot hold value " + std::to_string(v) + " as " +
                  dtype_name(slot.dtype) + " " + layout_name(slot.layout));
  }
}

void Executor::build_regions() {
  std::vector<Region>& regions = regions_;
  regions = gated_regions(plan_);
  // Regions cover the steps in order, and every step of one shares its guard.
  int next = 0;
  for (const Region& r : regions) {
    NAS_CHECK(r.first == next && r.count >= 1 &&
                  static_cast<size_t>(r.first + r.count) <= plan_.steps.size(),
              "region at step " + std::to_string(r.first) + " does not continue at step " +
                  std::to_string(next));
    for (int i = r.first; i < r.first + r.count; ++i)
      NAS_CHECK(plan_.steps[i].guard == r.guard,
                "step `" + plan_.steps[i].name + "` has another guard than its region");
    next = r.first + r.count;
  }
  NAS_CHECK(static_cast<size_t>(next) == plan_.steps.size(), "regions end before the last step");
}

void Executor::bind_arena(char* arena) {
  arena_base_ = arena;
  for (size_t v = 0; v < plan_.values.size(); ++v) {
    const ValueSlot& slot = plan_.values[v];
    if (slot.storage == ValueStorage::Arena)
      state_.values[v] = reinterpret_cast<float*>(arena_base_ + slot.offset);
    else if (slot.storage == ValueStorage::Output)
      state_.values[v] = output_.data();
  }
  // Views resolve to their root's storage.
  for (size_t v = 0; v < plan_.values.size(); ++v)
    if (plan_.values[v].storage == ValueStorage::Alias)
      state_.values[v] = state_.values[plan_.values[v].root];
}

void Executor::share_arena(Executor& a, Executor& b) {
  NAS_CHECK(a.arena_source_ == nullptr && b.arena_source_ == nullptr,
            "share_arena: an executor already shares its arena");
  NAS_CHECK(a.backend_ == b.backend_, "share_arena: the executors run on different backends");
  Executor& big = a.plan_.arena_bytes >= b.plan_.arena_bytes ? a : b;
  Executor& small = &big == &a ? b : a;
  NAS_CHECK(!small.lends_arena_,
            "share_arena: an executor others share an arena with has the smaller plan");
  big.lends_arena_ = true;
  small.arena_ = DeviceBuffer();  // freed, had it run already
  small.arena_source_ = &big;
  small.arena_base_ = nullptr;  // bound to big's at its next run
}

// The arena this executor's values live in, allocated (or taken from the executor it
// shares with) at its first run.
void Executor::ensure_arena() {
  if (arena_base_ != nullptr) return;
  if (arena_source_ != nullptr) {
    arena_source_->ensure_arena();
    bind_arena(arena_source_->arena_base_);
    return;
  }
  arena_ = DeviceBuffer(*backend_, static_cast<size_t>(std::max<int64_t>(plan_.arena_bytes, 64)),
                        DType::U8);
  bind_arena(static_cast<char*>(arena_.raw()));
}

void Executor::use_full_choices() {
  full_ = true;
}

void Executor::use_selection(const std::vector<std::vector<int>>& chosen) {
  NAS_CHECK(chosen.size() == plan_.arch.size(), "selection has " + std::to_string(chosen.size()) +
                                                    " groups, the plan " +
                                                    std::to_string(plan_.arch.size()));
  for (size_t g = 0; g < chosen.size(); ++g) {
    std::vector<float>& w = state_.choice_weights[g];
    std::fill(w.begin(), w.end(), 0.0f);
    for (int c : chosen[g]) {
      NAS_CHECK(c >= 0 && static_cast<size_t>(c) < w.size(),
                "selection: candidate " + std::to_string(c) + " out of range for choice `" +
                    plan_.arch[g].key + "`");
      w[c] = 1.0f;
    }
  }
  full_ = false;
}

void Executor::set_live_mask(std::vector<char> mask) {
  NAS_CHECK(mask.empty() || mask.size() >= static_cast<size_t>(plan_.forward_nodes),
            "live mask covers " + std::to_string(mask.size()) + " nodes, the plan has " +
                std::to_string(plan_.forward_nodes));
  live_ = std::move(mask);
}

// Full mode: the choice weights are softmax(alpha), computed on the host from a download
// of each group's alphas (a few floats).
void Executor::refresh_choice_weights() {
  if (!full_) return;
  for (size_t g = 0; g < plan_.arch.size(); ++g)
    state_.choice_weights[g] = choice_softmax(store_.read(store_.arch()[arch_index_[g]].alpha));
}

// d(loss)/d(alpha) = softmax backward of d(loss)/d(weights), added to the stored gradient
// through a download and an upload of its few floats.
void Executor::add_alpha_gradients() {
  for (size_t g = 0; g < plan_.arch.size(); ++g) {
    const std::vector<float>& w = state_.choice_weights[g];
    std::vector<float> dw(w.size());
    for (size_t c = 0; c < w.size(); ++c)
      dw[c] = static_cast<float>(state_.choice_weight_grads[g][c]);
    const std::vector<float> da = choice_softmax_backward(w, dw);
    StoredArch& a = store_.arch()[arch_index_[g]];
    std::vector<float> grad = store_.read(a.alpha_grad);
    for (size_t c = 0; c < w.size(); ++c) grad[c] += da[c];
    store_.write(a.alpha_grad, grad);
  }
}

void Executor::set_collectives(Collectives* collectives, bool sync_batchnorm) {
  state_.collectives = collectives;
  state_.sync_batchnorm = collectives != nullptr && sync_batchnorm && plan_.training;
  gradient_sync_.reset();
}

// The choice weights' gradients of this run (not yet added to alpha_grad) averaged over
// the ranks: the softmax backward that follows is linear in them.
void Executor::average_choice_weight_grads() {
  std::vector<double> flat;
  for (const auto& g : state_.choice_weight_grads) flat.insert(flat.end(), g.begin(), g.end());
  if (flat.empty()) return;
  state_.collectives->sum(flat.data(), flat.size(), "architecture-gradient allreduce");
  const double inverse = 1.0 / state_.collectives->size();
  size_t k = 0;
  for (auto& g : state_.choice_weight_grads)
    for (double& v : g) v = flat[k++] * inverse;
}

bool Executor::run_step(size_t i) {
  const Step& s = plan_.steps[i];
  const StepGate gate = step_gate(s);
  if (gate.never || (gate.weight_grad && !weight_grads_) || (gate.arch_grad && !arch_grads_))
    return false;
  for (int in : gate.needs)
    if (!state_.computed[in]) return false;
  ++steps_run_;
  stop_ = forward_only_ && gate.ends_forward_only;
  if (!profiling_ && !step_timing_) {
    if (prepared_->run(i, state_)) state_.computed[s.node] = 1;
    return true;
  }
  auto t0 = std::chrono::steady_clock::now();
  bool wrote = prepared_->run(i, state_);
  backend_->synchronize();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (step_timing_) step_seconds_[i] = seconds;
  if (wrote) state_.computed[s.node] = 1;
  if (!profiling_) return true;
  // Gradient steps are told apart by their forward op (conv_grad_input of a dwconv vs a
  // conv), dilated convolutions by a suffix: they take different kernels.
  std::string key = s.op == s.fwd_op ? s.op : s.op + " (" + s.fwd_op + ")";
  if (s.int_attr_or("dilation", 1) > 1) key += " dilated";
  // A fused region's step also computes its other members (compiler/passes/fusion.h).
  // (A choice_grad_arch's program lists what it skips, not what it computes.)
  if (s.kind != StepKind::ElementwiseRegion && s.kind != StepKind::ChoiceGradArch &&
      s.region.size() > 1)
    key += " fused";
  OpTime& t = profile_[key];
  t.seconds += seconds;
  ++t.calls;
  return true;
}

RunResult Executor::run(const float* images, const int32_t* labels, int64_t samples,
                        float* logits) {
  NAS_CHECK(
      samples >= 1 && samples <= plan_.batch,
      "a run takes 1.." + std::to_string(plan_.batch) + " samples, got " + std::to_string(samples));
  NAS_CHECK(!plan_.training || samples == plan_.batch, "a training run needs a full batch of " +
                                                           std::to_string(plan_.batch) +
                                                           " (batch-norm statistics)");
  ensure_arena();
  Backend& b = *backend_;
  const size_t per_sample = input_.size() / static_cast<size_t>(plan_.batch);
  b.upload(input_, images, static_cast<size_t>(samples) * per_sample * sizeof(float));
  if (labels) b.upload(labels_, labels, static_cast<size_t>(samples) * sizeof(int32_t));
  const double zero[2] = {0, 0};
  b.upload(metrics_, zero, sizeof zero);
  // The loss step copies the logits out; a plan without a loss ends in them (its output).
  const bool loss_copies_logits = plan_.output != plan_.logits;
  if (logits && loss_copies_logits && logits_.empty())
    logits_ = DeviceBuffer(b, static_cast<size_t>(plan_.batch * plan_.classes));
  for (size_t i = 0; i < plan_.params.size(); ++i)
    state_.param_generation[i] = store_.params()[param_index_[i]].value.generation();
  refresh_choice_weights();
  for (auto& g : state_.choice_weight_grads) std::fill(g.begin(), g.end(), 0.0);
  state_.arch_grads = arch_grads_;
  prepared_->upload_choice_weights(state_);
  std::fill(state_.computed.begin(), state_.computed.end(), 0);
  state_.labels = labels ? static_cast<const int32_t*>(labels_.raw()) : nullptr;
  state_.valid_samples = samples;
  state_.logits_out = logits && loss_copies_logits ? logits_.data() : nullptr;

  // Data parallelism: which reductions this run makes (executor.h).
  Collectives* collectives = state_.collectives;
  const bool reduce = collectives != nullptr && plan_.training && !forward_only_;
  const bool sync_weights = reduce && weight_grads_ && sync_gradients_;
  state_.first_sample = collectives ? collectives->rank() * plan_.batch : 0;
  if (sync_weights) {
    if (!gradient_sync_) gradient_sync_ = std::make_unique<GradientSync>(plan_, *collectives);
    gradient_sync_->begin(state_.grad);
  }

  const bool masked = !live_.empty();
  steps_run_ = 0;
  stop_ = false;
  if (step_timing_) step_seconds_.assign(plan_.steps.size(), 0.0);
  // Generated code for the whole plan, when the backend has it (timing needs the loop).
  int64_t ran = -1;
  if (!profiling_ && !step_timing_) {
    PlanRunControl control;
    control.live = masked ? live_.data() : nullptr;
    control.weight_grads = weight_grads_;
    control.arch_grads = arch_grads_;
    control.forward_only = forward_only_;
    ran = prepared_->run_plan(state_, control);
  }
  if (ran >= 0) {
    steps_run_ = ran;
  } else {
    for (const Region& r : regions_) {
      if (masked && r.guard >= 0 && r.guard < plan_.forward_nodes && !live_[r.guard]) continue;
      for (int i = r.first; i < r.first + r.count && !stop_; ++i) run_step(static_cast<size_t>(i));
      if (stop_) break;
      if (sync_weights) gradient_sync_->after_step(static_cast<size_t>(r.first + r.count - 1));
    }
  }
  b.synchronize();
  prepared_->download_choice_weight_grads(state_);
  // Batch norm in training updated its running statistics in place.
  if (plan_.training)
    for (size_t i = 0; i < plan_.params.size(); ++i)
      if (!plan_.params[i].trainable) store_.params()[param_index_[i]].value.mark_written();

  if (sync_weights) gradient_sync_->finish();
  if (plan_.training && full_ && arch_grads_ && !forward_only_) {
    if (reduce && computes_arch_grads_) average_choice_weight_grads();
    add_alpha_gradients();
  }
  double sums[3];
  b.download(sums, metrics_, 2 * sizeof(double));
  sums[2] = static_cast<double>(samples);
  if (reduce) collectives->sum(sums, 3, "loss and accuracy reduction");
  if (logits)
    b.download(logits, loss_copies_logits ? logits_ : output_,
               static_cast<size_t>(samples * plan_.classes) * sizeof(float));
  RunResult result;
  result.loss_sum = sums[0];
  result.correct = static_cast<int64_t>(sums[1]);
  result.samples = static_cast<int64_t>(sums[2]);
  return result;
}

}  // namespace nas
