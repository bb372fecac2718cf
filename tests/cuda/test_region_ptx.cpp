// The CUDA backend's generated elementwise kernels (runtime/cuda/region_ptx.h): the PTX the
// NVPTX back end writes for every activation, its gradient, sums, choices, dropout, crops
// and chained region programs is assembled by ptxas for the H100/H200 (sm_90), which needs no GPU;
// the per-run decisions follow the CPU's region rules; and, where a GPU is present, the loaded
// kernels compute each formula (without one the test says so in a WARN line and stops).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/region_ptx.h"
#include "support/elementwise_ops.h"
#include "support/rng.h"

using namespace nas;
using namespace nas::cuda;
using Catch::Matchers::Contains;

namespace {

RegionOp activation(const ElementwiseFn& fn, bool gradient, std::vector<int> operands) {
  RegionOp op;
  op.kind = gradient ? StepKind::ActivationGrad : StepKind::Activation;
  op.op = fn.name;
  op.param = fn.param ? 0.2 : 0.0;
  op.operands = std::move(operands);
  return op;
}

// Every formula forward and backward, then the combining operations and a chained program.
std::vector<ElementwiseProgram> all_programs() {
  std::vector<ElementwiseProgram> programs;
  for (const ElementwiseFn& fn : elementwise_fns()) {
    programs.push_back({std::string(fn.name) + " forward", 1, {activation(fn, false, {0})}});
    programs.push_back({std::string(fn.name) + " backward", 2, {activation(fn, true, {0, 1})}});
  }
  RegionOp sum;
  sum.kind = StepKind::Add;
  sum.operands = {0, 1, 2};
  programs.push_back({"sum", 3, {sum}});
  RegionOp choice;
  choice.kind = StepKind::Choice;
  choice.group = 0;
  choice.operands = {0, 1, 2, 3};
  programs.push_back({"choice", 4, {choice}});
  RegionOp product;
  product.kind = StepKind::Scale;
  product.scale = 0.5;
  product.operands = {0, 1};
  programs.push_back({"product", 2, {product}});
  // silu'(x) * g, plus the input again, scaled: results feeding later operations.
  const ElementwiseFn& silu = *find_elementwise("silu");
  RegionOp add_back;
  add_back.kind = StepKind::Add;
  add_back.operands = {-1, 0};
  RegionOp half;
  half.kind = StepKind::Scale;
  half.scale = 0.5;
  half.operands = {-2};
  programs.push_back({"chain", 2, {activation(silu, true, {0, 1}), add_back, half}});
  // Dropout of node 5 (each element drawing its own mask), then its gradient's twin.
  RegionOp dropout;
  dropout.kind = StepKind::Dropout;
  dropout.op = "dropout";
  dropout.param = 0.3;
  dropout.fwd_node = 5;
  dropout.operands = {0};
  RegionOp regrad = dropout;
  regrad.kind = StepKind::DropoutGrad;
  regrad.operands = {-1};
  programs.push_back({"dropout", 1, {dropout}});
  programs.push_back({"dropout twice", 1, {dropout, regrad}});
  return programs;
}

// A ReLU at a crop's window, and a padded gradient plus another (region_read_map.h).
std::vector<ElementwiseProgram> windowed_programs() {
  const ElementwiseFn& relu = *find_elementwise("relu");
  RegionOp crop;
  crop.kind = StepKind::Crop;
  crop.op = "crop";
  crop.top = 1;
  crop.left = 2;
  crop.operands = {-1};
  RegionReadMap window;
  window.mapped = true;
  window.height = 5;
  window.width = 4;
  window.src_height = 7;
  window.src_width = 6;
  window.dh = 1;
  window.dw = 2;
  ElementwiseProgram cropped{"crop", 1, {activation(relu, false, {0}), crop}, {window}};
  RegionOp pad = crop;
  pad.kind = StepKind::CropGrad;
  pad.operands = {0};
  RegionOp sum;
  sum.kind = StepKind::Add;
  sum.operands = {-1, 1};
  RegionReadMap padded = window;
  padded.bounded = true;
  std::swap(padded.height, padded.src_height);
  std::swap(padded.width, padded.src_width);
  padded.dh = -1;
  padded.dw = -2;
  ElementwiseProgram pads{"crop_grad", 2, {pad, sum}, {padded, RegionReadMap{}}};
  return {cropped, pads};
}

}  // namespace

