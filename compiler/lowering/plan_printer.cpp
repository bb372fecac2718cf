#include "compiler/lowering/plan_printer.h"

#include <fmt/format.h>

namespace nas {
namespace {

const char* init_name(ParamInit init) {
  switch (init) {
    case ParamInit::KaimingUniform:
      return "kaiming_uniform";
    case ParamInit::Ones:
      return "ones";
    case ParamInit::Zeros:
      return "zeros";
  }
  NAS_CHECK(false, "a parameter initialisation without a name");
  return "";
}

std::string value_ref(int v) {
  return "%" + std::to_string(v);
}

// A value's element type and layout when they differ from the plan's common ones (the
// header names those), so that the usual fp32 plan reads without noise on every line.
std::string value_type_text(const ExecPlan& plan, int value, const ValueSlot& common) {
  const ValueSlot& slot = plan.values[value];
  if (slot.dtype == common.dtype && slot.layout == common.layout) return "";
  return std::string(" ") + dtype_name(slot.dtype) + "/" + layout_name(slot.layout);
}

// The dtype and layout most values have (the first value's: in today's plans, all of them).
ValueSlot common_value_type(const ExecPlan& plan) {
  return plan.values.empty() ? ValueSlot{} : plan.values[0];
}

std::string storage_text(const ExecPlan& plan, int value) {
  const ValueSlot& slot = plan.values[value];
  switch (slot.storage) {
    case ValueStorage::Arena:
      return "arena " + std::to_string(slot.offset) + "+" +
             std::to_string(slot.elements * static_cast<int64_t>(dtype_size(slot.dtype)));
    case ValueStorage::Input:
      return "caller input";
    case ValueStorage::Output:
      return "caller output";
    case ValueStorage::Alias:
      return "view of " + value_ref(slot.root);
    case ValueStorage::None:
      return "no value";
  }
  NAS_CHECK(false, "a value storage without a name");
  return "";
}

// "  weight #3  bias #4 ...": the layer parameters a step (or a conv epilogue's batch norm)
// reads, those it has.
std::string param_refs(int weight, int bias, int running_mean, int running_var) {
  std::string out;
  auto param = [&](const char* role, int index) {
    if (index >= 0) out += std::string("  ") + role + " #" + std::to_string(index);
  };
  param("weight", weight);
  param("bias", bias);
  param("running_mean", running_mean);
  param("running_var", running_var);
  return out;
}

// A fused region's program (an elementwise region's, a conv epilogue's), one operation a
// line under its step:
//   | %35 = choice(in0, in1, ...) group 0
//   | %64 = add(%35, %63)
std::string region_lines(const Step& s) {
  std::string out;
  for (const RegionOp& op : s.region) {
    out += "    | " + value_ref(op.node) + " = " + step_kind_name(op.kind) + " " + op.op + "(";
    for (size_t i = 0; i < op.operands.size(); ++i) {
      const int k = op.operands[i];
      out += (i ? ", " : "") + (k >= 0 ? "in" + std::to_string(k)
                                       : value_ref(s.region[static_cast<size_t>(-k - 1)].node));
    }
    out += ")";
    if (op.kind == StepKind::Scale) out += fmt::format(" scale={}", op.scale);
    if (op.param != 0.0) out += fmt::format(" param={}", op.param);
    if (op.group >= 0) out += " group " + std::to_string(op.group);
    if (op.index >= 0) out += " index " + std::to_string(op.index);
    if (op.kind == StepKind::DropoutGrad) out += " mask of " + value_ref(op.fwd_node);
    if (is_crop_op(op)) out += fmt::format(" window at row {}, column {}", op.top, op.left);
    out += param_refs(op.weight, op.bias, op.running_mean, op.running_var) + "\n";
  }
  return out;
}

std::string step_line(const ExecPlan& plan, const Step& s) {
  std::string line = value_ref(s.node) + " " + step_kind_name(s.kind) + "  " + s.op + "(";
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    line += (i ? ", " : "") + value_ref(s.inputs[i]);
    if (i < s.input_shapes.size()) line += ":" + shape_text(s.input_shapes[i]);
  }
  line += ") -> " + shape_text(s.output_shape) + "  " + storage_text(plan, s.node) +
          value_type_text(plan, s.node, common_value_type(plan));
  if (s.guard >= 0) line += "  guard " + value_ref(s.guard);
  line += param_refs(s.weight, s.bias, s.running_mean, s.running_var);
  if (s.state >= 0) line += "  state " + std::to_string(s.state);
  if (s.group >= 0) line += "  group " + std::to_string(s.group);
  if (s.index >= 0) line += "  index " + std::to_string(s.index);
  if (!s.ints.empty() || !s.floats.empty()) {
    // Both maps are sorted; merged by name so that the text reads like the IR's attributes.
    std::string attrs;
    auto i = s.ints.begin();
    auto f = s.floats.begin();
    while (i != s.ints.end() || f != s.floats.end()) {
      bool take_int = f == s.floats.end() || (i != s.ints.end() && i->first < f->first);
      attrs += attrs.empty() ? "" : ", ";
      if (take_int) {
        attrs += i->first + "=" + std::to_string(i->second);
        ++i;
      } else {
        attrs += f->first + "=" + fmt::format("{}", f->second);
        ++f;
      }
    }
    line += "  attrs{" + attrs + "}";
  }
  if (!s.fwd_op.empty() && s.fwd_op != s.op)
    line += "  fwd " + s.fwd_op + " " + shape_text(s.fwd_in_shape) + " -> " +
            shape_text(s.fwd_out_shape);
  return line + "  # " + s.name + "\n" + region_lines(s);
}

}  // namespace

