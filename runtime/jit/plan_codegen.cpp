#include "runtime/jit/plan_codegen.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <map>

#include "runtime/exec/step_gate.h"
#include "runtime/jit/formula_codegen.h"
#include "support/elementwise_ops.h"
#include "support/errors.h"

namespace nas {
namespace {

// The types generated code uses (LLVM 14's typed pointers).
struct Types {
  explicit Types(llvm::LLVMContext& c)
      : i1(llvm::Type::getInt1Ty(c)),
        i8(llvm::Type::getInt8Ty(c)),
        i32(llvm::Type::getInt32Ty(c)),
        i64(llvm::Type::getInt64Ty(c)),
        f32(llvm::Type::getFloatTy(c)),
        i8p(i8->getPointerTo()),
        i8pp(i8p->getPointerTo()),
        f32p(f32->getPointerTo()),
        f32pp(f32p->getPointerTo()),
        entry(llvm::FunctionType::get(i32, {i8pp}, false)),
        body(llvm::FunctionType::get(llvm::Type::getVoidTy(c), {i8pp, i64, i64}, false)) {}
  llvm::Type *i1, *i8, *i32, *i64, *f32;
  llvm::PointerType *i8p, *i8pp, *f32p, *f32pp;
  llvm::FunctionType *entry, *body;
};

class Codegen {
 public:
  Codegen(const ExecPlan& plan, int vector_floats, llvm::LLVMContext& context,
          llvm::Module& kernels, llvm::Module& schedule)
      : plan_(plan),
        width_(vector_floats),
        c_(context),
        m_(kernels),
        sched_(schedule),
        t_(context) {}

  // Fills out's symbols and region steps (its modules are the ones given above).
  void run(PlanModule& out) {
    std::map<int, llvm::Function*> region_entries;
    for (size_t i = 0; i < plan_.steps.size(); ++i) {
      const Step& s = plan_.steps[i];
      if (s.kind != StepKind::ElementwiseRegion) continue;
      region_entries[static_cast<int>(i)] = region_entry(s, static_cast<int>(i));
      out.region_steps.push_back(static_cast<int>(i));
    }
    out.symbols.push_back(plan_function(region_entries)->getName().str());
    for (int step : out.region_steps) out.symbols.push_back(region_entries[step]->getName().str());
  }

 private:
  // args[slot] as a pointer of `type`.
  llvm::Value* arg_slot(llvm::IRBuilder<>& b, llvm::Value* args, int slot, llvm::Type* type) {
    llvm::Value* p = b.CreateLoad(t_.i8p, b.CreateConstInBoundsGEP1_64(t_.i8p, args, slot));
    return b.CreateBitCast(p, type);
  }
  llvm::Value* value_ptr(llvm::IRBuilder<>& b, llvm::Value* values, int v) {
    return b.CreateLoad(t_.f32p, b.CreateConstInBoundsGEP1_64(t_.f32p, values, v));
  }
  llvm::Value* computed_flag(llvm::IRBuilder<>& b, llvm::Value* computed, int v) {
    llvm::Value* byte = b.CreateLoad(t_.i8, b.CreateConstInBoundsGEP1_64(t_.i8, computed, v));
    return b.CreateICmpNE(byte, b.getInt8(0));
  }

  const Formula& formula(const std::string& text) {
    auto it = formulas_.find(text);
    if (it == formulas_.end()) it = formulas_.emplace(text, Formula(text)).first;
    return it->second;
  }

  // --- elementwise regions --------------------------------------------------------------

  // Per run: whether each operation runs and, per operand, whether it takes part and its
  // weight (fused_region.h's rules; an operation that does not run is never read by one
  // that does, except by a sum, which drops it).
  struct RegionRun {
    std::vector<llvm::Value*> active;                // per operation: i1
    std::vector<std::vector<llvm::Value*>> present;  // per operation, per operand: i1
    std::vector<std::vector<llvm::Value*>> weight;   // per operation, per operand: float
  };

