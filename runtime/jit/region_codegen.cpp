#include "runtime/jit/region_codegen.h"

#include <llvm/IR/IRBuilder.h>

#include "support/elementwise_ops.h"
#include "support/errors.h"
#include "support/rng.h"

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

// mix64 (support/rng.h) of an i64 or a vector of i64.
llvm::Value* emit_mix64(llvm::IRBuilderBase& b, llvm::Value* z) {
  llvm::Type* type = z->getType();
  auto constant = [&](uint64_t v) { return llvm::ConstantInt::get(type, v); };
  z = b.CreateMul(b.CreateXor(z, b.CreateLShr(z, constant(30))), constant(0xbf58476d1ce4e5b9ULL));
  z = b.CreateMul(b.CreateXor(z, b.CreateLShr(z, constant(27))), constant(0x94d049bb133111ebULL));
  return b.CreateXor(z, b.CreateLShr(z, constant(31)));
}

// The element each lane of `type` computes: `index` (i64) for a scalar, index + j in lane j
// of a vector.
llvm::Value* lane_elements(llvm::IRBuilderBase& b, llvm::Type* type, llvm::Value* index) {
  auto* vector = llvm::dyn_cast<llvm::FixedVectorType>(type);
  if (!vector) return index;
  std::vector<llvm::Constant*> offsets;
  for (unsigned j = 0; j < vector->getNumElements(); ++j) offsets.push_back(b.getInt64(j));
  return b.CreateAdd(b.CreateVectorSplat(vector->getNumElements(), index),
                     llvm::ConstantVector::get(offsets));
}

// Whether each lane's element is kept by dropout operation `op` (support/rng.h,
// dropout_keeps): lane j is element draws.index + j, of sample (its index) / per_sample.
llvm::Value* dropout_kept(llvm::IRBuilderBase& b, llvm::Type* type, const RegionOp& op,
                          const RegionDraws& draws, llvm::Value* seed_mix) {
  NAS_CHECK(draws.index && draws.per_sample && draws.first_sample && seed_mix,
            "a dropout operation generated without its draws");
  llvm::Value* element = lane_elements(b, type, draws.index);
  llvm::Value* per_sample = draws.per_sample;
  llvm::Value* first_sample = draws.first_sample;
  if (auto* v = llvm::dyn_cast<llvm::FixedVectorType>(type)) {
    const unsigned lanes = v->getNumElements();
    per_sample = b.CreateVectorSplat(lanes, per_sample);
    first_sample = b.CreateVectorSplat(lanes, first_sample);
    seed_mix = b.CreateVectorSplat(lanes, seed_mix);
  }
  llvm::Type* ints = element->getType();
  auto constant = [&](uint64_t value) { return llvm::ConstantInt::get(ints, value); };
  llvm::Value* sample = b.CreateUDiv(element, per_sample);
  llvm::Value* k = b.CreateSub(element, b.CreateMul(sample, per_sample));
  // derive_seed(node_seed, first_sample + sample), with mix64(node_seed) given.
  llvm::Value* value = b.CreateAdd(b.CreateAdd(first_sample, sample), constant(kSplitMixIncrement));
  llvm::Value* stream = emit_mix64(
      b, b.CreateXor(seed_mix, b.CreateAdd(emit_mix64(b, value), constant(kDeriveSeedOffset))));
  // The k-th draw of the stream, its top 24 bits against the threshold.
  llvm::Value* state =
      b.CreateAdd(stream, b.CreateMul(b.CreateAdd(k, constant(1)), constant(kSplitMixIncrement)));
  llvm::Value* top = b.CreateLShr(emit_mix64(b, state), constant(40));
  return b.CreateICmpUGE(top, constant(dropout_threshold(op.param)));
}

}  // namespace

llvm::Value* dropout_draws_seed_mix(llvm::IRBuilderBase& b, llvm::Value* dropout_seed, int node) {
  // derive_seed(seed, node) = mix64(mix64(seed) ^ (mix64(node + increment) + offset)).
  const uint64_t mixed_node =
      mix64(static_cast<uint64_t>(node) + kSplitMixIncrement) + kDeriveSeedOffset;
  llvm::Value* node_seed =
      emit_mix64(b, b.CreateXor(emit_mix64(b, dropout_seed), b.getInt64(mixed_node)));
  return emit_mix64(b, node_seed);
}

