#include "runtime/jit/depthwise_codegen.h"

#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Module.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/cpu/conv2d.h"
#include "runtime/cpu/depthwise.h"
#include "runtime/jit/depthwise_run.h"
#include "runtime/jit/library_switch.h"
#include "runtime/jit/object_cache.h"
#include "runtime/jit/row_loops.h"

namespace nas {

// What a body is made from: the pass, the shape and the attributes.
struct DepthwiseCodegen::Shape {
  DepthwisePass pass;
  int64_t n, c, h, w, kernel, pad, dilation;
  bool bias;
  int64_t plane() const { return h * w; }
  int64_t taps() const { return kernel * kernel; }
  std::string signature() const {
    return fmt::format("dwconv pass{} n{} c{} h{} w{} k{} p{} d{} bias{}", static_cast<int>(pass),
                       n, c, h, w, kernel, pad, dilation, bias);
  }
};

namespace {

bool enabled() {
  static const bool generated =
      generated_unless_library("NASC_JIT_DEPTHWISE", "a depthwise convolution on a small plane");
  return generated;
}

// Where tap t of an output lane reads, relative to the lane, in rows and columns: the
// forward pass and the weight gradient read x at (kh d - p, kw d - p) from an output; the
// data gradient reads dy the other way round.
struct TapOffset {
  int64_t rows, columns;
};
TapOffset tap_offset(int64_t kh, int64_t kw, int64_t pad, int64_t dilation, bool data) {
  const TapOffset forward{kh * dilation - pad, kw * dilation - pad};
  return data ? TapOffset{-forward.rows, -forward.columns} : forward;
}

}  // namespace

DepthwiseCodegen::DepthwiseCodegen(int vector_floats, llvm::LLVMContext& context)
    : IrHelpers(context), width_(vector_floats) {}

bool DepthwiseCodegen::generates(const ExecPlan& plan, const Step& s) {
  if (!enabled() || !plan.training) return false;
  if (s.kind == StepKind::Conv && !s.region.empty()) return false;  // a conv epilogue
  if (s.kind != StepKind::Conv && s.kind != StepKind::ConvGradInput &&
      s.kind != StepKind::ConvGradWeight)
    return false;
  if (s.fwd_in_shape.size() != 4 || s.weight < 0) return false;
  const Conv2dParams p = conv_params(s);
  return is_depthwise(p) && p.stride == 1 && p.out_h() == p.h && p.out_w() == p.w &&
         p.h * p.w <= kMaxPlane;
}

std::vector<std::unique_ptr<llvm::Module>> DepthwiseCodegen::take_modules() {
  return std::move(modules_);
}

llvm::Function* DepthwiseCodegen::body(const Step& s) {
  const Conv2dParams p = conv_params(s);
  const Shape shape{depthwise_pass(s), p.n, p.c_in, p.h, p.w, p.kernel, p.pad, p.dilation, p.bias};
  const std::string key = shape.signature();
  auto it = bodies_.find(key);
  if (it != bodies_.end()) return it->second;
  modules_.push_back(std::make_unique<llvm::Module>("nasc_depthwise", c_));
  const std::string name = fmt::format("nasc_depthwise_body_{}", sha1_hex(key).substr(0, 16));
  llvm::Function* f =
      llvm::Function::Create(t_.body, llvm::Function::ExternalLinkage, name, *modules_.back());
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(c_, "entry", f));
  if (shape.pass == DepthwisePass::Weights)
    weight_gradient(b, shape, f);
  else
    convolve(b, shape, f, shape.pass == DepthwisePass::Data);
  b.CreateRetVoid();
  bodies_.emplace(key, f);
  return f;
}

namespace {

// Lanes as bits: bit j for lane j (vectors have at most 16 lanes).
using Lanes = uint32_t;

// Consecutive vectors of a plane whose taps all read under the same lane masks: one
// counted loop rather than a copy each. In a 16x16 plane with a 5x5 filter, the rows two
// away from either edge are one run, the four rows at the edges a run each.
struct VectorRun {
  int64_t first = 0, count = 0;
  std::vector<Lanes> taps;  // per tap: the lanes whose tap lies inside the plane
  Lanes inside = 0;         // the lanes inside the plane (all but the last vector's tail)
};

// The plane as a flat run of vectors, each tap of each vector a load at a constant offset
// under a constant mask (see the header).
class PlaneVectors {
 public:
  PlaneVectors(llvm::IRBuilder<>& b, int width, int64_t h, int64_t w)
      : b_(b),
        width_(width),
        h_(h),
        w_(w),
        type_(llvm::FixedVectorType::get(b.getFloatTy(), static_cast<unsigned>(width))) {}

  llvm::Value* zero() const { return llvm::ConstantFP::get(type_, 0.0); }
  llvm::Value* splat(llvm::Value* scalar) const { return b_.CreateVectorSplat(width_, scalar); }

