#include "runtime/jit/jit_engine.h"

#include <llvm/ADT/StringMap.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

#include "runtime/jit/jit_runtime.h"
#include "runtime/jit/object_cache.h"
#include "support/errors.h"

namespace nas {
namespace {

std::string llvm_message(llvm::Error error) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << error;
  return os.str();
}

template <typename T>
T unwrap(llvm::Expected<T> value, const char* what) {
  if (!value)
    internal_error(__FILE__, __LINE__, std::string(what) + ": " + llvm_message(value.takeError()));
  return std::move(*value);
}

void check(llvm::Error error, const char* what) {
  if (error)
    internal_error(__FILE__, __LINE__, std::string(what) + ": " + llvm_message(std::move(error)));
}

void initialize_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

// The host's target machine builder: its CPU and features, aggressive code generation and
// FMA contraction (a * b + c may round once).
llvm::orc::JITTargetMachineBuilder host_builder() {
  initialize_llvm();
  llvm::orc::JITTargetMachineBuilder builder =
      unwrap(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host CPU");
  builder.setCodeGenOptLevel(llvm::CodeGenOpt::Aggressive);
  builder.getOptions().AllowFPOpFusion = llvm::FPOpFusion::Fast;
  return builder;
}

// The host's machine at the highest code generation level (optimize) or the lowest.
std::unique_ptr<llvm::TargetMachine> machine_at(bool optimize) {
  llvm::orc::JITTargetMachineBuilder builder = host_builder();
  if (!optimize) builder.setCodeGenOptLevel(llvm::CodeGenOpt::None);
  return unwrap(builder.createTargetMachine(), "creating the host target machine");
}

void set_target(llvm::Module& module, const llvm::TargetMachine& machine) {
  module.setTargetTriple(machine.getTargetTriple().str());
  module.setDataLayout(machine.createDataLayout());
}

// nasc's O3 pipeline, built with `machine` so that the analyses see its costs (vector
// width, FMA).
void run_o3(llvm::Module& module, llvm::TargetMachine& machine) {
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager cgscc;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder builder(&machine);
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(cgscc);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, cgscc, modules);
  llvm::ModulePassManager pipeline =
      builder.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  pipeline.run(module, modules);
}

}  // namespace

const HostTarget& host_target() {
  static const HostTarget target = [] {
    llvm::orc::JITTargetMachineBuilder builder = host_builder();
    HostTarget t;
    t.triple = builder.getTargetTriple().str();
    t.cpu = builder.getCPU();
    t.features = builder.getFeatures().getString();
    llvm::StringMap<bool> features;
    llvm::sys::getHostCPUFeatures(features);
    // 16 floats only where 512-bit registers exist; the loops are written for this width.
    t.vector_floats = features.lookup("avx512f") ? 16 : 8;
    return t;
  }();
  return target;
}

DiskObjectCache& shared_object_cache() {
  static DiskObjectCache* cache = new DiskObjectCache(DiskObjectCache::default_dir());
  return *cache;
}

void configure_for_host(llvm::Module& module) {
  set_target(module, *machine_at(true));
}

void optimize_module(llvm::Module& module) {
  run_o3(module, *machine_at(true));
}

std::string module_ir_text(const llvm::Module& module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os, nullptr);
  return os.str();
}

std::string module_assembly(llvm::Module& module, bool optimize) {
  std::unique_ptr<llvm::TargetMachine> machine = machine_at(optimize);
  if (optimize) run_o3(module, *machine);
  llvm::SmallString<4096> text;
  llvm::raw_svector_ostream os(text);
  llvm::legacy::PassManager passes;
  NAS_CHECK(!machine->addPassesToEmitFile(passes, os, nullptr, llvm::CGFT_AssemblyFile),
            "the host target cannot emit assembly");
  passes.run(module);
  return std::string(text.str());
}

std::string module_bitcode(const llvm::Module& module) {
  llvm::SmallVector<char, 0> bitcode;
  llvm::raw_svector_ostream os(bitcode);
  llvm::WriteBitcodeToFile(module, os);
  return std::string(bitcode.data(), bitcode.size());
}

