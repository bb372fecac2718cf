// The executor end to end: networks written in .nas, compiled to training plans (autodiff,
// fwd+bwd memory plan, lowering) and run on the default (CPU) backend. Every parameter gradient
// (and alpha's, in full mode) is checked against central finite differences of the loss the same
// plan computes; the live mask of a sampled sub-network is checked against the specialised network;
// inference at batch 1 against evaluation at batch B.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "compiler/passes/derive_arch.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/exec/executor.h"
#include "tests/cpu_test_util.h"
#include "tests/gradient_check_util.h"
#include "tests/ir_test_util.h"

using namespace nas;
using nas::test::compile_source;

namespace {

Graph example(const std::string& file) {
  Diagnostics diags;
  Compilation c = compile_file(std::string(NASC_SOURCE_DIR) + "/examples/" + file, {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  return *c.supernet;
}

struct Batch {
  std::vector<float> images;
  std::vector<int32_t> labels;
};

Batch random_batch(const ExecPlan& plan, uint32_t seed) {
  std::mt19937 rng(seed);
  int64_t per = 1;
  for (int64_t d : plan.input_shape) per *= d;
  Batch b;
  b.images = test::random_floats(plan.batch * per, rng);
  std::uniform_int_distribution<int> label(0, static_cast<int>(plan.classes) - 1);
  for (int64_t i = 0; i < plan.batch; ++i) b.labels.push_back(label(rng));
  return b;
}

// The plan's gradients on one batch against central differences (check_store_gradients).
void check_gradients(Executor& ex, ParamStore& store, const Batch& b, int per_tensor = 5) {
  const int64_t n = ex.batch();
  auto loss = [&] {
    // Gradients accumulate, but they are not read here.
    return ex.run(b.images.data(), b.labels.data(), n).loss_sum / n;
  };
  std::mt19937 rng(7);
  test::check_store_gradients(store, loss, rng, per_tensor);
}

void check_network_gradients(const Graph& net, int64_t batch = 4, bool arch_grads = false) {
  PlanOptions o;
  o.batch = batch;
  o.training = true;
  o.arch_grads = arch_grads;
  ParamStore store;
  Executor ex(compile_plan(net, o), store, 3);
  // Non-zero BN affine and alpha values, so their gradients are not at a special point.
  std::mt19937 rng(11);
  for (StoredParam& p : store.params())
    if (p.spec.trainable && p.spec.init != ParamInit::KaimingUniform) {
      std::vector<float> value = store.read(p.value);
      for (float& v : value) v += std::uniform_real_distribution<float>(-0.3f, 0.3f)(rng);
      store.write(p.value, value);
    }
  for (StoredArch& a : store.arch()) {
    std::vector<float> alpha(a.alpha.size());
    for (float& v : alpha) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    store.write(a.alpha, alpha);
  }
  check_gradients(ex, store, random_batch(ex.plan(), 5));
}

// A stem conv (so the op's input needs a gradient), the op, and a linear classifier.
std::string op_network(const std::string& op_line, const std::string& input = "[3, 8, 8]",
                       const std::string& tail = "h = global_avg_pool(h);") {
  return "network op_test(x: tensor" + input + ") {\n  let h = conv(x, 4, kernel=3, pad=1);\n  " +
         op_line + "\n  " + tail + "\n  return linear(h, 5);\n}\n";
}

}  // namespace

TEST_CASE("executor: whole-network gradient check on tiny.nas, every candidate",
          "[executor][grad]") {
  Graph supernet = example("tiny.nas");
  for (const char* op : {"conv", "max_pool", "identity"}) {
    DYNAMIC_SECTION(op) {
      Diagnostics diags;
      auto sel = parse_arch(supernet, "arch.json",
                            std::string(R"({"choices": {"op": ")") + op + "\"}}", diags);
      REQUIRE(sel);
      check_network_gradients(specialise(supernet, *sel));
    }
  }
}

TEST_CASE("executor: tiny.nas supernet in full mode, alpha gradients", "[executor][grad]") {
  check_network_gradients(example("tiny.nas"), 4, true);
}

TEST_CASE("executor: gradient check of every op inside a network", "[executor][grad]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"relu", "h = relu(h);"},
      {"relu6", "h = relu6(mul(h, 4.0));"},
      {"leaky_relu", "h = leaky_relu(h, slope=0.2);"},
      {"sigmoid", "h = sigmoid(h);"},
      {"hard_swish", "h = hard_swish(mul(h, 3.0));"},
      {"hard_sigmoid", "h = hard_sigmoid(mul(h, 3.0));"},
      {"max_pool", "h = max_pool(h, 3, stride=2, pad=1);"},
      {"avg_pool", "h = avg_pool(h, 3, stride=1, pad=1, count_include_pad=false);"},
      {"batchnorm", "h = batchnorm(h);"},
      {"batchnorm_plain", "h = batchnorm(h, affine=false);"},
      {"conv_strided_dilated", "h = conv(h, 6, kernel=3, stride=2, pad=2, dilation=2, bias=true);"},
      {"conv_grouped", "h = conv(h, 4, kernel=1, groups=2);"},
      {"dwconv", "h = dwconv(h, 3, pad=1, multiplier=2, bias=true);"},
      {"concat", "h = concat(h, relu(h));"},
      {"add", "h = add(h, conv(h, 4, kernel=1), mul(h, -0.5));"},
      {"crop", "h = crop(h, top=1, left=1, bottom=0, right=2);"},
      {"zero", "h = add(h, zero(h));"},
      {"dropout", "h = dropout(h, p=0.3);"},
      {"mul_per_channel_first", "h = sigmoid(global_avg_pool(h)) * h;"},
      {"mul_by_c11", "h = h * sigmoid(conv(avg_pool(h, 8), 4, kernel=1));"},
      {"mul_c11_first", "h = hard_sigmoid(conv(avg_pool(h, 8), 4, kernel=1)) * h;"},
  };
  for (const auto& [name, line] : cases) {
    DYNAMIC_SECTION(name) {
      check_network_gradients(compile_source(op_network(line)));
    }
  }
  SECTION("flatten + linear") {
    check_network_gradients(
        compile_source(op_network("h = max_pool(h, 2);", "[3, 8, 8]", "h = flatten(h);")));
  }
  SECTION("batchnorm on a vector") {
    check_network_gradients(compile_source(
        op_network("h = global_avg_pool(h);", "[3, 8, 8]", "h = batchnorm(linear(h, 6));")));
  }
}

TEST_CASE("executor: a sampled sub-network through the live mask equals the specialised network",
          "[executor]") {
  Graph supernet = example("tiny.nas");
  PlanOptions o;
  o.batch = 4;
  ParamStore store;
  Executor super(compile_plan(supernet, o), store, 1);
  Batch b = random_batch(super.plan(), 9);
  for (int c = 0; c < 3; ++c) {
    Selection sel;
    sel.chosen = {{c}};
    Graph fixed = specialise(supernet, sel);
    Executor alone(compile_plan(fixed, o), store, 1);
    super.use_selection(sel.chosen);
    super.set_live_mask(live_mask(supernet, sel));
    std::vector<float> a(4 * 10), z(4 * 10);
    RunResult ra = super.run(b.images.data(), b.labels.data(), 4, a.data());
    RunResult rz = alone.run(b.images.data(), b.labels.data(), 4, z.data());
    CHECK(ra.loss_sum == Approx(rz.loss_sum).epsilon(1e-6));
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(z[i]).margin(1e-6));
    // Pruned candidates did not run: fewer steps than the full supernet.
    CHECK(super.steps_run() < static_cast<int64_t>(super.plan().steps.size()));
  }
}

