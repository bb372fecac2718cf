// Loops for generated code over rows of constant length (batchnorm_codegen.h,
// pool_codegen.h): whole vectors, a masked vector for the rest, sums with several
// accumulators.
#pragma once

#include <llvm/IR/IRBuilder.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace nas {

using Values = std::vector<llvm::Value*>;

// for (i = begin; i < end; i += stride) state = step(i, state), as IR at b's insertion point
// (left after the loop): the final state. LLVM is told not to unroll the loop.
Values counted_loop(llvm::IRBuilder<>& b, llvm::Value* begin, llvm::Value* end, int64_t stride,
                    const Values& state,
                    const std::function<Values(llvm::Value*, const Values&)>& step);

// The sum of a float vector's lanes, reassociable: a tree of lanes, not a chain of
// dependent additions.
inline llvm::Value* lane_sum(llvm::IRBuilder<>& b, llvm::Value* v) {
  llvm::CallInst* sum = b.CreateFAddReduce(llvm::ConstantFP::get(b.getFloatTy(), 0.0), v);
  sum->setHasAllowReassoc(true);
  return sum;
}

// A piece of a row: the vector from element `offset` (i64) of the row on; in the row's last,
// partial vector, `mask` (<width x i1>) marks the lanes inside the row (null elsewhere).
struct Chunk {
  llvm::Value* offset;
  llvm::Value* mask;
};

// Code over one row of `length` floats (a constant) in vectors of `width` lanes: a loop of
// whole vectors (a sum's four an iteration), then the whole vectors left, then the partial
// vector at the end through masked loads and stores. There is no scalar loop: a 7x7 row is
// three vectors and a masked one.
class RowLoops {
 public:
  // A sum's vectors an iteration: independent accumulators, so that a row's sum is not one
  // chain of dependent additions. A pass that only stores has no chain, and one vector an
  // iteration compiles to a quarter of the code.
  static constexpr int kSumUnroll = 4;

  RowLoops(llvm::IRBuilder<>& b, int width, int64_t length)
      : b_(b),
        width_(width),
        length_(length),
        type_(llvm::FixedVectorType::get(b.getFloatTy(), static_cast<unsigned>(width))) {}

  llvm::Value* splat(llvm::Value* scalar) { return b_.CreateVectorSplat(width_, scalar); }

  llvm::Value* load(llvm::Value* row, const Chunk& k) {
    llvm::Value* p = address(row, k);
    if (!k.mask) return b_.CreateAlignedLoad(type_, p, llvm::Align(4));
    return b_.CreateMaskedLoad(type_, p, llvm::Align(4), k.mask, zero());
  }
  void store(llvm::Value* row, const Chunk& k, llvm::Value* v) {
    llvm::Value* p = address(row, k);
    if (!k.mask)
      b_.CreateAlignedStore(v, p, llvm::Align(4));
    else
      b_.CreateMaskedStore(v, p, llvm::Align(4), k.mask);
  }

  // The sums over the row of the `count` vectors `terms` gives for each piece (lanes outside
  // the row count 0), each reduced across its lanes at the end: `count` floats.
  Values sum(size_t count, const std::function<Values(const Chunk&)>& terms) {
    std::vector<Values> slots =
        walk(kSumUnroll, Values(count, zero()), [&](const Chunk& k, const Values& acc) {
          const Values t = terms(k);
          Values out;
          for (size_t j = 0; j < count; ++j)
            out.push_back(
                b_.CreateFAdd(acc[j], k.mask ? b_.CreateSelect(k.mask, t[j], zero()) : t[j]));
          return out;
        });
    Values sums;
    for (size_t j = 0; j < count; ++j) {
      llvm::Value* v = slots[0][j];
      for (size_t u = 1; u < slots.size(); ++u) v = b_.CreateFAdd(v, slots[u][j]);
      sums.push_back(lane_sum(b_, v));
    }
    return sums;
  }

  // Runs `visit` on every piece of the row.
  void for_each(const std::function<void(const Chunk&)>& visit) {
    walk(1, {}, [&](const Chunk& k, const Values& none) {
      visit(k);
      return none;
    });
  }

 private:
  llvm::Value* zero() { return llvm::ConstantFP::get(type_, 0.0); }
  llvm::Value* address(llvm::Value* row, const Chunk& k) {
    return b_.CreateBitCast(b_.CreateInBoundsGEP(b_.getFloatTy(), row, k.offset),
                            type_->getPointerTo());
  }

  // Visits the pieces in order, `unroll` whole vectors an iteration of the loop, each with
  // the state of its slot (`unroll` slots, each starting at `init`): the slots' final states.
  std::vector<Values> walk(int unroll, const Values& init,
                           const std::function<Values(const Chunk&, const Values&)>& visit) {
    const int64_t vectors = length_ / width_, groups = vectors / unroll;
    const int64_t step = int64_t{unroll} * width_;
    const size_t n = init.size();
    std::vector<Values> slots(unroll, init);
    if (groups > 0) {
      Values flat;
      for (const Values& s : slots) flat.insert(flat.end(), s.begin(), s.end());
      flat = counted_loop(
          b_, b_.getInt64(0), b_.getInt64(groups * step), step, flat,
          [&](llvm::Value* i, const Values& state) {
            Values next;
            for (int u = 0; u < unroll; ++u) {
              const Values slot(state.begin() + u * n, state.begin() + (u + 1) * n);
              const Values r = visit({b_.CreateAdd(i, b_.getInt64(u * width_)), nullptr}, slot);
              next.insert(next.end(), r.begin(), r.end());
            }
            return next;
          });
      for (int u = 0; u < unroll; ++u)
        slots[u].assign(flat.begin() + u * n, flat.begin() + (u + 1) * n);
    }
    int64_t offset = groups * step;
    const int64_t rest = vectors % unroll;
    for (int64_t r = 0; r < rest; ++r, offset += width_)
      slots[r] = visit({b_.getInt64(offset), nullptr}, slots[r]);
    if (const int64_t tail = length_ % width_) {
      std::vector<llvm::Constant*> lanes;
      for (int j = 0; j < width_; ++j) lanes.push_back(b_.getInt1(j < tail));
      slots[rest] = visit({b_.getInt64(offset), llvm::ConstantVector::get(lanes)}, slots[rest]);
    }
    return slots;
  }

  llvm::IRBuilder<>& b_;
  int width_;
  int64_t length_;
  llvm::FixedVectorType* type_;
};

}  // namespace nas
