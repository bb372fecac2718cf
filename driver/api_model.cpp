// libnasc's Model: a fixed network compiled at a batch size and bound to a parameter store
// on a registered backend, run on the caller's buffers.
#include <fmt/format.h>

#include "compiler/pipeline/pipeline.h"
#include "driver/api_internal.h"
#include "nasc/model.h"
#include "runtime/cpu/threads.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/optim_config.h"
#include "runtime/train/tensor_file.h"
#include "runtime/train/trainer.h"

namespace nasc {

struct Model::Impl {
  Mode mode = Mode::Train;
  nlohmann::json weights_meta;  // what a weights file says it holds: network, file, arch
  std::unique_ptr<nas::ParamStore> store;
  std::unique_ptr<nas::Executor> executor;
  std::unique_ptr<nas::Optimizer> optimizer;  // Train only
  int64_t input_size = 0;
  nas::Graph network;     // the fixed network, for export_onnx
  std::string arch_json;  // its architecture, for the ONNX model's metadata
};

namespace {

nas::OptimizerConfig optimizer_config(const ModelOptions& o) {
  if (o.optimizer != "sgd" && o.optimizer != "adam")
    throw Error(Error::Kind::User,
                "ModelOptions::optimizer: unknown optimizer `" + o.optimizer + "` (sgd, adam)");
  if (!(o.learning_rate >= 0))
    throw Error(Error::Kind::User,
                fmt::format("ModelOptions::learning_rate: must be >= 0, got {}", o.learning_rate));
  nas::OptimizerConfig c;
  c.name = o.optimizer;
  c.lr = o.learning_rate;
  c.momentum = o.optimizer == "sgd" ? o.momentum : 0;
  c.weight_decay = o.weight_decay;
  return c;
}

void check_samples(int64_t samples, int64_t batch, Mode mode) {
  if (samples < 1 || samples > batch)
    throw Error(
        Error::Kind::User,
        fmt::format("a run takes 1 to {} samples (the model's batch), got {}", batch, samples));
  // A training plan's batch-norm statistics are over the batch it was compiled for.
  if (mode == Mode::Train && samples != batch)
    throw Error(Error::Kind::User,
                fmt::format("a training model runs whole batches of {} samples, got {} (build "
                            "an Eval model for partial batches)",
                            batch, samples));
}

StepResult step_result(const nas::RunResult& r) {
  StepResult s;
  s.samples = r.samples;
  if (r.samples > 0) {
    s.loss = r.loss_sum / static_cast<double>(r.samples);
    s.accuracy = static_cast<double>(r.correct) / static_cast<double>(r.samples);
  }
  return s;
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Model Model::build(const Architecture& arch, const ModelOptions& options) {
  return detail::translate_errors([&] {
    if (options.batch < 1)
      throw Error(Error::Kind::User,
                  fmt::format("ModelOptions::batch: must be >= 1, got {}", options.batch));
    if (options.threads < 0)
      throw Error(Error::Kind::User,
                  fmt::format("ModelOptions::threads: must be >= 0, got {}", options.threads));
    const std::string backend =
        options.backend.empty() ? nas::default_backend_name() : options.backend;
    std::string problem = nas::backend_name_problem(backend);
    if (!problem.empty()) throw Error(Error::Kind::User, "ModelOptions::backend: " + problem);
    nas::OptimizerConfig opt = optimizer_config(options);
    const nas::Graph& supernet = arch.impl().space->supernet;
    nas::Graph net = nas::specialise(supernet, arch.impl().selection);
    nas::PlanOptions plan;
    plan.batch = options.batch;
    plan.training = options.mode == Mode::Train;
    plan.loss = true;
    auto impl = std::make_unique<Impl>();
    impl->mode = options.mode;
    impl->weights_meta = {{"network", net.name}, {"file", arch.impl().space->file}};
    if (!arch.impl().file.empty()) impl->weights_meta["arch"] = arch.impl().file;
    nas::set_cpu_threads(options.threads);
    impl->store =
        std::make_unique<nas::ParamStore>(nas::make_backend(backend, "ModelOptions::backend"));
    impl->executor =
        std::make_unique<nas::Executor>(nas::compile_plan(net, plan), *impl->store, options.seed);
    if (options.mode == Mode::Train)
      impl->optimizer =
          nas::make_optimizer(opt, impl->store->backend(), impl->store->weight_slots());
    impl->network = std::move(net);
    impl->arch_json = arch.to_json();
    impl->input_size = 1;
    for (int64_t d : impl->executor->plan().input_shape) impl->input_size *= d;
    return Model(std::move(impl));
  });
}

Mode Model::mode() const {
  return impl_->mode;
}
int64_t Model::batch() const {
  return impl_->executor->batch();
}
std::vector<int64_t> Model::input_shape() const {
  return impl_->executor->plan().input_shape;
}
int64_t Model::input_size() const {
  return impl_->input_size;
}
int64_t Model::classes() const {
  return impl_->executor->plan().classes;
}
int64_t Model::parameter_count() const {
  return impl_->store->trainable_count();
}

StepResult Model::forward(const float* images, const int32_t* labels, int64_t samples,
                          float* logits) {
  check_samples(samples, batch(), impl_->mode);
  if (labels == nullptr && impl_->mode == Mode::Train)
    throw Error(Error::Kind::User, "a training model's forward needs labels (for its loss)");
  return detail::translate_errors([&] {
    // Forward only for this run, whether it returns or throws.
    struct ForwardOnly {
      nas::Executor& executor;
      explicit ForwardOnly(nas::Executor& e) : executor(e) { executor.set_forward_only(true); }
      ~ForwardOnly() { executor.set_forward_only(false); }
    } forward_only(*impl_->executor);
    return step_result(impl_->executor->run(images, labels, samples, logits));
  });
}

StepResult Model::forward_backward(const float* images, const int32_t* labels, int64_t samples) {
  if (impl_->mode != Mode::Train)
    throw Error(Error::Kind::User, "forward_backward needs a model built with Mode::Train");
  check_samples(samples, batch(), impl_->mode);
  if (labels == nullptr) throw Error(Error::Kind::User, "forward_backward needs labels");
  return detail::translate_errors([&] {
    nas::RunResult r = impl_->executor->run(images, labels, samples);
    return step_result(r);
  });
}

void Model::zero_grads() {
  detail::translate_errors([&] { impl_->store->zero_grads(); });
}

void Model::optimizer_step() {
  if (impl_->mode != Mode::Train)
    throw Error(Error::Kind::User, "optimizer_step needs a model built with Mode::Train");
  detail::translate_errors([&] { impl_->optimizer->step(); });
}

void Model::set_learning_rate(double lr) {
  if (impl_->mode != Mode::Train)
    throw Error(Error::Kind::User, "set_learning_rate needs a model built with Mode::Train");
  if (!(lr >= 0) || lr == HUGE_VAL)
    throw Error(Error::Kind::User,
                fmt::format("learning rate: must be finite and >= 0, got {}", lr));
  detail::translate_errors([&] { impl_->optimizer->set_lr(lr); });
}

StepResult Model::train_step(const float* images, const int32_t* labels, int64_t samples) {
  zero_grads();
  StepResult r = forward_backward(images, labels, samples);
  optimizer_step();
  return r;
}

void Model::save_weights(const std::string& path) const {
  detail::translate_errors([&] {
    nas::write_tensor_file(path, nas::params_to_file(*impl_->store, impl_->weights_meta));
  });
}

void Model::load_weights(const std::string& path) {
  detail::translate_errors(
      [&] { nas::params_from_file(*impl_->store, nas::read_tensor_file(path), path); });
}

void Model::export_onnx(const std::string& path, const OnnxExportOptions& options) const {
  detail::translate_errors([&] {
    nas::OnnxOptions o = detail::onnx_options(
        options, impl_->network.name, impl_->weights_meta.value("file", ""), impl_->arch_json);
    detail::export_network(impl_->network, impl_->store.get(), 0, "", o, path);
  });
}

}  // namespace nasc