TEST_CASE("executor: executors that share an arena never hold two at once", "[executor]") {
  Graph supernet = example("tiny.nas");
  PlanOptions train, eval;
  train.batch = eval.batch = 16;
  train.training = true;
  ParamStore store;
  const MemoryUse before = store.backend().memory_use();
  Executor trainer(compile_plan(supernet, train), store, 1);
  Executor evaluator(compile_plan(supernet, eval), store, 1);
  Executor alone(compile_plan(supernet, eval), store, 1);
  Executor::share_arena(trainer, evaluator);
  Batch b = random_batch(trainer.plan(), 3);
  std::vector<float> shared(16 * 10), own(16 * 10);
  trainer.run(b.images.data(), b.labels.data(), 16);
  evaluator.run(b.images.data(), b.labels.data(), 16, shared.data());
  trainer.run(b.images.data(), b.labels.data(), 16);  // overwrites the shared arena
  alone.run(b.images.data(), b.labels.data(), 16, own.data());
  CHECK(shared == own);
  // The trainer's arena (the larger) and the lone evaluator's, never the shared one's too.
  const size_t held = store.backend().memory_use().peak - before.current;
  CHECK(held >= static_cast<size_t>(trainer.arena_bytes() + alone.arena_bytes()));
  CHECK(held <
        static_cast<size_t>(trainer.arena_bytes() + alone.arena_bytes() + evaluator.arena_bytes()));
  // A third executor may use the trainer's arena too; but the trainer, which lends its
  // arena, may not then use a larger plan's: its borrowers would lose theirs.
  Executor third(compile_plan(supernet, eval), store, 1);
  CHECK_NOTHROW(Executor::share_arena(third, trainer));
  PlanOptions larger_batch = train;
  larger_batch.batch = 32;
  Executor larger(compile_plan(supernet, larger_batch), store, 1);
  CHECK_THROWS_AS(Executor::share_arena(larger, trainer), InternalError);
}

