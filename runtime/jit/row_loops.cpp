#include "runtime/jit/row_loops.h"

namespace nas {

Values counted_loop(llvm::IRBuilder<>& b, llvm::Value* begin, llvm::Value* end, int64_t stride,
                    const Values& state,
                    const std::function<Values(llvm::Value*, const Values&)>& step) {
  llvm::Function* f = b.GetInsertBlock()->getParent();
  llvm::LLVMContext& c = b.getContext();
  llvm::BasicBlock* pre = b.GetInsertBlock();
  llvm::BasicBlock* head = llvm::BasicBlock::Create(c, "loop", f);
  llvm::BasicBlock* body = llvm::BasicBlock::Create(c, "loop.body", f);
  llvm::BasicBlock* exit = llvm::BasicBlock::Create(c, "loop.exit", f);
  b.CreateBr(head);
  b.SetInsertPoint(head);
  llvm::PHINode* i = b.CreatePHI(b.getInt64Ty(), 2, "i");
  i->addIncoming(begin, pre);
  std::vector<llvm::PHINode*> phis;
  Values current;
  for (llvm::Value* v : state) {
    phis.push_back(b.CreatePHI(v->getType(), 2));
    phis.back()->addIncoming(v, pre);
    current.push_back(phis.back());
  }
  b.CreateCondBr(b.CreateICmpSLT(i, end), body, exit);
  b.SetInsertPoint(body);
  const Values next = step(i, current);
  llvm::BasicBlock* latch = b.GetInsertBlock();
  i->addIncoming(b.CreateAdd(i, b.getInt64(stride)), latch);
  for (size_t k = 0; k < phis.size(); ++k) phis[k]->addIncoming(next[k], latch);
  // Not unrolled by LLVM: a row's loop is unrolled four vectors an iteration already, and
  // O3 unrolled the rows of 1,024 values completely, which tripled the compile time of a
  // DARTS plan's batch norm code and bought nothing.
  llvm::MDNode* no_unroll =
      llvm::MDNode::get(c, llvm::MDString::get(c, "llvm.loop.unroll.disable"));
  llvm::MDNode* loop_id = llvm::MDNode::getDistinct(c, {nullptr, no_unroll});
  loop_id->replaceOperandWith(0, loop_id);  // a loop's id names itself
  b.CreateBr(head)->setMetadata(llvm::LLVMContext::MD_loop, loop_id);
  b.SetInsertPoint(exit);
  return current;
}

}  // namespace nas