  RegionRun decide_region_run(llvm::IRBuilder<>& b, const Step& s, llvm::Value* computed,
                              llvm::Value* weights) {
    RegionRun r;
    auto operand_active = [&](int k) {
      return k >= 0 ? computed_flag(b, computed, s.inputs[k]) : r.active[-k - 1];
    };
    for (const RegionOp& op : s.region) {
      std::vector<llvm::Value*> present, weight;
      llvm::Value* active = b.getTrue();
      if (op.kind == StepKind::Add) active = b.getFalse();
      llvm::Value* group = nullptr;
      if (op.kind == StepKind::Choice)
        group = b.CreateLoad(t_.f32p, b.CreateConstInBoundsGEP1_64(t_.f32p, weights, op.group));
      for (size_t j = 0; j < op.operands.size(); ++j) {
        llvm::Value* w = llvm::ConstantFP::get(t_.f32, 1.0);
        llvm::Value* p = b.getTrue();
        if (op.kind == StepKind::Choice) {
          w = b.CreateLoad(t_.f32, b.CreateConstInBoundsGEP1_64(t_.f32, group, j));
          p = b.CreateFCmpUNE(w, llvm::ConstantFP::get(t_.f32, 0.0));
        } else if (op.kind == StepKind::Add) {
          p = operand_active(op.operands[j]);
          active = b.CreateOr(active, p);
        } else {
          active = b.CreateAnd(active, operand_active(op.operands[j]));
        }
        present.push_back(p);
        weight.push_back(w);
      }
      r.active.push_back(active);
      r.present.push_back(present);
      r.weight.push_back(weight);
    }
    return r;
  }

  // The region's operations on one chunk of elements of `type` (float or a vector); the
  // inputs already loaded. Returns the last operation's value.
  llvm::Value* emit_region_ops(llvm::IRBuilder<>& b, const Step& s, llvm::Type* type,
                               const std::vector<llvm::Value*>& inputs,
                               const std::vector<std::vector<llvm::Value*>>& present,
                               const std::vector<std::vector<llvm::Value*>>& weight) {
    std::vector<llvm::Value*> results;
    auto operand = [&](int k) { return k >= 0 ? inputs[k] : results[-k - 1]; };
    llvm::Value* zero = llvm::ConstantFP::get(type, 0.0);
    for (size_t i = 0; i < s.region.size(); ++i) {
      const RegionOp& op = s.region[i];
      llvm::Value* y = nullptr;
      switch (op.kind) {
        case StepKind::Activation:
          y = formula(elementwise_fn(s, op).value_text).emit(b, operand(op.operands[0]), op.param);
          break;
        case StepKind::ActivationGrad: {
          llvm::Value* slope = formula(elementwise_fn(s, op).derivative_text)
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
            if (op.kind == StepKind::Choice)
              term = b.CreateFMul(splat(b, type, weight[i][j]), term);
            y = b.CreateFAdd(y, b.CreateSelect(present[i][j], term, zero));
          }
          break;
        default:
          internal_error(__FILE__, __LINE__,
                         "elementwise region `" + s.name + "`: an operation of another kind");
      }
      results.push_back(y);
    }
    return results.back();
  }

  llvm::Value* splat(llvm::IRBuilder<>& b, llvm::Type* type, llvm::Value* scalar) {
    if (auto* v = llvm::dyn_cast<llvm::FixedVectorType>(type))
      return b.CreateVectorSplat(v->getNumElements(), scalar);
    return scalar;
  }

  const ElementwiseFn& elementwise_fn(const Step& s, const RegionOp& op) {
    const ElementwiseFn* fn = find_elementwise(op.op);
    NAS_CHECK(fn != nullptr,
              "elementwise region `" + s.name + "`: no element-wise formula for " + op.op);
    return *fn;
  }

