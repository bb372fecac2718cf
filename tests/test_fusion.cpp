// The fusion pass (compiler/passes/fusion.h) IR in, regions out; the memory plan and the
// lowered plan it leads to; and fused plans run by the CPU backend against the unfused
// reference (PlanOptions::fusion = false): random elementwise chains, a DARTS supernet in
// full mode and PNAS-style sampled paths under live masks, losses, logits and every
// gradient (weights and alphas) equal within float32 rounding.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "compiler/ir/op_registry.h"
#include "compiler/lowering/lower.h"
#include "compiler/passes/autodiff.h"
#include "compiler/passes/fusion.h"
#include "compiler/passes/live_mask.h"
#include "compiler/passes/memory_plan.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/estimate/signature.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/region_programs.h"
#include "runtime/jit/jit_plan.h"
#include "tests/cpu_test_util.h"
#include "tests/ir_test_util.h"
#include "tests/plan_compare_util.h"
#include "tests/thread_collectives.h"

using namespace nas;
using nas::test::compile_source;
using nas::test::parse_ir_text;
using namespace nas::test;

namespace {

// "%5 <- %2 %3 %4 reads %1" per region: members and reads, for compact expectations.
std::vector<std::string> region_texts(const FusionPlan& plan) {
  std::vector<std::string> out;
  for (const FusedRegion& r : plan.regions) {
    std::string t = "%" + std::to_string(r.root()) + " <-";
    for (size_t i = 0; i + 1 < r.nodes.size(); ++i) t += " %" + std::to_string(r.nodes[i]);
    t += " reads";
    for (int in : r.reads) t += " %" + std::to_string(in);
    out.push_back(t);
  }
  return out;
}

const char* kChain = R"(network net() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]
  %1 = conv(%0) {kernel=1, out=2} : [2,4,4]
  %2 = relu(%1) : [2,4,4]
  %3 = mul(%2) {scale=0.5} : [2,4,4]
  %4 = sigmoid(%3) : [2,4,4]
  %5 = add(%4, %1) : [2,4,4]
  %6 = conv(%5) {kernel=1, out=2} : [2,4,4]
  %7 = relu(%6) : [2,4,4]
  %8 = conv(%7) {kernel=1, out=2} : [2,4,4]
  %9 = add(%7, %8) : [2,4,4]
  %10 = flatten(%9) : [32]
  return %10
}
)";

}  // namespace

TEST_CASE("fusion: a chain of elementwise nodes is one region, read once", "[fusion]") {
  Graph g = parse_ir_text(kChain);
  FusionPlan plan = plan_fusion(g);
  // relu, mul, sigmoid and add: each read only by the next. The conv %1 has two consumers,
  // so it starts no conv epilogue. %7 has two consumers (a conv and the add), so it is
  // stored: the conv %6 takes it as its epilogue and stops there, and the conv %8 takes
  // the add %9 (whose other operand is %7).
  CHECK(region_texts(plan) == std::vector<std::string>{"%5 <- %2 %3 %4 reads %1",
                                                       "%7 <- %6 reads %5", "%9 <- %8 reads %7"});
  CHECK(plan.internal(2));
  CHECK(plan.internal(4));
  CHECK_FALSE(plan.internal(5));
  CHECK(plan.step_of(3) == 5);
  CHECK(plan.regions[0].kind == RegionKind::Elementwise);
  CHECK(plan.regions[1].kind == RegionKind::ConvEpilogue);
  CHECK(plan.regions[2].kind == RegionKind::ConvEpilogue);
  CHECK_FALSE(plan.internal(7));
  CHECK(print_fusion(g, plan).find("fused #0 %5 add <- %2 relu, %3 mul, %4 sigmoid  reads [%1]\n"
                                   "fused #1 %7 relu <- %6 conv  reads [%5]  conv epilogue\n"
                                   "fused #2 %9 add <- %8 conv  reads [%7]  conv epilogue\n"
                                   "fused: 3 regions, 8 nodes, 5 values not stored\n") !=
        std::string::npos);
}

TEST_CASE("fusion: candidates stay outside their choice, choices join the node sum", "[fusion]") {
  // Two edges, each a choice of relu or sigmoid of one input; the node sums both edges.
  Graph g = parse_ir_text(R"(network net() {
  %0 = input() {shape=[2,4,4]} : [2,4,4]
  %1 = conv(%0) {kernel=1, out=2} : [2,4,4]
  %2 = relu(%1) : [2,4,4]
  %3 = sigmoid(%1) : [2,4,4]
  %4 = choice(%2, %3) {candidates=["relu","sigmoid"], k=1, key="e0"} : [2,4,4]
  %5 = mul(%1) {scale=2.0} : [2,4,4]
  %6 = choice(%5, %2) {candidates=["double","relu"], k=1, key="e1"} : [2,4,4]
  %7 = add(%4, %6) : [2,4,4]
  %8 = flatten(%7) : [32]
  return %8
}
arch "e0" k=1 candidates=["relu","sigmoid"] nodes=[%4]
arch "e1" k=1 candidates=["double","relu"] nodes=[%6]
)");
  FusionPlan plan = plan_fusion(g);
  // The candidates' liveness differs from the choice's (an unselected one does not run),
  // so none of them is fused into a choice. Both choices are read only by the add, but %5
  // runs between %4 and the add: fused, %4's candidates would stay live across it.
  CHECK(region_texts(plan) == std::vector<std::string>{"%7 <- %6 reads %5 %2 %4"});
  // With the candidates first, both choices join.
  std::swap(g.nodes[4].inputs, g.nodes[5].inputs);
  std::swap(g.nodes[4].op, g.nodes[5].op);
  std::swap(g.nodes[4].attrs, g.nodes[5].attrs);
  g.nodes[6].inputs = {4, 2};
  g.nodes[7].inputs = {5, 6};
  g.arch[0].nodes = {5};
  CHECK(region_texts(plan_fusion(g)) == std::vector<std::string>{"%7 <- %5 %6 reads %2 %3 %4"});
}

