#include "runtime/exec/step_gate.h"

namespace nas {

StepGate step_gate(const Step& s) {
  StepGate gate;
  gate.never = s.kind == StepKind::Fused;
  gate.weight_grad = s.kind == StepKind::ConvGradWeight || s.kind == StepKind::LinearGradWeight;
  gate.arch_grad = s.kind == StepKind::ChoiceGradArch;
  gate.ends_forward_only = s.kind == StepKind::CrossEntropy;
  switch (s.kind) {
    case StepKind::Add:
    case StepKind::Choice:
    case StepKind::Input:
    case StepKind::ElementwiseRegion:
    case StepKind::Zero:
    case StepKind::Fused:
      break;
    case StepKind::ChoiceGradArch:
      gate.needs.push_back(s.inputs[0]);
      break;
    default:
      gate.needs = s.inputs;
  }
  return gate;
}

std::vector<Region> gated_regions(const ExecPlan& plan) {
  std::vector<Region> regions = plan.regions;
  if (regions.empty())
    for (size_t i = 0; i < plan.steps.size(); ++i)
      regions.push_back({static_cast<int>(i), 1, plan.steps[i].guard});
  return regions;
}

}  // namespace nas
