#include "runtime/cpu/fused_region.h"

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/cpu/eltwise.h"
#include "runtime/cpu/plain_kernels.h"
#include "runtime/exec/region_read_map.h"
#include "support/elementwise_ops.h"

namespace nas {
namespace {

// Elements per block: 128 KiB per operand, so a block's operands and intermediates stay
// in the L2 cache between operations.
constexpr int64_t kBlock = 32768;
// Below this many elements an OpenMP loop costs more than it saves.
constexpr int64_t kParallelMin = 8192;

}  // namespace

struct FusedRegionKernel::Impl {
  struct Op {
    RegionOp def;
    const ElementwiseFn* formula = nullptr;  // Activation(Grad) without a oneDNN kernel
    std::shared_ptr<const EltwiseKernel> block_kernel, tail_kernel;
    // Per run: the operands that take part (all of them, an add's computed ones, a
    // choice's with a nonzero weight) and a choice's weights.
    std::vector<int> used;
    std::vector<float> weights;
    plain::DropoutParams dropout;  // Dropout(Grad): its draws (the seed is per run)
  };

  std::string name;
  std::vector<Op> ops;
  std::vector<int> inputs;
  int out = -1;
  int64_t size = 0;
  std::vector<char> active;    // per op, per run: whether it runs
  std::vector<float> scratch;  // kBlock per operation but the last
  // Inputs read through a crop's window (region_read_map.h): gathered per block into
  // kBlock floats each of `gathered`, at gathered_slot[input] (-1: read in place).
  std::vector<RegionReadMap> maps;
  std::vector<int> gathered_slot;
  std::vector<float> gathered;

  std::shared_ptr<const EltwiseKernel> eltwise_for(const Op& op, int64_t elements) const {
    std::optional<EltwiseKind> kind = eltwise_kind_of(op.def.op);
    if (!kind) return nullptr;
    EltwiseParams p;
    p.kind = *kind;
    p.size = elements;
    p.slope = op.def.param;
    return eltwise_kernel(p);
  }

  bool operand_active(const RunState& st, int k) const {
    return k >= 0 ? st.computed[inputs[k]] != 0 : active[-k - 1] != 0;
  }

  // Which operations run in this run, and with which operands.
  bool plan_run(const RunState& st) {
    for (size_t i = 0; i < ops.size(); ++i) {
      Op& op = ops[i];
      op.used.clear();
      op.weights.clear();
      const std::vector<int>& operands = op.def.operands;
      bool runs = true;
      switch (op.def.kind) {
        case StepKind::Add:
          for (size_t j = 0; j < operands.size(); ++j)
            if (operand_active(st, operands[j])) op.used.push_back(static_cast<int>(j));
          runs = !op.used.empty();
          break;
        case StepKind::Choice: {
          const std::vector<float>& w = st.choice_weights[op.def.group];
          for (size_t j = 0; j < operands.size(); ++j)
            if (w[j] != 0.0f) {
              op.used.push_back(static_cast<int>(j));
              op.weights.push_back(w[j]);
            }
          break;
        }
        case StepKind::Dropout:
        case StepKind::DropoutGrad:
          op.dropout.node_seed = dropout_node_seed(st, op.def.fwd_node);
          op.dropout.first_sample = st.first_sample;
          [[fallthrough]];
        default:
          for (size_t j = 0; j < operands.size(); ++j) {
            runs = runs && operand_active(st, operands[j]);
            op.used.push_back(static_cast<int>(j));
          }
      }
      active[i] = runs ? 1 : 0;
    }
    return active.back() != 0;
  }

  const float* operand(const RunState& st, int k, int64_t offset) const {
    if (k < 0) return scratch.data() + (-k - 1) * kBlock;
    const int slot = gathered_slot[k];
    return slot >= 0 ? gathered.data() + slot * kBlock : st.values[inputs[k]] + offset;
  }

  // The windowed inputs' elements for output elements [offset, offset + n).
  void gather(const RunState& st, int64_t offset, int64_t n) {
    for (size_t k = 0; k < maps.size(); ++k) {
      if (gathered_slot[k] < 0 || !st.computed[inputs[k]]) continue;  // not read this run
      const RegionReadMap& map = maps[k];
      const float* x = st.values[inputs[k]];
      float* y = gathered.data() + gathered_slot[k] * kBlock;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
      for (int64_t e = 0; e < n; ++e) {
        bool inside = false;
        const int64_t from = map.source(offset + e, &inside);
        y[e] = inside ? x[from] : 0.0f;
      }
    }
  }