  // body(rargs, begin, end): rargs = [output, input 0..n-1, weights (float*), present (i8*)].
  llvm::Function* region_body(const Step& s, int index) {
    llvm::Function* f =
        llvm::Function::Create(t_.body, llvm::Function::InternalLinkage,
                               "nasc_region_" + std::to_string(index) + "_body", m_);
    llvm::Argument* rargs = f->getArg(0);
    llvm::Argument* begin = f->getArg(1);
    llvm::Argument* end = f->getArg(2);
    llvm::BasicBlock* entry = llvm::BasicBlock::Create(c_, "entry", f);
    llvm::IRBuilder<> b(entry);
    const size_t n_inputs = s.inputs.size();
    llvm::Value* out = arg_slot(b, rargs, 0, t_.f32p);
    std::vector<llvm::Value*> in;
    for (size_t k = 0; k < n_inputs; ++k) in.push_back(arg_slot(b, rargs, 1 + k, t_.f32p));
    llvm::Value* weight_array = arg_slot(b, rargs, 1 + n_inputs, t_.f32p);
    llvm::Value* present_array = arg_slot(b, rargs, 2 + n_inputs, t_.i8p);
    // The per-run flags and weights, loaded once: loop-invariant values.
    std::vector<std::vector<llvm::Value*>> present(s.region.size()), weight(s.region.size());
    int slot = 0;
    for (size_t i = 0; i < s.region.size(); ++i)
      for (size_t j = 0; j < s.region[i].operands.size(); ++j, ++slot) {
        weight[i].push_back(
            b.CreateLoad(t_.f32, b.CreateConstInBoundsGEP1_64(t_.f32, weight_array, slot)));
        llvm::Value* flag =
            b.CreateLoad(t_.i8, b.CreateConstInBoundsGEP1_64(t_.i8, present_array, slot));
        present[i].push_back(b.CreateICmpNE(flag, b.getInt8(0)));
      }

    // A vector loop over whole vectors, then a scalar loop over the rest. Every input of an
    // element is loaded before its output is stored, so an output sharing an input's
    // buffer (the memory plan reuses a dead input's) is still right.
    auto loop = [&](llvm::Type* type, int step, llvm::Value* start, const char* name) {
      llvm::BasicBlock* pre = b.GetInsertBlock();
      llvm::BasicBlock* head = llvm::BasicBlock::Create(c_, std::string(name) + ".head", f);
      llvm::BasicBlock* body = llvm::BasicBlock::Create(c_, std::string(name) + ".body", f);
      llvm::BasicBlock* exit = llvm::BasicBlock::Create(c_, std::string(name) + ".exit", f);
      b.CreateBr(head);
      b.SetInsertPoint(head);
      llvm::PHINode* i = b.CreatePHI(t_.i64, 2, "i");
      i->addIncoming(start, pre);
      llvm::Value* next = b.CreateAdd(i, b.getInt64(step));
      b.CreateCondBr(b.CreateICmpSLE(next, end), body, exit);
      b.SetInsertPoint(body);
      std::vector<llvm::Value*> loaded;
      for (llvm::Value* p : in) {
        llvm::Value* addr =
            b.CreateBitCast(b.CreateInBoundsGEP(t_.f32, p, i), type->getPointerTo());
        loaded.push_back(b.CreateAlignedLoad(type, addr, llvm::Align(4)));
      }
      llvm::Value* y = emit_region_ops(b, s, type, loaded, present, weight);
      llvm::Value* dst = b.CreateBitCast(b.CreateInBoundsGEP(t_.f32, out, i), type->getPointerTo());
      b.CreateAlignedStore(y, dst, llvm::Align(4));
      i->addIncoming(next, b.GetInsertBlock());
      b.CreateBr(head);
      b.SetInsertPoint(exit);
      return static_cast<llvm::Value*>(i);
    };
    llvm::Value* after_vectors =
        loop(llvm::FixedVectorType::get(t_.f32, width_), width_, begin, "vector");
    loop(t_.f32, 1, after_vectors, "scalar");
    b.CreateRetVoid();
    return f;
  }

