// libnasc's export: a fixed network with its weights as an ONNX model for inference
// (`nasc export`), to run it in onnxruntime or any other ONNX tool. Part of the public API
// (docs/embedding.md, docs/onnx.md).
#pragma once

#include <cstdint>
#include <string>

#include "nasc/space.h"

namespace nasc {

struct OnnxExportOptions {
  // The weights (`nasc train`'s OUTPUT/weights, Model::save_weights' file), read into the
  // network as Model::load_weights reads them. "" needs random_weights.
  std::string weights_file;
  // No weights file: the weights a fresh Model would start with (from `seed`), for
  // measuring or converting a network before it is trained.
  bool random_weights = false;
  uint64_t seed = 0;
  // The model's batch dimension: 0 = symbolic ("N": any batch size), else that size.
  int64_t batch = 0;
  // Batch norm after a convolution whose output nothing else reads is folded into the
  // convolution's weights and bias; false writes every BatchNormalization.
  bool fold_batchnorm = true;
};

// Writes the architecture's fixed network as an ONNX model (opset 17, float32, batch
// first, the input named as in the .nas file, the output `logits` for a 1-D output and
// `output` otherwise) for inference: batch norm on its running statistics, dropout and
// drop_path the identity, an auxiliary head left out. The file is whole or absent: it is
// written next to `path` and renamed over it. Throws a user Error for a weights file that
// cannot be read or belongs to another network (naming the tensor), an op that has no
// ONNX mapping (naming the op and its place in the .nas file), neither weights nor
// random_weights, a negative batch, or a path that cannot be written.
void export_onnx(const Architecture& arch, const std::string& path,
                 const OnnxExportOptions& options);

}  // namespace nasc
