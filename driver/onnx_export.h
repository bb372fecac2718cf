// The ONNX writer behind nasc::export_onnx and `nasc export`: a fixed network's forward
// graph (the pipeline's cse result, what every plan of it runs) as an ONNX model for
// inference, opset 17. Each node is written by its op's registry entry (OpDef::onnx); this
// file owns only what is about the model as a whole: names, the graph's input and output,
// parameters as initializers, skipping Identity nodes (dropout at inference), folding batch
// norm into the Conv before it, dropping nodes the output does not need (an auxiliary
// head), and the protobuf file (Debian's libonnx-dev).
// Internal to the driver library.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/pipeline/pipeline.h"

namespace nas {

struct OnnxOptions {
  int64_t batch = 0;  // the batch dimension: 0 = symbolic ("N", any size), else fixed
  // Batch norm after a Conv whose output nothing else reads becomes part of that Conv's
  // weights and bias; false keeps every BatchNormalization.
  bool fold_batchnorm = true;
  // Written into the model's metadata_props (e.g. "nasc.file", "nasc.arch").
  std::map<std::string, std::string> metadata;
  // The training data's per-channel normalisation (x - mean) / std, which `nasc train`
  // applies to every image before the network sees it: when given (one value a channel of
  // the input), the model starts with it, so that it takes images as the data set holds
  // them. Empty: the model takes the network's input as is.
  std::vector<float> input_mean, input_std;
};

// The forward plan the exporter reads parameter names from: batch 1, no loss, no fusion
// (one step per node, so each node's parameters are its own step's).
CompiledPlan onnx_forward_plan(const Graph& network);

// The values of the plan's parameter `name` (ParamSpec::name), row-major.
using ParamValues = std::function<std::vector<float>(const std::string& name)>;

// Writes the network of `forward` with `values` as an ONNX model to `path`, atomically
// (PATH.tmp, then renamed). Throws UserError at the node's place for an op without an ONNX
// mapping ("op `x` cannot be exported to ONNX"), DataFileError naming the path when it
// cannot be written, InternalError when the model fails ONNX's own checker (a bug).
void write_onnx_model(const CompiledPlan& forward, const ParamValues& values,
                      const OnnxOptions& options, const std::string& path);

}  // namespace nas
