// The ONNX export (nasc/export.h, `nasc export`, docs/onnx.md), checked by tools that are
// not nasc's: every shipped example's fixed network, with weights that went through a
// training step (so that batch norm's running statistics are not the identity), exported
// and run in onnxruntime (onnxruntime-node, tests/onnx_run.js) on a random batch, against
// nasc's own evaluation of the same batch; each model also passes ONNX's full checker and
// strict shape inference (tests/onnx_check.py). Then the command's user errors.
//
// onnxruntime-node comes from scripts/setup.sh --tests (npm, into .cache/npm);
// NASC_ONNXRUNTIME_NODE names another copy of the package and NASC_NODE another node. Without them
// the test fails and says to run the setup: an export nobody ran is not a passing one.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "compiler/ir/diagnostics.h"
#include "compiler/ir/op_registry.h"
#include "compiler/pipeline/pipeline.h"
#include "driver/api_internal.h"
#include "driver/onnx_export.h"
#include "nasc/nasc.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/param_store.h"
#include "runtime/train/tensor_file.h"
#include "runtime/train/trainer.h"
#include "tests/cli_test_util.h"

namespace {

using nas::test::CliResult;
using nas::test::run_nasc;
using nas::test::scratch_path;
using nas::test::slurp;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// The onnxruntime-node package, or a test failure that says how to get it.
std::string onnxruntime_node() {
  const std::string dir =
      env_or("NASC_ONNXRUNTIME_NODE", NASC_SOURCE_DIR "/.cache/npm/node_modules/onnxruntime-node");
  if (!std::filesystem::exists(dir + "/package.json"))
    FAIL("onnxruntime-node is not installed at "
         << dir
         << ": run scripts/setup.sh --tests (it installs it with npm into .cache/npm), or set "
            "NASC_ONNXRUNTIME_NODE to the package folder");
  return dir;
}

CliResult run_shell(const std::string& command) {
  const std::string base = scratch_path("shell");
  const int raw = std::system((command + " > '" + base + ".out' 2> '" + base + ".err'").c_str());
  CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  return r;
}

void write_floats(const std::string& path, const std::vector<float>& v) {
  nas::test::write_bytes(path, std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
}

std::vector<float> read_floats(const std::string& path) {
  const std::string bytes = slurp(path);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

// Runs `model` in onnxruntime on `x` (batch first, shape `dims`) and returns its output.
std::vector<float> run_onnxruntime(const std::string& model, const std::vector<float>& x,
                                   const std::vector<int64_t>& dims) {
  const std::string ort = onnxruntime_node();
  const std::string in = model + ".x.f32", out = model + ".y.f32";
  write_floats(in, x);
  std::string command = "'" + env_or("NASC_NODE", "node") +
                        "' '" NASC_SOURCE_DIR "/tests/onnx_run.js' '" + ort + "' '" + model +
                        "' '" + in + "' '" + out + "'";
  for (int64_t d : dims) command += " " + std::to_string(d);
  CliResult r = run_shell(command);
  INFO(command << "\n" << r.out << r.err);
  REQUIRE(r.status == 0);
  return read_floats(out);
}

void check_with_onnx_tools(const std::string& model) {
  CliResult r =
      run_shell("/usr/bin/python3 '" NASC_SOURCE_DIR "/tests/onnx_check.py' '" + model + "'");
  INFO(r.out << r.err);
  CHECK(r.status == 0);
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = normal(rng);
  return v;
}

// The largest |a - b| over the largest |a|, at least 1: float32 in another order of
// summation (oneDNN against onnxruntime's kernels) differs in the last bits of each layer.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(a[i])));
  }
  return diff / scale;
}

struct ExampleCase {
  const char* file;
  // Smaller network parameters where the shipped size would make this test slow on a
  // 2-core machine; the ops and their wiring stay the example's. DARTS and its
  // Fashion-MNIST variant export the evaluation network with its auxiliary head.
  std::vector<std::pair<std::string, std::string>> overrides;
  // The architecture exported, as arch JSON; "" = a sampled one (the first for a network
  // without choices).
  std::string arch = "";
};

const std::vector<ExampleCase>& example_cases() {
  static const std::vector<ExampleCase> cases = {
      {"tiny.nas", {}},
      // The conv2 edge: with the zero edge the output is the last conv's zero bias, the
      // same whatever either side computes.
      {"zero_join.nas", {}, R"({"choices": {"edge": "conv2"}})"},
      {"fmnist_cnn.nas", {{"width", "8"}, {"hidden", "32"}}},
      {"convnet_fmnist.nas", {{"C", "8"}}},
      {"darts.nas", {{"C", "8"}, {"layers", "5"}, {"evaluation", "true"}, {"auxiliary", "true"}}},
      {"darts_fmnist.nas", {{"evaluation", "true"}, {"auxiliary", "true"}}},
      {"mobilenet.nas",
       {{"settings", "[[16, 2, 2], [24, 2, 2], [32, 1, 1]]"},
        {"first_channels", "16"},
        {"last_channels", "64"}}},
      {"mobilenet_v2.nas",
       {{"hw", "32"},
        {"classes", "10"},
        {"settings", "[[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2]]"},
        {"last_channels", "64"}}},
      {"mobilenet_v3_fmnist.nas", {}},
      {"random_wired.nas", {{"C", "8"}, {"n", "6"}, {"last_channels", "64"}}},
      {"zoph.nas", {{"stem_channels", "8"}, {"widths", "[8, 16, 32]"}, {"blocks", "2"}}},
  };
  return cases;
}

constexpr int64_t kBatch = 3;

// Trains the architecture one step (weights and running statistics move away from their
// initial values), saves the weights and exports them; returns nasc's evaluation of `x`.
std::vector<float> train_save_and_export(const nasc::Architecture& arch, const std::string& dir,
                                         const std::vector<float>& x,
                                         const nasc::OnnxExportOptions& export_options) {
  nasc::ModelOptions mo;
  mo.batch = kBatch;
  mo.seed = 3;
  nasc::Model trainer = nasc::Model::build(arch, mo);
  std::vector<int32_t> labels(kBatch);
  for (int64_t i = 0; i < kBatch; ++i) labels[i] = static_cast<int32_t>(i % trainer.classes());
  trainer.train_step(x.data(), labels.data(), kBatch);
  trainer.save_weights(dir + "/weights");

  nasc::OnnxExportOptions o = export_options;
  o.weights_file = dir + "/weights";
  nasc::export_onnx(arch, dir + "/net.onnx", o);

  mo.mode = nasc::Mode::Eval;
  nasc::Model evaluator = nasc::Model::build(arch, mo);
  evaluator.load_weights(dir + "/weights");
  std::vector<float> logits(static_cast<size_t>(kBatch * evaluator.classes()));
  evaluator.forward(x.data(), nullptr, kBatch, logits.data());
  return logits;
}

// A network without logits (zero_join returns an image) cannot be a Model, whose plans end
// in the loss: its forward plan runs on the executor, with its initial weights.
std::vector<float> save_and_export_forward(const nasc::Architecture& arch, const std::string& dir,
                                           const std::vector<float>& x) {
  const nas::Graph network = nas::specialise(arch.impl().space->supernet, arch.impl().selection);
  nas::PlanOptions forward;
  forward.batch = kBatch;
  forward.loss = false;
  nas::ParamStore store;
  nas::Executor executor(nas::compile_plan(network, forward), store, 3);
  nas::write_tensor_file(dir + "/weights", nas::params_to_file(store, nlohmann::json::object()));
  std::vector<float> out(static_cast<size_t>(kBatch * executor.plan().classes));
  executor.run(x.data(), nullptr, kBatch, out.data());
  nasc::OnnxExportOptions o;
  o.weights_file = dir + "/weights";
  nasc::export_onnx(arch, dir + "/net.onnx", o);
  return out;
}

std::vector<int64_t> batched(int64_t batch, std::vector<int64_t> shape) {
  shape.insert(shape.begin(), batch);
  return shape;
}

int64_t elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

TEST_CASE("onnx export: every example's fixed network runs in onnxruntime as in nasc",
          "[onnx][examples]") {
  onnxruntime_node();
  std::set<std::string> shipped;
  for (const auto& entry : std::filesystem::directory_iterator(NASC_SOURCE_DIR "/examples"))
    if (entry.path().extension() == ".nas") shipped.insert(entry.path().filename().string());
  for (const ExampleCase& c : example_cases()) shipped.erase(c.file);
  INFO("examples this test does not export (add them to example_cases)");
  CHECK(shipped.empty());

  const std::string root = scratch_path("onnx_examples");
  for (const ExampleCase& c : example_cases()) {
    nasc::CompileOptions co;
    co.overrides = c.overrides;
    const nasc::Space space =
        nasc::Space::compile_file(std::string(NASC_SOURCE_DIR "/examples/") + c.file, co);
    const nasc::Architecture arch = !c.arch.empty()           ? space.fix_json(c.arch)
                                    : space.choices().empty() ? space.first_candidates()
                                                              : space.sample(11);
    INFO(c.file << " " << arch.describe());
    const std::string dir = root + "/" + space.name();
    std::filesystem::create_directories(dir);
    const std::vector<int64_t> input = batched(kBatch, space.input_shape());
    const std::vector<float> x = random_floats(static_cast<size_t>(elements(input)), 5);
    const std::vector<float> nasc_logits = space.output_shape().size() == 1
                                               ? train_save_and_export(arch, dir, x, {})
                                               : save_and_export_forward(arch, dir, x);
    check_with_onnx_tools(dir + "/net.onnx");
    const std::vector<float> ort_logits = run_onnxruntime(dir + "/net.onnx", x, input);
    CHECK(relative_difference(nasc_logits, ort_logits) <= 1e-4);
  }
  std::filesystem::remove_all(root);
}

// The ops and forms the examples do not use: leaky_relu, hard_sigmoid, relu6, a dilated
// dwconv with a multiplier, channel_shuffle, channel_slice, crop, avg_pool without the
// padding in its divisor, a per-channel mul (squeeze-and-excitation), a two-tensor mul,
// batch norm on a vector, on a sum (not folded) and without affine parameters, dropout.
constexpr const char* kOpZoo = R"(network zoo(x: tensor[4, 10, 10], classes: int = 5) {
  let a = conv(x, 8, kernel=3, pad=1, bias=true);
  let b = leaky_relu(batchnorm(a, affine=false), slope=0.2);
  let d = dwconv(b, kernel=3, stride=1, pad=2, dilation=2, multiplier=2);
  let e = batchnorm(hard_sigmoid(d) + relu6(d) + sigmoid(d));
  let f = channel_shuffle(e, groups=4);
  let g = channel_slice(f, start=2, count=8);
  let h = crop(g, top=1, left=2, bottom=1, right=0);
  let p = avg_pool(h, 3, stride=2, pad=1, count_include_pad=false);
  let q = max_pool(h, 3, stride=2, pad=1);
  let r = concat(p, q, axis=0);
  let s = mul(r, sigmoid(batchnorm(linear(global_avg_pool(r), 16))), scale=0.5);
  let t = mul(silu(s), hard_swish(s)) + dropout(s, p=0.3);
  let u = batchnorm(conv(t, 6, kernel=1));
  return linear(relu(flatten(mul(u, 2.0))), classes);
}
)";

