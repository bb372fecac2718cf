// Conv epilogues (compiler/passes/fusion.h) and the channels-last layouts of the values
// between them (compiler/passes/layout.h): which chains become one step, and their results
// on the CPU interpreter and the JIT against the unfused plan on the interpreter, with batch
// norms whose parameters and running statistics are far from the identity. Then the folded
// weights they keep: made again after every kind of parameter write (an optimizer step, an
// upload, a training run's running statistics), never used stale.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "compiler/passes/fusion.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/cpu/conv2d.h"
#include "runtime/exec/executor.h"
#include "runtime/optim/optimizer.h"
#include "tests/ir_test_util.h"
#include "tests/plan_compare_util.h"

using namespace nas;
using namespace nas::test;

namespace {

bool has_role(const StoredParam& p, const char* role) {
  return p.spec.name.find(role) != std::string::npos;
}

// Random weights everywhere (or, with `batchnorm_only`, in the batch norms only, the others
// keeping their initialisation, so that a deep network's activations stay in range),
// running variances in [0.5, 2]: batch norm is then a real per-channel affine map, so a
// wrong fold shows.
void randomise(ParamStore& store, uint32_t seed, bool batchnorm_only = false) {
  std::mt19937 rng(seed);
  for (StoredParam& p : store.params()) {
    const int64_t n = static_cast<int64_t>(p.value.size());
    if (has_role(p, "running_var")) {
      store.write(p.value, random_floats(n, rng, 0.5f, 2.0f));
    } else if (has_role(p, "running_mean") || has_role(p, ".shift")) {
      store.write(p.value, random_floats(n, rng, -0.2f, 0.2f));
    } else if (has_role(p, ".scale")) {
      store.write(p.value, random_floats(n, rng, 0.5f, 1.5f));
    } else if (!batchnorm_only) {
      store.write(p.value, random_floats(n, rng));
    }
  }
}

// The fused plan and the unfused reference, with the same random parameters.
void make_inference_pair(Pair& p, const Graph& net, int64_t batch, uint32_t seed,
                         bool batchnorm_only = false) {
  PlanOptions o;
  o.batch = batch;
  make_pair(p, net, o);
  randomise(p.ref_store, seed, batchnorm_only);
  for (size_t i = 0; i < p.store.params().size(); ++i)
    p.store.write(p.store.params()[i].value, p.ref_store.read(p.ref_store.params()[i].value));
}

int conv_epilogue_steps(const ExecPlan& plan) {
  int n = 0;
  for (const Step& s : plan.steps) n += s.kind == StepKind::Conv && !s.region.empty();
  return n;
}

int nhwc_values(const ExecPlan& plan) {
  int n = 0;
  for (const ValueSlot& v : plan.values) n += v.layout == Layout::NHWC;
  return n;
}

const char* kPatterns = R"(network patterns(x: tensor[3, 9, 9]) {
  let a = relu6(batchnorm(conv(x, 8, kernel=3, pad=1)));
  let b = batchnorm(dwconv(a, 3, pad=1, bias=true), affine=false);
  let c = relu(batchnorm(conv(b, 8, kernel=1)) + a);
  let d = leaky_relu(conv(c, 8, kernel=1, bias=true), slope=0.2);
  let e = relu(d);
  let f = silu(batchnorm(conv(e, 8, kernel=3, stride=2, pad=1)));
  let g = hard_sigmoid(conv(f, 8, kernel=1)) + hard_swish(conv(f, 8, kernel=1));
  return linear(flatten(global_avg_pool(g)), 5);
}
)";

}  // namespace

TEST_CASE("conv epilogue: which chains fuse, in an inference graph only", "[fusion][conv]") {
  Graph net = compile_source(kPatterns);
  PlanOptions inference;
  inference.loss = false;
  const ExecPlan plan = compile_plan(net, inference);
  // a: conv-bn-relu6; b: dwconv-bn; c: conv-bn-add-relu; d: conv-leaky_relu-relu; f:
  // conv-bn-silu; g: the two convs with their activations, the second with the add.
  CHECK(conv_epilogue_steps(plan) == 7);
  // a is read by the dwconv and by c's add (both conv epilogues), b, c, d and e only by
  // convs: channels-last. f and g are read by other steps (the 1x1 convs read f, but g's
  // add is computed by the second conv's epilogue, whose output the pooling reads).
  CHECK(nhwc_values(plan) >= 4);
  for (const Step& s : plan.steps)
    if (s.kind == StepKind::Conv && !s.region.empty()) {
      CHECK(s.region.front().kind == StepKind::Conv);
      for (size_t i = 1; i < s.region.size(); ++i)
        if (s.region[i].kind == StepKind::BatchNorm) {
          CHECK(i == 1);
          CHECK(s.region[i].running_var >= 0);
        }
    }
  // Training: batch norm uses batch statistics and convs keep their inputs for backward.
  PlanOptions training;
  training.training = true;
  training.batch = 2;
  const ExecPlan train = compile_plan(net, training);
  CHECK(conv_epilogue_steps(train) == 0);
  CHECK(nhwc_values(train) == 0);
}

