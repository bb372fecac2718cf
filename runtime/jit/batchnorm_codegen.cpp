#include "runtime/jit/batchnorm_codegen.h"

#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Module.h>

#include <functional>

#include "runtime/cpu/plain_step_params.h"
#include "runtime/jit/library_switch.h"
#include "runtime/jit/object_cache.h"
#include "runtime/jit/row_loops.h"
#include "support/errors.h"

namespace nas {
namespace {

// What one channel's code reads its buffers with: the body's slots as float arrays, the
// channel's element of a per-channel array, a sample's row of an [n, c, h*w] buffer, and
// the row's loops.
struct ChannelCode {
  ChannelCode(llvm::IRBuilder<>& builder, const Step& s, const Values& body_slots,
              llvm::Value* channel_index, int width)
      : b(builder),
        p(batchnorm_params(s)),
        inner(p.h * p.w),
        slots(body_slots),
        channel(channel_index),
        rows(builder, width, inner) {}

  llvm::Value* floats(int slot) const {
    return b.CreateBitCast(slots[slot], b.getFloatTy()->getPointerTo());
  }
  llvm::Value* at_channel(llvm::Value* base) const {
    return b.CreateInBoundsGEP(b.getFloatTy(), base, channel);
  }
  llvm::Value* row_of(llvm::Value* base, llvm::Value* sample) const {
    llvm::Value* plane = b.CreateAdd(b.CreateMul(sample, b.getInt64(p.c)), channel);
    return b.CreateInBoundsGEP(b.getFloatTy(), base, b.CreateMul(plane, b.getInt64(inner)));
  }
  llvm::Value* real(double v) const { return llvm::ConstantFP::get(b.getDoubleTy(), v); }

  llvm::IRBuilder<>& b;
  const BatchNormParams p;
  const int64_t inner;
  const Values& slots;
  llvm::Value* channel;  // i64
  RowLoops rows;
};

}  // namespace

BatchNormCodegen::BatchNormCodegen(const ExecPlan& plan, int vector_floats,
                                   llvm::LLVMContext& context, RegionOpsEmitter& ops)
    : IrHelpers(context), plan_(plan), width_(vector_floats), ops_(ops) {}

std::vector<std::unique_ptr<llvm::Module>> BatchNormCodegen::take_modules() {
  return std::move(modules_);
}

bool BatchNormCodegen::enabled() {
  static const bool generated = generated_unless_library("NASC_JIT_BATCHNORM", "batch norm");
  return generated;
}

bool BatchNormCodegen::generates(const ExecPlan& plan, const Step& s) {
  if (!enabled() || !plan.training) return false;
  if (s.kind != StepKind::BatchNorm && s.kind != StepKind::BatchNormGrad) return false;
  return batchnorm_params(s).per_channel() >= 2;
}

std::string BatchNormCodegen::signature(const Step& s, const BatchNormProgram& program) const {
  const BatchNormParams p = batchnorm_params(s);
  std::string key = fmt::format("{} n{} c{} h{} w{} affine{} eps{} momentum{} from_output{}",
                                s.kind == StepKind::BatchNorm ? "forward" : "backward", p.n, p.c,
                                p.h, p.w, p.affine, p.eps, p.momentum, program.from_output);
  for (const RegionOp& op : s.region)
    key += fmt::format("|{} {} {}", static_cast<int>(op.kind), op.op, op.param);
  if (s.kind == StepKind::BatchNorm)
    key += fmt::format("|stores {} running {}", program.y >= 0, s.running_mean >= 0);
  return key;
}

llvm::Function* BatchNormCodegen::body(const Step& s) {
  // The region's program is one the library runs too, or an InternalError.
  const BatchNormProgram program = BatchNormProgram::of(plan_, s);
  const std::string key = signature(s, program);
  auto it = bodies_.find(key);
  if (it != bodies_.end()) return it->second;
  const bool forward = s.kind == StepKind::BatchNorm;
  // A module of its own, named by its signature: its object is cached apart from the
  // plan's, so another plan with the same batch norm (a search's alpha step beside its
  // weight step, another run) loads it instead of compiling it.
  modules_.push_back(std::make_unique<llvm::Module>("nasc_batchnorm", c_));
  const std::string name =
      fmt::format("nasc_batchnorm{}_body_{}", forward ? "" : "_grad", sha1_hex(key).substr(0, 16));
  llvm::Function* f =
      llvm::Function::Create(t_.body, llvm::Function::ExternalLinkage, name, *modules_.back());
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(c_, "entry", f));
  llvm::Value* rargs = f->getArg(0);
  // The slots are loaded once, before the loops: the stores of floats inside them might
  // alias the slots as far as LLVM knows.
  Values slots;
  for (int k = 0; k < (forward ? static_cast<int>(kFwdSlots) : static_cast<int>(kBwdSlots)); ++k)
    slots.push_back(pointer_at(b, rargs, t_.i8p, k));
  counted_loop(b, f->getArg(1), f->getArg(2), 1, {}, [&](llvm::Value* channel, const Values&) {
    if (forward)
      forward_channel(b, s, program, slots, channel);
    else
      backward_channel(b, s, program, slots, channel);
    return Values{};
  });
  b.CreateRetVoid();
  bodies_.emplace(key, f);
  return f;
}

