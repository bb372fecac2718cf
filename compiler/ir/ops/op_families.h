// The builtin ops by family, one function per file of compiler/ir/ops/. The registry
// (compiler/ir/op_registry.cpp) concatenates them in this order.
#pragma once

#include <vector>

#include "compiler/ir/op_registry.h"

namespace nas::ops {

std::vector<OpDef> graph_ops();        // input, choice, zero, identity (graph_ops.cpp)
std::vector<OpDef> layer_ops();        // conv, dwconv, linear, batchnorm (layer_ops.cpp)
std::vector<OpDef> elementwise_ops();  // activations, dropout, drop_path, mul, add
std::vector<OpDef> window_ops();       // max/avg/global average pooling (window_ops.cpp)
std::vector<OpDef> shape_ops();        // concat, flatten, crop (shape_ops.cpp)
std::vector<OpDef> gradient_ops();     // the losses and the gradient ops (gradient_ops.cpp)

}  // namespace nas::ops