  // The plane's vectors in runs, for reads at `offsets`.
  std::vector<VectorRun> runs(const std::vector<TapOffset>& offsets) const {
    std::vector<VectorRun> out;
    const int64_t count = (h_ * w_ + width_ - 1) / width_;
    for (int64_t v = 0; v < count; ++v) {
      VectorRun r;
      r.first = v;
      r.count = 1;
      for (int j = 0; j < width_; ++j) r.inside |= (v * width_ + j < h_ * w_ ? Lanes{1} : 0) << j;
      for (const TapOffset& tap : offsets) {
        Lanes lanes = 0;
        for (int j = 0; j < width_; ++j) {
          const int64_t i = v * width_ + j, row = i / w_ + tap.rows, column = i % w_ + tap.columns;
          if (i < h_ * w_ && row >= 0 && row < h_ && column >= 0 && column < w_)
            lanes |= Lanes{1} << j;
        }
        r.taps.push_back(lanes);
      }
      if (!out.empty() && out.back().taps == r.taps && out.back().inside == r.inside)
        ++out.back().count;
      else
        out.push_back(std::move(r));
    }
    return out;
  }

  // Calls `visit` on each vector of `runs` with the vector's index (i64) and the state it
  // carries from vector to vector: a run of one with a constant index, a longer one in a
  // counted loop. Returns the final state.
  Values walk(
      const std::vector<VectorRun>& runs, const Values& state,
      const std::function<Values(llvm::Value*, const VectorRun&, const Values&)>& visit) const {
    Values current = state;
    for (const VectorRun& r : runs) {
      if (r.count == 1) {
        current = visit(b_.getInt64(r.first), r, current);
        continue;
      }
      current = counted_loop(b_, b_.getInt64(r.first), b_.getInt64(r.first + r.count), 1, current,
                             [&](llvm::Value* v, const Values& st) { return visit(v, r, st); });
    }
    return current;
  }

  // Vector v of `plane` shifted by `tap`, the lanes outside `lanes` reading 0; null when
  // there are none.
  llvm::Value* load(llvm::Value* plane, llvm::Value* v, TapOffset tap, Lanes lanes) const {
    if (lanes == 0) return nullptr;
    // Not inbounds: a masked lane's address may lie outside the buffer, and is never read.
    llvm::Value* p = b_.CreateBitCast(
        b_.CreateGEP(b_.getFloatTy(), plane,
                     b_.CreateAdd(first_of(v), b_.getInt64(tap.rows * w_ + tap.columns))),
        type_->getPointerTo());
    if (lanes == all()) return b_.CreateAlignedLoad(type_, p, llvm::Align(4));
    return b_.CreateMaskedLoad(type_, p, llvm::Align(4), mask(lanes), zero());
  }
  // Vector v of `plane`, only its `lanes` written.
  void store(llvm::Value* plane, llvm::Value* v, llvm::Value* value, Lanes lanes) const {
    llvm::Value* p = b_.CreateBitCast(b_.CreateInBoundsGEP(b_.getFloatTy(), plane, first_of(v)),
                                      type_->getPointerTo());
    if (lanes == all())
      b_.CreateAlignedStore(value, p, llvm::Align(4));
    else
      b_.CreateMaskedStore(value, p, llvm::Align(4), mask(lanes));
  }
  llvm::Value* multiply_add(llvm::Value* a, llvm::Value* c, llvm::Value* sum) const {
    return b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {type_}, {a, c, sum});
  }

 private:
  Lanes all() const { return static_cast<Lanes>((uint64_t{1} << width_) - 1); }
  llvm::Value* first_of(llvm::Value* v) const { return b_.CreateMul(v, b_.getInt64(width_)); }
  llvm::Constant* mask(Lanes lanes) const {
    std::vector<llvm::Constant*> bits;
    for (int j = 0; j < width_; ++j) bits.push_back(b_.getInt1((lanes >> j) & 1));
    return llvm::ConstantVector::get(bits);
  }

  llvm::IRBuilder<>& b_;
  int width_;
  int64_t h_, w_;
  llvm::FixedVectorType* type_;
};

// Each tap's offset, in the filter's order (kh, then kw).
std::vector<TapOffset> tap_offsets(int64_t kernel, int64_t pad, int64_t dilation, bool data) {
  std::vector<TapOffset> out;
  for (int64_t kh = 0; kh < kernel; ++kh)
    for (int64_t kw = 0; kw < kernel; ++kw) out.push_back(tap_offset(kh, kw, pad, dilation, data));
  return out;
}

}  // namespace