TEST_CASE("fusion: the backward pass fuses too, but never across the loss", "[fusion]") {
  Graph net = compile_source(R"(network n(x: tensor[2, 4, 4]) {
  let h = conv(x, 3, kernel=3, pad=1);
  let r = mul(mul(relu(h), scale=0.5), scale=2.0);
  return linear(flatten(conv(r, 2, kernel=1)), 4);
}
)");
  Graph train = build_training_graph(execution_graph(net), {});
  FusionPlan plan = plan_fusion(train);
  int loss = -1;
  for (const Node& n : train.nodes)
    if (n.op->loss) loss = n.id;
  REQUIRE(loss > 0);
  INFO(print_fusion(train, plan));
  // Forward: relu, mul, mul (relu's gradient reads its input h, the muls' gradients read
  // nothing of the forward pass). Backward: the muls' gradients (muls again) and relu's,
  // read only by one another down to the conv's weight gradient.
  REQUIRE(plan.regions.size() == 2);
  const FusedRegion &fwd = plan.regions[0], &bwd = plan.regions[1];
  CHECK(fwd.nodes.size() == 3);
  CHECK(fwd.root() < loss);
  CHECK(train.nodes[fwd.root()].op->name == "mul");
  CHECK(bwd.nodes.size() == 3);
  CHECK(bwd.nodes.front() > loss);
  CHECK(train.nodes[bwd.root()].op->name == "activation_grad");
  // A region's members other than its root are read by nothing outside it.
  for (const Node& n : train.nodes)
    for (int in : n.inputs)
      if (plan.internal(in)) CHECK(plan.region_of[n.id] == plan.region_of[in]);
}

// fmnist_cnn's head: a ReLU, then dropout, between two linear layers.
const char* kDropoutHead = R"(network head(x: tensor[2, 6, 6]) {
  let h = relu(conv(x, 4, kernel=3, pad=1));
  h = dropout(relu(linear(flatten(h), 24)), p=0.4);
  return linear(h, 3);
}
)";

TEST_CASE(
    "fusion: dropout joins regions in training, forward and backward, and stays a view at "
    "inference",
    "[fusion]") {
  Graph net = compile_source(kDropoutHead);
  Graph train = build_training_graph(execution_graph(net), {});
  FusionPlan plan = plan_fusion(train);
  const std::string text = print_fusion(train, plan);
  INFO(text);
  // Forward: the ReLU, read only by the dropout, runs inside it (its gradient reads the
  // linear layer's output, not its own). Backward: the dropout's gradient, read only by the
  // ReLU's, runs inside it.
  int forward = -1, backward = -1;
  for (size_t r = 0; r < plan.regions.size(); ++r) {
    const FusedRegion& region = plan.regions[r];
    std::vector<std::string> ops;
    for (int id : region.nodes) ops.push_back(train.nodes[id].op->name);
    if (ops == std::vector<std::string>{"relu", "dropout"}) forward = static_cast<int>(r);
    if (ops == std::vector<std::string>{"dropout_grad", "activation_grad"})
      backward = static_cast<int>(r);
  }
  REQUIRE(forward >= 0);
  REQUIRE(backward >= 0);
  CHECK(plan.regions[forward].kind == RegionKind::Elementwise);
  CHECK(plan.internal(plan.regions[forward].nodes[0]));
  CHECK(plan.internal(plan.regions[backward].nodes[0]));
  // Lowered, both dropout operations draw the forward dropout node's mask.
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  ExecPlan lowered = compile_plan(net, o);
  int dropout_ops = 0;
  for (const Step& s : lowered.steps)
    for (const RegionOp& op : s.region)
      if (op.kind == StepKind::Dropout || op.kind == StepKind::DropoutGrad) {
        ++dropout_ops;
        CHECK(lowered.steps[op.fwd_node].op == "dropout");
        CHECK(op.param == 0.4);
      }
  CHECK(dropout_ops == 2);
  CHECK(lowered.num_states == 0);  // no saved mask
  // At inference dropout is a view of its input: in no region.
  Graph inference = execution_graph(net);
  FusionPlan at_inference = plan_fusion(inference);
  for (const Node& n : inference.nodes)
    if (n.op->name == "dropout") CHECK(at_inference.region_of[n.id] < 0);
}

// DARTS' FactorizedReduce between two layers, and a crop inside an elementwise chain with
// chain nodes before and after it.
const char* kFactorizedReduce = R"(import "ops.nas";
network reduce(x: tensor[3, 8, 8]) {
  let h = conv(x, 4, kernel=3, pad=1);
  return linear(global_avg_pool(factorized_reduce(h, 6)), 3);
}
)";
const char* kCropChain = R"(network cropped(x: tensor[3, 9, 7]) {
  let s = conv(x, 4, kernel=1, pad=0, stride=1);
  let h = crop(relu(s) * 1.5, top=2, left=1, bottom=1, right=3);
  h = sigmoid(h + crop(s, top=1, left=0, bottom=2, right=4));
  return linear(flatten(h), 3);
}
)";

TEST_CASE("fusion: a crop runs inside its region, a crop_grad pads inside the gradient's",
          "[fusion]") {
  Graph net = compile_source(kFactorizedReduce);
  Graph train = build_training_graph(execution_graph(net), {});
  FusionPlan plan = plan_fusion(train);
  INFO(print_fusion(train, plan));
  // The shifted branch's padded gradient, the sum with the other branch's and the ReLU's
  // gradient: one region, the crop_grad reading the conv's data gradient through its window.
  bool found = false;
  for (const FusedRegion& region : plan.regions) {
    std::vector<std::string> ops;
    for (int id : region.nodes) ops.push_back(train.nodes[id].op->name);
    if (std::find(ops.begin(), ops.end(), "crop_grad") == ops.end()) continue;
    found = true;
    CHECK(ops.back() == "activation_grad");
    CHECK(std::find(ops.begin(), ops.end(), "add") != ops.end());
    CHECK(plan.internal(region.nodes.front()));
    const Node& pad = train.nodes[region.nodes.front()];
    REQUIRE(pad.op->name == "crop_grad");
    CHECK(std::find(region.reads.begin(), region.reads.end(), pad.inputs[0]) != region.reads.end());
  }
  CHECK(found);
  // The forward crop there reads a ReLU that the other branch reads too: no region.
  for (const Node& n : train.nodes)
    if (n.op->name == "crop") CHECK(plan.region_of[n.id] < 0);

  // A chain through crops: the ReLU and the mul run at the first crop's window; the second
  // crop, the sum and the sigmoid form another region (one window per region), which reads
  // s through the second crop's window.
  Graph chain = execution_graph(compile_source(kCropChain));
  FusionPlan chained = plan_fusion(chain);
  INFO(print_fusion(chain, chained));
  int crops_in_regions = 0;
  for (const FusedRegion& region : chained.regions) {
    int crops = 0;
    for (int id : region.nodes) crops += chain.nodes[id].op->name == "crop";
    CHECK(crops <= 1);  // one window per region
    crops_in_regions += crops;
  }
  CHECK(crops_in_regions >= 2);
  // Lowered, the values of a region with a crop stay NCHW (the window is rows and columns).
  PlanOptions o;
  o.batch = 2;
  o.loss = false;
  ExecPlan lowered = compile_plan(compile_source(kCropChain), o);
  for (const ValueSlot& v : lowered.values) CHECK(v.layout == Layout::NCHW);
}

