// libnasc's runtime half for one network: build a fixed architecture as a model at a batch
// size, in training or evaluation mode, on a registered backend, and run it on the caller's
// buffers (float images NCHW, int32 labels). Part of the public API (docs/embedding.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nasc/export.h"
#include "nasc/space.h"

namespace nasc {

enum class Mode { Train, Eval };

struct ModelOptions {
  int64_t batch = 32;       // images per run; a run may pass fewer
  Mode mode = Mode::Train;  // Train: forward, loss and backward; Eval: forward and loss
  std::string backend;      // a registered backend ("" = the default, see backends())
  uint64_t seed = 0;        // weight initialisation and dropout
  // The optimizer of optimizer_step() (Train only): "sgd" (momentum, Nesterov off) or
  // "adam", with weight decay added to the gradient as PyTorch does.
  std::string optimizer = "sgd";
  double learning_rate = 0.05;
  double momentum = 0.9;  // sgd
  double weight_decay = 0;
  int threads = 0;  // CPU threads (0 = every core)
};

// What one run computed: the mean loss and the accuracy (0..1) over its samples.
struct StepResult {
  double loss = 0;
  double accuracy = 0;
  int64_t samples = 0;
};

class Model {
 public:
  // Compiles the architecture's fixed network for options.batch and binds fresh weights.
  // Throws a user Error for a network that cannot be built (a training model needs a
  // network returning 1-D logits; an unknown backend is named with the known ones).
  static Model build(const Architecture& arch, const ModelOptions& options = {});
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  Mode mode() const;
  int64_t batch() const;
  std::vector<int64_t> input_shape() const;  // per sample, [C, H, W]
  int64_t input_size() const;                // floats per sample (C * H * W)
  int64_t classes() const;                   // logits per sample
  int64_t parameter_count() const;           // trainable weights

  // Forward and loss on `samples` images and their labels (1..batch() for an Eval model;
  // a Train model runs whole batches, samples = batch(), as its batch-norm statistics are
  // over the batch it was compiled for; a user Error says so otherwise): images holds
  // samples * input_size() floats, labels samples int32 in [0, classes()). `logits`, when
  // given, receives samples * classes() floats. A Train model runs forward only here (no
  // gradients; batch-norm on batch statistics). Labels may be null for an Eval model
  // (no loss: the result's loss and accuracy are 0).
  StepResult forward(const float* images, const int32_t* labels, int64_t samples,
                     float* logits = nullptr);
  // Train only: forward, loss and backward, ADDING the gradients to the model's gradient
  // buffers (zero_grads() first; several calls accumulate).
  StepResult forward_backward(const float* images, const int32_t* labels, int64_t samples);
  void zero_grads();
  // Train only: one optimizer update of every weight from its gradient.
  void optimizer_step();
  void set_learning_rate(double lr);
  // zero_grads, forward_backward and optimizer_step: one training step.
  StepResult train_step(const float* images, const int32_t* labels, int64_t samples);

  // Writes the weights and batch-norm running statistics as a weights file, the format
  // `nasc train` leaves in OUTPUT/weights: safetensors, which PyTorch's
  // safetensors.torch.load_file reads (docs/train.md). The file is whole or absent:
  // it is written next to `path` and renamed over it.
  void save_weights(const std::string& path) const;
  // Reads a weights file (save_weights' or `nasc train`'s, safetensors or nasc's older
  // NASCWTS format; a float32 safetensors file of another tool too) into the model, e.g.
  // to serve a network trained by the CLI. Throws a user Error naming the file, and the tensor at
  // fault, when it is not a weights file or was saved from another network; the model's
  // weights are unchanged then. Optimizer state is not part of a weights file.
  void load_weights(const std::string& path);
  // Writes the network with the model's current weights and running statistics as an ONNX
  // model (nasc/export.h; the options' weights_file, random_weights and seed are not
  // read). The ONNX model computes what forward() does in Mode::Eval.
  void export_onnx(const std::string& path, const OnnxExportOptions& options = {}) const;

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nasc