TEST_CASE("cuda: the generated PTX assembles for sm_90", "[cuda][ptx]") {
  std::vector<ElementwiseProgram> programs = all_programs();
  for (const ElementwiseProgram& p : windowed_programs()) programs.push_back(p);
  const std::string ptx = elementwise_ptx(programs);
  for (size_t k = 0; k < programs.size(); ++k)
    CHECK_THAT(ptx, Contains(".entry nasc_elementwise_" + std::to_string(k) + "("));
  // exp is ex2.approx, never a call the driver cannot link.
  CHECK_THAT(ptx, Contains("ex2.approx"));
  CHECK_THAT(ptx, !Contains("expf"));
  CHECK_THAT(ptx, !Contains(".extern"));
  if (std::string(NASC_PTXAS).empty() || !std::filesystem::exists(NASC_PTXAS)) {
    WARN("skipped: no ptxas found at configure time, so the PTX was not assembled");
    return;
  }
  const std::string path =
      (std::filesystem::temp_directory_path() / ("nasc_ptx_" + std::to_string(::getpid()) + ".ptx"))
          .string();
  std::ofstream(path) << ptx;
  const std::string command =
      std::string("'") + NASC_PTXAS + "' --gpu-name sm_90 -o /dev/null '" + path + "' 2>&1";
  const int status = std::system(command.c_str());
  std::filesystem::remove(path);
  CHECK(status == 0);
}

TEST_CASE("cuda: which operations of a program run, as the CPU's regions decide", "[cuda]") {
  const ElementwiseFn& relu = *find_elementwise("relu");
  RegionOp sum;
  sum.kind = StepKind::Add;
  sum.operands = {-1, 1};
  ElementwiseProgram program{"p", 2, {activation(relu, false, {0}), sum}};
  // Both inputs computed: everything runs, every operand present.
  ProgramRun run = decide_program_run(program, {1, 1}, {});
  CHECK(run.writes);
  CHECK(run.present == std::vector<int32_t>{1, 1, 1});
  CHECK(run.weights == std::vector<float>{1, 1, 1});
  // Input 0 not computed: the activation does not run, the sum drops it and still writes.
  run = decide_program_run(program, {0, 1}, {});
  CHECK(run.writes);
  CHECK(run.present == std::vector<int32_t>{1, 0, 1});
  // Nothing computed: nothing written.
  CHECK_FALSE(decide_program_run(program, {0, 0}, {}).writes);
  // A choice takes the candidates with a nonzero weight, and writes even when none has one.
  RegionOp choice;
  choice.kind = StepKind::Choice;
  choice.group = 1;
  choice.operands = {0, 1};
  ElementwiseProgram chooser{"c", 2, {choice}};
  run = decide_program_run(chooser, {1, 1}, {{}, {0.0f, 0.75f}});
  CHECK(run.writes);
  CHECK(run.present == std::vector<int32_t>{0, 1});
  CHECK(run.weights == std::vector<float>{0.0f, 0.75f});
  CHECK(decide_program_run(chooser, {1, 1}, {{}, {0.0f, 0.0f}}).writes);
  // Any other operation needs every operand.
  ElementwiseProgram gradient{"g", 2, {activation(relu, true, {0, 1})}};
  CHECK_FALSE(decide_program_run(gradient, {1, 0}, {}).writes);
  // A dropout's draws: mix64 of its node's seed for this run, nothing for the others.
  RegionOp dropout;
  dropout.kind = StepKind::Dropout;
  dropout.param = 0.5;
  dropout.fwd_node = 4;
  dropout.operands = {-1};
  ElementwiseProgram dropped{"d", 2, {activation(relu, false, {0}), dropout}};
  run = decide_program_run(dropped, {1, 1}, {}, ProgramDraws{21, 6, 50});
  CHECK(run.writes);
  CHECK(run.per_sample == 50);
  CHECK(run.first_sample == 6);
  CHECK(run.seed_mix == std::vector<uint64_t>{0, mix64(derive_seed(21, 4))});
  CHECK(decide_program_run(program, {1, 1}, {}).seed_mix.empty());
}