  // entry(args): decides the run, fills rargs and runs the body across threads.
  llvm::Function* region_entry(const Step& s, int index) {
    NAS_CHECK(!s.region.empty(), "elementwise region `" + s.name + "` has no operations");
    llvm::Function* body = region_body(s, index);
    llvm::Function* f = llvm::Function::Create(t_.entry, llvm::Function::ExternalLinkage,
                                               "nasc_region_" + std::to_string(index), m_);
    llvm::Argument* args = f->getArg(0);
    llvm::BasicBlock* entry = llvm::BasicBlock::Create(c_, "entry", f);
    llvm::BasicBlock* run = llvm::BasicBlock::Create(c_, "run", f);
    llvm::BasicBlock* skip = llvm::BasicBlock::Create(c_, "skip", f);
    llvm::IRBuilder<> b(entry);
    llvm::Value* values = arg_slot(b, args, kArgValues, t_.f32pp);
    llvm::Value* computed = arg_slot(b, args, kArgComputed, t_.i8p);
    llvm::Value* weights = arg_slot(b, args, kArgWeights, t_.f32pp);
    RegionRun decided = decide_region_run(b, s, computed, weights);
    b.CreateCondBr(decided.active.back(), run, skip);

    b.SetInsertPoint(skip);
    b.CreateRet(b.getInt32(0));

    b.SetInsertPoint(run);
    size_t slots = 0;
    for (const RegionOp& op : s.region) slots += op.operands.size();
    const size_t n_inputs = s.inputs.size();
    llvm::Value* rargs = b.CreateAlloca(t_.i8p, b.getInt64(n_inputs + 3));
    llvm::Value* weight_array = b.CreateAlloca(t_.f32, b.getInt64(slots));
    llvm::Value* present_array = b.CreateAlloca(t_.i8, b.getInt64(slots));
    auto set_slot = [&](size_t k, llvm::Value* p) {
      b.CreateStore(b.CreateBitCast(p, t_.i8p), b.CreateConstInBoundsGEP1_64(t_.i8p, rargs, k));
    };
    set_slot(0, value_ptr(b, values, s.node));
    for (size_t k = 0; k < n_inputs; ++k) set_slot(1 + k, value_ptr(b, values, s.inputs[k]));
    set_slot(1 + n_inputs, weight_array);
    set_slot(2 + n_inputs, present_array);
    size_t slot = 0;
    for (size_t i = 0; i < s.region.size(); ++i)
      for (size_t j = 0; j < s.region[i].operands.size(); ++j, ++slot) {
        b.CreateStore(decided.weight[i][j],
                      b.CreateConstInBoundsGEP1_64(t_.f32, weight_array, slot));
        b.CreateStore(b.CreateZExt(decided.present[i][j], t_.i8),
                      b.CreateConstInBoundsGEP1_64(t_.i8, present_array, slot));
      }
    llvm::FunctionCallee parallel_for = m_.getOrInsertFunction(
        "nasc_jit_parallel_for", llvm::Type::getVoidTy(c_), body->getType(), t_.i8pp, t_.i64);
    b.CreateCall(parallel_for, {body, rargs, b.getInt64(shape_elements(s.output_shape))});
    b.CreateRet(b.getInt32(1));
    return f;
  }

  // --- the plan function --------------------------------------------------------------------

  // The plan function calls one function per chunk of consecutive regions, each of at
  // most about kChunkSteps steps: code generation is superlinear in a function's size, and
  // one straight-line function over the thousands of steps of a DARTS supernet took
  // minutes to compile. A chunk returns 0 to go on, 1 when a forward-only run stopped at
  // the loss, and -1 when a library kernel threw.
  static constexpr int kChunkSteps = 64;