TEST_CASE("conv epilogue: post-ops where oneDNN computes them right, loops elsewhere",
          "[fusion][conv]") {
  Conv2dParams p;
  p.n = 1, p.c_in = 8, p.h = p.w = 6, p.c_out = 8;
  using Op = ConvEpilogueOp;
  auto kernel = [&](std::vector<Op> ops) {
    ConvEpilogue e;
    e.batchnorm = true;
    e.ops = std::move(ops);
    return conv2d_epilogue_kernel(p, e);
  };
  const Op relu6{Op::Kind::Activation, "relu6", 0}, relu{Op::Kind::Activation, "relu", 0},
      leaky{Op::Kind::Activation, "leaky_relu", 0.2}, silu{Op::Kind::Activation, "silu", 0},
      add{Op::Kind::Add, "", 0};
  CHECK(kernel({relu6})->uses_post_ops());
  CHECK(kernel({add, relu})->uses_post_ops());
  CHECK(kernel({relu, leaky})->uses_post_ops() == false);  // relu twice, other constants
  CHECK(kernel({leaky, relu})->uses_post_ops() == false);
  CHECK(kernel({silu})->uses_post_ops() == false);  // no oneDNN algorithm
}

TEST_CASE("conv epilogue: fused plans equal the unfused reference", "[fusion][conv][exec]") {
  Graph net = compile_source(kPatterns);
  for (const char* backend : {"cpu", "jit"})
    for (int64_t batch : {1, 3}) {
      INFO("backend " << backend << ", batch " << batch);
      Pair p(backend);
      make_inference_pair(p, net, batch, 5);
      REQUIRE(conv_epilogue_steps(p.fused->plan()) == 7);
      check_same(p, 17);
      check_same(p, 18);  // the kept folded weights, second run
    }
}