const char* step_kind_name(StepKind kind) {
  switch (kind) {
    case StepKind::Input:
      return "input";
    case StepKind::View:
      return "view";
    case StepKind::Copy:
      return "copy";
    case StepKind::Conv:
      return "conv";
    case StepKind::ConvGradInput:
      return "conv_grad_input";
    case StepKind::ConvGradWeight:
      return "conv_grad_weight";
    case StepKind::Linear:
      return "linear";
    case StepKind::LinearGradInput:
      return "linear_grad_input";
    case StepKind::LinearGradWeight:
      return "linear_grad_weight";
    case StepKind::BatchNorm:
      return "batchnorm";
    case StepKind::BatchNormGrad:
      return "batchnorm_grad";
    case StepKind::Activation:
      return "activation";
    case StepKind::ActivationGrad:
      return "activation_grad";
    case StepKind::Pool:
      return "pool";
    case StepKind::PoolGrad:
      return "pool_grad";
    case StepKind::GlobalAvgPool:
      return "global_avg_pool";
    case StepKind::GlobalAvgPoolGrad:
      return "global_avg_pool_grad";
    case StepKind::Add:
      return "add";
    case StepKind::Concat:
      return "concat";
    case StepKind::ConcatGrad:
      return "concat_grad";
    case StepKind::Scale:
      return "scale";
    case StepKind::Crop:
      return "crop";
    case StepKind::CropGrad:
      return "crop_grad";
    case StepKind::ChannelSlice:
      return "channel_slice";
    case StepKind::ChannelSliceGrad:
      return "channel_slice_grad";
    case StepKind::ChannelShuffle:
      return "channel_shuffle";
    case StepKind::Zero:
      return "zero";
    case StepKind::Dropout:
      return "dropout";
    case StepKind::DropoutGrad:
      return "dropout_grad";
    case StepKind::DropPath:
      return "drop_path";
    case StepKind::DropPathGrad:
      return "drop_path_grad";
    case StepKind::Choice:
      return "choice";
    case StepKind::ChoiceGradInput:
      return "choice_grad_input";
    case StepKind::ChoiceGradArch:
      return "choice_grad_arch";
    case StepKind::CrossEntropy:
      return "cross_entropy";
    case StepKind::CrossEntropyGrad:
      return "cross_entropy_grad";
    case StepKind::AuxLoss:
      return "aux_loss";
    case StepKind::AuxLossGrad:
      return "aux_loss_grad";
    case StepKind::Recompute:
      return "recompute";
    case StepKind::ElementwiseRegion:
      return "elementwise_region";
    case StepKind::Fused:
      return "fused";
  }
  NAS_CHECK(false, "a step kind without a name");
  return "";
}

std::string print_exec_plan(const ExecPlan& plan) {
  std::string out = "plan batch=" + std::to_string(plan.batch) +
                    " mode=" + (plan.training ? "training" : "inference") +
                    " arena=" + std::to_string(plan.arena_bytes) +
                    " forward_nodes=" + std::to_string(plan.forward_nodes) +
                    " states=" + std::to_string(plan.num_states) + "\n";
  const ValueSlot common = common_value_type(plan);
  out += std::string("values ") + dtype_name(common.dtype) + "/" + layout_name(common.layout) +
         " unless a step says otherwise\n";
  out += "input " + value_ref(plan.input) + " " + shape_text(plan.input_shape) + " per sample" +
         ", logits " + value_ref(plan.logits) + " (" + std::to_string(plan.classes) +
         " per sample)" + ", output " + value_ref(plan.output) + "\n";
  for (size_t i = 0; i < plan.params.size(); ++i) {
    const ParamSpec& p = plan.params[i];
    out += "param #" + std::to_string(i) + " " + p.name + " " + shape_text(p.shape) + " " +
           (p.trainable ? "trainable" : "state") + " " + init_name(p.init) +
           " fan_in=" + std::to_string(p.fan_in) + "\n";
  }
  for (size_t i = 0; i < plan.arch.size(); ++i) {
    const ArchSpec& a = plan.arch[i];
    std::string candidates;
    for (size_t c = 0; c < a.candidates.size(); ++c)
      candidates += (c ? "," : "") + ("\"" + a.candidates[c] + "\"");
    out += "arch #" + std::to_string(i) + " \"" + a.key + "\" k=" + std::to_string(a.k) +
           " candidates=[" + candidates + "]\n";
  }
  // Regions: consecutive steps under one guard (none listed: one region per step).
  for (size_t i = 0; i < plan.regions.size(); ++i) {
    const Region& r = plan.regions[i];
    out += "region #" + std::to_string(i) + " steps " + std::to_string(r.first) + ".." +
           std::to_string(r.first + r.count - 1) +
           (r.guard >= 0 ? " guard " + value_ref(r.guard) : std::string()) + "\n";
  }
  for (const Step& s : plan.steps) out += step_line(plan, s);
  return out;
}

}  // namespace nas
