#include "runtime/estimate/signature.h"

#include <fmt/format.h>

#include <map>

namespace nas {

bool step_has_cost(const Step& s) {
  // A fused region's member is computed (and timed) by its region's step.
  return s.kind != StepKind::Input && s.kind != StepKind::View && s.kind != StepKind::Fused;
}

std::string step_signature(const std::string& backend, const ExecPlan& plan, const Step& s,
                           int active) {
  std::string out = backend + " " + s.op;
  if (s.fwd_op != s.op && !s.fwd_op.empty()) out += "(" + s.fwd_op + ")";
  if (s.kind == StepKind::Copy) out += " copy";
  if (plan.training) out += " train";
  if (s.kind == StepKind::Choice) {
    out += fmt::format(" active={}", active < 0 ? static_cast<int>(s.inputs.size()) : active);
  } else {
    out += " in=";
    for (size_t i = 0; i < s.input_shapes.size(); ++i)
      out += (i ? "," : "") + shape_text(s.input_shapes[i]);
  }
  out += " out=" + shape_text(s.output_shape);
  if (s.kind == StepKind::Choice) return out;  // a weighted sum: sizes are all it needs
  for (const auto& [k, v] : s.ints) out += fmt::format(" {}={}", k, v);
  for (const auto& [k, v] : s.floats) out += fmt::format(" {}={:.9g}", k, v);
  if (s.kind == StepKind::Conv && !s.region.empty()) {  // a conv epilogue: what it applies
    out += " epilogue=";
    for (size_t i = 1; i < s.region.size(); ++i) out += (i > 1 ? "+" : "") + s.region[i].op;
  } else if (s.kind != StepKind::ElementwiseRegion && !s.region.empty()) {
    // Any other region's step (batch norm's or global average pooling's activations): what
    // else it computes.
    std::string fused;
    for (const RegionOp& op : s.region)
      if (op.kind != s.kind) fused += (fused.empty() ? "" : "+") + op.op;
    out += " fused=" + fused;
  }
  if (s.fwd_in_shape != (s.input_shapes.empty() ? std::vector<int64_t>{} : s.input_shapes[0]))
    out += " fwd_in=" + shape_text(s.fwd_in_shape);
  return out;
}

std::string unit_text(const std::string& backend, const ExecPlan& plan,
                      const std::vector<int>& steps) {
  std::map<int, int> produced, external;
  std::string text;
  for (size_t k = 0; k < steps.size(); ++k) {
    const Step& s = plan.steps[steps[k]];
    text += step_signature(backend, plan, s) + " <-";
    for (int in : s.inputs) {
      auto it = produced.find(in);
      if (it != produced.end()) {
        text += " s" + std::to_string(it->second);
      } else {
        auto [e, fresh] = external.emplace(in, static_cast<int>(external.size()));
        text += " x" + std::to_string(e->second);
      }
    }
    text += "\n";
    produced[s.node] = static_cast<int>(k);
  }
  return text;
}

std::string unit_signature(const std::string& backend, const ExecPlan& plan,
                           const std::vector<int>& steps) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : unit_text(backend, plan, steps)) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("unit:{:016x}", h);
}

}  // namespace nas
