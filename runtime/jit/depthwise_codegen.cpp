#include "runtime/jit/depthwise_codegen.h"

#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "runtime/cpu/conv2d.h"
#include "runtime/cpu/depthwise.h"
#include "runtime/jit/depthwise_run.h"
#include "runtime/jit/library_switch.h"
#include "runtime/jit/object_cache.h"
#include "runtime/jit/row_loops.h"

namespace nas {

// What a body is made from: the pass, the shape and the attributes.
struct DepthwiseShape {
  DepthwisePass pass;
  int64_t n, c, h, w, out_h, out_w, kernel, stride, pad, dilation;
  bool bias;
  int64_t in_plane() const { return h * w; }
  int64_t out_plane() const { return out_h * out_w; }
  int64_t taps() const { return kernel * kernel; }
  bool data() const { return pass == DepthwisePass::Data; }
  // The plane a body walks vector by vector, and the one its taps read: the forward pass
  // and the weight gradient walk the output and read x, the data gradient walks dx and
  // reads dy.
  int64_t walked_plane() const { return data() ? in_plane() : out_plane(); }
  int64_t read_plane() const { return data() ? out_plane() : in_plane(); }
  std::string signature() const {
    return fmt::format("dwconv pass{} n{} c{} h{} w{} k{} s{} p{} d{} bias{}",
                       static_cast<int>(pass), n, c, h, w, kernel, stride, pad, dilation, bias);
  }
};

namespace {

bool enabled() {
  static const bool generated =
      generated_unless_library("NASC_JIT_DEPTHWISE", "a depthwise convolution on a small plane");
  return generated;
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
  return is_depthwise(p) && p.stride <= kMaxStride && p.out_h() * p.out_w() <= kMaxPlane &&
         p.h * p.w <= p.stride * p.stride * kMaxPlane;
}

std::vector<std::unique_ptr<llvm::Module>> DepthwiseCodegen::take_modules() {
  return std::move(modules_);
}

llvm::Function* DepthwiseCodegen::body(const Step& s) {
  const Conv2dParams p = conv_params(s);
  const DepthwiseShape shape{depthwise_pass(s), p.n,      p.c_in,   p.h,   p.w,        p.out_h(),
                             p.out_w(),         p.kernel, p.stride, p.pad, p.dilation, p.bias};
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
    convolve(b, shape, f);
  b.CreateRetVoid();
  bodies_.emplace(key, f);
  return f;
}

namespace {

// Lanes as bits: bit j for lane j (vectors have at most 16 lanes).
using Lanes = uint32_t;

// What the lanes of a walked vector read for one tap: the index into the read plane of each
// lane in `lanes`; the other lanes' taps fall in the padding (or, in a strided data
// gradient, between the outputs) and read 0.
struct TapRead {
  Lanes lanes = 0;
  std::vector<int64_t> source;  // by lane; meaningful only for the lanes in `lanes`
};

// A walked vector's reads, tap by tap in the filter's order (kh, then kw).
struct VectorReads {
  std::vector<TapRead> taps;
  Lanes inside = 0;  // the lanes inside the walked plane (all but the last vector's tail)
};

// Where each lane of each walked vector reads. For the forward pass and the weight
// gradient, output (a, b) reads x at (s a + kh d - p, s b + kw d - p); for the data
// gradient, dx (a, b) reads dy at ((a - kh d + p) / s, (b - kw d + p) / s) where both
// divide evenly: the outputs whose window holds (a, b) at that tap.
std::vector<VectorReads> plane_reads(const DepthwiseShape& s, int width) {
  const bool data = s.data();
  const int64_t walked_h = data ? s.h : s.out_h, walked_w = data ? s.w : s.out_w;
  const int64_t read_h = data ? s.out_h : s.h, read_w = data ? s.out_w : s.w;
  const int64_t kernel = s.kernel, stride = s.stride, pad = s.pad, dilation = s.dilation;
  const int64_t walked = walked_h * walked_w;
  std::vector<VectorReads> out;
  for (int64_t v = 0; v * width < walked; ++v) {
    VectorReads r;
    for (int j = 0; j < width; ++j) r.inside |= (v * width + j < walked ? Lanes{1} : 0) << j;
    for (int64_t kh = 0; kh < kernel; ++kh)
      for (int64_t kw = 0; kw < kernel; ++kw) {
        TapRead tap;
        tap.source.assign(static_cast<size_t>(width), 0);
        const int64_t dr = kh * dilation - pad, dc = kw * dilation - pad;
        for (int j = 0; j < width; ++j) {
          const int64_t i = v * width + j;
          if (i >= walked) continue;
          int64_t row = i / walked_w, column = i % walked_w;
          if (data) {
            row -= dr;
            column -= dc;
            if (row < 0 || column < 0 || row % stride != 0 || column % stride != 0) continue;
            row /= stride;
            column /= stride;
          } else {
            row = row * stride + dr;
            column = column * stride + dc;
          }
          if (row < 0 || row >= read_h || column < 0 || column >= read_w) continue;
          tap.lanes |= Lanes{1} << j;
          tap.source[static_cast<size_t>(j)] = row * read_w + column;
        }
        r.taps.push_back(std::move(tap));
      }
    out.push_back(std::move(r));
  }
  return out;
}

// Whether `later` reads what `earlier` reads, each index `shift` further on, under the same
// lanes.
bool same_reads_shifted(const VectorReads& earlier, const VectorReads& later, int64_t shift) {
  if (earlier.inside != later.inside) return false;
  for (size_t t = 0; t < earlier.taps.size(); ++t) {
    const TapRead &a = earlier.taps[t], &b = later.taps[t];
    if (a.lanes != b.lanes) return false;
    for (size_t j = 0; j < a.source.size(); ++j)
      if (((a.lanes >> j) & 1) && b.source[j] != a.source[j] + shift) return false;
  }
  return true;
}

// How far the block of `period` vectors from `first` lies past the block before it, judged
// by the first lane both read (0 when none reads: a dilated strided data gradient's odd rows
// read nothing): same_reads_shifted decides whether that holds for every lane.
int64_t shift_between(const std::vector<VectorReads>& reads, int64_t first, int64_t period) {
  for (int64_t i = 0; i < period; ++i) {
    const VectorReads &earlier = reads[first + i], &later = reads[first + period + i];
    for (size_t t = 0; t < earlier.taps.size(); ++t)
      for (size_t j = 0; j < earlier.taps[t].source.size(); ++j)
        if ((earlier.taps[t].lanes & later.taps[t].lanes) >> j & 1)
          return later.taps[t].source[j] - earlier.taps[t].source[j];
  }
  return 0;
}

// A block of `period` consecutive walked vectors repeated `count` times, each repetition
// reading `shift` further on than the one before: one counted loop rather than a copy of
// each vector. Away from the plane's edges a forward pass repeats every vector (a 16x16
// plane with a 5x5 filter is four vectors and a loop of twelve); a stride-2 data gradient
// repeats every two rows of dx, whose parities read different taps.
struct VectorRun {
  int64_t first = 0, period = 1, count = 1, shift = 0;
};

// The longest periods tried: two rows of a 32-wide plane in 8-float vectors.
constexpr int64_t kMaxPeriod = 8;

std::vector<VectorRun> vector_runs(const std::vector<VectorReads>& reads) {
  const int64_t n = static_cast<int64_t>(reads.size());
  std::vector<VectorRun> out;
  for (int64_t v = 0; v < n;) {
    VectorRun best{v, 1, 1, 0};
    for (int64_t period = 1; period <= kMaxPeriod && v + 2 * period <= n; ++period) {
      const int64_t shift = shift_between(reads, v, period);
      auto repeats = [&](int64_t count) {
        for (int64_t i = 0; i < period; ++i)
          if (!same_reads_shifted(reads[v + i], reads[v + count * period + i], count * shift))
            return false;
        return true;
      };
      int64_t count = 1;
      while (v + (count + 1) * period <= n && repeats(count)) ++count;
      if (count >= 2 && count * period > best.count * best.period) best = {v, period, count, shift};
    }
    out.push_back(best);
    v += best.period * best.count;
  }
  return out;
}

// The walked plane as a flat run of vectors, each tap of each vector read from constant
// offsets under constant masks (see the header).
class PlaneVectors {
 public:
  PlaneVectors(llvm::IRBuilder<>& b, int width, std::vector<VectorReads> reads)
      : b_(b),
        width_(width),
        type_(llvm::FixedVectorType::get(b.getFloatTy(), static_cast<unsigned>(width))),
        reads_(std::move(reads)),
        runs_(vector_runs(reads_)) {}

