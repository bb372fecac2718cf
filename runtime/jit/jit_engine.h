// The JIT engine: compiles LLVM modules for the host CPU with LLVM 14's ORC LLJIT, links
// them together and hands out the addresses of their functions. The design is the one PyTorch's
// NNC, XLA's SimpleOrcJIT and Halide's JITModule share:
//   - a target machine for the host CPU's name and features, with FMA contraction allowed;
//   - nasc's O3 pipeline (LLVM's default O3 with the target's cost model, so that loops
//     vectorise for this CPU), run before code generation on the modules that ask for it;
//   - the runtime entry points generated code calls (jit_runtime.h) registered as absolute
//     symbols, never found through the process's dynamic symbol table;
//   - a disk cache of objects (object_cache.h): a module compiled before is loaded, neither
//     optimised nor compiled again;
//   - the modules the cache lacks compiled side by side, each in an LLVM context of its own,
//     on as many threads as the host has cores.
// A JitModule owns its LLJIT: code lives as long as the module (one per prepared plan).
#pragma once

#include <llvm/IR/Module.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace llvm {
class LLVMContext;
class Module;
namespace orc {
class LLJIT;
}
}  // namespace llvm

namespace nas {

class DiskObjectCache;

struct HostTarget {
  std::string triple;
  std::string cpu;        // "skylake-avx512"
  std::string features;   // "+avx2,+fma,..."
  int vector_floats = 8;  // floats per vector register the generated loops use (8 or 16)
};
// The host, detected once.
const HostTarget& host_target();
// The process's object cache (DiskObjectCache::default_dir()).
DiskObjectCache& shared_object_cache();

// Sets the module's target triple and data layout to the host's (before code is emitted).
void configure_for_host(llvm::Module& module);
// nasc's O3 pipeline on `module`, in place (see above).
void optimize_module(llvm::Module& module);
// The module's textual IR, and its host assembly after optimisation (`nasc ir --stage asm`).
std::string module_ir_text(const llvm::Module& module);
// `optimize`: after nasc's O3 pipeline, at the highest code generation level; else as is,
// at the lowest (as the JIT compiles a JitSource).
std::string module_assembly(llvm::Module& module, bool optimize);

// A module to compile, optimised (O3, the highest code generation level) or not (fast
// instruction selection and register allocation: code whose speed does not matter).
// Either the module itself, keyed by the hash of its bitcode, or `key_text` (everything the
// module is made from) and `generate`, called only when the cache has no object for it.
struct JitSource {
  std::unique_ptr<llvm::Module> module;
  bool optimize = true;
  std::string key_text;
  std::function<std::unique_ptr<llvm::Module>(llvm::LLVMContext&)> generate;
};

// The module's bitcode (what a module's cache key hashes).
std::string module_bitcode(const llvm::Module& module);

class JitModule {
 public:
  // Keys each of `sources` and loads the objects the cache has; verifies each other module
  // (a broken one is an InternalError with LLVM's message) and compiles it, in a context of
  // its own (a module of `context` is read back from its bitcode there); links them all
  // with the runtime entry points and resolves `symbols`, in order. The modules of
  // `context`, and the context, are released once keyed.
  JitModule(std::unique_ptr<llvm::LLVMContext> context, std::vector<JitSource> sources,
            const std::vector<std::string>& symbols, DiskObjectCache& cache);
  ~JitModule();
  JitModule(const JitModule&) = delete;
  JitModule& operator=(const JitModule&) = delete;

  void* address(size_t symbol) const { return addresses_[symbol]; }
  const std::string& cache_key() const { return key_; }  // the modules' keys, joined by +
  bool from_cache() const { return from_cache_; }        // every module's object was cached
  double compile_seconds() const { return seconds_; }

 private:
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  std::vector<void*> addresses_;
  std::string key_;
  bool from_cache_ = false;
  double seconds_ = 0;
};

}  // namespace nas