// Forward: over planes [begin, end), y = b + sum of w[t] x[+offset(t)]; data gradient: dx =
// sum of w[t] dy[-offset(t)]. A plane's channel is its index modulo c.
void DepthwiseCodegen::convolve(llvm::IRBuilder<>& b, const Shape& shape, llvm::Function* f,
                                bool data) {
  llvm::Value* slots = f->getArg(0);
  auto floats = [&](int slot) {
    return b.CreateBitCast(pointer_at(b, slots, t_.i8p, slot), t_.f32p);
  };
  llvm::Value *source = floats(data ? kDwY : kDwX), *target = floats(data ? kDwX : kDwY);
  llvm::Value *weights = floats(kDwW), *bias = shape.bias && !data ? floats(kDwB) : nullptr;
  const PlaneVectors vectors(b, width_, shape.h, shape.w);
  const std::vector<TapOffset> offsets = tap_offsets(shape.kernel, shape.pad, shape.dilation, data);
  const std::vector<VectorRun> runs = vectors.runs(offsets);
  counted_loop(b, f->getArg(1), f->getArg(2), 1, {}, [&](llvm::Value* plane, const Values&) {
    llvm::Value* channel = b.CreateURem(plane, b.getInt64(shape.c));
    llvm::Value* offset = b.CreateMul(plane, b.getInt64(shape.plane()));
    llvm::Value* in = b.CreateInBoundsGEP(t_.f32, source, offset);
    llvm::Value* out = b.CreateInBoundsGEP(t_.f32, target, offset);
    llvm::Value* filter =
        b.CreateInBoundsGEP(t_.f32, weights, b.CreateMul(channel, b.getInt64(shape.taps())));
    Values taps;
    for (int64_t t = 0; t < shape.taps(); ++t)
      taps.push_back(
          vectors.splat(b.CreateLoad(t_.f32, b.CreateConstInBoundsGEP1_64(t_.f32, filter, t))));
    llvm::Value* start =
        bias ? vectors.splat(b.CreateLoad(t_.f32, b.CreateInBoundsGEP(t_.f32, bias, channel)))
             : vectors.zero();
    vectors.walk(runs, {}, [&](llvm::Value* v, const VectorRun& r, const Values&) {
      llvm::Value* sum = start;
      for (size_t t = 0; t < offsets.size(); ++t)
        if (llvm::Value* x = vectors.load(in, v, offsets[t], r.taps[t]))
          sum = vectors.multiply_add(x, taps[t], sum);
      vectors.store(out, v, sum, r.inside);
      return Values{};
    });
    return Values{};
  });
}

// Over channels [begin, end): dw[t] += sum over samples of (sum over the plane of dy *
// x[+offset(t)]), and db += the sum of dy, each plane's sums reduced into double.
void DepthwiseCodegen::weight_gradient(llvm::IRBuilder<>& b, const Shape& shape,
                                       llvm::Function* f) {
  llvm::Value* slots = f->getArg(0);
  auto floats = [&](int slot) {
    return b.CreateBitCast(pointer_at(b, slots, t_.i8p, slot), t_.f32p);
  };
  llvm::Value *x = floats(kDwX), *dy = floats(kDwY), *dw = floats(kDwW);
  llvm::Value* db = shape.bias ? floats(kDwB) : nullptr;
  const PlaneVectors vectors(b, width_, shape.h, shape.w);
  const std::vector<TapOffset> offsets =
      tap_offsets(shape.kernel, shape.pad, shape.dilation, false);
  const std::vector<VectorRun> runs = vectors.runs(offsets);
  const size_t taps = offsets.size(), sums_count = taps + (db ? 1 : 0);
  counted_loop(b, f->getArg(1), f->getArg(2), 1, {}, [&](llvm::Value* channel, const Values&) {
    const Values zeros(sums_count, llvm::ConstantFP::get(t_.f64, 0.0));
    const Values sums = counted_loop(
        b, b.getInt64(0), b.getInt64(shape.n), 1, zeros,
        [&](llvm::Value* sample, const Values& totals) {
          llvm::Value* plane = b.CreateAdd(b.CreateMul(sample, b.getInt64(shape.c)), channel);
          llvm::Value* offset = b.CreateMul(plane, b.getInt64(shape.plane()));
          llvm::Value* in = b.CreateInBoundsGEP(t_.f32, x, offset);
          llvm::Value* grad = b.CreateInBoundsGEP(t_.f32, dy, offset);
          const Values acc =
              vectors.walk(runs, Values(sums_count, vectors.zero()),
                           [&](llvm::Value* v, const VectorRun& r, const Values& partial) {
                             Values next = partial;
                             llvm::Value* g = vectors.load(grad, v, {0, 0}, r.inside);
                             if (db) next[taps] = b.CreateFAdd(next[taps], g);
                             for (size_t t = 0; t < taps; ++t)
                               if (llvm::Value* xv = vectors.load(in, v, offsets[t], r.taps[t]))
                                 next[t] = vectors.multiply_add(g, xv, next[t]);
                             return next;
                           });
          Values next;
          for (size_t t = 0; t < sums_count; ++t)
            next.push_back(b.CreateFAdd(totals[t], b.CreateFPExt(lane_sum(b, acc[t]), t_.f64)));
          return next;
        });
    auto add_to = [&](llvm::Value* p, llvm::Value* total) {
      b.CreateStore(b.CreateFAdd(b.CreateLoad(t_.f32, p), b.CreateFPTrunc(total, t_.f32)), p);
    };
    llvm::Value* filter = b.CreateInBoundsGEP(
        t_.f32, dw, b.CreateMul(channel, b.getInt64(static_cast<int64_t>(taps))));
    for (size_t t = 0; t < taps; ++t)
      add_to(b.CreateConstInBoundsGEP1_64(t_.f32, filter, t), sums[t]);
    if (db) add_to(b.CreateInBoundsGEP(t_.f32, db, channel), sums[taps]);
    return Values{};
  });
}

}  // namespace nas