  llvm::Value* zero() const { return llvm::ConstantFP::get(type_, 0.0); }
  llvm::Value* splat(llvm::Value* scalar) const { return b_.CreateVectorSplat(width_, scalar); }

  // Calls `visit` on each walked vector with its index (i64), its reads, how far (i64) its
  // repetition reads past them, and the state carried from vector to vector: vectors of
  // runs of one as constants, longer runs in a counted loop. Returns the final state.
  using Visit =
      std::function<Values(llvm::Value*, const VectorReads&, llvm::Value*, const Values&)>;
  Values walk(const Values& state, const Visit& visit) const {
    Values current = state;
    for (const VectorRun& r : runs_) {
      if (r.count == 1) {
        for (int64_t i = 0; i < r.period; ++i)
          current = visit(b_.getInt64(r.first + i), reads_[r.first + i], b_.getInt64(0), current);
        continue;
      }
      current = counted_loop(b_, b_.getInt64(0), b_.getInt64(r.count), 1, current,
                             [&](llvm::Value* repetition, Values st) {
                               llvm::Value* shift = b_.CreateMul(repetition, b_.getInt64(r.shift));
                               llvm::Value* first = b_.CreateMul(repetition, b_.getInt64(r.period));
                               for (int64_t i = 0; i < r.period; ++i)
                                 st = visit(b_.CreateAdd(first, b_.getInt64(r.first + i)),
                                            reads_[r.first + i], shift, st);
                               return st;
                             });
    }
    return current;
  }

