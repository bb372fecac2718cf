// `nasc train` end to end on small synthetic data: the run folder, the weights file, the
// progress output without a terminal, bad input (config, flags, data, arch), and a run
// killed mid-epoch that resumes from its last checkpoint to the same weights as an
// uninterrupted run.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "runtime/train/tensor_file.h"
#include "tests/cli_test_util.h"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using nas::test::count_lines;
using nas::test::slurp;
using Result = nas::test::CliResult;

Result nasc(const std::string& args) {
  return nas::test::run_nasc(args);
}
std::string scratch(const std::string& name) {
  return nas::test::scratch_path(name);
}
int lines(const std::string& path) {
  return count_lines(path);
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Synthetic 1x28x28 data, big enough that an epoch lasts a moment.
const char* kConfig = R"({"epochs": 3, "seed": 5, "threads": 1,
  "data": {"name": "synthetic", "synthetic_samples": 3072, "batch_size": 64,
           "eval_batch_size": 100},
  "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}})";

const char* kTinyArch = "--arch examples/tiny_conv.json";

}  // namespace

TEST_CASE("nasc train: a run folder on synthetic data", "[train][cli]") {
  std::string dir = scratch("run"), cfg = scratch("cfg.json");
  write(cfg, kConfig);
  Result r = nasc("train examples/fmnist_cnn.nas -c " + cfg + " --epochs 2 -o " + dir);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  // Not a terminal: plain progress lines, no carriage returns or escape codes.
  CHECK_THAT(r.out, Contains("epoch 1/2") && Contains("test loss") && Contains("wrote"));
  CHECK(r.out.find('\r') == std::string::npos);
  CHECK(r.out.find('\x1b') == std::string::npos);
  for (const char* f : {"config.json", "log.txt", "metrics.jsonl", "weights", "checkpoint"})
    CHECK(fs::exists(dir + "/" + f));
  CHECK(lines(dir + "/metrics.jsonl") == 2);
  CHECK_THAT(slurp(dir + "/config.json"), Contains("\"epochs\": 2"));
  nas::TensorFile w = nas::read_tensor_file(dir + "/weights");
  REQUIRE(w.find("fmnist_cnn/conv.weight") != nullptr);
  CHECK(w.find("fmnist_cnn/conv.weight")->shape == std::vector<int64_t>{32, 1, 3, 3});
  CHECK(w.find("fmnist_cnn/batchnorm.running_var") != nullptr);
  CHECK(w.meta["network"] == "fmnist_cnn");
  // The network learns the synthetic task.
  CHECK(w.meta["test_accuracy"].get<double>() > 0.5);
  // A second fresh run into the same folder is refused: nothing is overwritten.
  Result again = nasc("train examples/fmnist_cnn.nas -c " + cfg + " -o " + dir);
  CHECK(again.status == 1);
  CHECK_THAT(again.err, Contains("--resume"));
}

TEST_CASE("nasc train: bad input gives clear errors", "[train][cli]") {
  std::string dir = scratch("bad");
  auto fails = [&](const std::string& args, const std::string& fragment) {
    Result r = nasc(args);
    INFO(args << "\n" << r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(fragment));
  };
  fails("train examples/tiny.nas --data synthetic -o " + dir, "`tiny` has 1 choices; give --arch");
  fails("train examples/fmnist_cnn.nas --data synthetic", "needs -o DIR");
  fails("train examples/fmnist_cnn.nas --data imagenet -o " + dir, "--data takes");
  fails("train examples/fmnist_cnn.nas --epochs 0 -o " + dir, "--epochs needs a positive");
  fails("train examples/fmnist_cnn.nas --threads -2 -o " + dir, "--threads needs");
  fails("check examples/fmnist_cnn.nas --epochs 2", "--epochs does not apply");
  fails("train examples/fmnist_cnn.nas --data cifar10:/nonexistent_dir -o " + dir,
        "/nonexistent_dir");
  std::string cfg = scratch("bad.json");
  write(cfg, R"({"epochs": 1, "data": {"batch_sze": 64}})");
  fails("train examples/fmnist_cnn.nas -c " + cfg + " -o " + dir, "batch_sze");
  write(cfg, R"({"epochs": "ten"})");
  fails("train examples/fmnist_cnn.nas -c " + cfg + " -o " + dir, "epochs");
  write(cfg, R"({"epochs": 1,)");
  fails("train examples/fmnist_cnn.nas -c " + cfg + " -o " + dir, cfg);
  fails("train examples/fmnist_cnn.nas -c /nonexistent.json -o " + dir, "/nonexistent.json");
  // CIFAR-sized network on Fashion-MNIST: the shapes are named.
  fails("train examples/mobilenet_v2.nas --data fashion-mnist -o " + dir,
        "fashion-mnist samples are [1,28,28] but the network's input is [3,224,224]");
  std::string arch = scratch("arch.json");
  write(arch, R"({"choices": {"op": "conv7"}})");
  fails("train examples/tiny.nas --data synthetic --arch " + arch + " -o " + dir, "conv7");
  fails("train examples/tiny.nas --resume --data synthetic " + std::string(kTinyArch) + " -o " +
            scratch("nothing_here"),
        "config.json");
}

