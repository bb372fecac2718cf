#include "runtime/jit/plan_codegen.h"

#include <fmt/format.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <map>

#include "runtime/exec/step_gate.h"
#include "runtime/jit/batchnorm_codegen.h"
#include "runtime/jit/depthwise_codegen.h"
#include "runtime/jit/ir_helpers.h"
#include "runtime/jit/object_cache.h"
#include "runtime/jit/pool_codegen.h"
#include "runtime/jit/region_codegen.h"
#include "support/errors.h"

namespace nas {
namespace {

// The plan function calls one function per chunk of consecutive regions, each of at most
// about kChunkSteps steps: code generation is superlinear in a function's size, and one
// straight-line function over the thousands of steps of a DARTS supernet took minutes to
// compile.
constexpr int kChunkSteps = 64;

// Steps per part of the schedule (schedule.h): a DARTS search plan's 7,500 steps compile as
// two parts beside its kernels, a small network's as one.
constexpr int kSchedulePartSteps = 4096;

// The kernels module: the regions' entries and bodies; and the plan's schedule, described.
class Codegen : IrHelpers {
 public:
  Codegen(const ExecPlan& plan, int vector_floats, llvm::LLVMContext& context,
          llvm::Module& kernels)
      : IrHelpers(context),
        plan_(plan),
        width_(vector_floats),
        m_(kernels),
        batchnorm_(plan, vector_floats, context, region_ops_),
        depthwise_(vector_floats, context),
        pool_(vector_floats, context, kernels, region_ops_) {}

  // Fills out's symbols, region steps and schedule description (its kernels module is the
  // one given above).
  void run(PlanModule& out) {
    std::map<int, std::string> region_entries;
    for (size_t i = 0; i < plan_.steps.size(); ++i) {
      const Step& s = plan_.steps[i];
      const int index = static_cast<int>(i);
      llvm::Function* entry = nullptr;
      if (s.kind == StepKind::ElementwiseRegion)
        entry = region_entry(s, index);
      else if (GlobalAvgPoolCodegen::generates(s))
        entry = pool_.entry(s, index);
      if (!entry) continue;
      region_entries[index] = entry->getName().str();
      out.region_steps.push_back(index);
    }
    out.schedule_description = describe_schedule(region_entries);
    out.symbols.push_back(kPlanFunction);
    for (int step : out.region_steps) out.symbols.push_back(region_entries[step]);
    // The library steps generated bodies run, each body's symbol listed once.
    std::map<std::string, size_t> body_symbols;
    auto symbol_of = [&](llvm::Function* body) {
      const std::string name = body->getName().str();
      auto it = body_symbols.find(name);
      if (it == body_symbols.end()) {
        it = body_symbols.emplace(name, out.symbols.size()).first;
        out.symbols.push_back(name);
      }
      return it->second;
    };
    for (size_t i = 0; i < plan_.steps.size(); ++i) {
      const Step& s = plan_.steps[i];
      const int index = static_cast<int>(i);
      if (BatchNormCodegen::generates(plan_, s))
        out.batchnorm_steps.emplace_back(index, symbol_of(batchnorm_.body(s)));
      else if (DepthwiseCodegen::generates(plan_, s))
        out.depthwise_steps.emplace_back(index, symbol_of(depthwise_.body(s)));
    }
    out.bodies = batchnorm_.take_modules();
    for (std::unique_ptr<llvm::Module>& m : depthwise_.take_modules())
      out.bodies.push_back(std::move(m));
  }

