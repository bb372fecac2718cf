// The ONNX writer: the model is drafted in plain C++ (nodes, initializers as host vectors)
// so that the whole-model rewrites (batch-norm folding, dead nodes) stay simple, then
// converted to ONNX's protobuf messages, checked by ONNX's own checker and written.
#include "driver/onnx_export.h"

#include <fmt/format.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "compiler/ir/op_registry.h"
#include "runtime/train/tensor_file.h"
#include "support/errors.h"

namespace nas {
namespace {

constexpr int64_t kOpset = 17;
// The IR version of ONNX 1.12 (Debian 12's libonnx), which its checker accepts.
constexpr int64_t kIrVersion = 8;

struct DraftTensor {
  std::vector<int64_t> dims;
  bool is_int = false;
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

struct DraftNode {
  std::string op_type;
  std::vector<std::string> inputs, outputs;
  std::vector<OnnxAttr> attrs;
};

// The model being drafted; it is the OnnxBuilder each node's emitter writes through while
// `node_` is that node.
class Draft : public OnnxBuilder {
 public:
  Draft(const CompiledPlan& forward, const ParamValues& values, const OnnxOptions& options)
      : g_(forward.exec), plan_(forward.plan), values_(values), options_(options) {}

  std::vector<DraftNode> nodes;
  std::map<std::string, DraftTensor> initializers;
  std::string input_name, output_name;

  std::string unique(const std::string& wanted) {
    std::string name = wanted.empty() ? "value" : wanted;
    for (int n = 2; !names_.insert(name).second; ++n) name = wanted + "#" + std::to_string(n);
    return name;
  }

  void emit_graph();

  // OnnxBuilder, for the node being emitted.
  const std::string& input(size_t i) const override {
    NAS_CHECK(i < node_->inputs.size(), fmt::format("{} has no input {}", node_->name, i));
    return value_of_.at(node_->inputs[i]);
  }
  const std::string& output() const override { return value_of_.at(node_->id); }
  std::string param(const std::string& role) override;
  std::string ints(const std::string& suffix, const std::vector<int64_t>& shape,
                   const std::vector<int64_t>& values) override {
    DraftTensor t{shape, true, {}, values};
    return add_initializer(output() + "/" + suffix, std::move(t));
  }
  std::string floats(const std::string& suffix, const std::vector<int64_t>& shape,
                     const std::vector<float>& values) override {
    DraftTensor t{shape, false, values, {}};
    return add_initializer(output() + "/" + suffix, std::move(t));
  }
  std::string temp(const std::string& suffix) override { return unique(output() + "/" + suffix); }
  std::string batch_size() override;
  void add(const std::string& op_type, const std::vector<std::string>& inputs,
           const std::vector<std::string>& outputs, const std::vector<OnnxAttr>& attrs) override {
    nodes.push_back({op_type, inputs, outputs, attrs});
  }

 private:
  std::string add_initializer(const std::string& wanted, DraftTensor t) {
    int64_t elements = 1;
    for (int64_t d : t.dims) elements *= d;
    NAS_CHECK(static_cast<size_t>(elements) == (t.is_int ? t.ints.size() : t.floats.size()),
              "ONNX initializer `" + wanted + "` has values for another shape");
    std::string name = unique(wanted);
    initializers.emplace(name, std::move(t));
    return name;
  }
  // The plan parameter names of each forward node, by role (from its step's slots).
  void map_params();

  // The training data's normalisation as the model's first nodes; returns its output.
  std::string normalize_input(const Node& in);