  // Walked vector v of `plane`, only its `lanes` read (the others 0).
  llvm::Value* load_walked(llvm::Value* plane, llvm::Value* v, Lanes lanes) const {
    return load_at(plane, first_of(v), lanes);
  }
  // Walked vector v of `plane`, only its `lanes` written.
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

  int width() const { return width_; }
  llvm::IRBuilder<>& builder() const { return b_; }
  // The vector at element `offset` (i64) of `plane`, the lanes outside `lanes` reading 0.
  llvm::Value* load_at(llvm::Value* plane, llvm::Value* offset, Lanes lanes) const {
    // Not inbounds: a masked lane's address may lie outside the buffer, and is never read.
    llvm::Value* p =
        b_.CreateBitCast(b_.CreateGEP(b_.getFloatTy(), plane, offset), type_->getPointerTo());
    if (lanes == all()) return b_.CreateAlignedLoad(type_, p, llvm::Align(4));
    return b_.CreateMaskedLoad(type_, p, llvm::Align(4), mask(lanes), zero());
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
  llvm::FixedVectorType* type_;
  std::vector<VectorReads> reads_;
  std::vector<VectorRun> runs_;
};

// What one walked vector's taps read from `plane`, `shift` (i64) further on than its reads
// say: the code of one vector, in one block.
//   - Lanes that read consecutive values (every tap at stride 1) are one load at the tap's
//     offset, the lanes that read nothing masked to 0.
//   - Others (stride 2) read from the span of all such taps: it is loaded once for all of
//     them, a vector at a time and only the values some tap reads, and each tap's lanes
//     are shuffled out of the span's vectors they lie in. A stride-2 forward pass with a 5x5
//     filter loads ten vectors per output row instead of fifty.
class VectorReader {
 public:
  VectorReader(const PlaneVectors& vectors, llvm::Value* plane, const VectorReads& reads,
               llvm::Value* shift)
      : vectors_(vectors), b_(vectors.builder()), plane_(plane), shift_(shift) {
    const int width = vectors.width();
    std::vector<const TapRead*> strided;
    for (const TapRead& tap : reads.taps)
      if (!consecutive(tap, width)) strided.push_back(&tap);
    for (const TapRead* tap : strided)
      for (int j = 0; j < width; ++j)
        if ((tap->lanes >> j) & 1) origin_ = std::min(origin_, tap->source[size_t(j)]);
    for (const TapRead* tap : strided)
      for (int j = 0; j < width; ++j)
        if ((tap->lanes >> j) & 1) {
          const int64_t k = tap->source[size_t(j)] - origin_;
          span_[k / width].needed |= Lanes{1} << (k % width);
        }
  }