TEST_CASE("executor: an inference plan at batch 1 agrees with evaluation at batch 4",
          "[executor]") {
  Graph net = compile_source(op_network("h = batchnorm(relu(h));"));
  ParamStore store;
  PlanOptions train;
  train.batch = 4;
  train.training = true;
  Executor trainer(compile_plan(net, train), store, 2);
  Batch b = random_batch(trainer.plan(), 4);
  trainer.run(b.images.data(), b.labels.data(), 4);  // updates the running statistics
  PlanOptions eval4, eval1;
  eval4.batch = 4;
  Executor e4(compile_plan(net, eval4), store);
  Executor e1(compile_plan(net, eval1), store);
  std::vector<float> l4(4 * 5), l1(5);
  e4.run(b.images.data(), b.labels.data(), 4, l4.data());
  const int64_t per = 3 * 8 * 8;
  for (int i = 0; i < 4; ++i) {
    e1.run(b.images.data() + i * per, b.labels.data() + i, 1, l1.data());
    for (int k = 0; k < 5; ++k) CHECK(l1[k] == Approx(l4[i * 5 + k]).margin(1e-5));
  }
  // A partial batch: rows past `samples` are padding and do not count.
  RunResult r = e4.run(b.images.data(), b.labels.data(), 3);
  CHECK(r.samples == 3);
}

TEST_CASE("executor: a plan without a loss hands back its output as the logits", "[executor]") {
  Graph net = compile_source(op_network("h = relu(h);"));
  ParamStore store;
  PlanOptions eval, forward;
  eval.batch = forward.batch = 4;
  forward.loss = false;
  Executor with_loss(compile_plan(net, eval), store);
  Executor without(compile_plan(net, forward), store);
  Batch b = random_batch(with_loss.plan(), 6);
  const float stale = 1234.5f;  // what a buffer nobody wrote would hand back
  std::vector<float> want(4 * 5, stale), got(4 * 5, stale);
  with_loss.run(b.images.data(), b.labels.data(), 4, want.data());
  without.run(b.images.data(), nullptr, 4, got.data());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO(i);
    CHECK(want[i] != stale);
    CHECK(got[i] == Approx(want[i]).margin(1e-6));
  }
}

TEST_CASE("executor: bad runs are refused", "[executor]") {
  Graph net = compile_source(op_network("h = relu(h);"));
  ParamStore store;
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  Executor ex(compile_plan(net, o), store);
  Batch b = random_batch(ex.plan(), 1);
  CHECK_THROWS_WITH(ex.run(b.images.data(), b.labels.data(), 1),
                    Catch::Contains("needs a full batch of 2"));
  CHECK_THROWS_WITH(ex.run(b.images.data(), b.labels.data(), 3), Catch::Contains("1..2"));
  // A store built for another network refuses the same names with other shapes.
  Graph wider = compile_source(op_network("h = relu(h);", "[5, 8, 8]"));
  CHECK_THROWS_WITH(Executor(compile_plan(wider, o), store), Catch::Contains("in the store but"));
}

