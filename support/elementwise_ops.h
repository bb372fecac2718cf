// The scalar definitions of the elementwise activations: each op's value f(x) and
// derivative f'(x) as C++ functions on double, and the same formulas as short text the JIT
// will compile. One table, read by two sides that may not see each other:
//   - the op registry (compiler/ir): an activation's OpDef points at its entry, and derives
//     from it the float64 reference and whether the op maps 0 to 0;
//   - the CPU backend (runtime/cpu): an activation with no oneDNN algorithm runs the generic
//     elementwise kernel over this entry's functions, so a new activation needs no CPU code.
// It lives in support/ because runtime/ must not include compiler/ (docs/architecture.md),
// and a plan step names its op, which is all a backend needs to find the entry.
#pragma once

#include <string_view>
#include <vector>

namespace nas {

struct ElementwiseFn {
  const char* name;        // the op name ("silu")
  const char* value_text;  // f(x) in the JIT's expression language: "x * sigmoid(x)"
  const char* derivative_text;
  // The float attribute the formula reads as `a` ("slope" for leaky_relu), or nullptr.
  const char* param;
  double (*value)(double x, double a);
  // f'(x); at a kink (relu's 0, relu6's 0 and 6, ...) one of the one-sided derivatives.
  double (*derivative)(double x, double a);
};

// Every entry, in a stable order.
const std::vector<ElementwiseFn>& elementwise_fns();
// The entry of op `name`, or nullptr.
const ElementwiseFn* find_elementwise(std::string_view name);

}  // namespace nas
