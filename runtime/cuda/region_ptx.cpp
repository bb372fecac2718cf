#include "runtime/cuda/region_ptx.h"

#include <fmt/format.h>
#include <llvm/ADT/SmallString.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/IntrinsicsNVPTX.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <mutex>

#include "runtime/jit/region_codegen.h"
#include "support/errors.h"
#include "support/rng.h"

// The NVPTX target's registration functions (libLLVM exports every built target's).
extern "C" void LLVMInitializeNVPTXTargetInfo();
extern "C" void LLVMInitializeNVPTXTarget();
extern "C" void LLVMInitializeNVPTXTargetMC();
extern "C" void LLVMInitializeNVPTXAsmPrinter();

namespace nas::cuda {

namespace {

constexpr const char* kTriple = "nvptx64-nvidia-cuda";
constexpr const char* kArchitecture = "sm_80";
constexpr unsigned kThreads = 256;

std::string kernel_name(size_t index) {
  return "nasc_elementwise_" + std::to_string(index);
}

std::unique_ptr<llvm::TargetMachine> nvptx_machine() {
  static std::once_flag once;
  std::call_once(once, [] {
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
  });
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(kTriple, error);
  NAS_CHECK(target != nullptr, "LLVM has no NVPTX target: " + error);
  llvm::TargetOptions options;
  return std::unique_ptr<llvm::TargetMachine>(target->createTargetMachine(
      kTriple, kArchitecture, "", options, llvm::None, llvm::None, llvm::CodeGenOpt::Aggressive));
}

// NVPTX has no exp instruction, and LLVM 14 lowers llvm.exp to a call of expf, which PTX
// cannot link: each becomes ex2.approx(x * log2 e), as CUDA's __expf computes it.
void lower_exp(llvm::Module& module) {
  std::vector<llvm::CallInst*> calls;
  for (llvm::Function& f : module)
    for (llvm::BasicBlock& block : f)
      for (llvm::Instruction& inst : block)
        if (auto* call = llvm::dyn_cast<llvm::CallInst>(&inst))
          if (call->getIntrinsicID() == llvm::Intrinsic::exp) calls.push_back(call);
  for (llvm::CallInst* call : calls) {
    NAS_CHECK(call->getType()->isFloatTy(), "exp of a type other than float in a GPU kernel");
    llvm::IRBuilder<> b(call);
    llvm::Value* scaled = b.CreateFMul(call->getArgOperand(0),
                                       llvm::ConstantFP::get(b.getFloatTy(), 1.4426950408889634));
    llvm::Value* power = b.CreateIntrinsic(llvm::Intrinsic::nvvm_ex2_approx_f, {}, {scaled});
    call->replaceAllUsesWith(power);
    call->eraseFromParent();
  }
}

// One kernel: a grid-stride loop whose body loads the inputs of element i, runs the
// program's operations and stores the output (every input is loaded before the output is
// stored, so an output sharing an input's buffer is still right).
void emit_kernel(llvm::Module& module, RegionOpsEmitter& emitter, const ElementwiseProgram& p,
                 size_t index) {
  llvm::LLVMContext& c = module.getContext();
  llvm::Type* f32 = llvm::Type::getFloatTy(c);
  llvm::Type* i32 = llvm::Type::getInt32Ty(c);
  llvm::Type* i64 = llvm::Type::getInt64Ty(c);
  llvm::PointerType* f32p = f32->getPointerTo();
  std::vector<llvm::Type*> params(1 + p.inputs, f32p);
  params.push_back(i64);
  for (size_t k = 0; k < p.slots(); ++k) params.push_back(f32);
  for (size_t k = 0; k < p.slots(); ++k) params.push_back(i32);
  params.push_back(i64);                                            // per_sample
  params.push_back(i64);                                            // first_sample
  for (size_t k = 0; k < p.ops.size(); ++k) params.push_back(i64);  // seed_mix
  auto* type = llvm::FunctionType::get(llvm::Type::getVoidTy(c), params, false);
  llvm::Function* f =
      llvm::Function::Create(type, llvm::Function::ExternalLinkage, kernel_name(index), module);
  module.getOrInsertNamedMetadata("nvvm.annotations")
      ->addOperand(
          llvm::MDNode::get(c, {llvm::ValueAsMetadata::get(f), llvm::MDString::get(c, "kernel"),
                                llvm::ConstantAsMetadata::get(llvm::ConstantInt::get(i32, 1))}));

  auto* entry = llvm::BasicBlock::Create(c, "entry", f);
  auto* head = llvm::BasicBlock::Create(c, "head", f);
  auto* body = llvm::BasicBlock::Create(c, "body", f);
  auto* exit = llvm::BasicBlock::Create(c, "exit", f);
  llvm::IRBuilder<> b(entry);
  auto special = [&](llvm::Intrinsic::ID id) {
    return b.CreateZExt(b.CreateIntrinsic(id, {}, {}), i64);
  };
  llvm::Value* first = b.CreateAdd(b.CreateMul(special(llvm::Intrinsic::nvvm_read_ptx_sreg_ctaid_x),
                                               special(llvm::Intrinsic::nvvm_read_ptx_sreg_ntid_x)),
                                   special(llvm::Intrinsic::nvvm_read_ptx_sreg_tid_x));
  llvm::Value* stride = b.CreateMul(special(llvm::Intrinsic::nvvm_read_ptx_sreg_nctaid_x),
                                    special(llvm::Intrinsic::nvvm_read_ptx_sreg_ntid_x));
  llvm::Value* n = f->getArg(1 + p.inputs);
  std::vector<std::vector<llvm::Value*>> present(p.ops.size()), weight(p.ops.size());
  unsigned slot = 0;
  for (size_t i = 0; i < p.ops.size(); ++i)
    for (size_t j = 0; j < p.ops[i].operands.size(); ++j, ++slot) {
      weight[i].push_back(f->getArg(2 + p.inputs + slot));
      present[i].push_back(
          b.CreateICmpNE(f->getArg(2 + p.inputs + p.slots() + slot), b.getInt32(0)));
    }
  const unsigned draws_arg = 2 + p.inputs + 2 * p.slots();
  RegionDraws draws;
  draws.per_sample = f->getArg(draws_arg);
  draws.first_sample = f->getArg(draws_arg + 1);
  for (size_t k = 0; k < p.ops.size(); ++k) draws.seed_mix.push_back(f->getArg(draws_arg + 2 + k));
  b.CreateBr(head);

  b.SetInsertPoint(head);
  llvm::PHINode* i = b.CreatePHI(i64, 2, "i");
  i->addIncoming(first, entry);
  b.CreateCondBr(b.CreateICmpSLT(i, n), body, exit);

  b.SetInsertPoint(body);
  std::vector<llvm::Value*> loaded;
  for (int k = 0; k < p.inputs; ++k)
    loaded.push_back(load_region_input(b, f32, f->getArg(1 + k), i,
                                       p.maps.empty() ? RegionReadMap{} : p.maps.at(k)));
  draws.index = i;
  llvm::Value* y = emitter.emit(b, p.name, p.ops, f32, loaded, present, weight, draws);
  b.CreateAlignedStore(y, b.CreateInBoundsGEP(f32, f->getArg(0), i), llvm::Align(4));
  i->addIncoming(b.CreateAdd(i, stride), body);
  b.CreateBr(head);

  b.SetInsertPoint(exit);
  b.CreateRetVoid();
}

}  // namespace

std::string ElementwiseProgram::signature() const {
  std::string key = std::to_string(inputs);
  for (const RegionOp& op : ops) {
    key += fmt::format("|{} {} {} {}", static_cast<int>(op.kind), op.op, op.scale, op.param);
    for (int k : op.operands) key += " " + std::to_string(k);
  }
  for (size_t k = 0; k < maps.size(); ++k)
    if (maps[k].mapped) key += "|input " + std::to_string(k) + " " + maps[k].key();
  return key;
}

size_t ElementwiseProgram::slots() const {
  size_t n = 0;
  for (const RegionOp& op : ops) n += op.operands.size();
  return n;
}

ProgramRun decide_program_run(const ElementwiseProgram& program,
                              const std::vector<char>& input_computed,
                              const std::vector<std::vector<float>>& choice_weights,
                              const ProgramDraws& draws) {
  ProgramRun run;
  run.per_sample = draws.per_sample;
  run.first_sample = draws.first_sample;
  if (draws_dropout(program.ops))
    for (const RegionOp& op : program.ops) {
      run.seed_mix.push_back(
          is_dropout_op(op)
              ? mix64(derive_seed(draws.dropout_seed, static_cast<uint64_t>(op.fwd_node)))
              : 0);
    }
  std::vector<char> active;
  auto operand_active = [&](int k) {
    return k >= 0 ? input_computed.at(k) != 0 : active[-k - 1] != 0;
  };
  for (const RegionOp& op : program.ops) {
    bool runs = op.kind != StepKind::Add;  // a sum runs when any operand was computed
    for (size_t j = 0; j < op.operands.size(); ++j) {
      float weight = 1.0f;
      bool present = true;
      if (op.kind == StepKind::Choice) {
        weight = choice_weights.at(op.group).at(j);
        present = weight != 0.0f;
      } else if (op.kind == StepKind::Add) {
        present = operand_active(op.operands[j]);
        runs = runs || present;
      } else {
        runs = runs && operand_active(op.operands[j]);
      }
      run.weights.push_back(weight);
      run.present.push_back(present ? 1 : 0);
    }
    active.push_back(runs ? 1 : 0);
  }
  run.writes = !active.empty() && active.back() != 0;
  return run;
}

std::string elementwise_ptx(const std::vector<ElementwiseProgram>& programs) {
  std::unique_ptr<llvm::TargetMachine> machine = nvptx_machine();
  llvm::LLVMContext context;
  llvm::Module module("nasc_elementwise", context);
  module.setTargetTriple(kTriple);
  module.setDataLayout(machine->createDataLayout());
  RegionOpsEmitter emitter;
  for (size_t k = 0; k < programs.size(); ++k) emit_kernel(module, emitter, programs[k], k);
  lower_exp(module);
  std::string problems;
  llvm::raw_string_ostream problem_stream(problems);
  NAS_CHECK(!llvm::verifyModule(module, &problem_stream),
            "generated GPU kernels do not verify: " + problem_stream.str());
  llvm::SmallString<0> ptx;
  llvm::raw_svector_ostream out(ptx);
  llvm::legacy::PassManager passes;
  NAS_CHECK(!machine->addPassesToEmitFile(passes, out, nullptr, llvm::CGFT_AssemblyFile),
            "LLVM's NVPTX target cannot emit PTX");
  passes.run(module);
  return std::string(ptx.str());
}

ElementwiseKernels::~ElementwiseKernels() {
  if (module_ != nullptr) context_.driver().module_unload(module_);  // no throw here
}

int ElementwiseKernels::add(const ElementwiseProgram& program) {
  NAS_CHECK(module_ == nullptr, "an elementwise program added after its module was loaded");
  NAS_CHECK(!program.ops.empty(), "elementwise program `" + program.name + "` has no operations");
  const std::string signature = program.signature();
  for (size_t k = 0; k < signatures_.size(); ++k)
    if (signatures_[k] == signature) return static_cast<int>(k);
  programs_.push_back(program);
  signatures_.push_back(signature);
  return static_cast<int>(programs_.size()) - 1;
}

void ElementwiseKernels::load() {
  if (programs_.empty() || module_ != nullptr) return;
  const std::string ptx = elementwise_ptx(programs_);
  const DriverApi& driver = context_.driver();
  check_driver(driver, driver.module_load_data(&module_, ptx.c_str()), "cuModuleLoadData");
  functions_.resize(programs_.size());
  for (size_t k = 0; k < programs_.size(); ++k)
    check_driver(driver,
                 driver.module_get_function(&functions_[k], module_, kernel_name(k).c_str()),
                 "cuModuleGetFunction");
}

void ElementwiseKernels::launch(int kernel, float* out, const std::vector<const float*>& inputs,
                                int64_t n, const ProgramRun& run, cudaStream_t stream) const {
  const ElementwiseProgram& p = programs_.at(kernel);
  NAS_CHECK(static_cast<int>(inputs.size()) == p.inputs && run.weights.size() == p.slots() &&
                run.present.size() == p.slots() && run.writes,
            "elementwise kernel of `" + p.name + "` launched with the wrong operands");
  if (n == 0) return;
  // The driver reads each argument through a pointer to it: copies that stay put.
  std::vector<const float*> in = inputs;
  std::vector<float> weights = run.weights;
  std::vector<int32_t> present = run.present;
  int64_t per_sample = run.per_sample, first_sample = run.first_sample;
  std::vector<uint64_t> seed_mix = run.seed_mix;
  seed_mix.resize(p.ops.size(), 0);
  std::vector<void*> args;
  args.push_back(&out);
  for (const float*& pointer : in) args.push_back(&pointer);
  args.push_back(&n);
  for (float& w : weights) args.push_back(&w);
  for (int32_t& flag : present) args.push_back(&flag);
  args.push_back(&per_sample);
  args.push_back(&first_sample);
  for (uint64_t& seed : seed_mix) args.push_back(&seed);
  const int64_t wanted = (n + kThreads - 1) / kThreads;
  const int64_t most = static_cast<int64_t>(context_.properties().multiProcessorCount) * 16;
  const unsigned blocks = static_cast<unsigned>(wanted < most ? wanted : most);
  check_driver(
      context_.driver(),
      context_.driver().launch_kernel(functions_[kernel], blocks, 1, 1, kThreads, 1, 1, 0,
                                      reinterpret_cast<CUstream>(stream), args.data(), nullptr),
      "cuLaunchKernel");
}

}  // namespace nas::cuda