// runtime/cpu/batchnorm.cpp's BatchNormKernel::forward_training, for one channel.
void BatchNormCodegen::forward_channel(llvm::IRBuilder<>& b, const Step& s,
                                       const BatchNormProgram& program, const Values& slots,
                                       llvm::Value* channel) {
  ChannelCode code(b, s, slots, channel, width_);
  const BatchNormParams& p = code.p;
  RowLoops& row = code.rows;
  llvm::Value* x = code.floats(kFwdX);

  // Per sample: the row's mean and squared deviations in float, combined in double by Chan
  // et al.'s pairwise update.
  const Values stats = counted_loop(
      b, b.getInt64(0), b.getInt64(p.n), 1, {code.real(0), code.real(0), code.real(0)},
      [&](llvm::Value* sample, const Values& st) {
        llvm::Value* xr = code.row_of(x, sample);
        llvm::Value* row_sum =
            row.sum(1, [&](const Chunk& k) { return Values{row.load(xr, k)}; })[0];
        llvm::Value* row_mean =
            b.CreateFDiv(row_sum, llvm::ConstantFP::get(t_.f32, static_cast<double>(code.inner)));
        llvm::Value* row_squares = row.sum(1, [&](const Chunk& k) {
          llvm::Value* d = b.CreateFSub(row.load(xr, k), row.splat(row_mean));
          return Values{b.CreateFMul(d, d)};
        })[0];
        llvm::Value *count = st[0], *mean = st[1], *squares = st[2];
        llvm::Value* length = code.real(static_cast<double>(code.inner));
        llvm::Value* delta = b.CreateFSub(b.CreateFPExt(row_mean, t_.f64), mean);
        llvm::Value* total = b.CreateFAdd(count, length);
        llvm::Value* spread = b.CreateFDiv(
            b.CreateFMul(b.CreateFMul(b.CreateFMul(delta, delta), count), length), total);
        return Values{
            total, b.CreateFAdd(mean, b.CreateFDiv(b.CreateFMul(delta, length), total)),
            b.CreateFAdd(squares, b.CreateFAdd(b.CreateFPExt(row_squares, t_.f64), spread))};
      });
  llvm::Value* mean = stats[1];
  llvm::Value* variance = b.CreateFDiv(stats[2], stats[0]);
  llvm::Value* mean_f = b.CreateFPTrunc(mean, t_.f32);
  llvm::Value* var_f = b.CreateFPTrunc(variance, t_.f32);
  b.CreateStore(mean_f, code.at_channel(code.floats(kFwdMean)));
  b.CreateStore(var_f, code.at_channel(code.floats(kFwdVar)));

  // y = x * a + b with a = scale / sqrt(var + eps), b = shift - mean * a.
  llvm::Value* inv_std = b.CreateFDiv(
      code.real(1),
      b.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, b.CreateFAdd(variance, code.real(p.eps))));
  auto parameter = [&](int slot) {
    return b.CreateFPExt(b.CreateLoad(t_.f32, code.at_channel(code.floats(slot))), t_.f64);
  };
  llvm::Value* gain = p.affine ? b.CreateFMul(inv_std, parameter(kFwdScale)) : inv_std;
  llvm::Value* shift = p.affine ? parameter(kFwdShift) : code.real(0);
  llvm::Value* a = row.splat(b.CreateFPTrunc(gain, t_.f32));
  llvm::Value* offset =
      row.splat(b.CreateFPTrunc(b.CreateFSub(shift, b.CreateFMul(mean, gain)), t_.f32));
  const bool stores_y = program.y >= 0;
  llvm::Value *y = code.floats(kFwdY), *out = code.floats(kFwdOut);
  counted_loop(b, b.getInt64(0), b.getInt64(p.n), 1, {}, [&](llvm::Value* sample, const Values&) {
    llvm::Value *xr = code.row_of(x, sample), *outr = code.row_of(out, sample);
    llvm::Value* yr = stores_y ? code.row_of(y, sample) : nullptr;
    row.for_each([&](const Chunk& k) {
      llvm::Value* v = b.CreateFAdd(b.CreateFMul(row.load(xr, k), a), offset);
      if (stores_y) row.store(yr, k, v);
      for (size_t i = 1; i < s.region.size(); ++i) v = ops_.activation(b, s.name, s.region[i], v);
      row.store(outr, k, v);
    });
    return Values{};
  });

  // PyTorch's running-statistics update, with the unbiased batch variance.
  if (s.running_mean < 0) return;
  const double momentum = p.momentum;
  const double bessel = static_cast<double>(p.per_channel()) / (p.per_channel() - 1);
  auto update = [&](int slot, llvm::Value* batch) {
    llvm::Value* running = code.at_channel(code.floats(slot));
    llvm::Value* kept =
        b.CreateFMul(code.real(1 - momentum), b.CreateFPExt(b.CreateLoad(t_.f32, running), t_.f64));
    b.CreateStore(b.CreateFPTrunc(b.CreateFAdd(kept, batch), t_.f32), running);
  };
  update(kFwdRunningMean, b.CreateFMul(code.real(momentum), b.CreateFPExt(mean_f, t_.f64)));
  update(kFwdRunningVar,
         b.CreateFMul(b.CreateFMul(code.real(momentum), b.CreateFPExt(var_f, t_.f64)),
                      code.real(bessel)));
}