  // Operation `i` over elements [offset, offset + n) of the region.
  void run_op(size_t i, RunState& st, int64_t offset, int64_t n) {
    const Op& op = ops[i];
    float* y = i + 1 == ops.size() ? st.values[out] + offset : scratch.data() + i * kBlock;
    auto arg = [&](size_t j) { return operand(st, op.def.operands[op.used[j]], offset); };
    const bool parallel = n >= kParallelMin;
    switch (op.def.kind) {
      case StepKind::Activation: {
        const float* x = arg(0);
        if (const EltwiseKernel* k = (n == kBlock ? op.block_kernel : op.tail_kernel).get()) {
          k->forward(x, y);
          return;
        }
        const double a = op.def.param;
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t e = 0; e < n; ++e) y[e] = static_cast<float>(op.formula->value(x[e], a));
        return;
      }
      case StepKind::ActivationGrad: {
        const float *dy = arg(0), *x = arg(1);
        if (const EltwiseKernel* k = (n == kBlock ? op.block_kernel : op.tail_kernel).get()) {
          k->backward(x, dy, y);
          return;
        }
        const double a = op.def.param;
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t e = 0; e < n; ++e)
          y[e] = static_cast<float>(dy[e] * op.formula->derivative(x[e], a));
        return;
      }
      case StepKind::Scale: {
        const float s = static_cast<float>(op.def.scale);
        const float* a = arg(0);
        const float* b = op.used.size() == 2 ? arg(1) : nullptr;
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t e = 0; e < n; ++e) y[e] = b ? s * a[e] * b[e] : s * a[e];
        return;
      }
      case StepKind::Dropout:
      case StepKind::DropoutGrad:
        plain::dropout_range(op.dropout, offset, n, arg(0), y);
        return;
      case StepKind::Crop:  // its operand was read through its window
      case StepKind::CropGrad:
        std::copy(arg(0), arg(0) + n, y);
        return;
      case StepKind::Add:
      case StepKind::Choice: {
        const bool weighted = op.def.kind == StepKind::Choice;
        if (op.used.empty()) {
          std::fill(y, y + n, 0.0f);
          return;
        }
        const float* a = arg(0);
        const float w0 = weighted ? op.weights[0] : 1.0f;
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t e = 0; e < n; ++e) y[e] = w0 * a[e];
        for (size_t j = 1; j < op.used.size(); ++j) {
          const float* b = arg(j);
          const float w = weighted ? op.weights[j] : 1.0f;
#pragma omp parallel for schedule(static) if (parallel)
          for (int64_t e = 0; e < n; ++e) y[e] += w * b[e];
        }
        return;
      }
      default:
        internal_error(__FILE__, __LINE__,
                       "elementwise region `" + name + "`: operation of another kind");
    }
  }
};

FusedRegionKernel::FusedRegionKernel(const Step& step) : impl_(std::make_unique<Impl>()) {
  Impl& k = *impl_;
  NAS_CHECK(step.kind == StepKind::ElementwiseRegion && !step.region.empty(),
            "step `" + step.name + "` is not an elementwise region");
  k.name = step.name;
  k.inputs = step.inputs;
  k.out = step.node;
  k.size = shape_elements(step.output_shape);
  k.maps = region_read_maps(step);
  k.gathered_slot.assign(step.inputs.size(), -1);
  int gathered = 0;
  for (size_t i = 0; i < step.inputs.size(); ++i) {
    if (k.maps[i].mapped) {
      k.gathered_slot[i] = gathered++;
      continue;
    }
    NAS_CHECK(shape_elements(step.input_shapes[i]) == k.size,
              "elementwise region `" + step.name + "`: an input of another size");
  }
  k.gathered.assign(static_cast<size_t>(kBlock) * gathered, 0.0f);
  const int64_t tail = k.size % kBlock;
  for (const RegionOp& def : step.region) {
    Impl::Op op;
    op.def = def;
    for (int operand : def.operands)
      NAS_CHECK(operand < static_cast<int>(step.inputs.size()) &&
                    -operand - 1 < static_cast<int>(k.ops.size()),
                "elementwise region `" + step.name + "`: an operand out of range");
    if (def.kind == StepKind::Activation || def.kind == StepKind::ActivationGrad) {
      if (k.size >= kBlock) op.block_kernel = k.eltwise_for(op, kBlock);
      if (tail > 0) op.tail_kernel = k.eltwise_for(op, tail);
      if (!op.block_kernel && !op.tail_kernel) {
        op.formula = find_elementwise(def.op);
        NAS_CHECK(op.formula != nullptr,
                  "elementwise region `" + step.name + "`: no element-wise formula for " + def.op);
      }
    }
    if (is_dropout_op(def)) {
      op.dropout.per_sample = k.size / step.output_shape[0];
      op.dropout.p = def.param;
    }
    op.used.reserve(def.operands.size());
    op.weights.reserve(def.operands.size());
    k.ops.push_back(std::move(op));
  }
  k.active.assign(k.ops.size(), 0);
  k.scratch.assign(static_cast<size_t>(kBlock) * (k.ops.size() - 1), 0.0f);
}

FusedRegionKernel::~FusedRegionKernel() = default;

bool FusedRegionKernel::run(RunState& st) {
  Impl& k = *impl_;
  if (!k.plan_run(st)) return false;
  for (int64_t offset = 0; offset < k.size; offset += kBlock) {
    const int64_t n = std::min(kBlock, k.size - offset);
    k.gather(st, offset, n);
    for (size_t i = 0; i < k.ops.size(); ++i)
      if (k.active[i]) k.run_op(i, st, offset, n);
  }
  return true;
}

}  // namespace nas