TEST_CASE("conv epilogue: MobileNetV2 at 32x32 equals the unfused plan", "[fusion][conv][exec]") {
  Diagnostics diags;
  CompileOptions co;
  co.elaborate.overrides = {{"hw", "32"}, {"classes", "10"}};
  Compilation c =
      compile_file(std::string(NASC_SOURCE_DIR) + "/examples/mobilenet_v2.nas", co, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  Pair p("cpu");
  make_inference_pair(p, *c.supernet, 2, 9, /*batchnorm_only=*/true);
  CHECK(conv_epilogue_steps(p.fused->plan()) == 52);
  check_same(p, 3);
}

// Supernets at inference, as PNAS rewards and evaluations run them: sampled paths under
// live masks (a MobileNet space, whose choices between blocks carry channels-last values,
// and a DARTS cell with Zero and pooling candidates, whose values stay NCHW around the
// pools), and the DARTS cell in full mode.
TEST_CASE("conv epilogue: supernets under live masks equal the unfused plan",
          "[fusion][conv][exec]") {
  Diagnostics diags;
  CompileOptions co;
  co.elaborate.overrides = {{"settings", "[[24, 2, 2], [32, 2, 2]]"}, {"hw", "16"}};
  Compilation mobilenet =
      compile_file(std::string(NASC_SOURCE_DIR) + "/examples/mobilenet.nas", co, diags);
  Compilation darts = compile_text("space.nas", kSmallDartsCell, {}, diags);
  INFO(diags.render());
  REQUIRE(mobilenet.supernet);
  REQUIRE(darts.supernet);
  for (const Graph* space : {&*mobilenet.supernet, &*darts.supernet})
    for (const char* backend : {"cpu", "jit"}) {
      INFO("space " << space->name << ", backend " << backend);
      PlanOptions o;
      o.batch = 2;
      CompiledPlan compiled = compile_plan_keeping_graph(*space, o);
      CHECK(conv_epilogue_steps(compiled.plan) > 0);
      if (space == &*mobilenet.supernet) {
        // The block outputs and the choices between them: channels-last.
        int choices_nhwc = 0;
        for (const Step& s : compiled.plan.steps)
          choices_nhwc +=
              s.kind == StepKind::Choice && compiled.plan.values[s.node].layout == Layout::NHWC;
        CHECK(choices_nhwc > 0);
      }
      Pair p(backend);
      make_inference_pair(p, *space, 2, 31, /*batchnorm_only=*/true);
      if (space == &*darts.supernet) check_same(p, 40);  // full mode
      std::mt19937 rng(3);
      for (int round = 0; round < 4; ++round) {
        Selection sel = random_selection(compiled.exec.arch, &rng);
        for (Executor* ex : {p.fused.get(), p.plain.get()}) {
          ex->use_selection(sel.chosen);
          ex->set_live_mask(live_mask(compiled.exec, sel));
        }
        INFO("round " << round);
        check_same(p, 41 + round);
        // And the specialised sub-network, with its own conv epilogues and layouts.
        Executor alone(compile_plan(specialise(*space, sel), o), p.store, 3);
        Outcome a = run_once(alone, p.store, 41 + round);
        Outcome f = run_once(*p.fused, p.store, 41 + round);
        CHECK(f.loss == Approx(a.loss).epsilon(1e-5));
        check_close(f.logits, a.logits, "logits against the specialised network");
      }
    }
}

TEST_CASE("conv epilogue: folded weights follow every parameter write", "[fusion][conv][exec]") {
  Graph net = compile_source(kPatterns);
  for (const char* backend : {"cpu", "jit"}) {
    INFO("backend " << backend);
    Pair p(backend);
    make_inference_pair(p, net, 2, 21);
    check_same(p, 1);
    // An upload (a weights file, a checkpoint): both stores get the same new values.
    randomise(p.ref_store, 22);
    for (size_t i = 0; i < p.store.params().size(); ++i)
      p.store.write(p.store.params()[i].value, p.ref_store.read(p.ref_store.params()[i].value));
    check_same(p, 2);
    // An optimizer step with the same gradients in both stores.
    std::mt19937 rng(23);
    for (size_t i = 0; i < p.store.params().size(); ++i) {
      StoredParam& mine = p.store.params()[i];
      if (mine.grad.empty()) continue;
      std::vector<float> g = random_floats(static_cast<int64_t>(mine.grad.size()), rng);
      p.store.write(mine.grad, g);
      p.ref_store.write(p.ref_store.params()[i].grad, g);
    }
    SgdOptions so;
    so.lr = 0.5;
    Sgd(p.store.backend(), p.store.weight_slots(), so).step();
    Sgd(p.ref_store.backend(), p.ref_store.weight_slots(), so).step();
    check_same(p, 3);
    // A training run updates the running statistics in place: the same batch in both.
    PlanOptions training;
    training.training = true;
    training.batch = 2;
    Executor train_fused(compile_plan(net, training), p.store, 0);
    Executor train_ref(compile_plan(net, training), p.ref_store, 0);
    std::vector<float> images = random_floats(2 * 3 * 9 * 9, rng);
    std::vector<int32_t> labels{1, 4};
    train_fused.run(images.data(), labels.data(), 2);
    train_ref.run(images.data(), labels.data(), 2);
    check_same(p, 4);
  }
}

TEST_CASE("backend writes advance the buffer's generation", "[backend]") {
  for (const char* name : {"cpu", "jit"}) {
    INFO("backend " << name);
    std::shared_ptr<Backend> b = make_backend(name);
    DeviceBuffer x(*b, 4), y(*b, 4), m(*b, 4), v(*b, 4);
    uint64_t last = x.generation();
    auto advanced = [&](const DeviceBuffer& buf) {
      const bool moved = buf.generation() != last;
      last = buf.generation();
      return moved;
    };
    upload_floats(*b, x, {1, 2, 3, 4});
    CHECK(advanced(x));
    b->fill(x, 1.0f);
    CHECK(advanced(x));
    b->scale(x, 2.0f);
    CHECK(advanced(x));
    b->axpy(x, 1.0f, y);
    CHECK(advanced(x));
    b->copy(x, y);
    CHECK(advanced(x));
    b->sgd_update(SgdUpdate{0.1f}, x, y, nullptr);
    CHECK(advanced(x));
    b->adam_update(AdamUpdate{}, x, y, m, v);
    CHECK(advanced(x));
    (void)download_floats(*b, x);
    CHECK_FALSE(advanced(x));  // reading is no write
  }
}