// runtime/cpu/batchnorm.cpp's backward loops (from the input, or from the output), with the
// incoming gradient read as the region's first operation says, for one channel.
void BatchNormCodegen::backward_channel(llvm::IRBuilder<>& b, const Step& s,
                                        const BatchNormProgram& program, const Values& slots,
                                        llvm::Value* channel) {
  ChannelCode code(b, s, slots, channel, width_);
  const BatchNormParams& p = code.p;
  RowLoops& row = code.rows;
  // The incoming gradient's prologue: an ActivationGrad, a ChoiceGradInput (a share), or
  // none (a batch norm gradient step of its own reads g itself).
  const RegionOp* prologue = program.fused ? &s.region[0] : nullptr;
  const bool activation = !program.prologue_op.empty();
  const bool share = program.share_group >= 0;
  llvm::Value *g = code.floats(kBwdG), *act_x = code.floats(kBwdActivationInput);
  llvm::Value *saved = code.floats(kBwdSaved), *dx = code.floats(kBwdDx);
  llvm::Value* weight = share ? b.CreateLoad(t_.f32, code.floats(kBwdWeight)) : nullptr;
  const double m = static_cast<double>(p.per_channel());
  const bool output = program.from_output;

  // The incoming gradient of a piece: g * f'(the activation's input), w * g (g alone when
  // `scaled` is false: from the output, the sums of a share are scaled after), or g.
  struct Rows {
    llvm::Value *g, *act_x, *saved;
  };
  auto rows_of = [&](llvm::Value* sample) {
    return Rows{code.row_of(g, sample), activation ? code.row_of(act_x, sample) : nullptr,
                code.row_of(saved, sample)};
  };
  auto incoming = [&](const Rows& r, const Chunk& k, bool scaled) {
    llvm::Value* gv = row.load(r.g, k);
    if (activation)
      return b.CreateFMul(gv, ops_.activation_slope(b, s.name, *prologue, row.load(r.act_x, k)));
    return share && scaled ? b.CreateFMul(row.splat(weight), gv) : gv;
  };

  // From the input: sum(dy) and sum(dy * (x - mean)); from the output: sum(dy), sum(dy * y).
  llvm::Value* mean =
      output ? nullptr : b.CreateLoad(t_.f32, code.at_channel(code.floats(kBwdMean)));
  const Values sums =
      counted_loop(b, b.getInt64(0), b.getInt64(p.n), 1, {code.real(0), code.real(0)},
                   [&](llvm::Value* sample, const Values& st) {
                     const Rows r = rows_of(sample);
                     const Values row_sums = row.sum(2, [&](const Chunk& k) {
                       llvm::Value* d = incoming(r, k, !output);
                       llvm::Value* other = row.load(r.saved, k);
                       if (!output) other = b.CreateFSub(other, row.splat(mean));
                       return Values{d, b.CreateFMul(d, other)};
                     });
                     return Values{b.CreateFAdd(st[0], b.CreateFPExt(row_sums[0], t_.f64)),
                                   b.CreateFAdd(st[1], b.CreateFPExt(row_sums[1], t_.f64))};
                   });
  llvm::Value* variance =
      b.CreateFPExt(b.CreateLoad(t_.f32, code.at_channel(code.floats(kBwdVar))), t_.f64);
  llvm::Value* inv_std = b.CreateFDiv(
      code.real(1),
      b.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, b.CreateFAdd(variance, code.real(p.eps))));
  llvm::Value *sum_dy = sums[0], *sum_other = sums[1];
  auto apply = [&](const std::function<llvm::Value*(const Rows&, const Chunk&)>& dx_of) {
    counted_loop(b, b.getInt64(0), b.getInt64(p.n), 1, {}, [&](llvm::Value* sample, const Values&) {
      const Rows r = rows_of(sample);
      llvm::Value* dxr = code.row_of(dx, sample);
      row.for_each([&](const Chunk& k) { row.store(dxr, k, dx_of(r, k)); });
      return Values{};
    });
  };

  if (output) {
    // A share's d/dw is its channels' sum(g * y), before the sums are scaled.
    if (share) {
      llvm::Value* products = b.CreateBitCast(slots[kBwdProducts], t_.f64p);
      when_nonnull(b, products, [&] {
        b.CreateStore(sum_other, b.CreateInBoundsGEP(t_.f64, products, channel));
      });
      llvm::Value* w = b.CreateFPExt(weight, t_.f64);
      sum_dy = b.CreateFMul(sum_dy, w);
      sum_other = b.CreateFMul(sum_other, w);
    }
    // dx = (dy - mean(dy) - y * mean(dy * y)) / sqrt(var + eps)
    llvm::Value* inv = row.splat(b.CreateFPTrunc(inv_std, t_.f32));
    llvm::Value* mean_dy = row.splat(b.CreateFPTrunc(b.CreateFDiv(sum_dy, code.real(m)), t_.f32));
    llvm::Value* mean_dy_y =
        row.splat(b.CreateFPTrunc(b.CreateFDiv(sum_other, code.real(m)), t_.f32));
    apply([&](const Rows& r, const Chunk& k) {
      llvm::Value* d = b.CreateFSub(incoming(r, k, true), mean_dy);
      return b.CreateFMul(b.CreateFSub(d, b.CreateFMul(row.load(r.saved, k), mean_dy_y)), inv);
    });
    return;
  }

  // dscale = sum(dy * x_hat), dshift = sum(dy), added to the parameters' gradients;
  // dx = scale * inv_std * (dy - dshift / m - x_hat * dscale / m).
  llvm::Value* sum_dy_xhat = b.CreateFMul(sum_other, inv_std);
  llvm::Value* gain = inv_std;
  if (p.affine) {
    auto accumulate = [&](int slot, llvm::Value* v) {
      llvm::Value* grad = code.floats(slot);
      when_nonnull(b, grad, [&] {
        llvm::Value* at = code.at_channel(grad);
        b.CreateStore(b.CreateFAdd(b.CreateLoad(t_.f32, at), b.CreateFPTrunc(v, t_.f32)), at);
      });
    };
    accumulate(kBwdGradScale, sum_dy_xhat);
    accumulate(kBwdGradShift, sum_dy);
    gain = b.CreateFMul(
        b.CreateFPExt(b.CreateLoad(t_.f32, code.at_channel(code.floats(kBwdScale))), t_.f64),
        inv_std);
  }
  llvm::Value* gain_f = row.splat(b.CreateFPTrunc(gain, t_.f32));
  llvm::Value* mean_dy = row.splat(b.CreateFPTrunc(b.CreateFDiv(sum_dy, code.real(m)), t_.f32));
  llvm::Value* centered = row.splat(
      b.CreateFPTrunc(b.CreateFDiv(b.CreateFMul(inv_std, sum_dy_xhat), code.real(m)), t_.f32));
  llvm::Value* mean_v = row.splat(mean);
  apply([&](const Rows& r, const Chunk& k) {
    llvm::Value* d = b.CreateFSub(incoming(r, k, true), mean_dy);
    llvm::Value* xc = b.CreateFSub(row.load(r.saved, k), mean_v);
    return b.CreateFMul(gain_f, b.CreateFSub(d, b.CreateFMul(xc, centered)));
  });
}

void BatchNormCodegen::when_nonnull(llvm::IRBuilder<>& b, llvm::Value* pointer,
                                    const std::function<void()>& emit) {
  llvm::Function* f = b.GetInsertBlock()->getParent();
  llvm::BasicBlock* then = llvm::BasicBlock::Create(c_, "nonnull", f);
  llvm::BasicBlock* after = llvm::BasicBlock::Create(c_, "after", f);
  b.CreateCondBr(b.CreateIsNotNull(pointer), then, after);
  b.SetInsertPoint(then);
  emit();
  b.CreateBr(after);
  b.SetInsertPoint(after);
}

}  // namespace nas
