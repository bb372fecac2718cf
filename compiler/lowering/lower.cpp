#include "compiler/lowering/lower.h"

#include <set>
#include <unordered_map>

#include "compiler/ir/op_registry.h"

namespace nas {
namespace {

const std::unordered_map<std::string, StepKind>& kinds() {
  static const std::unordered_map<std::string, StepKind> table = {
      {"conv", StepKind::Conv},
      {"dwconv", StepKind::Conv},
      {"conv_grad_input", StepKind::ConvGradInput},
      {"conv_grad_weight", StepKind::ConvGradWeight},
      {"linear", StepKind::Linear},
      {"linear_grad_input", StepKind::LinearGradInput},
      {"linear_grad_weight", StepKind::LinearGradWeight},
      {"batchnorm", StepKind::BatchNorm},
      {"batchnorm_grad", StepKind::BatchNormGrad},
      {"relu", StepKind::Activation},
      {"relu6", StepKind::Activation},
      {"leaky_relu", StepKind::Activation},
      {"sigmoid", StepKind::Activation},
      {"hard_swish", StepKind::Activation},
      {"hard_sigmoid", StepKind::Activation},
      {"activation_grad", StepKind::ActivationGrad},
      {"max_pool", StepKind::Pool},
      {"avg_pool", StepKind::Pool},
      {"pool_grad", StepKind::PoolGrad},
      {"global_avg_pool", StepKind::GlobalAvgPool},
      {"global_avg_pool_grad", StepKind::GlobalAvgPoolGrad},
      {"add", StepKind::Add},
      {"concat", StepKind::Concat},
      {"concat_grad", StepKind::ConcatGrad},
      {"mul", StepKind::Scale},
      {"crop", StepKind::Crop},
      {"crop_grad", StepKind::CropGrad},
      {"zero", StepKind::Zero},
      {"dropout", StepKind::Dropout},
      {"dropout_grad", StepKind::DropoutGrad},
      {"choice", StepKind::Choice},
      {"choice_grad_input", StepKind::ChoiceGradInput},
      {"choice_grad_arch", StepKind::ChoiceGradArch},
      {"cross_entropy", StepKind::CrossEntropy},
      {"cross_entropy_grad", StepKind::CrossEntropyGrad},
      {"input", StepKind::Input},
      {"identity", StepKind::View},
      {"flatten", StepKind::View},
      {"unflatten", StepKind::View},
  };
  return table;
}

std::vector<int64_t> batched(int64_t batch, const Shape& s) {
  std::vector<int64_t> out{batch};
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

class Lowering {
 public:
  Lowering(const Graph& g, const MemoryPlan& mp) : g_(g), mp_(mp) {}

  ExecPlan run() {
    p_.batch = mp_.batch;
    p_.forward_nodes = static_cast<int>(g_.nodes.size());
    for (const Node& n : g_.nodes) {
      if (n.op->name == "cross_entropy") p_.forward_nodes = std::min(p_.forward_nodes, n.id);
      if (n.op->find_attr("fwd") != nullptr) p_.training = true;
    }
    for (const ArchGroup& a : g_.arch) p_.arch.push_back({a.key, a.candidates, a.k});
    group_of_.assign(g_.nodes.size(), -1);
    for (size_t gi = 0; gi < g_.arch.size(); ++gi)
      for (int id : g_.arch[gi].nodes) group_of_[id] = static_cast<int>(gi);
    layer_.assign(g_.nodes.size(), Layer{});
    values();
    for (const Node& n : g_.nodes) p_.steps.push_back(step(n));
    p_.arena_bytes = mp_.peak_bytes;
    NAS_CHECK(g_.inputs.size() == 1, "the executor runs networks with one input");
    p_.input = g_.inputs[0];
    p_.input_shape = g_.nodes[p_.input].shape;
    p_.output = g_.output;
    const Node& out = g_.nodes[g_.output];
    p_.logits = out.op->name == "cross_entropy" ? out.inputs[0] : out.id;
    p_.classes = shape_numel(g_.nodes[p_.logits].shape);
    return std::move(p_);
  }

 private:
  struct Layer {
    int weight = -1, bias = -1, running_mean = -1, running_var = -1, state = -1;
  };

  void values() {
    for (const Node& n : g_.nodes) {
      const NodeStorage& s = mp_.nodes[n.id];
      ValueSlot v;
      v.root = s.root;
      v.elements = n.op->effect ? 0 : mp_.batch * shape_numel(n.shape);
      switch (s.kind) {
        case StorageKind::Arena:
          v.storage = ValueStorage::Arena;
          v.offset = mp_.buffers[s.buffer].offset;
          break;
        case StorageKind::Input:
          v.storage = ValueStorage::Input;
          break;
        case StorageKind::Output:
          v.storage = ValueStorage::Output;
          break;
        case StorageKind::Alias:
          v.storage = ValueStorage::Alias;
          break;
        case StorageKind::None:
          v.storage = ValueStorage::None;
          break;
      }
      p_.values.push_back(v);
    }
  }

  int add_param(const Node& n, const std::string& role, std::vector<int64_t> shape, bool trainable,
                ParamInit init, int64_t fan_in) {
    std::string name = n.name + "." + role;
    if (names_.count(name)) name = n.name + "#" + std::to_string(n.id) + "." + role;
    names_.insert(name);
    p_.params.push_back({name, std::move(shape), trainable, init, fan_in});
    return static_cast<int>(p_.params.size()) - 1;
  }

  // Parameters and saved state of a forward node, registered once.
  void register_layer(const Node& n, Step& s) {
    Layer& l = layer_[n.id];
    const std::string& op = n.op->name;
    if (op == "conv" || op == "dwconv") {
      int64_t c_out = s.int_attr("out"), groups = s.int_attr("groups"), k = s.int_attr("kernel");
      int64_t fan_in = s.fwd_in_shape[1] / groups * k * k;
      l.weight = add_param(n, "weight", {c_out, s.fwd_in_shape[1] / groups, k, k}, true,
                           ParamInit::KaimingUniform, fan_in);
      if (s.int_attr("bias"))
        l.bias = add_param(n, "bias", {c_out}, true, ParamInit::KaimingUniform, fan_in);
    } else if (op == "linear") {
      int64_t in = shape_numel(g_.nodes[n.inputs[0]].shape), out = s.int_attr("out");
      l.weight = add_param(n, "weight", {out, in}, true, ParamInit::KaimingUniform, in);
      if (s.int_attr("bias"))
        l.bias = add_param(n, "bias", {out}, true, ParamInit::KaimingUniform, in);
    } else if (op == "batchnorm") {
      int64_t c = n.shape[0];
      if (s.int_attr("affine")) {
        l.weight = add_param(n, "scale", {c}, true, ParamInit::Ones, 1);
        l.bias = add_param(n, "shift", {c}, true, ParamInit::Zeros, 1);
      }
      l.running_mean = add_param(n, "running_mean", {c}, false, ParamInit::Zeros, 1);
      l.running_var = add_param(n, "running_var", {c}, false, ParamInit::Ones, 1);
      if (p_.training) l.state = p_.num_states++;
    } else if (op == "max_pool" || (op == "dropout" && p_.training)) {
      l.state = p_.num_states++;
    }
  }

  // The attributes of node `n`'s forward op, normalised for the kernels: dwconv becomes a
  // grouped conv, bools become 0/1.
  void forward_attrs(const Node& fwd, Step& s) {
    s.fwd_op = fwd.op->name;
    for (const auto& [key, value] : fwd.attrs) {
      if (const int64_t* i = std::get_if<int64_t>(&value)) s.ints[key] = *i;
      if (const bool* b = std::get_if<bool>(&value)) s.ints[key] = *b ? 1 : 0;
      if (const double* d = std::get_if<double>(&value)) s.floats[key] = *d;
    }
    if (!fwd.inputs.empty()) s.fwd_in_shape = batched(mp_.batch, g_.nodes[fwd.inputs[0]].shape);
    s.fwd_out_shape = batched(mp_.batch, fwd.shape);
    if (fwd.op->name == "dwconv") {
      int64_t c = s.fwd_in_shape[1];
      s.ints["groups"] = c;
      s.ints["out"] = c * s.int_attr("multiplier");
    }
  }

  Step step(const Node& n) {
    Step s;
    auto it = kinds().find(n.op->name);
    NAS_CHECK(it != kinds().end(), "lowering: op `" + n.op->name + "` has no executor step");
    s.kind = it->second;
    s.op = n.op->name;
    s.name = n.name;
    s.node = n.id;
    s.inputs = n.inputs;
    for (int in : n.inputs) s.input_shapes.push_back(batched(mp_.batch, g_.nodes[in].shape));
    if (!n.op->effect) s.output_shape = batched(mp_.batch, n.shape);
    const bool gradient = n.op->find_attr("fwd") != nullptr;
    const Node& fwd = gradient ? g_.nodes[n.int_attr("fwd")] : n;
    forward_attrs(fwd, s);
    if (n.has_attr("index")) s.index = static_cast<int>(n.int_attr("index"));
    if (!gradient) register_layer(n, s);
    const Layer& l = layer_[fwd.id];
    s.weight = l.weight;
    s.bias = l.bias;
    s.running_mean = l.running_mean;
    s.running_var = l.running_var;
    s.state = l.state;
    s.group = group_of_[fwd.id];
    // The forward node gates the step; gradient sums and the loss always run (the
    // executor skips whatever lacks an input).
    s.guard = fwd.id < p_.forward_nodes && (gradient || n.id < p_.forward_nodes) ? fwd.id : -1;
    // Aliases: views, except a view that is the plan's output, which is copied there; and
    // dropout, which is a view at inference.
    const NodeStorage& storage = mp_.nodes[n.id];
    if (storage.kind == StorageKind::Alias) s.kind = StepKind::View;
    if (storage.kind == StorageKind::Output &&
        (s.kind == StepKind::View || s.kind == StepKind::Dropout))
      s.kind = StepKind::Copy;
    return s;
  }

  const Graph& g_;
  const MemoryPlan& mp_;
  ExecPlan p_;
  std::vector<int> group_of_;
  std::vector<Layer> layer_;
  std::set<std::string> names_;
};

}  // namespace

ExecPlan lower(const Graph& g, const MemoryPlan& plan) {
  NAS_CHECK(plan.nodes.size() == g.nodes.size(), "memory plan of another graph");
  return Lowering(g, plan).run();
}

}  // namespace nas