  const Graph& g_;
  const ExecPlan& plan_;
  const ParamValues& values_;
  const OnnxOptions& options_;
  const Node* node_ = nullptr;
  std::unordered_set<std::string> names_;
  std::unordered_map<int, std::string> value_of_;  // node id -> ONNX value name
  std::unordered_map<int, std::map<std::string, std::string>> params_of_;  // id -> role -> name
  std::unordered_map<std::string, std::string> initializer_of_param_;      // plan name -> ONNX name
  std::string batch_size_;
};

void Draft::map_params() {
  for (const Step& s : plan_.steps) {
    if (s.node < 0 || s.node >= static_cast<int>(g_.nodes.size()) || params_of_.count(s.node))
      continue;
    const Node& n = g_.nodes[s.node];
    if (n.op->effect || n.op->find_attr("fwd") != nullptr) continue;  // gradient steps
    for (const ParamDecl& d : node_params(g_, n)) {
      const int index = d.slot == StepParamSlot::Weight        ? s.weight
                        : d.slot == StepParamSlot::Bias        ? s.bias
                        : d.slot == StepParamSlot::RunningMean ? s.running_mean
                                                               : s.running_var;
      NAS_CHECK(index >= 0 && index < static_cast<int>(plan_.params.size()),
                "node `" + n.name + "` has no plan parameter for role " + d.role);
      params_of_[s.node][d.role] = plan_.params[index].name;
    }
  }
}

std::string Draft::param(const std::string& role) {
  auto node_params_it = params_of_.find(node_->id);
  if (node_params_it == params_of_.end()) return "";
  auto it = node_params_it->second.find(role);
  if (it == node_params_it->second.end()) return "";
  const std::string& plan_name = it->second;
  auto made = initializer_of_param_.find(plan_name);
  if (made != initializer_of_param_.end()) return made->second;
  DraftTensor t;
  for (const ParamSpec& p : plan_.params)
    if (p.name == plan_name) t.dims = p.shape;
  t.floats = values_(plan_name);
  return initializer_of_param_[plan_name] = add_initializer(plan_name, std::move(t));
}

// Shape(x)[0:1]: the batch size of the run, whatever the model's batch dimension says.
std::string Draft::batch_size() {
  if (batch_size_.empty()) {
    batch_size_ = unique("batch_size");
    nodes.push_back(
        {"Shape", {input_name}, {batch_size_}, {{"start", int64_t{0}}, {"end", int64_t{1}}}});
  }
  return batch_size_;
}

void Draft::emit_graph() {
  map_params();
  if (g_.inputs.size() != 1)
    throw UserError(node_place(g_, g_.inputs.empty() ? -1 : g_.inputs[1]),
                    fmt::format("network `{}` has {} inputs; the ONNX export writes networks of "
                                "one input",
                                g_.name, g_.inputs.size()));
  const Node& in = g_.nodes[g_.inputs[0]];
  input_name = unique(in.name);
  value_of_[in.id] = options_.input_mean.empty() ? input_name : normalize_input(in);
  output_name = unique(g_.nodes[g_.output].shape.size() == 1 ? "logits" : "output");
  for (const Node& n : g_.nodes) {
    if (n.op->effect || is_input(n)) continue;
    if (!n.op->onnx)
      throw UserError(node_place(g_, n.id),
                      fmt::format("op `{}` cannot be exported to ONNX (node `{}`): its registry "
                                  "entry has no ONNX mapping",
                                  n.op->name, n.name));
    value_of_[n.id] = n.id == g_.output ? output_name : unique(n.name);
    std::vector<Shape> shapes;
    for (int i : n.inputs) shapes.push_back(g_.nodes[i].shape);
    node_ = &n;
    n.op->onnx(n, shapes, *this);
    node_ = nullptr;
  }
  // A network that returns its input still has an output of its own name.
  if (g_.output == in.id) add("Identity", {value_of_[in.id]}, {output_name}, {});
}

std::string Draft::normalize_input(const Node& in) {
  const size_t channels = options_.input_mean.size();
  NAS_CHECK(options_.input_std.size() == channels && !in.shape.empty() &&
                static_cast<size_t>(in.shape[0]) == channels,
            fmt::format("the input normalisation has {} means and {} deviations for an input of "
                        "{} channels",
                        channels, options_.input_std.size(), in.shape.empty() ? 0 : in.shape[0]));
  // [1, C, 1, ...]: broadcast over the batch and every position of a channel.
  std::vector<int64_t> dims = {1, static_cast<int64_t>(channels)};
  dims.resize(in.shape.size() + 1, 1);
  const std::string mean =
      add_initializer(input_name + "/mean", {dims, false, options_.input_mean, {}});
  const std::string stdev =
      add_initializer(input_name + "/std", {dims, false, options_.input_std, {}});
  const std::string centred = unique(input_name + "/centred");
  const std::string normalized = unique(input_name + "/normalized");
  add("Sub", {input_name, mean}, {centred}, {});
  add("Div", {centred, stdev}, {normalized}, {});
  return normalized;
}

// --- Whole-model rewrites -------------------------------------------------------------------

std::map<std::string, int> use_counts(const Draft& d) {
  std::map<std::string, int> uses;
  for (const DraftNode& n : d.nodes)
    for (const std::string& in : n.inputs) ++uses[in];
  ++uses[d.output_name];
  return uses;
}

double attr_float(const DraftNode& n, const std::string& name, double fallback) {
  for (const OnnxAttr& a : n.attrs)
    if (a.name == name) return std::get<double>(a.value);
  return fallback;
}

// BatchNormalization(Conv(x, W, b)) = Conv(x, W * a, (b - mean) * a + shift) with
// a = scale / sqrt(var + eps) per output channel, computed in double. Only where the Conv's
// output, weight and bias are read by nothing else.
void fold_batchnorm(Draft& d) {
  std::map<std::string, int> uses = use_counts(d);
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < d.nodes.size(); ++i)
    for (const std::string& out : d.nodes[i].outputs) producer[out] = i;
  std::vector<char> removed(d.nodes.size(), 0);
  for (size_t i = 0; i < d.nodes.size(); ++i) {
    DraftNode& bn = d.nodes[i];
    if (bn.op_type != "BatchNormalization" || !producer.count(bn.inputs[0])) continue;
    DraftNode& conv = d.nodes[producer[bn.inputs[0]]];
    if (conv.op_type != "Conv" || uses[bn.inputs[0]] != 1 || uses[conv.inputs[1]] != 1 ||
        (conv.inputs.size() > 2 && uses[conv.inputs[2]] != 1))
      continue;
    const DraftTensor &scale = d.initializers.at(bn.inputs[1]),
                      &shift = d.initializers.at(bn.inputs[2]),
                      &mean = d.initializers.at(bn.inputs[3]),
                      &var = d.initializers.at(bn.inputs[4]);
    const double eps = attr_float(bn, "epsilon", 1e-5);
    DraftTensor& weight = d.initializers.at(conv.inputs[1]);
    const size_t channels = static_cast<size_t>(weight.dims[0]);
    const size_t per_channel = weight.floats.size() / channels;
    if (conv.inputs.size() < 3) conv.inputs.push_back(d.unique(conv.inputs[1] + "/bias"));
    DraftTensor& bias = d.initializers[conv.inputs[2]];
    if (bias.floats.empty())
      bias = DraftTensor{{weight.dims[0]}, false, std::vector<float>(channels, 0.0f), {}};
    for (size_t c = 0; c < channels; ++c) {
      const double a = scale.floats[c] / std::sqrt(static_cast<double>(var.floats[c]) + eps);
      for (size_t k = 0; k < per_channel; ++k) {
        float& w = weight.floats[c * per_channel + k];
        w = static_cast<float>(w * a);
      }
      bias.floats[c] = static_cast<float>((bias.floats[c] - mean.floats[c]) * a + shift.floats[c]);
    }
    conv.outputs[0] = bn.outputs[0];
    removed[i] = 1;
  }
  std::vector<DraftNode> kept;
  for (size_t i = 0; i < d.nodes.size(); ++i)
    if (!removed[i]) kept.push_back(std::move(d.nodes[i]));
  d.nodes = std::move(kept);
}

// Identity nodes (dropout, drop_path, identity, aux_loss at inference) are skipped: their
// readers read the input instead. One that makes the graph output stays, so that the
// output keeps its name.
void drop_identities(Draft& d) {
  std::unordered_map<std::string, std::string> replaced;
  std::vector<DraftNode> kept;
  for (DraftNode& n : d.nodes) {
    for (std::string& in : n.inputs)
      if (auto it = replaced.find(in); it != replaced.end()) in = it->second;
    if (n.op_type == "Identity" && n.outputs[0] != d.output_name) {
      replaced[n.outputs[0]] = n.inputs[0];
      continue;
    }
    kept.push_back(std::move(n));
  }
  d.nodes = std::move(kept);
}

// Nodes whose outputs the graph output does not need (an auxiliary head, which is dead at
// inference), and the initializers only they read.
void drop_dead(Draft& d) {
  std::unordered_set<std::string> live{d.output_name};
  std::vector<DraftNode> kept;
  for (auto it = d.nodes.rbegin(); it != d.nodes.rend(); ++it) {
    bool needed = false;
    for (const std::string& out : it->outputs) needed = needed || live.count(out) > 0;
    if (!needed) continue;
    live.insert(it->inputs.begin(), it->inputs.end());
    kept.push_back(std::move(*it));
  }
  d.nodes.assign(std::make_move_iterator(kept.rbegin()), std::make_move_iterator(kept.rend()));
  for (auto it = d.initializers.begin(); it != d.initializers.end();)
    it = live.count(it->first) ? std::next(it) : d.initializers.erase(it);
}

// --- Protobuf -------------------------------------------------------------------------------

void set_attribute(onnx::AttributeProto& a, const OnnxAttr& attr) {
  a.set_name(attr.name);
  if (const int64_t* i = std::get_if<int64_t>(&attr.value)) {
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(*i);
  } else if (const double* f = std::get_if<double>(&attr.value)) {
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(static_cast<float>(*f));
  } else if (const std::string* s = std::get_if<std::string>(&attr.value)) {
    a.set_type(onnx::AttributeProto::STRING);
    a.set_s(*s);
  } else {
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t v : std::get<std::vector<int64_t>>(attr.value)) a.add_ints(v);
  }
}

// Initializers as little-endian raw data (the host is little-endian, as nasc's weights
// files assume too).
void set_tensor(onnx::TensorProto& t, const std::string& name, const DraftTensor& d) {
  t.set_name(name);
  for (int64_t dim : d.dims) t.add_dims(dim);
  t.set_data_type(d.is_int ? onnx::TensorProto::INT64 : onnx::TensorProto::FLOAT);
  const void* data = d.is_int ? static_cast<const void*>(d.ints.data()) : d.floats.data();
  const size_t bytes = d.is_int ? d.ints.size() * 8 : d.floats.size() * 4;
  t.set_raw_data(std::string(static_cast<const char*>(data), bytes));
}

void set_value_info(onnx::ValueInfoProto& v, const std::string& name, const Shape& per_sample,
                    int64_t batch) {
  v.set_name(name);
  onnx::TypeProto_Tensor* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* s = t->mutable_shape();
  if (batch > 0)
    s->add_dim()->set_dim_value(batch);
  else
    s->add_dim()->set_dim_param("N");
  for (int64_t d : per_sample) s->add_dim()->set_dim_value(d);
}

onnx::ModelProto to_proto(const Draft& d, const Graph& g, const OnnxOptions& options) {
  onnx::ModelProto m;
  m.set_ir_version(kIrVersion);
  m.set_producer_name("nasc");
  m.set_producer_version(NASC_VERSION);
  m.set_doc_string("network `" + g.name + "` for inference, written by nasc export");
  onnx::OperatorSetIdProto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  for (const auto& [key, value] : options.metadata) {
    onnx::StringStringEntryProto* e = m.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  }
  onnx::GraphProto* graph = m.mutable_graph();
  graph->set_name(g.name);
  for (const DraftNode& n : d.nodes) {
    onnx::NodeProto* p = graph->add_node();
    p->set_op_type(n.op_type);
    p->set_name(n.outputs[0]);
    for (const std::string& in : n.inputs) p->add_input(in);
    for (const std::string& out : n.outputs) p->add_output(out);
    for (const OnnxAttr& a : n.attrs) set_attribute(*p->add_attribute(), a);
  }
  for (const auto& [name, tensor] : d.initializers)
    set_tensor(*graph->add_initializer(), name, tensor);
  set_value_info(*graph->add_input(), d.input_name, g.nodes[g.inputs[0]].shape, options.batch);
  set_value_info(*graph->add_output(), d.output_name, g.nodes[g.output].shape, options.batch);
  return m;
}

}  // namespace

CompiledPlan onnx_forward_plan(const Graph& network) {
  PlanOptions plan;
  plan.batch = 1;
  plan.training = false;
  plan.loss = false;
  plan.fusion = false;
  return compile_plan_keeping_graph(network, plan);
}

void write_onnx_model(const CompiledPlan& forward, const ParamValues& values,
                      const OnnxOptions& options, const std::string& path) {
  Draft draft(forward, values, options);
  draft.emit_graph();
  drop_identities(draft);
  if (options.fold_batchnorm) fold_batchnorm(draft);
  drop_dead(draft);
  onnx::ModelProto model = to_proto(draft, forward.exec, options);
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    NAS_CHECK(false, std::string("the exported ONNX model fails ONNX's checker: ") + e.what());
  }
  std::string bytes;
  NAS_CHECK(model.SerializeToString(&bytes), "the ONNX model could not be serialised");
  write_file_atomic(path, bytes);
}

}  // namespace nas