TEST_CASE("nasc train: killed mid-epoch, resumed, ends where an uninterrupted run ends",
          "[train][cli][resume]") {
  std::string cfg = scratch("resume.json");
  write(cfg, kConfig);
  std::string whole = scratch("whole"), cut = scratch("cut");
  std::string args = "train examples/tiny.nas " + std::string(kTinyArch) + " -c " + cfg + " -o ";
  REQUIRE(nasc(args + whole).status == 0);

  // The same run, killed (SIGKILL: no cleanup) in its second epoch.
  nas::test::run_nasc_and_kill(args + cut, cut + "/metrics.jsonl", 1, 150);
  REQUIRE(fs::exists(cut + "/checkpoint"));
  CHECK_FALSE(fs::exists(cut + "/weights"));  // it did not finish

  Result resumed =
      nasc("train examples/tiny.nas " + std::string(kTinyArch) + " --resume -o " + cut);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK_THAT(resumed.out, Contains("resuming after epoch"));
  CHECK(lines(cut + "/metrics.jsonl") == 3);
  nas::TensorFile a = nas::read_tensor_file(whole + "/weights");
  nas::TensorFile b = nas::read_tensor_file(cut + "/weights");
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    INFO(a.tensors[i].name);
    CHECK(a.tensors[i].data == b.tensors[i].data);  // bit-identical
  }
}

// Synthetic data take the network's input shape and one class per logit, so any
// classifier trains on them; a config that names another shape is refused at its key.
TEST_CASE("nasc train: synthetic data of the network's shape", "[train][cli][data]") {
  std::string net = scratch("rgb.nas");
  write(net, R"(network rgb(x: tensor[3, 12, 12], classes: int = 4) {
  let h = relu(conv(x, 4, kernel=3, pad=1));
  return linear(global_avg_pool(h), classes);
})");
  std::string dir = scratch("rgb_run");
  Result r = nasc("train " + net + " --data synthetic --epochs 1 -o " + dir);
  INFO(r.err);
  REQUIRE(r.status == 0);
  // The run's config says what ran: the shape and classes it took from the network.
  nlohmann::json config = nlohmann::json::parse(slurp(dir + "/config.json"));
  CHECK(config["data"]["synthetic_shape"] == nlohmann::json({3, 12, 12}));
  CHECK(config["data"]["synthetic_classes"] == 4);

  std::string cfg = scratch("rgb.json");
  auto fails = [&](const std::string& data, const std::string& message) {
    write(cfg, R"({"epochs": 1, "data": {"name": "synthetic", )" + data + "}}");
    Result bad = nasc("train " + net + " -c " + cfg + " -o " + scratch("rgb_bad"));
    INFO(bad.err);
    CHECK(bad.status == 1);
    CHECK_THAT(bad.err, Contains(message));
  };
  fails(R"("synthetic_shape": [1, 28, 28])",
        cfg + ": data.synthetic_shape: [1,28,28] does not match the network's input [3,12,12]");
  fails(R"("synthetic_classes": 7)",
        cfg + ": data.synthetic_classes: 7 classes, but the network returns only 4 logits");
  // The key is located in the file even when --data names the data set again.
  write(cfg, R"({"epochs": 1, "data": {"name": "synthetic", "synthetic_shape": [3, 8, 8]}})");
  Result again = nasc("train " + net + " -c " + cfg + " --data synthetic -o " + scratch("rgb_x"));
  CHECK(again.status == 1);
  CHECK_THAT(again.err, Contains(cfg + ": data.synthetic_shape: [3,8,8] does not match"));
}