TEST_CASE("onnx export: every op form the examples lack runs in onnxruntime as in nasc", "[onnx]") {
  const nasc::Space space = nasc::Space::compile_string("zoo.nas", kOpZoo);
  const std::string dir = scratch_path("onnx_zoo");
  std::filesystem::create_directories(dir);
  const std::vector<int64_t> input = batched(kBatch, space.input_shape());
  const std::vector<float> x = random_floats(static_cast<size_t>(elements(input)), 13);
  for (bool fold : {true, false}) {
    INFO("fold_batchnorm " << fold);
    nasc::OnnxExportOptions o;
    o.fold_batchnorm = fold;
    const std::vector<float> nasc_logits =
        train_save_and_export(space.first_candidates(), dir, x, o);
    check_with_onnx_tools(dir + "/net.onnx");
    CHECK(relative_difference(nasc_logits, run_onnxruntime(dir + "/net.onnx", x, input)) <= 1e-4);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("onnx export: every op a .nas file can call has an ONNX mapping", "[onnx]") {
  for (const nas::OpDef* op : nas::all_ops())
    if (!op->internal) {
      INFO("op " << op->name << " (OpDef::onnx in compiler/ir/ops/)");
      CHECK(op->onnx);
    }
}

TEST_CASE("onnx export: a fixed batch, batch norm kept, and a Model's own weights", "[onnx]") {
  const nasc::Space space = nasc::Space::compile_file(NASC_SOURCE_DIR "/examples/fmnist_cnn.nas",
                                                      {{}, "", {{"width", "4"}, {"hidden", "16"}}});
  const nasc::Architecture arch = space.first_candidates();
  const std::string dir = scratch_path("onnx_variants");
  std::filesystem::create_directories(dir);
  const std::vector<int64_t> input = batched(kBatch, space.input_shape());
  const std::vector<float> x = random_floats(static_cast<size_t>(elements(input)), 9);

  SECTION("--batch 3 and --keep-batchnorm: the same outputs") {
    nasc::OnnxExportOptions o;
    o.batch = kBatch;
    o.fold_batchnorm = false;
    const std::vector<float> nasc_logits = train_save_and_export(arch, dir, x, o);
    check_with_onnx_tools(dir + "/net.onnx");
    const std::string model = slurp(dir + "/net.onnx");
    CHECK(model.find("BatchNormalization") != std::string::npos);
    CHECK(relative_difference(nasc_logits, run_onnxruntime(dir + "/net.onnx", x, input)) <= 1e-4);
  }
  SECTION("folded batch norm leaves no BatchNormalization after a Conv") {
    train_save_and_export(arch, dir, x, {});
    CHECK(slurp(dir + "/net.onnx").find("BatchNormalization") == std::string::npos);
  }
  SECTION("Model::export_onnx writes the model's current weights") {
    nasc::ModelOptions mo;
    mo.batch = kBatch;
    mo.mode = nasc::Mode::Eval;
    mo.seed = 17;
    nasc::Model model = nasc::Model::build(arch, mo);
    std::vector<float> logits(static_cast<size_t>(kBatch * model.classes()));
    model.forward(x.data(), nullptr, kBatch, logits.data());
    model.export_onnx(dir + "/model.onnx");
    check_with_onnx_tools(dir + "/model.onnx");
    CHECK(relative_difference(logits, run_onnxruntime(dir + "/model.onnx", x, input)) <= 1e-4);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("onnx export: an op without an ONNX mapping is a located user error", "[onnx]") {
  // The supernet itself still has its choice nodes, which only a fixed network loses.
  nas::Diagnostics diags;
  nas::Compilation c =
      nas::compile_file(NASC_SOURCE_DIR "/examples/tiny.nas", nas::CompileOptions{}, diags);
  REQUIRE(c.supernet);
  nas::CompiledPlan forward = nas::onnx_forward_plan(*c.supernet);
  nas::ParamValues zeros = [&](const std::string& name) {
    for (const nas::ParamSpec& p : forward.plan.params)
      if (p.name == name)
        return std::vector<float>(static_cast<size_t>(nas::shape_elements(p.shape)), 0.0f);
    return std::vector<float>{};
  };
  const std::string path = scratch_path("onnx_choice.onnx");
  try {
    nas::write_onnx_model(forward, zeros, {}, path);
    FAIL("a graph with a choice node was exported");
  } catch (const nas::UserError& e) {
    CHECK_THAT(e.what(), Catch::Contains("tiny.nas:5:") &&
                             Catch::Contains("op `choice` cannot be exported to ONNX"));
  }
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("onnx export: the nasc export command line and its user errors", "[onnx][cli]") {
  const std::string dir = scratch_path("onnx_cli");
  std::filesystem::create_directories(dir);
  SECTION("--weights with --set, and --random-weights with --arch and --batch, export") {
    nasc::CompileOptions co;
    co.overrides = {{"width", "4"}, {"hidden", "16"}};
    nasc::Space cnn = nasc::Space::compile_file(NASC_SOURCE_DIR "/examples/fmnist_cnn.nas", co);
    nasc::Model::build(cnn.first_candidates()).save_weights(dir + "/cnn_weights");
    CliResult trained = run_nasc(
        "export examples/fmnist_cnn.nas --set width=4 --set hidden=16 "
        "--weights " +
        dir + "/cnn_weights -o " + dir + "/cnn.onnx");
    INFO(trained.err);
    REQUIRE(trained.status == 0);
    CHECK_THAT(trained.err, Catch::Contains("wrote " + dir + "/cnn.onnx"));
    check_with_onnx_tools(dir + "/cnn.onnx");
    CliResult other_size = run_nasc("export examples/fmnist_cnn.nas --weights " + dir +
                                    "/cnn_weights -o " + dir + "/big.onnx");
    CHECK(other_size.status == 1);
    CHECK_THAT(other_size.err, Catch::Contains("the network needs"));

    CliResult random = run_nasc(
        "export examples/zero_join.nas --arch examples/zero_join_zero.json "
        "--random-weights --batch 2 -o " +
        dir + "/z.onnx");
    INFO(random.err);
    REQUIRE(random.status == 0);
    check_with_onnx_tools(dir + "/z.onnx");
    const std::vector<float> z(2 * 3 * 16 * 16, 1.0f);
    CHECK(run_onnxruntime(dir + "/z.onnx", z, {2, 3, 16, 16}).size() == 2 * 8 * 16 * 16);
  }
  SECTION("a space with choices needs --arch") {
    CliResult r = run_nasc("export examples/tiny.nas --random-weights -o " + dir + "/t.onnx");
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("examples/tiny.nas: `nasc export` writes a fixed network") &&
                          Catch::Contains("give --arch A.json"));
  }
  SECTION("weights of another network name the missing tensor") {
    nasc::Space other = nasc::Space::compile_file(NASC_SOURCE_DIR "/examples/fmnist_cnn.nas");
    nasc::ModelOptions mo;
    mo.batch = 1;
    nasc::Model::build(other.first_candidates(), mo).save_weights(dir + "/other");
    CliResult r = run_nasc("export examples/tiny.nas --arch examples/tiny_conv.json --weights " +
                           dir + "/other -o " + dir + "/t.onnx");
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains(dir + "/other") && Catch::Contains("has no tensor") &&
                          Catch::Contains("another network"));
    CHECK_FALSE(std::filesystem::exists(dir + "/t.onnx"));
  }
  SECTION("an output that cannot be written is named") {
    CliResult r = run_nasc(
        "export examples/zero_join.nas --arch examples/zero_join_zero.json "
        "--random-weights -o " +
        dir + "/missing/folder/z.onnx");
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains(dir + "/missing/folder/z.onnx"));
  }
  SECTION("flags: what is missing, what excludes what, what belongs elsewhere") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"export examples/fmnist_cnn.nas --random-weights", "needs -o NET.onnx"},
        {"export examples/fmnist_cnn.nas -o x.onnx", "needs --weights W"},
        {"export examples/fmnist_cnn.nas -o x.onnx --weights w --random-weights",
         "--weights and --random-weights exclude each other"},
        {"export examples/fmnist_cnn.nas -o x.onnx --random-weights --batch 0",
         "--batch needs a positive integer"},
        {"check examples/fmnist_cnn.nas --weights w", "--weights does not apply to `nasc check`"},
        {"export examples/fmnist_cnn.nas -o x.onnx --random-weights --json",
         "--json does not apply to `nasc export`"},
        {"export examples/fmnist_cnn.nas -o x.onnx --random-weight",
         "did you mean `--random-weights`?"},
    };
    for (const auto& [args, message] : cases) {
      CliResult r = run_nasc(args);
      INFO(args << "\n" << r.err);
      CHECK(r.status == 1);
      CHECK_THAT(r.err, Catch::Contains(message));
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("onnx export: a trained network takes images as the data set holds them", "[onnx][cli]") {
  // nasc train normalises every image with the training data's per-channel mean and std and
  // records them in its weights file; the export puts that normalisation in front of the
  // network, so that onnxruntime on raw images gives what nasc gives on normalised ones.
  const std::string dir = scratch_path("onnx_normalized");
  std::filesystem::create_directories(dir);
  nas::test::write_bytes(dir + "/cfg.json", R"({"epochs": 1, "seed": 2, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 128, "batch_size": 32}})");
  CliResult train = run_nasc("train examples/tiny.nas --arch examples/tiny_conv.json -c " + dir +
                             "/cfg.json -o " + dir + "/run");
  INFO(train.err);
  REQUIRE(train.status == 0);
  const nas::TensorFile weights = nas::read_tensor_file(dir + "/run/weights");
  REQUIRE(weights.meta.contains("input_normalization"));
  const auto mean = weights.meta["input_normalization"]["mean"].get<std::vector<float>>();
  const auto stdev = weights.meta["input_normalization"]["std"].get<std::vector<float>>();
  REQUIRE(mean.size() == 1);
  CHECK(std::abs(mean[0]) + std::abs(stdev[0] - 1) > 1e-3);  // not the identity
  CliResult exported =
      run_nasc("export examples/tiny.nas --arch examples/tiny_conv.json --weights " + dir +
               "/run/weights -o " + dir + "/tiny.onnx");
  INFO(exported.err);
  REQUIRE(exported.status == 0);
  check_with_onnx_tools(dir + "/tiny.onnx");

  nasc::Space space = nasc::Space::compile_file(NASC_SOURCE_DIR "/examples/tiny.nas");
  nasc::ModelOptions mo;
  mo.batch = 4;
  mo.mode = nasc::Mode::Eval;
  nasc::Model model =
      nasc::Model::build(space.fix_file(NASC_SOURCE_DIR "/examples/tiny_conv.json"), mo);
  model.load_weights(dir + "/run/weights");
  std::vector<float> raw = random_floats(4 * model.input_size(), 7), normalized = raw;
  for (float& v : normalized) v = (v - mean[0]) / stdev[0];
  std::vector<float> logits(4 * model.classes());
  model.forward(normalized.data(), nullptr, 4, logits.data());
  CHECK(relative_difference(logits, run_onnxruntime(dir + "/tiny.onnx", raw, {4, 1, 28, 28})) <=
        1e-4);
  // Model::export_onnx has no data set behind it: its model takes the network's input.
  model.export_onnx(dir + "/model.onnx");
  CHECK(relative_difference(
            logits, run_onnxruntime(dir + "/model.onnx", normalized, {4, 1, 28, 28})) <= 1e-4);
}