  // What `tap` reads, the lanes that read nothing 0; null when no lane reads.
  llvm::Value* read(const TapRead& tap) {
    if (tap.lanes == 0) return nullptr;
    const int width = vectors_.width();
    int64_t start = 0;
    if (consecutive(tap, width, &start)) return vectors_.load_at(plane_, at(start), tap.lanes);
    // Lane j takes element k of span vector `index`: one shuffle of one span vector (and
    // zeros) or two; lanes from more (or from two, with lanes that read nothing) are
    // shuffled into place over the ones before, from zeros.
    struct Source {
      int64_t index, element;
    };
    std::vector<Source> sources(size_t(width), Source{-1, 0});
    std::vector<int64_t> used;  // span vectors, in order
    for (int j = 0; j < width; ++j)
      if ((tap.lanes >> j) & 1) {
        const int64_t k = tap.source[size_t(j)] - origin_;
        sources[size_t(j)] = {k / width, k % width};
        if (std::find(used.begin(), used.end(), k / width) == used.end()) used.push_back(k / width);
      }
    const bool every_lane = tap.lanes == (Lanes{1} << width) - 1;
    if (used.size() == 1 || (used.size() == 2 && every_lane)) {
      std::vector<int> pick;
      for (const Source& from : sources)
        pick.push_back(from.index < 0
                           ? width  // the first zero of the second operand
                           : static_cast<int>(from.element) + (from.index == used[0] ? 0 : width));
      return b_.CreateShuffleVector(
          span_vector(used[0]), used.size() == 2 ? span_vector(used[1]) : vectors_.zero(), pick);
    }
    llvm::Value* picked = vectors_.zero();
    for (int64_t index : used) {
      std::vector<int> pick;
      for (int j = 0; j < width; ++j)
        pick.push_back(sources[size_t(j)].index == index
                           ? width + static_cast<int>(sources[size_t(j)].element)
                           : j);
      picked = b_.CreateShuffleVector(picked, span_vector(index), pick);
    }
    return picked;
  }

 private:
  struct SpanVector {
    Lanes needed = 0;
    llvm::Value* loaded = nullptr;
  };

  // Whether the tap's lanes read consecutive values: lane j reads `start` + j.
  static bool consecutive(const TapRead& tap, int width, int64_t* start = nullptr) {
    bool first = true;
    int64_t begin = 0;
    for (int j = 0; j < width; ++j) {
      if (!((tap.lanes >> j) & 1)) continue;
      if (first) begin = tap.source[size_t(j)] - j;
      if (tap.source[size_t(j)] - j != begin) return false;
      first = false;
    }
    if (start) *start = begin;
    return true;
  }
  llvm::Value* at(int64_t offset) const { return b_.CreateAdd(shift_, b_.getInt64(offset)); }
  llvm::Value* span_vector(int64_t index) {
    SpanVector& v = span_.at(index);
    if (!v.loaded)
      v.loaded = vectors_.load_at(plane_, at(origin_ + index * vectors_.width()), v.needed);
    return v.loaded;
  }