TEST_CASE("cuda: generated kernels compute every formula on the GPU", "[cuda][gpu]") {
  std::string device;
  const std::string problem = probe_device(&device);
  if (!problem.empty()) {
    WARN("skipped: " << problem);
    return;
  }
  INFO(device);
  CudaContext context(0);
  ElementwiseKernels kernels(context);
  const std::vector<ElementwiseProgram> programs = all_programs();
  std::vector<int> index;
  for (const ElementwiseProgram& p : programs) index.push_back(kernels.add(p));
  kernels.load();

  const int64_t n = 1000;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-8.0f, 8.0f);
  std::vector<std::vector<float>> host(4, std::vector<float>(n));
  for (auto& h : host)
    for (float& v : h) v = u(rng);
  std::vector<float*> device_inputs(4);
  for (size_t k = 0; k < 4; ++k) {
    NAS_CUDA(cudaMalloc(reinterpret_cast<void**>(&device_inputs[k]), n * sizeof(float)));
    NAS_CUDA(
        cudaMemcpy(device_inputs[k], host[k].data(), n * sizeof(float), cudaMemcpyHostToDevice));
  }
  float* out = nullptr;
  NAS_CUDA(cudaMalloc(reinterpret_cast<void**>(&out), n * sizeof(float)));
  std::vector<float> got(n);
  const std::vector<float> weights{0.25f, 0.0f, 0.5f, 0.125f};
  for (size_t k = 0; k < programs.size(); ++k) {
    const ElementwiseProgram& p = programs[k];
    INFO("program " << p.name);
    std::vector<const float*> inputs(device_inputs.begin(), device_inputs.begin() + p.inputs);
    std::vector<char> computed(p.inputs, 1);
    const ProgramDraws draws{11, 2, 100};  // elements 100 per sample, from global sample 2
    const ProgramRun run = decide_program_run(p, computed, {weights, weights}, draws);
    kernels.launch(index[k], out, inputs, n, run, context.stream());
    NAS_CUDA(cudaStreamSynchronize(context.stream()));
    NAS_CUDA(cudaMemcpy(got.data(), out, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < n; ++i) {
      const double x0 = host[0][i], x1 = host[1][i], x2 = host[2][i], x3 = host[3][i];
      double want = 0;
      const RegionOp& op = p.ops[0];
      const ElementwiseFn* fn = op.op.empty() ? nullptr : find_elementwise(op.op);
      if (p.name == "sum")
        want = x0 + x1 + x2;
      else if (p.name == "choice")
        want = 0.25 * x0 + 0.5 * x2 + 0.125 * x3;
      else if (p.name == "product")
        want = 0.5 * x0 * x1;
      else if (p.name == "chain")
        want = 0.5 * (x0 * fn->derivative(x1, 0) + x0);
      else if (op.kind == StepKind::Dropout) {
        const uint64_t stream = dropout_sample_stream(derive_seed(11, 5), 2 + i / 100);
        const bool kept = dropout_keeps(stream, i % 100, dropout_threshold(0.3));
        const double scale = static_cast<float>(1.0 / 0.7);
        want = !kept ? 0.0 : p.ops.size() == 1 ? x0 * scale : x0 * scale * scale;
      } else if (op.kind == StepKind::Activation)
        want = fn->value(x0, op.param);
      else
        want = x0 * fn->derivative(x1, op.param);
      INFO("element " << i << " inputs " << x0 << ", " << x1);
      CHECK(got[i] == Approx(want).margin(1e-5).epsilon(1e-5));
    }
  }
  for (float* p : device_inputs) cudaFree(p);
  cudaFree(out);
}
