#include "compiler/lowering/lower.h"

#include <algorithm>
#include <set>

#include "compiler/ir/op_registry.h"
#include "compiler/passes/layout.h"
#include "support/elementwise_ops.h"

namespace nas {
namespace {

std::vector<int64_t> batched(int64_t batch, const Shape& s) {
  std::vector<int64_t> out{batch};
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

class Lowering {
 public:
  Lowering(const Graph& g, const MemoryPlan& mp, const FusionPlan* fusion)
      : g_(g), mp_(mp), fusion_(fusion) {}

  ExecPlan run() {
    p_.batch = mp_.batch;
    p_.forward_nodes = static_cast<int>(g_.nodes.size());
    for (const Node& n : g_.nodes)
      if (n.op->loss) p_.forward_nodes = std::min(p_.forward_nodes, n.id);
    p_.training = !is_inference_graph(g_);
    for (const ArchGroup& a : g_.arch) p_.arch.push_back({a.key, a.candidates, a.k});
    group_of_.assign(g_.nodes.size(), -1);
    for (size_t gi = 0; gi < g_.arch.size(); ++gi)
      for (int id : g_.arch[gi].nodes) group_of_[id] = static_cast<int>(gi);
    layer_.assign(g_.nodes.size(), Layer{});
    values();
    for (const Node& n : g_.nodes) {
      p_.steps.push_back(step(n));
      if (fusion_ && fusion_->region_of[n.id] >= 0) fuse(p_.steps.back());
      if (fusion_ && n.op->step == StepKind::ChoiceGradArch) arch_products(p_.steps.back());
    }
    p_.arena_bytes = mp_.peak_bytes;
    NAS_CHECK(g_.inputs.size() == 1, "the executor runs networks with one input");
    p_.input = g_.inputs[0];
    p_.input_shape = g_.nodes[p_.input].shape;
    p_.output = g_.output;
    const Node& out = g_.nodes[g_.output];
    p_.logits = out.op->loss ? out.inputs[0] : out.id;
    p_.classes = shape_numel(g_.nodes[p_.logits].shape);
    return std::move(p_);
  }

 private:
  struct Layer {
    int weight = -1, bias = -1, running_mean = -1, running_var = -1, state = -1;
  };

  void values() {
    std::vector<Layout> layouts(g_.nodes.size(), Layout::NCHW);
    if (fusion_) layouts = assign_layouts(g_, *fusion_);
    for (const Node& n : g_.nodes) {
      const NodeStorage& s = mp_.nodes[n.id];
      ValueSlot v;
      v.root = s.root;
      v.elements = n.op->effect ? 0 : mp_.batch * shape_numel(n.shape);
      v.layout = layouts[n.id];
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
        case StorageKind::Fused:
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

  // Parameters (OpDef::params) and saved state (OpDef::saved_state) of a forward node,
  // registered once.
  void register_layer(const Node& n) {
    Layer& l = layer_[n.id];
    for (const ParamDecl& d : node_params(g_, n)) {
      int index = add_param(n, d.role, d.shape, d.trainable, d.init, d.fan_in);
      switch (d.slot) {
        case StepParamSlot::Weight:
          l.weight = index;
          break;
        case StepParamSlot::Bias:
          l.bias = index;
          break;
        case StepParamSlot::RunningMean:
          l.running_mean = index;
          break;
        case StepParamSlot::RunningVar:
          l.running_var = index;
          break;
      }
    }
    const SavedState saved = n.op->saved_state;
    if (saved == SavedState::Always || (saved == SavedState::Training && p_.training))
      l.state = p_.num_states++;
  }

  // The attributes of node `n`'s forward op, normalised for the kernels: bools become 0/1,
  // and the op adds what its kernel reads beyond its own (OpDef::kernel_attrs).
  void forward_attrs(const Node& fwd, Step& s) {
    s.fwd_op = fwd.op->name;
    for (const auto& [key, value] : fwd.attrs) {
      if (const int64_t* i = std::get_if<int64_t>(&value)) s.ints[key] = *i;
      if (const bool* b = std::get_if<bool>(&value)) s.ints[key] = *b ? 1 : 0;
      if (const double* d = std::get_if<double>(&value)) s.floats[key] = *d;
    }
    if (!fwd.inputs.empty()) s.fwd_in_shape = batched(mp_.batch, g_.nodes[fwd.inputs[0]].shape);
    s.fwd_out_shape = batched(mp_.batch, fwd.shape);
    if (fwd.op->kernel_attrs) {
      std::vector<Shape> in;
      for (int id : fwd.inputs) in.push_back(g_.nodes[id].shape);
      fwd.op->kernel_attrs(in, fwd.attrs, s.ints);
    }
  }

  // A gradient op's own switches (batchnorm_grad's from_output) join its forward's
  // attributes; `fwd` and `index` have fields of their own.
  static void gradient_attrs(const Node& n, Step& s) {
    for (const auto& [key, value] : n.attrs) {
      if (key == "fwd" || key == "index") continue;
      if (const bool* b = std::get_if<bool>(&value)) s.ints[key] = *b ? 1 : 0;
    }
  }

  Step step(const Node& n) {
    Step s;
    s.kind = n.op->step;
    s.op = n.op->name;
    s.name = n.name;
    s.node = n.id;
    s.inputs = n.inputs;
    for (int in : n.inputs) s.input_shapes.push_back(batched(mp_.batch, g_.nodes[in].shape));
    if (!n.op->effect) s.output_shape = batched(mp_.batch, n.shape);
    const bool gradient = n.op->find_attr("fwd") != nullptr;
    const Node& fwd = gradient ? g_.nodes[n.int_attr("fwd")] : n;
    forward_attrs(fwd, s);
    if (gradient) gradient_attrs(n, s);
    if (n.has_attr("index")) s.index = static_cast<int>(n.int_attr("index"));
    if (!gradient) register_layer(n);
    const Layer& l = layer_[fwd.id];
    s.weight = l.weight;
    s.bias = l.bias;
    s.running_mean = l.running_mean;
    s.running_var = l.running_var;
    s.state = l.state;
    s.group = group_of_[fwd.id];
    s.fwd_node = fwd.id;
    // The forward node gates the step; gradient sums and the loss always run (the
    // executor skips whatever lacks an input).
    s.guard = fwd.id < p_.forward_nodes && (gradient || n.id < p_.forward_nodes) ? fwd.id : -1;
    // A recompute node runs its forward node's op again (compiler/passes/remat.h).
    if (s.kind == StepKind::Recompute) s.kind = fwd.op->step;
    // Aliases: views, except a view that is the plan's output, which is copied there; and
    // the ops that are views at inference only (dropout, drop_path).
    const NodeStorage& storage = mp_.nodes[n.id];
    if (storage.kind == StorageKind::Alias) s.kind = StepKind::View;
    if (storage.kind == StorageKind::Output &&
        (s.kind == StepKind::View || n.op->view == ViewKind::Inference))
      s.kind = StepKind::Copy;
    return s;
  }

  // A fused region's member: its region's root computes it, and the root's step carries
  // the region's program.
  void fuse(Step& s) {
    const FusedRegion& region = fusion_->regions[fusion_->region_of[s.node]];
    if (s.node != region.root()) {
      s.kind = StepKind::Fused;
      s.index = region.root();
      return;
    }
    if (region.kind == RegionKind::ConvEpilogue) return conv_epilogue(s, region);
    if (region.kind == RegionKind::BatchNorm) return batchnorm_epilogue(s, region);
    // The root of a BatchNormGrad or GlobalAvgPool region stays its own step; its program is
    // what computes its input (an activation_grad, activations), then itself.
    if (region.kind == RegionKind::Elementwise) s.kind = StepKind::ElementwiseRegion;
    region_program(s, region);
    if (region.arch_grad >= 0) {
      // The mixed op's d/dw for this candidate: the product of the share's g and the batch
      // norm's output, the operands the share and the gradient read.
      RegionOp product;
      product.kind = StepKind::ChoiceGradArch;
      product.op = "choice";
      product.node = region.arch_grad;
      product.operands = {s.region[0].operands[0], s.region[1].operands[1]};
      product.group = s.region[0].group;
      product.index = s.region[0].index;
      s.region.push_back(product);
    }
  }

  // A choice_grad_arch step skips the candidates whose product a batch norm gradient region
  // takes (fusion.h): its program lists them, each as that region's step.
  void arch_products(Step& s) {
    for (const FusedRegion& region : fusion_->regions) {
      if (region.arch_grad != s.node) continue;
      RegionOp elsewhere;
      elsewhere.kind = StepKind::BatchNormGrad;
      elsewhere.op = "batchnorm";
      elsewhere.node = region.root();
      elsewhere.group = s.group;
      elsewhere.index = static_cast<int>(g_.nodes[region.nodes.front()].int_attr("index"));
      s.region.push_back(elsewhere);
    }
  }

  // The root of a conv epilogue becomes the conv's step (its attributes and parameters, read
  // from the conv's own step, now a Fused member) whose program is the conv and what follows
  // it: batchnorm (with its layer's parameters), activations, an add. It reads the conv's
  // input and the add's other operand.
  void conv_epilogue(Step& s, const FusedRegion& region) {
    adopt_layer(s, p_.steps[region.nodes.front()], StepKind::Conv);
    s.inputs = region.reads;
    s.input_shapes.clear();
    for (int in : region.reads) s.input_shapes.push_back(batched(mp_.batch, g_.nodes[in].shape));
    for (int id : region.nodes) {
      const Node& n = g_.nodes[id];
      RegionOp op = region_op(region, n);
      if (op.kind == StepKind::BatchNorm) {
        const Layer& l = layer_[n.id];
        op.weight = l.weight;
        op.bias = l.bias;
        op.running_mean = l.running_mean;
        op.running_var = l.running_var;
        op.param = n.float_attr("eps");
      }
      s.region.push_back(op);
    }
  }

  // The root of a BatchNorm region becomes the batch norm's step (its attributes, parameters
  // and saved statistics, read from its own step, now a Fused member that the root writes
  // too) whose program is the batch norm, then the activations.
  void batchnorm_epilogue(Step& s, const FusedRegion& region) {
    adopt_layer(s, p_.steps[region.nodes.front()], StepKind::BatchNorm);
    region_program(s, region);
  }

  // The root step `s` takes the place of its region's first member `member` (a conv or a
  // batch norm, whose own step is now Fused): `kind`, and the member's op, attributes,
  // shapes, parameters and saved state.
  static void adopt_layer(Step& s, const Step& member, StepKind kind) {
    s.kind = kind;
    s.op = member.op;
    s.fwd_op = member.fwd_op;
    s.ints = member.ints;
    s.floats = member.floats;
    s.fwd_in_shape = member.fwd_in_shape;
    s.fwd_out_shape = member.fwd_out_shape;
    s.weight = member.weight;
    s.bias = member.bias;
    s.running_mean = member.running_mean;
    s.running_var = member.running_var;
    s.state = member.state;
  }

  // What the root step of any region reads, and its program: one RegionOp per member.
  void region_program(Step& s, const FusedRegion& region) {
    s.inputs = region.reads;
    s.input_shapes.clear();
    for (int in : region.reads) s.input_shapes.push_back(batched(mp_.batch, g_.nodes[in].shape));
    for (int id : region.nodes) s.region.push_back(region_op(region, g_.nodes[id]));
  }

  RegionOp region_op(const FusedRegion& region, const Node& n) const {
    RegionOp op;
    op.kind = n.op->step;
    op.node = n.id;
    const Node& fwd = n.has_attr("fwd") ? g_.nodes[n.int_attr("fwd")] : n;
    op.op = fwd.op->name;
    for (int in : n.inputs) {
      auto member = std::find(region.nodes.begin(), region.nodes.end(), in);
      auto read = std::find(region.reads.begin(), region.reads.end(), in);
      op.operands.push_back(member != region.nodes.end() && in != region.root()
                                ? -static_cast<int>(member - region.nodes.begin()) - 1
                                : static_cast<int>(read - region.reads.begin()));
    }
    if (n.has_attr("scale")) op.scale = n.float_attr("scale");
    const ElementwiseFn* formula = find_elementwise(op.op);
    if (formula && formula->param) op.param = fwd.float_attr(formula->param);
    if (is_dropout_op(op)) op.param = fwd.float_attr("p");
    if (is_crop_op(op)) {
      op.top = fwd.int_attr("top");
      op.left = fwd.int_attr("left");
    }
    op.group = group_of_[fwd.id];
    op.fwd_node = fwd.id;
    if (n.has_attr("index")) op.index = static_cast<int>(n.int_attr("index"));
    return op;
  }

  const Graph& g_;
  const MemoryPlan& mp_;
  const FusionPlan* fusion_;
  ExecPlan p_;
  std::vector<int> group_of_;
  std::vector<Layer> layer_;
  std::set<std::string> names_;
};

}  // namespace

ExecPlan lower(const Graph& g, const MemoryPlan& plan, const FusionPlan* fusion) {
  NAS_CHECK(plan.nodes.size() == g.nodes.size(), "memory plan of another graph");
  NAS_CHECK(!fusion || fusion->region_of.size() == g.nodes.size(), "fusion plan of another graph");
  return Lowering(g, plan, fusion).run();
}

}  // namespace nas
