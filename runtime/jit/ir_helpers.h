// What the JIT's code generators (plan_codegen.h, batchnorm_codegen.h) share: the LLVM types
// generated code uses and the reads of an entry's `void** args` (plan_codegen.h, PlanArg).
#pragma once

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>

namespace nas {

// The types generated code uses (LLVM 14's typed pointers).
struct Types {
  explicit Types(llvm::LLVMContext& c)
      : i1(llvm::Type::getInt1Ty(c)),
        i8(llvm::Type::getInt8Ty(c)),
        i32(llvm::Type::getInt32Ty(c)),
        i64(llvm::Type::getInt64Ty(c)),
        f32(llvm::Type::getFloatTy(c)),
        f64(llvm::Type::getDoubleTy(c)),
        i8p(i8->getPointerTo()),
        i8pp(i8p->getPointerTo()),
        f32p(f32->getPointerTo()),
        f32pp(f32p->getPointerTo()),
        f64p(f64->getPointerTo()),
        f64pp(f64p->getPointerTo()),
        entry(llvm::FunctionType::get(i32, {i8pp}, false)),
        body(llvm::FunctionType::get(llvm::Type::getVoidTy(c), {i8pp, i64, i64}, false)),
        entry_pointer(entry->getPointerTo()) {}
  llvm::Type *i1, *i8, *i32, *i64, *f32, *f64;
  llvm::PointerType *i8p, *i8pp, *f32p, *f32pp, *f64p, *f64pp;
  // entry: int32_t (void** args); body: void (void** args, int64_t begin, int64_t end).
  llvm::FunctionType *entry, *body;
  llvm::PointerType* entry_pointer;
};

// Reads of generated code's arguments, for the generators to derive from.
class IrHelpers {
 protected:
  explicit IrHelpers(llvm::LLVMContext& context) : c_(context), t_(context) {}

  // args[slot] as a pointer of `type`.
  llvm::Value* arg_slot(llvm::IRBuilder<>& b, llvm::Value* args, int slot, llvm::Type* type) {
    llvm::Value* p = b.CreateLoad(t_.i8p, b.CreateConstInBoundsGEP1_64(t_.i8p, args, slot));
    return b.CreateBitCast(p, type);
  }
  // Element k of an array of pointers `array` (pointer type `element`*).
  llvm::Value* pointer_at(llvm::IRBuilder<>& b, llvm::Value* array, llvm::Type* element,
                          int64_t k) {
    return b.CreateLoad(element, b.CreateConstInBoundsGEP1_64(element, array, k));
  }
  llvm::Value* value_ptr(llvm::IRBuilder<>& b, llvm::Value* values, int v) {
    return pointer_at(b, values, t_.f32p, v);
  }
  llvm::Value* computed_flag(llvm::IRBuilder<>& b, llvm::Value* computed, int v) {
    llvm::Value* byte = b.CreateLoad(t_.i8, b.CreateConstInBoundsGEP1_64(t_.i8, computed, v));
    return b.CreateICmpNE(byte, b.getInt8(0));
  }

  llvm::LLVMContext& c_;
  Types t_;
};

}  // namespace nas
