#include "runtime/jit/pool_codegen.h"

#include <fmt/format.h>
#include <llvm/IR/Module.h>

#include "runtime/cpu/plain_step_params.h"
#include "runtime/exec/region_programs.h"
#include "runtime/jit/plan_codegen.h"
#include "runtime/jit/row_loops.h"
#include "support/errors.h"

namespace nas {
namespace {

// The values each plane averages.
int64_t plane_area(const Step& s) {
  const Nchw x = nchw(s.fwd_in_shape);
  return x.h * x.w;
}

int64_t plane_count(const Step& s) {
  const Nchw x = nchw(s.fwd_in_shape);
  return x.n * x.c;
}

}  // namespace

GlobalAvgPoolCodegen::GlobalAvgPoolCodegen(int vector_floats, llvm::LLVMContext& context,
                                           llvm::Module& module, RegionOpsEmitter& ops)
    : IrHelpers(context), width_(vector_floats), m_(module), ops_(ops) {}

bool GlobalAvgPoolCodegen::generates(const Step& s) {
  return s.kind == StepKind::GlobalAvgPool && !s.fwd_in_shape.empty();
}

// body(slots = [x, y], first plane, end plane).
llvm::Function* GlobalAvgPoolCodegen::body(const Step& s) {
  const int64_t area = plane_area(s);
  const std::vector<const RegionOp*> acts = pooled_activations(s);
  std::string key = fmt::format("area {}", area);
  for (const RegionOp* op : acts) key += fmt::format("|{} {}", op->op, op->param);
  auto it = bodies_.find(key);
  if (it != bodies_.end()) return it->second;
  llvm::Function* f =
      llvm::Function::Create(t_.body, llvm::Function::InternalLinkage,
                             fmt::format("nasc_global_avg_pool_body_{}", bodies_.size()), m_);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(c_, "entry", f));
  llvm::Value* slots = f->getArg(0);
  llvm::Value* x = b.CreateBitCast(pointer_at(b, slots, t_.i8p, 0), t_.f32p);
  llvm::Value* y = b.CreateBitCast(pointer_at(b, slots, t_.i8p, 1), t_.f32p);
  RowLoops row(b, width_, area);
  llvm::Value* inverse = llvm::ConstantFP::get(t_.f64, 1.0 / static_cast<double>(area));
  counted_loop(b, f->getArg(1), f->getArg(2), 1, {}, [&](llvm::Value* plane, const Values&) {
    llvm::Value* values = b.CreateInBoundsGEP(t_.f32, x, b.CreateMul(plane, b.getInt64(area)));
    llvm::Value* sum = row.sum(1, [&](const Chunk& k) {
      llvm::Value* v = row.load(values, k);
      for (const RegionOp* op : acts) v = ops_.activation(b, s.name, *op, v);
      return Values{v};
    })[0];
    llvm::Value* mean = b.CreateFMul(b.CreateFPExt(sum, t_.f64), inverse);
    b.CreateStore(b.CreateFPTrunc(mean, t_.f32), b.CreateInBoundsGEP(t_.f32, y, plane));
    return Values{};
  });
  b.CreateRetVoid();
  bodies_.emplace(key, f);
  return f;
}

llvm::Function* GlobalAvgPoolCodegen::entry(const Step& s, int index) {
  llvm::Function* body_fn = body(s);
  llvm::Function* f = llvm::Function::Create(t_.entry, llvm::Function::ExternalLinkage,
                                             fmt::format("nasc_global_avg_pool_{}", index), m_);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(c_, "entry", f));
  llvm::Value* values = arg_slot(b, f->getArg(0), kArgValues, t_.f32pp);
  llvm::Value* slots = b.CreateAlloca(t_.i8p, b.getInt64(2));
  NAS_CHECK(!s.inputs.empty(), "step `" + s.name + "`: a pool without its input");
  b.CreateStore(b.CreateBitCast(value_ptr(b, values, s.inputs[0]), t_.i8p),
                b.CreateConstInBoundsGEP1_64(t_.i8p, slots, 0));
  b.CreateStore(b.CreateBitCast(value_ptr(b, values, s.node), t_.i8p),
                b.CreateConstInBoundsGEP1_64(t_.i8p, slots, 1));
  llvm::FunctionCallee parallel =
      m_.getOrInsertFunction("nasc_jit_parallel_channels", llvm::Type::getVoidTy(c_),
                             body_fn->getType(), t_.i8pp, t_.i64, t_.i64);
  b.CreateCall(parallel, {body_fn, slots, b.getInt64(plane_count(s)),
                          b.getInt64(plane_count(s) * plane_area(s))});
  b.CreateRet(b.getInt32(1));
  return f;
}

}  // namespace nas