  const PlaneVectors& vectors_;
  llvm::IRBuilder<>& b_;
  llvm::Value *plane_, *shift_;
  int64_t origin_ = INT64_MAX;          // the span's first element
  std::map<int64_t, SpanVector> span_;  // by index from the origin, those some tap reads
};

}  // namespace

// Forward: over planes [begin, end), y = b + sum over taps of w[t] x(reads); data gradient:
// dx = sum of w[t] dy(reads). A plane's channel is its index modulo c.
void DepthwiseCodegen::convolve(llvm::IRBuilder<>& b, const DepthwiseShape& shape,
                                llvm::Function* f) {
  const bool data = shape.data();
  llvm::Value* slots = f->getArg(0);
  auto floats = [&](int slot) {
    return b.CreateBitCast(pointer_at(b, slots, t_.i8p, slot), t_.f32p);
  };
  llvm::Value *source = floats(data ? kDwY : kDwX), *target = floats(data ? kDwX : kDwY);
  llvm::Value *weights = floats(kDwW), *bias = shape.bias && !data ? floats(kDwB) : nullptr;
  const PlaneVectors vectors(b, width_, plane_reads(shape, width_));
  counted_loop(b, f->getArg(1), f->getArg(2), 1, {}, [&](llvm::Value* plane, const Values&) {
    llvm::Value* channel = b.CreateURem(plane, b.getInt64(shape.c));
    llvm::Value* in =
        b.CreateInBoundsGEP(t_.f32, source, b.CreateMul(plane, b.getInt64(shape.read_plane())));
    llvm::Value* out =
        b.CreateInBoundsGEP(t_.f32, target, b.CreateMul(plane, b.getInt64(shape.walked_plane())));
    llvm::Value* filter =
        b.CreateInBoundsGEP(t_.f32, weights, b.CreateMul(channel, b.getInt64(shape.taps())));
    Values taps;
    for (int64_t t = 0; t < shape.taps(); ++t)
      taps.push_back(
          vectors.splat(b.CreateLoad(t_.f32, b.CreateConstInBoundsGEP1_64(t_.f32, filter, t))));
    llvm::Value* start =
        bias ? vectors.splat(b.CreateLoad(t_.f32, b.CreateInBoundsGEP(t_.f32, bias, channel)))
             : vectors.zero();
    vectors.walk({}, [&](llvm::Value* v, const VectorReads& r, llvm::Value* shift, const Values&) {
      llvm::Value* sum = start;
      VectorReader reader(vectors, in, r, shift);
      for (size_t t = 0; t < r.taps.size(); ++t)
        if (llvm::Value* x = reader.read(r.taps[t])) sum = vectors.multiply_add(x, taps[t], sum);
      vectors.store(out, v, sum, r.inside);
      return Values{};
    });
    return Values{};
  });
}

// Over channels [begin, end): dw[t] += sum over samples of (sum over the output plane of dy
// * x(reads of t)), and db += the sum of dy, each plane's sums reduced into double.
void DepthwiseCodegen::weight_gradient(llvm::IRBuilder<>& b, const DepthwiseShape& shape,
                                       llvm::Function* f) {
  llvm::Value* slots = f->getArg(0);
  auto floats = [&](int slot) {
    return b.CreateBitCast(pointer_at(b, slots, t_.i8p, slot), t_.f32p);
  };
  llvm::Value *x = floats(kDwX), *dy = floats(kDwY), *dw = floats(kDwW);
  llvm::Value* db = shape.bias ? floats(kDwB) : nullptr;
  const PlaneVectors vectors(b, width_, plane_reads(shape, width_));
  const size_t taps = static_cast<size_t>(shape.taps()), sums_count = taps + (db ? 1 : 0);
  counted_loop(b, f->getArg(1), f->getArg(2), 1, {}, [&](llvm::Value* channel, const Values&) {
    const Values zeros(sums_count, llvm::ConstantFP::get(t_.f64, 0.0));
    const Values sums = counted_loop(
        b, b.getInt64(0), b.getInt64(shape.n), 1, zeros,
        [&](llvm::Value* sample, const Values& totals) {
          llvm::Value* plane = b.CreateAdd(b.CreateMul(sample, b.getInt64(shape.c)), channel);
          llvm::Value* in =
              b.CreateInBoundsGEP(t_.f32, x, b.CreateMul(plane, b.getInt64(shape.in_plane())));
          llvm::Value* grad =
              b.CreateInBoundsGEP(t_.f32, dy, b.CreateMul(plane, b.getInt64(shape.out_plane())));
          const Values acc = vectors.walk(
              Values(sums_count, vectors.zero()),
              [&](llvm::Value* v, const VectorReads& r, llvm::Value* shift, const Values& partial) {
                Values next = partial;
                llvm::Value* g = vectors.load_walked(grad, v, r.inside);
                if (db) next[taps] = b.CreateFAdd(next[taps], g);
                VectorReader reader(vectors, in, r, shift);
                for (size_t t = 0; t < taps; ++t)
                  if (llvm::Value* xv = reader.read(r.taps[t]))
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