 private:
  // Every step in order under its gates, in chunks (see kChunkSteps); a Fused step, which
  // never runs, is left out.
  ScheduleDescription describe_schedule(const std::map<int, std::string>& region_entries) const {
    ScheduleDescription d;
    d.chunks.emplace_back();
    int steps = 0;
    for (const Region& r : gated_regions(plan_)) {
      if (steps >= kChunkSteps) {
        d.chunks.emplace_back();
        steps = 0;
      }
      ScheduleRegion region;
      region.guard = r.guard >= 0 && r.guard < plan_.forward_nodes ? r.guard : -1;
      for (int i = r.first; i < r.first + r.count; ++i) {
        const Step& s = plan_.steps[i];
        StepGate gate = step_gate(s);
        if (gate.never) continue;
        auto entry = region_entries.find(i);
        region.steps.push_back({i, s.node, gate.weight_grad, gate.arch_grad, gate.ends_forward_only,
                                std::move(gate.needs),
                                entry == region_entries.end() ? "" : entry->second});
      }
      d.chunks.back().push_back(std::move(region));
      steps += r.count;
    }
    return d;
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

  // What a region's body is made from: its inputs' count and its operations, without the
  // nodes they compute (the body reaches values through rargs). The cells of a DARTS
  // supernet repeat the same regions many times over; one body serves them all, which
  // divides the kernels' optimisation and code generation time.
  static std::string body_signature(const Step& s) {
    std::string key = std::to_string(s.inputs.size());
    for (const RegionOp& op : s.region) {
      key += "|" + std::to_string(static_cast<int>(op.kind)) + " " + op.op + " " +
             fmt::format("{} {}", op.scale, op.param);
      for (int k : op.operands) key += " " + std::to_string(k);
    }
    // A dropout's code divides by the elements per sample, a constant; a crop's windows
    // are constants too.
    if (draws_dropout(s.region)) key += "|per sample " + std::to_string(per_sample(s));
    const std::vector<RegionReadMap> maps = region_read_maps(s);
    for (size_t k = 0; k < maps.size(); ++k)
      if (maps[k].mapped) key += "|input " + std::to_string(k) + " " + maps[k].key();
    return key;
  }

  static int64_t per_sample(const Step& s) {
    return shape_elements(s.output_shape) / s.output_shape[0];
  }

  // body(rargs, begin, end): rargs = [output, input 0..n-1, weights (float*), present (i8*),
  // draws (uint64_t*: the first sample, then per operation RegionDraws::seed_mix, 0 for all
  // but dropouts)]; shared by every region of the same body_signature.
  llvm::Function* region_body(const Step& s, int index) {
    llvm::Function*& shared = bodies_[body_signature(s)];
    if (shared == nullptr) shared = new_region_body(s, index);
    return shared;
  }

  llvm::Function* new_region_body(const Step& s, int index) {
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
    RegionDraws draws;
    if (draws_dropout(s.region)) {
      llvm::Value* draws_array = arg_slot(b, rargs, 3 + n_inputs, t_.i64->getPointerTo());
      auto draw_slot = [&](size_t k) {
        return b.CreateLoad(t_.i64, b.CreateConstInBoundsGEP1_64(t_.i64, draws_array, k));
      };
      draws.per_sample = b.getInt64(per_sample(s));
      draws.first_sample = draw_slot(0);
      for (size_t i = 0; i < s.region.size(); ++i) draws.seed_mix.push_back(draw_slot(1 + i));
    }
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

    const std::vector<RegionReadMap> maps = region_read_maps(s);
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
      for (size_t k = 0; k < in.size(); ++k)
        loaded.push_back(load_region_input(b, type, in[k], i, maps[k]));
      draws.index = i;
      llvm::Value* y = region_ops_.emit(b, s.name, s.region, type, loaded, present, weight, draws);
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

  // A body's draws array (see region_body) for this run, from args' {dropout seed, first
  // sample}: zeros but for the first sample when the region has no dropout.
  void fill_draws(llvm::IRBuilder<>& b, const Step& s, llvm::Value* run_draws,
                  llvm::Value* draws_array) {
    auto store = [&](size_t k, llvm::Value* v) {
      b.CreateStore(v, b.CreateConstInBoundsGEP1_64(t_.i64, draws_array, k));
    };
    auto run_draw = [&](size_t k) {
      return b.CreateLoad(t_.i64, b.CreateConstInBoundsGEP1_64(t_.i64, run_draws, k));
    };
    store(0, run_draw(1));
    llvm::Value* dropout_seed = run_draw(0);
    for (size_t i = 0; i < s.region.size(); ++i) {
      const RegionOp& op = s.region[i];
      store(1 + i, is_dropout_op(op) ? dropout_draws_seed_mix(b, dropout_seed, op.fwd_node)
                                     : b.getInt64(0));
    }
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
    llvm::Value* rargs = b.CreateAlloca(t_.i8p, b.getInt64(n_inputs + 4));
    llvm::Value* weight_array = b.CreateAlloca(t_.f32, b.getInt64(slots));
    llvm::Value* present_array = b.CreateAlloca(t_.i8, b.getInt64(slots));
    llvm::Value* draws_array = b.CreateAlloca(t_.i64, b.getInt64(1 + s.region.size()));
    auto set_slot = [&](size_t k, llvm::Value* p) {
      b.CreateStore(b.CreateBitCast(p, t_.i8p), b.CreateConstInBoundsGEP1_64(t_.i8p, rargs, k));
    };
    set_slot(0, value_ptr(b, values, s.node));
    for (size_t k = 0; k < n_inputs; ++k) set_slot(1 + k, value_ptr(b, values, s.inputs[k]));
    set_slot(1 + n_inputs, weight_array);
    set_slot(2 + n_inputs, present_array);
    set_slot(3 + n_inputs, draws_array);
    fill_draws(b, s, arg_slot(b, args, kArgDraws, t_.i64->getPointerTo()), draws_array);
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

  const ExecPlan& plan_;
  int width_;
  llvm::Module& m_;  // the kernels: the regions' entries and bodies
  RegionOpsEmitter region_ops_;
  std::map<std::string, llvm::Function*> bodies_;  // by body_signature
  BatchNormCodegen batchnorm_;                     // the batch norm steps
  DepthwiseCodegen depthwise_;                     // the depthwise convolutions
  GlobalAvgPoolCodegen pool_;                      // the global average pools
};

// The schedule module: the plan function and its chunks, from a ScheduleDescription alone
// (so that the description's hash can key its cached object, see schedule_key_text).
class ScheduleCodegen : IrHelpers {
 public:
  ScheduleCodegen(llvm::LLVMContext& context, llvm::Module& schedule)
      : IrHelpers(context), sched_(schedule) {}

  // A chunk returns 0 to go on, 1 when a forward-only run stopped at the loss, and -1 when
  // a library kernel threw; the plan function passes a failure on.
  void generate(const ScheduleDescription& d) {
    int guards = 0;
    for (const std::vector<ScheduleRegion>& chunk : d.chunks)
      for (const ScheduleRegion& r : chunk) guards = std::max(guards, r.guard + 1);
    std::vector<uint8_t> ones(static_cast<size_t>(guards), 1);
    all_live_ = new llvm::GlobalVariable(
        sched_, llvm::ArrayType::get(t_.i8, static_cast<uint64_t>(guards)), true,
        llvm::GlobalValue::PrivateLinkage, llvm::ConstantDataArray::get(c_, ones), "nasc_all_live");
    for (size_t k = 0; k < d.chunks.size(); ++k)
      chunk_function(d.chunks[k], d.first_chunk + static_cast<int>(k));
    if (d.first_chunk == 0) plan_function(d.total());
  }

 private:
  static std::string chunk_name(int index) { return "nasc_plan_chunk_" + std::to_string(index); }

  // Calls chunks 0 .. chunks - 1 in order (declared here when another part holds them).
  void plan_function(int chunks) {
    llvm::Function* f =
        llvm::Function::Create(t_.entry, llvm::Function::ExternalLinkage, kPlanFunction, sched_);
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(c_, "entry", f));
    llvm::BasicBlock* done = llvm::BasicBlock::Create(c_, "done", f);
    llvm::PHINode* status = nullptr;
    {
      llvm::IRBuilder<> d_builder(done);
      status = d_builder.CreatePHI(t_.i32, static_cast<unsigned>(chunks + 1), "status");
      // A stop (1) ends the run normally; a failure (-1) is passed on.
      d_builder.CreateRet(d_builder.CreateSelect(
          d_builder.CreateICmpSLT(status, d_builder.getInt32(0)), status, d_builder.getInt32(0)));
    }
    for (int k = 0; k < chunks; ++k) {
      llvm::FunctionCallee chunk = sched_.getOrInsertFunction(chunk_name(k), t_.entry);
      llvm::Value* r = b.CreateCall(chunk, {f->getArg(0)});
      llvm::BasicBlock* next = llvm::BasicBlock::Create(c_, "next", f);
      status->addIncoming(r, b.GetInsertBlock());
      b.CreateCondBr(b.CreateICmpNE(r, b.getInt32(0)), done, next);
      b.SetInsertPoint(next);
    }
    status->addIncoming(b.getInt32(0), b.GetInsertBlock());
    b.CreateBr(done);
  }

  // External: the plan function may be in another part's module.
  llvm::Function* chunk_function(const std::vector<ScheduleRegion>& regions, int index) {
    llvm::Function* f = llvm::Function::Create(t_.entry, llvm::Function::ExternalLinkage,
                                               chunk_name(index), sched_);
    f->addFnAttr(llvm::Attribute::NoInline);  // kept apart: see kChunkSteps
    llvm::Argument* args = f->getArg(0);
    llvm::BasicBlock* entry = llvm::BasicBlock::Create(c_, "entry", f);
    failed_ = llvm::BasicBlock::Create(c_, "failed", f);
    llvm::IRBuilder<> b(entry);
    llvm::Value* computed = arg_slot(b, args, kArgComputed, t_.i8p);
    llvm::Value* live = arg_slot(b, args, kArgLive, t_.i8p);
    llvm::Value* control = arg_slot(b, args, kArgControl, t_.i32->getPointerTo());
    auto control_flag = [&](int k) {
      llvm::Value* v = b.CreateLoad(t_.i32, b.CreateConstInBoundsGEP1_64(t_.i32, control, k));
      return b.CreateICmpNE(v, b.getInt32(0));
    };
    ChunkValues values{args, computed, control_flag(kControlWeightGrads),
                       control_flag(kControlArchGrads), control_flag(kControlForwardOnly)};
    // Unmasked runs (no live mask) read a mask of ones, so that a guard is one load, not a
    // branch more.
    llvm::Value* unmasked = b.CreateICmpEQ(live, llvm::ConstantPointerNull::get(t_.i8p));
    live = b.CreateSelect(unmasked, all_live(), live);

    b.SetInsertPoint(failed_);
    b.CreateRet(b.getInt32(-1));
    b.SetInsertPoint(entry);

    for (const ScheduleRegion& r : regions) {
      if (r.steps.empty()) continue;  // every step of it never runs: nothing to guard
      llvm::Value* guard = nullptr;   // null: unguarded
      if (r.guard >= 0) {
        llvm::Value* flag = b.CreateLoad(t_.i8, b.CreateConstInBoundsGEP1_64(t_.i8, live, r.guard));
        guard = b.CreateICmpNE(flag, b.getInt8(0));
      }
      // A region of one step (most of them) folds its guard into the step's gate.
      if (!guard || r.steps.size() == 1) {
        for (const ScheduleStep& step : r.steps) step_call(b, f, step, values, guard);
        continue;
      }
      llvm::BasicBlock* go = llvm::BasicBlock::Create(c_, "region", f);
      llvm::BasicBlock* after = llvm::BasicBlock::Create(c_, "after_region", f);
      b.CreateCondBr(guard, go, after);
      b.SetInsertPoint(go);
      for (const ScheduleStep& step : r.steps) step_call(b, f, step, values, nullptr);
      b.CreateBr(after);
      b.SetInsertPoint(after);
    }
    b.CreateRet(b.getInt32(0));
    return f;
  }

  // What a chunk's steps read: its argument, the computed flags, its control flags.
  struct ChunkValues {
    llvm::Value *args, *computed;
    llvm::Value *weight_grads, *arch_grads, *forward_only;
  };

  // One step under its gate, run through nasc_jit_run_step (which counts it, calls its
  // region's entry or runs the library kernel, and marks its value computed when it wrote
  // it): one call per step keeps the unoptimised schedule small.
  void step_call(llvm::IRBuilder<>& b, llvm::Function* f, const ScheduleStep& step,
                 const ChunkValues& v, llvm::Value* guard) {
    llvm::Value* ready = guard;  // null: always
    auto require = [&](llvm::Value* flag) { ready = ready ? b.CreateAnd(ready, flag) : flag; };
    if (step.weight_grad) require(v.weight_grads);
    if (step.arch_grad) require(v.arch_grads);
    for (int need : step.needs) require(computed_flag(b, v.computed, need));
    llvm::BasicBlock* next = llvm::BasicBlock::Create(c_, "next", f);
    if (ready) {
      llvm::BasicBlock* run = llvm::BasicBlock::Create(c_, "step", f);
      b.CreateCondBr(ready, run, next);
      b.SetInsertPoint(run);
    }
    llvm::FunctionCallee run_step = sched_.getOrInsertFunction(
        "nasc_jit_run_step", t_.i32, t_.i8p->getPointerTo(), t_.i64, t_.i32, t_.entry_pointer);
    llvm::Value* entry = step.region_entry.empty()
                             ? llvm::ConstantPointerNull::get(t_.entry_pointer)
                             : sched_.getOrInsertFunction(step.region_entry, t_.entry).getCallee();
    llvm::Value* wrote =
        b.CreateCall(run_step, {v.args, b.getInt64(step.index), b.getInt32(step.node), entry});
    llvm::Value* threw = b.CreateICmpSLT(wrote, b.getInt32(0));
    if (step.ends_forward_only) {
      llvm::BasicBlock* ok = llvm::BasicBlock::Create(c_, "ok", f);
      llvm::BasicBlock* stop = llvm::BasicBlock::Create(c_, "stop", f);
      b.CreateCondBr(threw, failed_, ok);
      b.SetInsertPoint(ok);
      b.CreateCondBr(v.forward_only, stop, next);
      b.SetInsertPoint(stop);
      b.CreateRet(b.getInt32(1));
    } else {
      b.CreateCondBr(threw, failed_, next);
    }
    b.SetInsertPoint(next);
  }

  // The live mask of an unmasked run: every guard's flag set.
  llvm::Value* all_live() const { return llvm::ConstantExpr::getPointerCast(all_live_, t_.i8p); }

  llvm::Module& sched_;
  llvm::GlobalVariable* all_live_ = nullptr;  // one flag per guard, all 1
  llvm::BasicBlock* failed_ = nullptr;        // the chunk being generated: returns -1
};

// A schedule that takes every branch of ScheduleCodegen: unguarded regions and guarded ones
// of one step and of two, each gate, a region entry and a library step, the loss, two
// chunks. Its bitcode changes
// whenever the generator's output for some schedule would (schedule_key_text).
ScheduleDescription probe_schedule() {
  ScheduleDescription d;
  ScheduleRegion plain{
      -1, {{0, 0, false, false, false, {}, ""}, {1, 1, true, false, false, {0}, "nasc_region_1"}}};
  ScheduleRegion guarded{
      2, {{2, 2, false, true, false, {0, 1}, ""}, {3, 3, false, false, true, {2}, ""}}};
  ScheduleRegion guarded_step{3, {{4, 4, false, false, false, {3}, ""}}};
  d.chunks = {{plain, guarded}, {guarded, guarded_step}};
  return d;
}

// The probe in two parts (the plan function calling a chunk of the other part).
std::vector<ScheduleDescription> probe_parts() {
  return split_schedule(probe_schedule(), 1);
}

}  // namespace

std::vector<ScheduleDescription> split_schedule(ScheduleDescription whole, int part_steps) {
  std::vector<ScheduleDescription> parts;
  const int total = whole.total();
  int steps = 0;
  for (size_t k = 0; k < whole.chunks.size(); ++k) {
    if (parts.empty() || steps >= part_steps) {
      parts.emplace_back();
      parts.back().first_chunk = static_cast<int>(k);
      parts.back().total_chunks = total;
      steps = 0;
    }
    for (const ScheduleRegion& r : whole.chunks[k]) steps += static_cast<int>(r.steps.size());
    parts.back().chunks.push_back(std::move(whole.chunks[k]));
  }
  if (parts.empty()) parts.push_back(std::move(whole));  // no chunks: the plan function alone
  return parts;
}

std::string ScheduleDescription::text() const {
  std::string out =
      "chunks " + std::to_string(first_chunk) + " of " + std::to_string(total()) + "\n";
  for (const std::vector<ScheduleRegion>& chunk : chunks) {
    out += "chunk\n";
    for (const ScheduleRegion& r : chunk) {
      out += "region " + std::to_string(r.guard) + "\n";
      for (const ScheduleStep& s : r.steps) {
        out += "step " + std::to_string(s.index) + " " + std::to_string(s.node) + " " +
               (s.weight_grad ? "w" : "-") + (s.arch_grad ? "a" : "-") +
               (s.ends_forward_only ? "f" : "-") + " [" + s.region_entry + "]";
        for (int n : s.needs) out += " " + std::to_string(n);
        out += "\n";
      }
    }
  }
  return out;
}

std::unique_ptr<llvm::Module> schedule_module(const ScheduleDescription& d,
                                              llvm::LLVMContext& context) {
  auto module = std::make_unique<llvm::Module>("nasc_schedule", context);
  ScheduleCodegen(context, *module).generate(d);
  return module;
}

std::string schedule_key_text(const ScheduleDescription& d) {
  static const std::string generator = [] {
    llvm::LLVMContext context;
    std::string bitcode = module_bitcode(*schedule_module(probe_schedule(), context));
    for (const ScheduleDescription& part : probe_parts())
      bitcode += module_bitcode(*schedule_module(part, context));
    return sha1_hex(bitcode);
  }();
  return "nasc schedule, generator " + generator + "\n" + d.text();
}

std::string schedule_ir_text(const ScheduleDescription& d) {
  llvm::LLVMContext context;
  std::unique_ptr<llvm::Module> module = schedule_module(d, context);
  std::string problems;
  llvm::raw_string_ostream problem_stream(problems);
  NAS_CHECK(!llvm::verifyModule(*module, &problem_stream),
            "the schedule module does not verify: " + problem_stream.str());
  return module_ir_text(*module);
}

PlanModule generate_plan_module(const ExecPlan& plan, int vector_floats) {
  PlanModule out;
  out.context = std::make_unique<llvm::LLVMContext>();
  out.kernels = std::make_unique<llvm::Module>("nasc_kernels", *out.context);
  Codegen(plan, vector_floats, *out.context, *out.kernels).run(out);
  return out;
}

std::vector<JitSource> plan_sources(PlanModule& generated) {
  std::vector<JitSource> sources;
  sources.push_back({std::move(generated.kernels), true, {}, {}});
  for (std::unique_ptr<llvm::Module>& body : generated.bodies)
    sources.push_back({std::move(body), true, {}, {}});
  // Each part of the schedule is generated only when its object is not in the cache: its
  // key comes from its description, whose text is a fraction of its bitcode's and costs no
  // generation. The parts compile side by side (jit_engine.h).
  for (ScheduleDescription& part :
       split_schedule(std::move(generated.schedule_description), kSchedulePartSteps)) {
    JitSource schedule{nullptr, false, schedule_key_text(part), {}};
    schedule.generate = [description = std::move(part)](llvm::LLVMContext& context) {
      return schedule_module(description, context);
    };
    sources.push_back(std::move(schedule));
  }
  return sources;
}

}  // namespace nas