namespace {

// The key of an object (object_cache.h): a SHA-1 of what its module is made from (its
// bitcode, as exact as its text and several times faster to write, or a JitSource's
// key_text), the host, the versions and how it is compiled.
std::string object_key(const std::string& content, bool optimize) {
  const HostTarget& host = host_target();
  return sha1_hex(content + "\ncpu " + host.cpu + "\nfeatures " + host.features +
                  "\nllvm " LLVM_VERSION_STRING "\nnasc " NASC_RUNTIME_VERSION +
                  (optimize ? "\nO3" : "\nO0"));
}

// One source's object: loaded from the cache, or compiled (and stored there).
struct SourceObject {
  std::string key;
  bool hit = false;
  std::unique_ptr<llvm::MemoryBuffer> object;
  std::string bitcode;  // a module made beforehand, until it is compiled
};

// A source's key, and its object when the cache has it. On the thread that owns the
// context of the modules made beforehand: a module's key hashes its bitcode, which a miss
// compiles from (in a context of its own, see compile_source).
SourceObject look_up(JitSource& source, const llvm::TargetMachine& machine,
                     DiskObjectCache& cache) {
  SourceObject out;
  if (source.module) {
    set_target(*source.module, machine);
    source.module->setModuleIdentifier("nasc");  // part of the bitcode: fixed before hashing
    out.bitcode = module_bitcode(*source.module);
    source.module.reset();  // what is left of it is its bitcode
  }
  out.key = object_key(out.bitcode.empty() ? source.key_text : out.bitcode, source.optimize);
  out.hit = cache.contains(out.key);
  if (out.hit) {
    out.object = cache.object(out.key);
    out.bitcode.clear();
  }
  return out;
}

// A missed source's object, compiled in an LLVM context of its own (LLVM allows one thread
// per context, so the sources compile side by side): its module read back from its
// bitcode, or generated from its description.
void compile_source(JitSource& source, SourceObject& out, DiskObjectCache& cache) {
  std::unique_ptr<llvm::TargetMachine> machine = machine_at(source.optimize);
  llvm::LLVMContext context;
  std::unique_ptr<llvm::Module> module;
  if (!out.bitcode.empty()) {
    module = unwrap(llvm::parseBitcodeFile(llvm::MemoryBufferRef(out.bitcode, "nasc"), context),
                    "reading back a generated module");
    out.bitcode.clear();
  } else {
    module = source.generate(context);
    set_target(*module, *machine);
  }
  module->setModuleIdentifier(out.key);  // how LLVM's compiler asks the cache for it
  // A cached object was compiled from a module with this very bitcode (or description),
  // verified then; only a module about to be compiled is verified (a third of a cache hit's
  // time).
  std::string problems;
  llvm::raw_string_ostream problem_stream(problems);
  if (llvm::verifyModule(*module, &problem_stream))
    internal_error(__FILE__, __LINE__,
                   "generated module `" + module->getName().str() +
                       "` does not verify: " + problem_stream.str());
  if (source.optimize) run_o3(*module, *machine);
  llvm::orc::SimpleCompiler compile(*machine, &cache);
  out.object = unwrap(compile(*module), "compiling a generated module");
}

// Runs compile_source on each of `missed` (indices into sources and objects), on this
// thread and as many others as the host has cores beside it. The biggest go first, so that
// no core is left with one long compile at the end: a module's size is its bitcode's, a
// described one's its description's (a plan's schedule parts and kernels are the big ones,
// its batch norm bodies small).
void compile_missed(std::vector<JitSource>& sources, std::vector<SourceObject>& objects,
                    std::vector<size_t> missed, DiskObjectCache& cache) {
  auto size = [&](size_t i) {
    return objects[i].bitcode.empty() ? sources[i].key_text.size() : objects[i].bitcode.size();
  };
  std::stable_sort(missed.begin(), missed.end(),
                   [&](size_t a, size_t b) { return size(a) > size(b); });
  std::vector<std::exception_ptr> failures(missed.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k = next++; k < missed.size(); k = next++) {
      try {
        compile_source(sources[missed[k]], objects[missed[k]], cache);
      } catch (...) {
        failures[k] = std::current_exception();
      }
    }
  };
  const size_t helpers =
      std::min<size_t>(missed.size(), std::max(1u, std::thread::hardware_concurrency())) - 1;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < helpers; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& failure : failures)
    if (failure) std::rethrow_exception(failure);
}

}  // namespace

JitModule::JitModule(std::unique_ptr<llvm::LLVMContext> context, std::vector<JitSource> sources,
                     const std::vector<std::string>& symbols, DiskObjectCache& cache) {
  const auto start = std::chrono::steady_clock::now();
  jit_ = unwrap(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(host_builder()).create(),
                "creating the JIT");
  llvm::orc::SymbolMap runtime;
  for (const auto& [name, address] : jit_runtime_symbols())
    runtime[jit_->mangleAndIntern(name)] =
        llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(address),
                                 llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
  check(jit_->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(runtime))),
        "registering the runtime entry points");

  // Every key first (the modules made beforehand share one context, so this thread alone
  // reads them); then whatever the cache did not have compiles on every core.
  std::vector<SourceObject> objects;
  std::vector<size_t> missed;
  const std::unique_ptr<llvm::TargetMachine> machine = machine_at(true);
  for (JitSource& source : sources) {
    objects.push_back(look_up(source, *machine, cache));
    if (!objects.back().hit) missed.push_back(objects.size() - 1);
  }
  context.reset();  // look_up released its modules
  if (!missed.empty()) compile_missed(sources, objects, std::move(missed), cache);

  from_cache_ = true;
  for (SourceObject& o : objects) {
    key_ += (key_.empty() ? "" : "+") + o.key;
    from_cache_ = from_cache_ && o.hit;
    check(jit_->addObjectFile(std::move(o.object)), "loading a compiled module");
  }
  for (const std::string& name : symbols) {
    llvm::JITEvaluatedSymbol symbol = unwrap(jit_->lookup(name), "looking up a generated function");
    addresses_.push_back(llvm::jitTargetAddressToPointer<void*>(symbol.getAddress()));
  }
  seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

JitModule::~JitModule() = default;

}  // namespace nas