  llvm::Function* plan_function(const std::map<int, llvm::Function*>& region_entries) {
    std::vector<std::vector<Region>> chunks(1);
    int steps = 0;
    for (const Region& r : gated_regions(plan_)) {
      if (steps >= kChunkSteps) {
        chunks.emplace_back();
        steps = 0;
      }
      chunks.back().push_back(r);
      steps += r.count;
    }
    llvm::Function* f =
        llvm::Function::Create(t_.entry, llvm::Function::ExternalLinkage, "nasc_plan", sched_);
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(c_, "entry", f));
    llvm::BasicBlock* done = llvm::BasicBlock::Create(c_, "done", f);
    llvm::PHINode* status = nullptr;
    {
      llvm::IRBuilder<> d(done);
      status = d.CreatePHI(t_.i32, static_cast<unsigned>(chunks.size() + 1), "status");
      // A stop (1) ends the run normally; a failure (-1) is passed on.
      d.CreateRet(d.CreateSelect(d.CreateICmpSLT(status, d.getInt32(0)), status, d.getInt32(0)));
    }
    for (size_t k = 0; k < chunks.size(); ++k) {
      llvm::Function* chunk = chunk_function(chunks[k], k, region_entries);
      llvm::Value* r = b.CreateCall(chunk, {f->getArg(0)});
      llvm::BasicBlock* next = llvm::BasicBlock::Create(c_, "next", f);
      status->addIncoming(r, b.GetInsertBlock());
      b.CreateCondBr(b.CreateICmpNE(r, b.getInt32(0)), done, next);
      b.SetInsertPoint(next);
    }
    status->addIncoming(b.getInt32(0), b.GetInsertBlock());
    b.CreateBr(done);
    return f;
  }