TEST_CASE("fusion: fused values get no buffer, reads inside a region last until its root",
          "[fusion][memory]") {
  Graph g = parse_ir_text(kChain);
  FusionPlan fused = plan_fusion(g);
  MemoryPlan with = plan_memory(g, 8, 4, &fused);
  MemoryPlan without = plan_memory(g, 8);
  CHECK(with.nodes[2].kind == StorageKind::Fused);
  CHECK(with.nodes[2].root == 5);
  CHECK(with.nodes[5].kind == StorageKind::Arena);
  // %1 is read by %2 (fused) and %5: live until the region runs at step 5.
  CHECK(with.buffers[with.nodes[1].buffer].last == 5);
  // The elementwise region's three members and the two conv epilogues' convs.
  CHECK(with.buffers.size() == without.buffers.size() - 5);
  CHECK(with.naive_bytes < without.naive_bytes);
  CHECK(with.peak_bytes <= without.peak_bytes);
  CHECK(check_plan(g, with, &fused).empty());
  // The same plan checked as if unfused is wrong: the storage differs.
  CHECK_FALSE(check_plan(g, with).empty());
  CHECK(print_plan(g, with).find("%3 mul -> fused into %5\n") != std::string::npos);

  ExecPlan plan = lower(g, with, &fused);
  CHECK(plan.steps[2].kind == StepKind::Fused);
  CHECK(plan.steps[2].index == 5);
  const Step& root = plan.steps[5];
  REQUIRE(root.kind == StepKind::ElementwiseRegion);
  CHECK(root.inputs == std::vector<int>{1});
  REQUIRE(root.region.size() == 4);
  CHECK(root.region[0].kind == StepKind::Activation);
  CHECK(root.region[0].operands == std::vector<int>{0});
  CHECK(root.region[1].kind == StepKind::Scale);
  CHECK(root.region[1].scale == 0.5);
  CHECK(root.region[1].operands == std::vector<int>{-1});
  CHECK(root.region[2].op == "sigmoid");
  CHECK(root.region[3].kind == StepKind::Add);
  CHECK(root.region[3].operands == std::vector<int>{-3, 0});
  CHECK(plan.values[3].storage == ValueStorage::None);
}

TEST_CASE("fusion: the pipeline option turns it off", "[fusion]") {
  Graph g = parse_ir_text(kChain);
  PipelineOptions o;
  o.plan.loss = false;
  o.plan.batch = 2;
  Diagnostics diags;
  PipelineResults on = run_pipeline_from(g, Stage::Cse, o, diags);
  REQUIRE(on.ok);
  REQUIRE(on.fusion);
  CHECK(on.fusion->regions.size() == 3);  // one elementwise region, two conv epilogues
  CHECK(on.plan->steps[5].kind == StepKind::ElementwiseRegion);
  o.plan.fusion = false;
  PipelineResults off = run_pipeline_from(g, Stage::Cse, o, diags);
  REQUIRE(off.ok);
  CHECK_FALSE(off.fusion);
  CHECK(off.plan->steps[5].kind == StepKind::Add);
  CHECK(off.memory->peak_bytes >= on.memory->peak_bytes);
  CHECK(dump_stage(on, Stage::Fusion, {}).find("fused #0") == std::string::npos);  // not last
}

// --- Fused plans against the unfused reference ----------------------------------------------

// The fused plans run by the interpreter and by the JIT (whose regions are generated code),
// each against the unfused plan on the interpreter.
TEST_CASE("fusion: random elementwise chains, fused plans equal unfused ones", "[fusion][exec]") {
  std::mt19937 rng(2024);
  for (int round = 0; round < 12; ++round) {
    const std::string source = random_chain(rng, 2 + round % 6);
    INFO(source);
    Graph net = compile_source(source);
    for (bool training : {true, false})
      for (const char* backend : {"cpu", "jit"}) {
        INFO("backend " << backend << (training ? ", training" : ", inference"));
        PlanOptions o;
        o.batch = 3;
        o.training = training;
        Pair p(backend);
        make_pair(p, net, o);
        check_same(p, 100 + round);
      }
  }
}

TEST_CASE("fusion: a large chain runs in several blocks", "[fusion][exec]") {
  // 48 x 40 x 40 x batch 2 = 153,600 elements: four blocks and a tail on the interpreter,
  // every thread's chunk and a scalar tail in the JIT's code.
  Graph net = compile_source(R"(network big(x: tensor[3, 40, 40]) {
  let s = conv(x, 48, kernel=1);
  let h = sigmoid(relu(conv(x, 48, kernel=1)) * 0.5 + s);
  h = silu(h) * s;
  return linear(global_avg_pool(h), 3);
}
)");
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  for (const char* backend : {"cpu", "jit"}) {
    INFO("backend " << backend);
    Pair p(backend);
    make_pair(p, net, o);
    CHECK(fused_steps(p.fused->plan()) >= 2);
    check_same(p, 5);
    // Step by step (as profiling runs it): the JIT's regions through their entries.
    p.fused->set_step_timing(true);
    check_same(p, 6);
  }
}

TEST_CASE("fusion: dropout inside regions draws the unfused plan's masks", "[fusion][exec]") {
  // The head above, and dropout on a 16x32x32 image (49,152 elements at batch 3: two
  // blocks of the interpreter's regions and a tail, samples crossing block boundaries).
  const std::string large = R"(network large(x: tensor[3, 32, 32]) {
  let h = dropout(sigmoid(conv(x, 16, kernel=1)), p=0.25) * 2.0;
  return linear(global_avg_pool(h), 3);
}
)";
  for (const std::string& source : {std::string(kDropoutHead), large}) {
    Graph net = compile_source(source);
    PlanOptions o;
    o.batch = 3;
    o.training = true;
    for (const char* backend : {"cpu", "jit"}) {
      INFO(source << "backend " << backend);
      Pair p(backend);
      make_pair(p, net, o);
      size_t dropouts = 0;
      for (const Step& s : p.fused->plan().steps)
        for (const RegionOp& op : s.region) dropouts += op.op == "dropout";
      CHECK(dropouts == 2);
      p.fused->set_dropout_seed(77);
      p.plain->set_dropout_seed(77);
      check_same(p, 8);
      // Another seed draws other masks: the losses differ.
      p.fused->set_dropout_seed(78);
      CHECK(run_once(*p.fused, p.store, 8).loss != Approx(run_once(*p.plain, p.ref_store, 8).loss));
    }
  }
}

