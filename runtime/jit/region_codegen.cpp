#include "runtime/jit/region_codegen.h"

#include <llvm/IR/IRBuilder.h>

#include "support/elementwise_ops.h"
#include "support/errors.h"

namespace nas {

namespace {

llvm::Value* splat(llvm::IRBuilderBase& b, llvm::Type* type, llvm::Value* scalar) {
  if (auto* v = llvm::dyn_cast<llvm::FixedVectorType>(type))
    return b.CreateVectorSplat(v->getNumElements(), scalar);
  return scalar;
}

const ElementwiseFn& elementwise_fn(const std::string& name, const RegionOp& op) {
  const ElementwiseFn* fn = find_elementwise(op.op);
  NAS_CHECK(fn != nullptr,
            "elementwise region `" + name + "`: no element-wise formula for " + op.op);
  return *fn;
}

}  // namespace

const Formula& RegionOpsEmitter::formula(const std::string& text) {
  auto it = formulas_.find(text);
  if (it == formulas_.end()) it = formulas_.emplace(text, Formula(text)).first;
  return it->second;
}

llvm::Value* RegionOpsEmitter::emit(llvm::IRBuilderBase& b, const std::string& name,
                                    const std::vector<RegionOp>& ops, llvm::Type* type,
                                    const std::vector<llvm::Value*>& inputs,
                                    const std::vector<std::vector<llvm::Value*>>& present,
                                    const std::vector<std::vector<llvm::Value*>>& weight) {
  std::vector<llvm::Value*> results;
  auto operand = [&](int k) { return k >= 0 ? inputs[k] : results[-k - 1]; };
  llvm::Value* zero = llvm::ConstantFP::get(type, 0.0);
  for (size_t i = 0; i < ops.size(); ++i) {
    const RegionOp& op = ops[i];
    llvm::Value* y = nullptr;
    switch (op.kind) {
      case StepKind::Activation:
        y = formula(elementwise_fn(name, op).value_text).emit(b, operand(op.operands[0]), op.param);
        break;
      case StepKind::ActivationGrad: {
        llvm::Value* slope = formula(elementwise_fn(name, op).derivative_text)
                                 .emit(b, operand(op.operands[1]), op.param);
        y = b.CreateFMul(operand(op.operands[0]), slope);
        break;
      }
      case StepKind::Scale:
        y = b.CreateFMul(llvm::ConstantFP::get(type, op.scale), operand(op.operands[0]));
        if (op.operands.size() == 2) y = b.CreateFMul(y, operand(op.operands[1]));
        break;
      case StepKind::Add:
      case StepKind::Choice:
        y = zero;
        for (size_t j = 0; j < op.operands.size(); ++j) {
          llvm::Value* term = operand(op.operands[j]);
          if (op.kind == StepKind::Choice) term = b.CreateFMul(splat(b, type, weight[i][j]), term);
          y = b.CreateFAdd(y, b.CreateSelect(present[i][j], term, zero));
        }
        break;
      default:
        internal_error(__FILE__, __LINE__,
                       "elementwise region `" + name + "`: an operation of another kind");
    }
    results.push_back(y);
  }
  return results.back();
}

}  // namespace nas