  llvm::Function* chunk_function(const std::vector<Region>& regions, size_t index,
                                 const std::map<int, llvm::Function*>& region_entries) {
    llvm::Function* f = llvm::Function::Create(t_.entry, llvm::Function::InternalLinkage,
                                               "nasc_plan_chunk_" + std::to_string(index), sched_);
    f->addFnAttr(llvm::Attribute::NoInline);  // kept apart: see kChunkSteps
    llvm::Argument* args = f->getArg(0);
    llvm::BasicBlock* entry = llvm::BasicBlock::Create(c_, "entry", f);
    llvm::BasicBlock* failed = llvm::BasicBlock::Create(c_, "failed", f);
    llvm::IRBuilder<> b(entry);
    llvm::Value* computed = arg_slot(b, args, kArgComputed, t_.i8p);
    llvm::Value* live = arg_slot(b, args, kArgLive, t_.i8p);
    llvm::Value* control = arg_slot(b, args, kArgControl, t_.i32->getPointerTo());
    llvm::Value* steps_run = arg_slot(b, args, kArgStepsRun, t_.i64->getPointerTo());
    llvm::Value* context = arg_slot(b, args, kArgContext, t_.i8p);
    auto control_flag = [&](int k) {
      llvm::Value* v = b.CreateLoad(t_.i32, b.CreateConstInBoundsGEP1_64(t_.i32, control, k));
      return b.CreateICmpNE(v, b.getInt32(0));
    };
    llvm::Value* weight_grads = control_flag(0);
    llvm::Value* arch_grads = control_flag(1);
    llvm::Value* forward_only = control_flag(2);
    llvm::Value* unmasked = b.CreateICmpEQ(live, llvm::ConstantPointerNull::get(t_.i8p));
    llvm::FunctionCallee run_step =
        sched_.getOrInsertFunction("nasc_jit_run_step", t_.i32, t_.i8p, t_.i64);

    b.SetInsertPoint(failed);
    b.CreateRet(b.getInt32(-1));
    b.SetInsertPoint(entry);

    for (const Region& r : regions) {
      llvm::BasicBlock* after = llvm::BasicBlock::Create(c_, "after_region", f);
      if (r.guard >= 0 && r.guard < plan_.forward_nodes) {
        llvm::BasicBlock* check = llvm::BasicBlock::Create(c_, "guard", f);
        llvm::BasicBlock* go = llvm::BasicBlock::Create(c_, "region", f);
        b.CreateCondBr(unmasked, go, check);
        b.SetInsertPoint(check);
        llvm::Value* flag = b.CreateLoad(t_.i8, b.CreateConstInBoundsGEP1_64(t_.i8, live, r.guard));
        b.CreateCondBr(b.CreateICmpNE(flag, b.getInt8(0)), go, after);
        b.SetInsertPoint(go);
      }
      for (int i = r.first; i < r.first + r.count; ++i) {
        const Step& s = plan_.steps[i];
        const StepGate gate = step_gate(s);
        if (gate.never) continue;
        llvm::Value* ready = b.getTrue();
        if (gate.weight_grad) ready = b.CreateAnd(ready, weight_grads);
        if (gate.arch_grad) ready = b.CreateAnd(ready, arch_grads);
        for (int v : gate.needs) ready = b.CreateAnd(ready, computed_flag(b, computed, v));
        llvm::BasicBlock* run = llvm::BasicBlock::Create(c_, "step", f);
        llvm::BasicBlock* next = llvm::BasicBlock::Create(c_, "next", f);
        b.CreateCondBr(ready, run, next);
        b.SetInsertPoint(run);
        llvm::Value* count = b.CreateLoad(t_.i64, steps_run);
        b.CreateStore(b.CreateAdd(count, b.getInt64(1)), steps_run);
        auto entry_it = region_entries.find(i);
        llvm::Value* wrote =
            entry_it != region_entries.end()
                ? b.CreateCall(sched_.getOrInsertFunction(entry_it->second->getName(), t_.entry),
                               {args})
                : b.CreateCall(run_step, {context, b.getInt64(i)});
        llvm::BasicBlock* ok = llvm::BasicBlock::Create(c_, "ok", f);
        b.CreateCondBr(b.CreateICmpSLT(wrote, b.getInt32(0)), failed, ok);
        b.SetInsertPoint(ok);
        llvm::Value* slot = b.CreateConstInBoundsGEP1_64(t_.i8, computed, s.node);
        llvm::Value* old = b.CreateLoad(t_.i8, slot);
        llvm::Value* wrote_flag = b.CreateZExt(b.CreateICmpSGT(wrote, b.getInt32(0)), t_.i8);
        b.CreateStore(b.CreateOr(old, wrote_flag), slot);
        if (gate.ends_forward_only) {
          llvm::BasicBlock* stop = llvm::BasicBlock::Create(c_, "stop", f);
          b.CreateCondBr(forward_only, stop, next);
          b.SetInsertPoint(stop);
          b.CreateRet(b.getInt32(1));
        } else {
          b.CreateBr(next);
        }
        b.SetInsertPoint(next);
      }
      b.CreateBr(after);
      b.SetInsertPoint(after);
    }
    b.CreateRet(b.getInt32(0));
    return f;
  }

  const ExecPlan& plan_;
  int width_;
  llvm::LLVMContext& c_;
  llvm::Module& m_;      // the kernels: the regions' entries and bodies
  llvm::Module& sched_;  // the schedule: the plan function and its chunks
  Types t_;
  std::map<std::string, Formula> formulas_;
};

}  // namespace

PlanModule generate_plan_module(const ExecPlan& plan, int vector_floats) {
  PlanModule out;
  out.context = std::make_unique<llvm::LLVMContext>();
  out.kernels = std::make_unique<llvm::Module>("nasc_kernels", *out.context);
  out.schedule = std::make_unique<llvm::Module>("nasc_schedule", *out.context);
  Codegen(plan, vector_floats, *out.context, *out.kernels, *out.schedule).run(out);
  return out;
}

std::vector<JitSource> plan_sources(PlanModule& generated) {
  std::vector<JitSource> sources;
  sources.push_back({std::move(generated.kernels), true});
  sources.push_back({std::move(generated.schedule), false});
  return sources;
}

}  // namespace nas