TEST_CASE("fusion: crops inside regions equal the unfused plan", "[fusion][exec]") {
  // The third: a crop's region over 64x48x24 at batch 2, several of the interpreter's
  // blocks, and rows cut at both ends.
  const std::string large = R"(network large(x: tensor[3, 30, 26]) {
  let s = conv(x, 64, kernel=1);
  let h = crop(silu(s), top=3, left=0, bottom=3, right=2);
  return linear(global_avg_pool(sigmoid(h) * crop(s, top=1, left=1, bottom=5, right=1)), 3);
}
)";
  for (const std::string& source : {std::string(kFactorizedReduce), std::string(kCropChain), large})
    for (bool training : {true, false})
      for (const char* backend : {"cpu", "jit"}) {
        INFO(source << (training ? "training" : "inference") << " on " << backend);
        Graph net = compile_source(source);
        PlanOptions o;
        o.batch = 2;
        o.training = training;
        Pair p(backend);
        make_pair(p, net, o);
        size_t crops = 0;
        for (const Step& s : p.fused->plan().steps)
          for (const RegionOp& op : s.region)
            crops += op.kind == StepKind::Crop || op.kind == StepKind::CropGrad;
        // FactorizedReduce's forward crop reads a ReLU the other branch reads: alone.
        if (training || source != kFactorizedReduce) CHECK(crops >= 1);
        check_same(p, 21);
      }
}

TEST_CASE("fusion: data-parallel ranks draw the dropout masks one process draws",
          "[fusion][exec][parallel]") {
  Graph net = compile_source(kDropoutHead);
  for (const char* backend : {"cpu", "jit"}) {
    INFO("backend " << backend);
    PlanOptions whole_options;
    whole_options.batch = 4;
    whole_options.training = true;
    PlanOptions rank_options = whole_options;
    rank_options.batch = 2;
    std::mt19937 rng(5);
    const std::vector<float> images = random_floats(4 * 2 * 6 * 6, rng);
    const std::vector<int32_t> labels = {0, 2, 1, 2};
    ParamStore store(make_backend(backend));
    Executor whole(compile_plan(net, whole_options), store, 3);
    whole.set_dropout_seed(99);
    std::vector<float> want(4 * 3);
    whole.run(images.data(), labels.data(), 4, want.data());
    // Each rank's forward pass (no gradients, so no collective to wait on): one at a time,
    // since the CPU backends run one plan at a time in a process.
    ThreadGroup group(2);
    std::vector<float> joined;
    for (int rank = 0; rank < 2; ++rank) {
      ThreadCollectives collectives(group, rank);
      ParamStore rank_store(make_backend(backend));
      Executor part(compile_plan(net, rank_options), rank_store, 3);
      part.set_collectives(&collectives, false);
      part.set_forward_only(true);
      part.set_dropout_seed(99);
      std::vector<float> logits(2 * 3);
      part.run(images.data() + rank * 2 * 72, labels.data() + rank * 2, 2, logits.data());
      joined.insert(joined.end(), logits.begin(), logits.end());
    }
    check_close(joined, want, "logits of the ranks against one process");
  }
}

TEST_CASE("fusion: the DARTS supernet in full mode equals the unfused plan", "[fusion][exec]") {
  Diagnostics diags;
  CompileOptions co;
  Compilation c = compile_text("space.nas", R"(import "darts_ops.nas";
network small(x: tensor[1, 8, 8]) {
  let stem = batchnorm(conv(x, 12, kernel=3, pad=1, bias=false));
  let a = darts_cell(stem, stem, 4, false, false, steps=2, multiplier=2);
  let b = darts_cell(stem, a, 8, true, false, steps=2, multiplier=2);
  return linear(global_avg_pool(b), 3);
}
)",
                               co, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  o.arch_grads = true;
  Pair p;
  make_pair(p, *c.supernet, o);
  p.fused->use_full_choices();
  p.plain->use_full_choices();
  // The mixed ops' weighted sums fuse into the node sums (each node's last edge: the
  // others run earlier, see fusion.h).
  size_t fused_choices = 0;
  for (const Step& step : p.fused->plan().steps)
    fused_choices += step.op == "choice" && step.kind == StepKind::Fused;
  CHECK(fused_choices == 4);
  CHECK(fused_steps(p.fused->plan()) >= 4);
  // Candidates ending in a batch norm: their share of the node's gradient (w_i * dy) is
  // computed inside the batch norm's gradient.
  size_t weighted_batchnorm_grads = 0;
  for (const Step& step : p.fused->plan().steps)
    weighted_batchnorm_grads += step.kind == StepKind::BatchNormGrad && !step.region.empty() &&
                                step.region[0].kind == StepKind::ChoiceGradInput;
  CHECK(weighted_batchnorm_grads >= 8);
  // Each also takes its candidate's d/dw, which the choice_grad_arch steps then skip.
  size_t products = 0, skipped = 0;
  for (const Step& step : p.fused->plan().steps) {
    products += step.kind == StepKind::BatchNormGrad && step.region.size() == 3;
    if (step.kind == StepKind::ChoiceGradArch) skipped += step.region.size();
  }
  CHECK(products == weighted_batchnorm_grads);
  CHECK(skipped == products);
  check_same(p, 9);
}