llvm::Value* load_region_input(llvm::IRBuilderBase& b, llvm::Type* type, llvm::Value* base,
                               llvm::Value* index, const RegionReadMap& map) {
  llvm::Type* f32 = b.getFloatTy();
  auto* vector = llvm::dyn_cast<llvm::FixedVectorType>(type);
  if (!map.mapped) {
    llvm::Value* address = b.CreateInBoundsGEP(f32, base, index);
    return b.CreateAlignedLoad(type, b.CreateBitCast(address, type->getPointerTo()),
                               llvm::Align(4));
  }
  llvm::Value* lanes = lane_elements(b, type, index);
  auto constant = [&](int64_t v) {
    return llvm::ConstantInt::get(lanes->getType(), static_cast<uint64_t>(v), true);
  };
  llvm::Value* w = b.CreateURem(lanes, constant(map.width));
  llvm::Value* rows = b.CreateUDiv(lanes, constant(map.width));
  llvm::Value* h = b.CreateURem(rows, constant(map.height));
  llvm::Value* plane = b.CreateUDiv(rows, constant(map.height));
  llvm::Value* sh = b.CreateAdd(h, constant(map.dh));
  llvm::Value* sw = b.CreateAdd(w, constant(map.dw));
  llvm::Value* inside = b.getTrue();
  if (vector) inside = llvm::ConstantVector::getSplat(vector->getElementCount(), b.getTrue());
  if (map.bounded) {
    inside = b.CreateAnd(b.CreateAnd(b.CreateICmpSGE(sh, constant(0)),
                                     b.CreateICmpSLT(sh, constant(map.src_height))),
                         b.CreateAnd(b.CreateICmpSGE(sw, constant(0)),
                                     b.CreateICmpSLT(sw, constant(map.src_width))));
  }
  llvm::Value* source =
      b.CreateAdd(b.CreateMul(b.CreateAdd(b.CreateMul(plane, constant(map.src_height)), sh),
                              constant(map.src_width)),
                  sw);
  source = b.CreateSelect(inside, source, constant(0));  // masked lanes stay in the input
  llvm::Value* zero = llvm::ConstantFP::get(type, 0.0);
  llvm::Value* address = b.CreateGEP(f32, base, source);
  if (vector) return b.CreateMaskedGather(type, address, llvm::Align(4), inside, zero);
  return b.CreateSelect(inside, b.CreateAlignedLoad(f32, address, llvm::Align(4)), zero);
}

bool draws_dropout(const std::vector<RegionOp>& ops) {
  for (const RegionOp& op : ops)
    if (is_dropout_op(op)) return true;
  return false;
}

const Formula& RegionOpsEmitter::formula(const std::string& text) {
  auto it = formulas_.find(text);
  if (it == formulas_.end()) it = formulas_.emplace(text, Formula(text)).first;
  return it->second;
}

llvm::Value* RegionOpsEmitter::activation(llvm::IRBuilderBase& b, const std::string& name,
                                          const RegionOp& op, llvm::Value* x) {
  return formula(elementwise_fn(name, op).value_text).emit(b, x, op.param);
}

llvm::Value* RegionOpsEmitter::activation_slope(llvm::IRBuilderBase& b, const std::string& name,
                                                const RegionOp& op, llvm::Value* x) {
  return formula(elementwise_fn(name, op).derivative_text).emit(b, x, op.param);
}

llvm::Value* RegionOpsEmitter::emit(llvm::IRBuilderBase& b, const std::string& name,
                                    const std::vector<RegionOp>& ops, llvm::Type* type,
                                    const std::vector<llvm::Value*>& inputs,
                                    const std::vector<std::vector<llvm::Value*>>& present,
                                    const std::vector<std::vector<llvm::Value*>>& weight,
                                    const RegionDraws& draws) {
  std::vector<llvm::Value*> results;
  auto operand = [&](int k) { return k >= 0 ? inputs[k] : results[-k - 1]; };
  llvm::Value* zero = llvm::ConstantFP::get(type, 0.0);
  for (size_t i = 0; i < ops.size(); ++i) {
    const RegionOp& op = ops[i];
    llvm::Value* y = nullptr;
    switch (op.kind) {
      case StepKind::Activation:
        y = activation(b, name, op, operand(op.operands[0]));
        break;
      case StepKind::ActivationGrad:
        y = b.CreateFMul(operand(op.operands[0]),
                         activation_slope(b, name, op, operand(op.operands[1])));
        break;
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
      case StepKind::Crop:  // its operand was loaded through its window
      case StepKind::CropGrad:
        y = operand(op.operands[0]);
        break;
      case StepKind::Dropout:
      case StepKind::DropoutGrad: {
        llvm::Value* scale = llvm::ConstantFP::get(type, dropout_keep_scale(op.param));
        llvm::Value* kept = dropout_kept(b, type, op, draws, draws.seed_mix.at(i));
        y = b.CreateSelect(kept, b.CreateFMul(operand(op.operands[0]), scale), zero);
        break;
      }
      default:
        internal_error(__FILE__, __LINE__,
                       "elementwise region `" + name + "`: an operation of another kind");
    }
    results.push_back(y);
  }
  return results.back();
}

}  // namespace nas
