// Compiles an elementwise op's scalar formula (support/elementwise_ops.h: "x * sigmoid(x)",
// "x > 0 && x < 6 ? 1 : 0") into LLVM IR over floats or vectors of floats, so that a new
// activation needs no code in the JIT: its registry entry's text is what runs.
//
// The language: numbers, `x` (the input), `a` (the op's float attribute), + - * / and unary
// minus, comparisons < <= > >= == (only as conditions), &&, `c ? t : f`, and the functions
// max(p, q), min(p, q), relu6(p) and sigmoid(p). max and min pick as std::max/std::min do,
// so the generated code and the float64 reference agree on every input.
#pragma once

#include <memory>
#include <string>

namespace llvm {
class IRBuilderBase;
class Value;
class Type;
}  // namespace llvm

namespace nas {

struct FormulaNode;

class Formula {
 public:
  // Parses `text`; a malformed formula is an InternalError naming it and the position (the
  // formulas are nasc's own, checked by a test for every entry).
  explicit Formula(const std::string& text);
  ~Formula();
  Formula(Formula&&) noexcept;
  Formula& operator=(Formula&&) noexcept;

  // The formula's value for input `x` (of type float or <N x float>) and attribute `a`.
  llvm::Value* emit(llvm::IRBuilderBase& builder, llvm::Value* x, double a) const;
  // The value in double precision, by the same tree (tests compare it with the C++
  // reference to check the parser).
  double evaluate(double x, double a) const;

 private:
  std::unique_ptr<FormulaNode> root_;
  std::string text_;
};

}  // namespace nas