TEST_CASE("fusion: sampled paths under live masks equal the unfused plan", "[fusion][exec]") {
  Diagnostics diags;
  Compilation c = compile_text("space.nas", kSmallDartsCell, {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  CompiledPlan compiled = compile_plan_keeping_graph(*c.supernet, o);
  Pair p;
  make_pair(p, *c.supernet, o);
  std::mt19937 rng(3);
  // Every edge `none` (candidate 0) first and last: the cell's inputs are then dead, and
  // its zeros must still be zeros (an executor once skipped a Zero whose input was dead,
  // leaving the previous run's bytes in its buffer for the choice to read).
  for (int round = 0; round < 8; ++round) {
    Selection sel = random_selection(compiled.exec.arch, round > 0 && round < 7 ? &rng : nullptr);
    for (Executor* ex : {p.fused.get(), p.plain.get()}) {
      ex->use_selection(sel.chosen);
      ex->set_live_mask(live_mask(compiled.exec, sel));
    }
    INFO("round " << round);
    check_same(p, 20 + round);
    // And both equal the specialised sub-network.
    Executor alone(compile_plan(specialise(*c.supernet, sel), o), p.store, 3);
    Outcome a = run_once(alone, p.store, 20 + round);
    Outcome f = run_once(*p.fused, p.store, 20 + round);
    CHECK(f.loss == Approx(a.loss).epsilon(1e-5));
    check_close(f.logits, a.logits, "logits against the specialised network");
  }
}

// --- Batch norm regions (training graphs) -----------------------------------------------------

namespace {

// conv, batchnorm, `activation`, conv: in training, the activation's gradient feeds the
// batch norm's.
std::string batchnorm_net(bool affine, const std::string& activation) {
  return "network n(x: tensor[2, 6, 6]) {\n  let h = batchnorm(conv(x, 3, kernel=3, pad=1), "
         "affine=" +
         std::string(affine ? "true" : "false") + ");\n  let r = " + activation +
         ";\n  return linear(flatten(conv(r, 2, kernel=1)), 4);\n}\n";
}

}  // namespace

TEST_CASE(
    "fusion: a training batch norm runs with its activation, its gradient with the "
    "activation's",
    "[fusion]") {
  Graph net = compile_source(batchnorm_net(false, "relu(h)"));
  Graph train = build_training_graph(execution_graph(net), {});
  FusionPlan plan = plan_fusion(train);
  INFO(print_fusion(train, plan));
  int bn = -1, relu = -1, act_grad = -1, bn_grad = -1;
  for (const Node& n : train.nodes) {
    if (n.op->name == "batchnorm") bn = n.id;
    if (n.op->name == "relu") relu = n.id;
    if (n.op->name == "activation_grad") act_grad = n.id;
    if (n.op->name == "batchnorm_grad") bn_grad = n.id;
  }
  REQUIRE(bn >= 0);
  REQUIRE(bn_grad >= 0);
  std::vector<const FusedRegion*> bn_regions;
  for (const FusedRegion& r : plan.regions)
    if (r.kind == RegionKind::BatchNorm || r.kind == RegionKind::BatchNormGrad)
      bn_regions.push_back(&r);
  REQUIRE(bn_regions.size() == 2);
  const FusedRegion &fwd = *bn_regions[0], &bwd = *bn_regions[1];
  CHECK(fwd.kind == RegionKind::BatchNorm);
  CHECK(fwd.nodes == std::vector<int>{bn, relu});
  // The batch norm's output is read by its gradient (from the output, not affine) and the
  // ReLU's: stored, not internal.
  CHECK(fwd.stored == std::vector<int>{bn});
  CHECK_FALSE(plan.internal(bn));
  CHECK(plan.step_of(bn) == relu);
  CHECK(bwd.kind == RegionKind::BatchNormGrad);
  CHECK(bwd.nodes == std::vector<int>{act_grad, bn_grad});
  CHECK(bwd.stored.empty());
  CHECK(plan.internal(act_grad));
  // g (the conv's input gradient) and the batch norm's output, which both read.
  CHECK(bwd.reads == std::vector<int>{train.nodes[act_grad].inputs[0], bn});
  const std::string text = print_fusion(train, plan);
  CHECK(text.find("relu <- %" + std::to_string(bn) + " batchnorm  reads [%" +
                  std::to_string(bn - 1) + "]  batchnorm epilogue, stores [%" + std::to_string(bn) +
                  "]\n") != std::string::npos);
  CHECK(text.find("batchnorm_grad <- %" + std::to_string(act_grad) + " activation_grad  reads") !=
        std::string::npos);

  // Memory: the batch norm keeps its buffer (written at the ReLU's step), the activation's
  // gradient has none.
  MemoryPlan with = plan_memory(train, 2, 4, &plan);
  MemoryPlan without = plan_memory(train, 2);
  CHECK(with.nodes[bn].kind == StorageKind::Arena);
  CHECK(with.nodes[act_grad].kind == StorageKind::Fused);
  CHECK(with.buffers.size() < without.buffers.size());
  CHECK(check_plan(train, with, &plan).empty());

  // Lowering: the ReLU's step is the batch norm's, with its parameters and statistics.
  ExecPlan lowered = lower(train, with, &plan);
  const Step& bn_step = lowered.steps[bn];
  const Step& root = lowered.steps[relu];
  CHECK(bn_step.kind == StepKind::Fused);
  CHECK(bn_step.index == relu);
  CHECK(root.kind == StepKind::BatchNorm);
  CHECK(root.state >= 0);
  CHECK(root.running_mean >= 0);
  CHECK(root.inputs == std::vector<int>{bn - 1});
  REQUIRE(root.region.size() == 2);
  CHECK(root.region[0].kind == StepKind::BatchNorm);
  CHECK(root.region[0].node == bn);
  CHECK(root.region[1].kind == StepKind::Activation);
  CHECK(root.region[1].operands == std::vector<int>{-1});
  CHECK(lowered.values[bn].storage == ValueStorage::Arena);
  const Step& grad = lowered.steps[bn_grad];
  CHECK(grad.kind == StepKind::BatchNormGrad);
  CHECK(grad.state == root.state);
  REQUIRE(grad.region.size() == 2);
  CHECK(grad.region[0].kind == StepKind::ActivationGrad);
  CHECK(grad.region[0].operands == std::vector<int>{0, 1});
  CHECK(grad.region[1].operands == std::vector<int>{-1, 1});

  // Turned off, and never in inference graphs (batch norm reads its running statistics
  // there, and a conv before it folds it in).
  FusionOptions off;
  off.batchnorm = false;
  for (const FusedRegion& r : plan_fusion(train, off).regions)
    CHECK(r.kind != RegionKind::BatchNorm);
  for (const FusedRegion& r : plan_fusion(execution_graph(net)).regions)
    CHECK(r.kind != RegionKind::BatchNorm);

  // A batch norm another forward node reads too stays a step of its own: its region would
  // run under the activation's liveness, which a live mask may turn off while the other
  // reader is live.
  Graph shared = build_training_graph(
      execution_graph(compile_source(batchnorm_net(false, "relu(h) + h"))), {});
  for (const FusedRegion& r : plan_fusion(shared).regions) CHECK(r.kind != RegionKind::BatchNorm);
}

TEST_CASE(
    "region programs: a batch norm region read once for every backend, malformed ones refused",
    "[fusion]") {
  Graph net = compile_source(batchnorm_net(false, "leaky_relu(h, 0.25)"));
  Graph train = build_training_graph(execution_graph(net), {});
  FusionPlan fusion = plan_fusion(train);
  MemoryPlan memory = plan_memory(train, 2, 4, &fusion);
  const ExecPlan plan = lower(train, memory, &fusion);
  const Step *forward = nullptr, *backward = nullptr;
  for (const Step& s : plan.steps) {
    if (s.kind == StepKind::BatchNorm && !s.region.empty()) forward = &s;
    if (s.kind == StepKind::BatchNormGrad && !s.region.empty()) backward = &s;
  }
  REQUIRE(forward);
  REQUIRE(backward);

  const BatchNormProgram f = BatchNormProgram::of(plan, *forward);
  CHECK(f.forward);
  CHECK(f.fused);
  CHECK(f.x == forward->inputs[0]);
  CHECK(f.y == forward->region[0].node);  // stored: the gradient reads it (from the output)
  REQUIRE(f.epilogue.size() == 1);
  CHECK(f.epilogue[0].first == "leaky_relu");
  CHECK(f.epilogue[0].second == Approx(0.25));

  const BatchNormProgram b = BatchNormProgram::of(plan, *backward);
  CHECK_FALSE(b.forward);
  CHECK(b.from_output);
  CHECK(b.prologue_op == "leaky_relu");
  CHECK(b.g == backward->inputs[backward->region[0].operands[0]]);
  CHECK(b.activation_input == backward->inputs[backward->region[0].operands[1]]);
  CHECK(b.saved == f.y);
  CHECK(b.share_group == -1);
  CHECK(b.product_group == -1);

  // A batch norm step of its own: its inputs, no program.
  Step alone = *backward;
  alone.region.clear();
  alone.inputs = {3, 4};
  const BatchNormProgram a = BatchNormProgram::of(plan, alone);
  CHECK_FALSE(a.fused);
  CHECK(a.g == 3);
  CHECK(a.saved == 4);

  // Each malformed shape is an InternalError naming the step and what is wrong.
  auto refused = [&](Step s, const std::string& what) {
    INFO(what);
    try {
      BatchNormProgram::of(plan, s);
      FAIL("accepted");
    } catch (const InternalError& e) {
      CHECK(std::string(e.what()).find("step `" + s.name + "`") != std::string::npos);
      CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
  };
  Step s = *forward;
  s.region[1].kind = StepKind::Add;
  refused(s, "epilogue operation of another kind");
  s = *forward;
  s.region[0].operands = {7};
  refused(s, "operand out of range");
  s = *backward;
  s.region[0].kind = StepKind::Scale;
  refused(s, "prologue of another kind");
  s = *backward;
  s.region.pop_back();
  refused(s, "prologue of another kind");
  s = *backward;
  s.region.push_back(s.region[0]);
  refused(s, "d/dw without its share");
  s = *backward;
  s.region[1].kind = StepKind::Add;
  refused(s, "without its batchnorm_grad");
  s = *backward;
  s.kind = StepKind::Add;
  refused(s, "is not a batch norm step");

  // A pool's activations: every operation but the pool; another kind is refused.
  Step pool;
  pool.name = "gap";
  pool.kind = StepKind::GlobalAvgPool;
  CHECK(pooled_activations(pool).empty());
  pool.region.resize(3);
  pool.region[0].kind = pool.region[1].kind = StepKind::Activation;
  pool.region[2].kind = StepKind::GlobalAvgPool;
  CHECK(pooled_activations(pool).size() == 2);
  pool.region[1].kind = StepKind::Scale;
  CHECK_THROWS_WITH(pooled_activations(pool),
                    Catch::Contains("step `gap`: a pooled operation of another kind"));
}

TEST_CASE("fusion: batch norm regions equal the unfused plan", "[fusion][exec]") {
  // ReLU (its own loops), leaky_relu (a formula with a parameter), hard_swish; with and
  // without scale and shift (the gradient from the input, and from the output).
  for (const char* activation : {"relu(h)", "leaky_relu(h, slope=0.2)", "hard_swish(h)"})
    for (bool affine : {true, false}) {
      Graph net = compile_source(batchnorm_net(affine, activation));
      for (const char* backend : {"cpu", "jit"}) {
        INFO(activation << (affine ? " affine" : "") << ", backend " << backend);
        PlanOptions o;
        o.batch = 3;
        o.training = true;
        Pair p(backend);
        make_pair(p, net, o);
        size_t bn_regions = 0;
        for (const Step& s : p.fused->plan().steps)
          bn_regions += (s.kind == StepKind::BatchNorm || s.kind == StepKind::BatchNormGrad) &&
                        !s.region.empty();
        CHECK(bn_regions == 2);
        check_same(p, 40);
        check_same(p, 41);  // the running statistics moved: a second step
      }
    }
}

namespace {

// `source` at `batch` on the JIT (fusion on) and on the interpreter (fusion off), bound in
// `p`; returns the JIT's module text.
std::string jit_against_interpreter(Pair& p, const std::string& source, int64_t batch,
                                    bool training) {
  Graph net = compile_source(source);
  PlanOptions o;
  o.batch = batch;
  o.training = training;
  make_pair(p, net, o);
  return plan_llvm_ir(p.fused->plan(), false);
}

}  // namespace

TEST_CASE("fusion: the JIT's generated batch norm equals the interpreter on every row shape",
          "[fusion][exec][jit]") {
  // The JIT generates code for every training batch norm step, fused or alone
  // (runtime/jit/batchnorm_codegen.h), over rows of h*w values in vectors: with 16-float
  // vectors, an 11x11 row is 7 whole vectors and a masked one, a 12x12 row two loop
  // iterations of 4 vectors and one more, and a feature vector (h = w = 1) one masked lane.
  // Sigmoid's formula calls expf inline; a batch norm with no activation is a step alone.
  auto image_net = [](int size, bool affine, const std::string& activation) {
    return fmt::format(
        "network n(x: tensor[2, {0}, {0}]) {{\n  let h = batchnorm(conv(x, 3, kernel=3, pad=1), "
        "affine={1});\n  let r = {2};\n  return linear(flatten(conv(r, 2, kernel=1)), 4);\n}}\n",
        size, affine ? "true" : "false", activation);
  };
  auto feature_net = [](bool affine, const std::string& activation) {
    return fmt::format(
        "network n(x: tensor[6]) {{\n  let h = batchnorm(linear(x, 5), affine={0});\n"
        "  let r = {1};\n  return linear(r, 3);\n}}\n",
        affine ? "true" : "false", activation);
  };
  for (bool affine : {true, false})
    for (const char* activation : {"sigmoid(h)", "h"}) {
      for (const std::string& source :
           {image_net(11, affine, activation), image_net(12, affine, activation),
            feature_net(affine, activation)}) {
        INFO(source);
        Pair p("jit");
        const std::string ir = jit_against_interpreter(p, source, 5, true);
        CHECK(ir.find("define void @nasc_batchnorm_body_") != std::string::npos);
        CHECK(ir.find("define void @nasc_batchnorm_grad_body_") != std::string::npos);
        check_same(p, 70);
        check_same(p, 71);  // the running statistics moved: a second step
      }
    }
}

TEST_CASE("fusion: the JIT's generated depthwise convolutions equal the interpreter on every plane",
          "[fusion][exec][jit]") {
  // The JIT generates the three passes of a depthwise convolution at stride 1 or 2 whose
  // output plane is at most 16x16 (runtime/jit/depthwise_codegen.h): the walked plane a flat
  // run of vectors, each tap's reads constant. With 16-float vectors an 8x8 plane is 4
  // vectors of two rows each, 7x7 three and a masked one, 5x3 (not square) one masked one,
  // 1x1 one lane whose taps but the centre all fall in the padding; dilation reaches across
  // rows. At stride 2 the forward pass reads every other value and the data gradient writes
  // lanes no tap reaches (odd rows and columns with dilation 2 and even padding); a 32x32
  // input is two vectors a row, 9x5 and 7x7 inputs have odd sides, and no padding (10x10,
  // stride 1) makes the output smaller than the input. A ReLU before it makes the data
  // gradient matter to the loss, a 1x1 conv after it keeps the plane's values apart.
  auto net = [](int h, int w, int kernel, int stride, int pad, int dilation, bool bias) {
    return fmt::format(
        "network n(x: tensor[3, {0}, {1}]) {{\n"
        "  let h = relu(conv(x, 3, kernel=1));\n"
        "  let d = dwconv(h, {2}, stride={3}, pad={4}, dilation={5}, bias={6});\n"
        "  return linear(flatten(conv(relu(d), 2, kernel=1)), 4);\n}}\n",
        h, w, kernel, stride, pad, dilation, bias ? "true" : "false");
  };
  struct Case {
    int h, w, kernel, stride, pad, dilation;
    bool bias;
  };
  for (const Case& c :
       {Case{8, 8, 3, 1, 1, 1, false}, Case{8, 8, 5, 1, 4, 2, true}, Case{7, 7, 5, 1, 2, 1, true},
        Case{16, 16, 3, 1, 2, 2, false}, Case{5, 3, 3, 1, 1, 1, true},
        Case{1, 1, 3, 1, 1, 1, false}, Case{4, 6, 5, 1, 4, 2, false},
        Case{10, 10, 3, 1, 0, 1, false}, Case{16, 16, 3, 2, 1, 1, false},
        Case{32, 32, 5, 2, 4, 2, true}, Case{32, 32, 3, 2, 1, 1, false},
        Case{7, 7, 3, 2, 1, 1, true}, Case{9, 5, 5, 2, 2, 1, false}, Case{2, 2, 3, 2, 1, 1, false},
        Case{16, 16, 5, 2, 2, 1, true}}) {
    const std::string source = net(c.h, c.w, c.kernel, c.stride, c.pad, c.dilation, c.bias);
    INFO(source);
    Pair p("jit");
    const std::string ir = jit_against_interpreter(p, source, 5, true);
    size_t bodies = 0;
    for (size_t at = ir.find("define void @nasc_depthwise_body_"); at != std::string::npos;
         at = ir.find("define void @nasc_depthwise_body_", at + 1))
      ++bodies;
    CHECK(bodies == 3);  // forward, data gradient, weight gradient
    check_same(p, 80);
    check_same(p, 81);
  }
}

TEST_CASE("fusion: a batch norm whose output only its activation reads is never stored",
          "[fusion][exec]") {
  // The alpha step of a DARTS search: no weight gradients, so nothing in the backward pass
  // reads the stem's batch norm or the cell's preprocessing; their outputs live in a row.
  Diagnostics diags;
  Compilation c = compile_text("space.nas", kSmallDartsCell, {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  PlanOptions o;
  o.batch = 2;
  o.training = true;
  o.arch_grads = true;
  o.weight_grads = false;
  for (const char* backend : {"cpu", "jit"}) {
    INFO("backend " << backend);
    Pair p(backend);
    make_pair(p, *c.supernet, o);
    p.fused->use_full_choices();
    p.plain->use_full_choices();
    size_t unstored = 0;
    const ExecPlan& plan = p.fused->plan();
    for (const Step& s : plan.steps)
      if (s.kind == StepKind::BatchNorm && !s.region.empty())
        unstored += plan.values[s.region[0].node].storage == ValueStorage::None;
    CHECK(unstored >= 1);
    check_same(p, 50);
  }
}

TEST_CASE("fusion: activations before a global average pool run inside it", "[fusion][exec]") {
  // hard_swish of a product the flatten reads too, so no elementwise region takes it (one
  // would save the same buffer); in training its gradient reads its input, so the pool is
  // its only reader there too.
  const char* source = R"(network n(x: tensor[2, 6, 6]) {
  let s = conv(x, 3, kernel=3, pad=1) * 0.5;
  return linear(global_avg_pool(hard_swish(s)), 4) + linear(flatten(s), 4);
}
)";
  Graph net = compile_source(source);
  for (bool training : {false, true}) {
    INFO((training ? "training" : "inference"));
    Graph g = execution_graph(net);
    if (training) g = build_training_graph(g, {});
    FusionPlan plan = plan_fusion(g);
    INFO(print_fusion(g, plan));
    const FusedRegion* pooled = nullptr;
    for (const FusedRegion& r : plan.regions)
      if (r.kind == RegionKind::GlobalAvgPool) pooled = &r;
    REQUIRE(pooled != nullptr);
    REQUIRE(pooled->nodes.size() == 2);
    const int swish = pooled->nodes[0];
    CHECK(g.nodes[swish].op->name == "hard_swish");
    CHECK(g.nodes[pooled->root()].op->name == "global_avg_pool");
    CHECK(plan.internal(swish));
    CHECK(print_fusion(g, plan).find("pooled activations") != std::string::npos);
    MemoryPlan memory = plan_memory(g, 2, 4, &plan);
    CHECK(memory.nodes[swish].kind == StorageKind::Fused);
    ExecPlan lowered = lower(g, memory, &plan);
    const Step& root = lowered.steps[pooled->root()];
    CHECK(root.kind == StepKind::GlobalAvgPool);
    REQUIRE(root.region.size() == pooled->nodes.size());
    CHECK(root.region.front().operands == std::vector<int>{0});
    CHECK(root.region.back().kind == StepKind::GlobalAvgPool);
    // A latency table tells it from a pool alone.
    CHECK(step_signature("cpu", lowered, root).find(" fused=hard_swish") != std::string::npos);
    for (const char* backend : {"cpu", "jit"}) {
      INFO("backend " << backend);
      PlanOptions o;
      o.batch = 3;
      o.training = training;
      Pair p(backend);
      make_pair(p, net, o);
      check_same(p, 60);
    }
  }
}

TEST_CASE("fusion: the JIT's generated global average pooling equals the interpreter",
          "[fusion][exec][jit]") {
  // runtime/jit/pool_codegen.h: planes of 11x11 (7 whole vectors of 16 and a masked one)
  // and 12x12 (two loop iterations of 4 vectors and one more), with sigmoid inside the pool
  // (a region) and alone; inference and training.
  for (int size : {11, 12})
    for (const char* pooled : {"sigmoid(h)", "h"})
      for (bool training : {false, true}) {
        const std::string source = fmt::format(
            "network n(x: tensor[2, {0}, {0}]) {{\n  let h = conv(x, 3, kernel=3, pad=1);\n"
            "  return linear(global_avg_pool({1}), 4);\n}}\n",
            size, pooled);
        INFO(source << (training ? "training" : "inference"));
        Pair p("jit");
        CHECK(jit_against_interpreter(p, source, 3, training).find("@nasc_global_avg_pool_body_") !=
              std::string::npos);
        check_same(p, 80);
      }
}

// --- A mixed op's d/dw inside its candidates' batch norm gradients ----------------------------

namespace {

// A mixed op whose candidates end in a batch norm without scale and shift (its gradient
// reads its output), one with them (its gradient reads its input) and an identity.
const char* kBatchNormCandidates = R"(network n(x: tensor[2, 6, 6]) {
  let h = conv(x, 3, kernel=3, pad=1);
  h = choice "op" {
    plain:    batchnorm(conv(h, 3, kernel=1), affine=false),
    affine:   batchnorm(conv(h, 3, kernel=1), affine=true),
    identity: identity(h),
  };
  return linear(flatten(relu(h)), 4);
}
)";

}  // namespace

TEST_CASE("fusion: a mixed op's d/dw runs inside its candidates' batch norm gradients",
          "[fusion]") {
  Graph net = compile_source(kBatchNormCandidates);
  AutodiffOptions ad;
  ad.arch_grads = true;
  Graph train = build_training_graph(execution_graph(net), ad);
  FusionPlan plan = plan_fusion(train);
  INFO(print_fusion(train, plan));
  int arch = -1;
  for (const Node& n : train.nodes)
    if (n.op->name == "choice_grad_arch") arch = n.id;
  REQUIRE(arch >= 0);
  // Both candidates' shares run inside their batch norm gradients; only the one whose
  // gradient reads the batch norm's output takes the product (the other would need y,
  // which it does not read).
  std::vector<const FusedRegion*> shares;
  for (const FusedRegion& r : plan.regions)
    if (r.kind == RegionKind::BatchNormGrad &&
        train.nodes[r.nodes.front()].op->name == "choice_grad_input")
      shares.push_back(&r);
  REQUIRE(shares.size() == 2);
  const FusedRegion* product = nullptr;
  for (const FusedRegion* r : shares) {
    const Node& share = train.nodes[r->nodes.front()];
    const bool plain = share.int_attr("index") == 0;
    CHECK(r->arch_grad == (plain ? arch : -1));
    if (plain) product = r;
  }
  REQUIRE(product != nullptr);
  CHECK(print_fusion(train, plan)
            .find("batchnorm prologue, d/dw for %" + std::to_string(arch) + " candidate 0\n") !=
        std::string::npos);

  // Lowered: the region's program ends with the product of its two reads, and the
  // choice_grad_arch step lists the candidate it skips.
  MemoryPlan memory = plan_memory(train, 2, 4, &plan);
  ExecPlan lowered = lower(train, memory, &plan);
  const Step& region = lowered.steps[product->root()];
  REQUIRE(region.region.size() == 3);
  CHECK(region.region[2].kind == StepKind::ChoiceGradArch);
  CHECK(region.region[2].node == arch);
  CHECK(region.region[2].operands == std::vector<int>{0, 1});
  CHECK(region.region[2].index == 0);
  CHECK(region.region[2].group == lowered.steps[arch].group);
  const Step& arch_step = lowered.steps[arch];
  CHECK(arch_step.kind == StepKind::ChoiceGradArch);
  REQUIRE(arch_step.region.size() == 1);
  CHECK(arch_step.region[0].node == product->root());
  CHECK(arch_step.region[0].index == 0);

  // Without architecture gradients (a sampled or weight-only step) there is no product.
  Graph weights_only = build_training_graph(execution_graph(net), {});
  for (const FusedRegion& r : plan_fusion(weights_only).regions) CHECK(r.arch_grad == -1);
}

TEST_CASE("fusion: d/dw inside batch norm gradients equals the unfused plan", "[fusion][exec]") {
  Graph net = compile_source(kBatchNormCandidates);
  for (const char* backend : {"cpu", "jit"})
    for (bool zero_weight : {false, true}) {
      INFO("backend " << backend << (zero_weight ? ", the plain candidate's weight 0" : ""));
      PlanOptions o;
      o.batch = 3;
      o.training = true;
      o.arch_grads = true;
      Pair p(backend);
      make_pair(p, net, o);
      if (zero_weight) {
        // exp(-200) is 0 in float: the candidate runs, its gradient does not, and its
        // product is still taken (as choice_grad_arch takes it for every candidate run).
        for (ParamStore* store : {&p.store, &p.ref_store}) {
          std::vector<float> alpha = store->read(store->arch()[0].alpha);
          alpha[0] = -200.0f;
          store->write(store->arch()[0].alpha, alpha);
        }
      }
      p.fused->use_full_choices();
      p.plain->use_full_choices();
      size_t products = 0;
      for (const Step& s : p.fused->plan().steps)
        products += s.kind == StepKind::BatchNormGrad && s.region.size() == 3;
      CHECK(products == 1);
      check_same(p, 70);
      check_same(p, 71);
    }
}
