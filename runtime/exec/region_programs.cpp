#include "runtime/exec/region_programs.h"

#include "support/errors.h"

namespace nas {

BatchNormProgram BatchNormProgram::of(const ExecPlan& plan, const Step& s) {
  NAS_CHECK(s.kind == StepKind::BatchNorm || s.kind == StepKind::BatchNormGrad,
            "step `" + s.name + "` is not a batch norm step");
  BatchNormProgram p;
  p.forward = s.kind == StepKind::BatchNorm;
  p.fused = !s.region.empty();
  p.from_output = !p.forward && s.int_attr_or("from_output", 0) != 0;
  auto step_input = [&](int k) {
    NAS_CHECK(k >= 0 && k < static_cast<int>(s.inputs.size()),
              "step `" + s.name + "`: a batch norm operand out of range");
    return s.inputs[k];
  };
  auto input = [&](const RegionOp& op, size_t operand) {
    NAS_CHECK(operand < op.operands.size(),
              "step `" + s.name + "`: a batch norm region operation without its operand");
    return step_input(op.operands[operand]);
  };
  if (!p.fused) {  // (x), or (dy, x or y)
    if (p.forward) {
      p.x = step_input(0);
    } else {
      p.g = step_input(0);
      p.saved = step_input(1);
    }
    return p;
  }
  const RegionOp& first = s.region[0];
  if (p.forward) {
    NAS_CHECK(first.kind == StepKind::BatchNorm,
              "step `" + s.name + "`: a batch norm region that does not start with it");
    for (size_t i = 1; i < s.region.size(); ++i) {
      NAS_CHECK(s.region[i].kind == StepKind::Activation,
                "step `" + s.name + "`: a batch norm epilogue operation of another kind");
      p.epilogue.emplace_back(s.region[i].op, s.region[i].param);
    }
    p.x = input(first, 0);
    NAS_CHECK(first.node >= 0 && first.node < static_cast<int>(plan.values.size()),
              "step `" + s.name + "`: a batch norm region's output out of range");
    if (plan.values[first.node].storage != ValueStorage::None) p.y = first.node;
    return p;
  }
  NAS_CHECK((s.region.size() == 2 || s.region.size() == 3) &&
                (first.kind == StepKind::ActivationGrad || first.kind == StepKind::ChoiceGradInput),
            "step `" + s.name + "`: a batch norm prologue of another kind");
  NAS_CHECK(s.region[1].kind == StepKind::BatchNormGrad,
            "step `" + s.name + "`: a batch norm gradient region without its batchnorm_grad");
  p.g = input(first, 0);
  p.saved = input(s.region[1], 1);
  if (first.kind == StepKind::ActivationGrad) {
    p.activation_input = input(first, 1);
    p.prologue_op = first.op;
    p.prologue_param = first.param;
  } else {
    p.share_group = first.group;
    p.share_index = first.index;
  }
  if (s.region.size() == 3) {
    const RegionOp& product = s.region[2];
    NAS_CHECK(product.kind == StepKind::ChoiceGradArch && p.share_group >= 0 && p.from_output,
              "step `" + s.name + "`: a batch norm gradient's d/dw without its share");
    p.product_group = product.group;
    p.product_index = product.index;
  }
  return p;
}

std::vector<const RegionOp*> pooled_activations(const Step& s) {
  std::vector<const RegionOp*> out;
  for (size_t i = 0; i + 1 < s.region.size(); ++i) {
    NAS_CHECK(s.region[i].kind == StepKind::Activation,
              "step `" + s.name + "`: a pooled operation of another kind");
    out.push_back(&s.region[i]);
  }
  return out;
}

}  // namespace nas