TEST_CASE(
    "executor: an alpha-only plan gives the alpha gradients of the full plan, in a "
    "shared arena",
    "[executor][grad]") {
  Graph supernet = example("tiny.nas");
  PlanOptions both, alpha_only;
  both.batch = alpha_only.batch = 4;
  both.training = alpha_only.training = true;
  both.arch_grads = alpha_only.arch_grads = true;
  alpha_only.weight_grads = false;
  ParamStore store;
  Executor full(compile_plan(supernet, both), store, 1);
  Executor alpha(compile_plan(supernet, alpha_only), store, 1);
  CHECK(alpha.plan().steps.size() < full.plan().steps.size());
  Executor::share_arena(full, alpha);
  for (StoredArch& a : store.arch()) store.write(a.alpha, {0.3f, -0.2f, 0.1f});
  Batch b = random_batch(full.plan(), 21);
  store.zero_grads();
  full.run(b.images.data(), b.labels.data(), 4);
  std::vector<float> want = store.read(store.arch()[0].alpha_grad);
  store.zero_grads();
  alpha.run(b.images.data(), b.labels.data(), 4);
  const std::vector<float> got = store.read(store.arch()[0].alpha_grad);
  for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-6));
  for (const StoredParam& p : store.params())
    if (!p.grad.empty())
      for (float g : store.read(p.grad)) REQUIRE(g == 0.0f);  // no weight gradients
  CHECK(std::abs(want[0]) + std::abs(want[1]) + std::abs(want[2]) > 0);
}

TEST_CASE("executor: steps grouped into regions under one guard run as the steps do",
          "[executor]") {
  Graph supernet = example("tiny.nas");
  PlanOptions o;
  o.batch = 4;
  o.training = true;
  o.arch_grads = true;
  ExecPlan plan = compile_plan(supernet, o);
  REQUIRE(plan.regions.empty());  // lowering emits one step per region
  // Every run of consecutive steps with one guard as one region, as a fusing JIT would.
  ExecPlan grouped = plan;
  for (size_t i = 0; i < grouped.steps.size(); ++i) {
    const int guard = grouped.steps[i].guard;
    if (!grouped.regions.empty() && grouped.regions.back().guard == guard)
      ++grouped.regions.back().count;
    else
      grouped.regions.push_back({static_cast<int>(i), 1, guard});
  }
  REQUIRE(grouped.regions.size() < grouped.steps.size());
  ParamStore one, many;
  Executor per_step(plan, one, 3), per_region(grouped, many, 3);
  CHECK(per_step.regions().size() == plan.steps.size());
  CHECK(per_region.regions().size() == grouped.regions.size());
  Batch b = random_batch(plan, 8);
  auto same_results = [&] {
    one.zero_grads();
    many.zero_grads();
    RunResult r1 = per_step.run(b.images.data(), b.labels.data(), 4);
    RunResult r2 = per_region.run(b.images.data(), b.labels.data(), 4);
    CHECK(r1.loss_sum == r2.loss_sum);
    CHECK(per_step.steps_run() == per_region.steps_run());
    for (size_t i = 0; i < one.params().size(); ++i)
      if (!one.params()[i].grad.empty())
        CHECK(one.read(one.params()[i].grad) == many.read(many.params()[i].grad));
    CHECK(one.read(one.arch()[0].alpha_grad) == many.read(many.arch()[0].alpha_grad));
  };
  same_results();  // full mode
  Selection sel;
  sel.chosen = {{1}};
  for (Executor* ex : {&per_step, &per_region}) {
    ex->use_selection(sel.chosen);
    ex->set_live_mask(live_mask(supernet, sel));
  }
  same_results();  // a sampled path: masked regions are skipped whole
  CHECK(per_region.steps_run() < static_cast<int64_t>(plan.steps.size()));

  // A region must hold steps of one guard, and the regions must cover the plan in order.
  ParamStore store;
  ExecPlan mixed = plan;
  mixed.regions = {{0, static_cast<int>(plan.steps.size()), -1}};
  CHECK_THROWS_WITH(Executor(mixed, store), Catch::Contains("another guard than its region"));
  ExecPlan gap = grouped;
  gap.regions.erase(gap.regions.begin() + 1);
  CHECK_THROWS_WITH(Executor(gap, store), Catch::Contains("does not continue at step"));
}

TEST_CASE("executor: every value carries a dtype and a layout the backend can hold", "[executor]") {
  Graph net = compile_source(op_network("h = relu(h);"));
  PlanOptions o;
  o.batch = 2;
  ExecPlan plan = compile_plan(net, o);
  for (const ValueSlot& v : plan.values) {
    CHECK(v.dtype == DType::F32);
    CHECK(v.layout == Layout::NCHW);
  }
  ParamStore store;
  plan.values[1].dtype = DType::BF16;
  CHECK_THROWS_WITH(Executor(plan, store), Catch::Contains("cannot hold value 1 as bf16 nchw"));
  plan.values[1].dtype = DType::F32;
  plan.values[1].layout = Layout::NChw16c;
  CHECK_THROWS_AS(Executor(plan, store), InternalError);
}
