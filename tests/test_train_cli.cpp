// `nasc train` end to end on small synthetic data: the run folder, the weights file, the
// progress output without a terminal, bad input (config, flags, data, arch), synthetic
// data of the network's shape, and losing nothing: runs killed at every step and in the
// middle of checkpoint writes (NASC_TEST_KILL_AT) resume to the same bytes as an
// uninterrupted run, and a full disk leaves the last checkpoint intact.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "runtime/train/checkpoint.h"
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

TEST_CASE("nasc train --backend jit: the interpreter's numbers", "[train][cli][jit]") {
  std::string cfg = scratch("jit_cfg.json");
  write(cfg, R"({"epochs": 1, "seed": 5, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 512, "batch_size": 64,
             "eval_batch_size": 100},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}})");
  // The same weights and metrics within float tolerance: the JIT runs the same kernels,
  // its fused regions may round a * b + c once (FMA).
  auto metrics = [&](const std::string& command, const std::string& backend) {
    const std::string dir = scratch("jit_" + backend + std::to_string(command.size()));
    Result r = nasc(command + " -c " + cfg + " --backend " + backend + " -o " + dir);
    INFO(r.err << r.out);
    REQUIRE(r.status == 0);
    return nlohmann::json::parse(slurp(dir + "/metrics.jsonl"));
  };
  const std::string train = "train examples/fmnist_cnn.nas";
  nlohmann::json cpu = metrics(train, "cpu"), jit = metrics(train, "jit");
  CHECK(jit["train_loss"].get<double>() == Approx(cpu["train_loss"].get<double>()).epsilon(1e-4));
  CHECK(jit["test_loss"].get<double>() == Approx(cpu["test_loss"].get<double>()).epsilon(1e-4));
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
  fails("train examples/fmnist_cnn.nas --data synthetic --resume", "--resume needs -o DIR");
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

  // The same run, killed (SIGKILL: no cleanup) 12 steps into its second epoch of 48.
  nas::test::run_nasc_killed_at(args + cut, "step:60");
  REQUIRE(fs::exists(cut + "/checkpoint"));
  CHECK_FALSE(fs::exists(cut + "/weights"));  // it did not finish
  CHECK(lines(cut + "/metrics.jsonl") == 1);

  Result resumed =
      nasc("train examples/tiny.nas " + std::string(kTinyArch) + " --resume -o " + cut);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK_THAT(resumed.out, Contains("resuming after epoch 1"));
  CHECK(lines(cut + "/metrics.jsonl") == 3);
  nas::TensorFile a = nas::read_tensor_file(whole + "/weights");
  nas::TensorFile b = nas::read_tensor_file(cut + "/weights");
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    INFO(a.tensors[i].name);
    CHECK(a.tensors[i].data == b.tensors[i].data);  // bit-identical
  }
}

namespace {

// A run small enough to kill at every step: 128 training samples in batches of 32 (4
// steps per epoch), 2 epochs, a checkpoint after each.
const char* kSmallConfig = R"({"epochs": 2, "seed": 3, "threads": 1,
  "data": {"name": "synthetic", "synthetic_samples": 128, "batch_size": 32,
           "eval_batch_size": 32},
  "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}})";

const std::vector<std::string> kTrainOutcome = {"weights", "checkpoint"};

std::string small_train_args(const std::string& cfg) {
  return "train examples/tiny.nas " + std::string(kTinyArch) + " -c " + cfg + " -o ";
}

// Resumes the run in `dir` until it finishes, returning what the resume printed.
std::string resume_train(const std::string& dir) {
  Result r = nasc("train examples/tiny.nas " + std::string(kTinyArch) + " --resume -o " + dir);
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_FALSE(fs::exists(dir + "/checkpoint.tmp"));
  return r.out;
}

}  // namespace

TEST_CASE("nasc train: resuming a finished run trains nothing and reports its test accuracy",
          "[train][cli][resume]") {
  std::string cfg = scratch("finished.json");
  write(cfg, kSmallConfig);
  const std::string dir = scratch("finished_run");
  Result first = nasc(small_train_args(cfg) + dir);
  REQUIRE(first.status == 0);
  const auto expected = nas::test::run_outcome(dir, kTrainOutcome);
  const std::string again = resume_train(dir);
  // The same line as the run's own end (it used to say 0.00% and rewrite the weights so).
  const std::string result = first.out.substr(first.out.rfind("test accuracy "));
  CHECK(again.substr(again.rfind("test accuracy "), result.find(" after")) ==
        result.substr(0, result.find(" after")));
  CHECK(nas::test::run_outcome(dir, kTrainOutcome) == expected);
}

// The property --resume promises: wherever a run is killed (after any step, or in the
// middle of writing a checkpoint), resuming it ends with the same weights, checkpoint and
// metrics, byte for byte, as a run that was never interrupted.
TEST_CASE("nasc train: killed at every step or checkpoint write, resumed bit-identically",
          "[train][cli][resume][property]") {
  std::string cfg = scratch("small.json");
  write(cfg, kSmallConfig);
  const std::string args = small_train_args(cfg);
  const std::string whole = scratch("small_whole");
  REQUIRE(nasc(args + whole).status == 0);
  const auto expected = nas::test::run_outcome(whole, kTrainOutcome);
  const uintmax_t checkpoint_bytes = fs::file_size(whole + "/checkpoint");
  const int64_t steps = nas::load_checkpoint(whole)->global_step;
  REQUIRE(steps == 8);

  for (int step = 1; step <= steps; ++step) {
    INFO("killed after step " << step);
    std::string dir = scratch("small_step" + std::to_string(step));
    nas::test::run_nasc_killed_at(args + dir, "step:" + std::to_string(step));
    // The last step of an epoch comes before that epoch's checkpoint.
    const bool has_checkpoint = step > steps / 2;
    CHECK(fs::exists(dir + "/checkpoint") == has_checkpoint);
    CHECK_FALSE(fs::exists(dir + "/weights"));
    std::string said = resume_train(dir);
    CHECK_THAT(said, Contains(has_checkpoint ? "resuming after epoch 1"
                                             : "no checkpoint yet: starting the run over"));
    CHECK(nas::test::run_outcome(dir, kTrainOutcome) == expected);
  }

  for (int write_number = 1; write_number <= 2; ++write_number) {
    INFO("killed while writing checkpoint " << write_number);
    std::string dir = scratch("small_write" + std::to_string(write_number));
    nas::test::run_nasc_killed_at(args + dir, "checkpoint-write:" + std::to_string(write_number));
    // Half a checkpoint in the temporary file; the previous checkpoint, if any, intact.
    REQUIRE(fs::exists(dir + "/checkpoint.tmp"));
    CHECK(fs::file_size(dir + "/checkpoint.tmp") == checkpoint_bytes / 2);
    CHECK(fs::exists(dir + "/checkpoint") == (write_number == 2));
    if (write_number == 2) CHECK(nas::load_checkpoint(dir)->epoch == 1);
    resume_train(dir);
    CHECK(nas::test::run_outcome(dir, kTrainOutcome) == expected);
  }

  // Killed twice: the resumed run is itself killed, and resumed again.
  std::string twice = scratch("small_twice");
  nas::test::run_nasc_killed_at(args + twice, "step:3");
  nas::test::run_nasc_killed_at(
      "train examples/tiny.nas " + std::string(kTinyArch) + " --resume -o " + twice, "step:6");
  CHECK(nas::load_checkpoint(twice)->epoch == 1);  // the second run got past epoch 1
  CHECK_THAT(resume_train(twice), Contains("resuming after epoch 1"));
  CHECK(nas::test::run_outcome(twice, kTrainOutcome) == expected);
}

// A full disk (a file size limit, which fails write() with EFBIG) or a folder where the
// checkpoint cannot be created: exit 1 naming the file, no half-written file left under
// the real name, the previous checkpoint still loadable, and a later resume ends where an
// uninterrupted run ends.
TEST_CASE("nasc train: a full disk or an unwritable checkpoint leaves the last one intact",
          "[train][cli][resume][disk]") {
  std::string cfg = scratch("disk.json");
  write(cfg, kSmallConfig);
  const std::string args = small_train_args(cfg);
  const std::string whole = scratch("disk_whole");
  REQUIRE(nasc(args + whole).status == 0);
  const auto expected = nas::test::run_outcome(whole, kTrainOutcome);
  // Half a checkpoint fits; log.txt, metrics.jsonl and the output are far smaller.
  nas::test::ChildConditions small_disk;
  small_disk.max_file_bytes = static_cast<long long>(fs::file_size(whole + "/checkpoint") / 2);
  const std::string resume_args =
      "train examples/tiny.nas " + std::string(kTinyArch) + " --resume -o ";

  SECTION("the disk fills up at a run's first checkpoint") {
    std::string dir = scratch("disk_first");
    Result r = nas::test::run_nasc_under(args + dir, small_disk);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(dir + "/checkpoint: cannot write " + dir +
                               "/checkpoint.tmp: File too large") &&
                          Contains("the previous checkpoint, if any, is left as it was"));
    CHECK_FALSE(fs::exists(dir + "/checkpoint"));
    CHECK_FALSE(fs::exists(dir + "/checkpoint.tmp"));
    CHECK_THAT(resume_train(dir), Contains("starting the run over"));
    CHECK(nas::test::run_outcome(dir, kTrainOutcome) == expected);
  }

  SECTION("the disk fills up at a later checkpoint") {
    std::string dir = scratch("disk_later");
    nas::test::run_nasc_killed_at(args + dir, "checkpoint-write:2");
    Result r = nas::test::run_nasc_under(resume_args + dir, small_disk);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(dir + "/checkpoint: cannot write") && Contains("File too large"));
    CHECK_FALSE(fs::exists(dir + "/checkpoint.tmp"));
    CHECK_FALSE(fs::exists(dir + "/weights"));
    std::optional<nas::Checkpoint> kept = nas::load_checkpoint(dir);
    REQUIRE(kept);
    CHECK(kept->epoch == 1);
    CHECK_THAT(resume_train(dir), Contains("resuming after epoch 1"));
    CHECK(nas::test::run_outcome(dir, kTrainOutcome) == expected);
  }

  SECTION("the checkpoint's temporary file cannot be created") {
    // What a read-only folder does, made so that it holds for root too (CI runs tests as
    // root, for whom chmod does not stop a write): a folder in the temporary file's place.
    std::string dir = scratch("disk_blocked");
    nas::test::run_nasc_killed_at(args + dir, "checkpoint-write:2");
    fs::remove(dir + "/checkpoint.tmp");
    fs::create_directory(dir + "/checkpoint.tmp");
    Result r = nasc(resume_args + dir);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(dir + "/checkpoint: cannot create " + dir + "/checkpoint.tmp"));
    CHECK(nas::load_checkpoint(dir)->epoch == 1);
    fs::remove(dir + "/checkpoint.tmp");
    resume_train(dir);
    CHECK(nas::test::run_outcome(dir, kTrainOutcome) == expected);
  }
}

// The weights file (and any tensor file) under a full disk, in-process: the writer's error
// names the file, and the file it would have replaced is untouched.
TEST_CASE("write_tensor_file: a full disk keeps the previous file", "[train][disk]") {
  std::string path = scratch("full_weights");
  nas::TensorFile old_file;
  old_file.tensors.push_back({"w", {2}, {1.5f, -2.0f}});
  nas::write_tensor_file(path, old_file);
  const std::string old_bytes = slurp(path);
  nas::TensorFile big;
  big.tensors.push_back({"w", {4096}, std::vector<float>(4096, 0.25f)});
  const std::string message_path = scratch("full_weights_message");

  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The limit only in this child: 4 KiB of a 16 KiB file fit.
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(4);
    try {
      nas::write_tensor_file(path, big);
    } catch (const std::runtime_error& e) {
      std::ofstream(message_path) << e.what();
      ::_exit(3);
    }
    ::_exit(0);
  }
  int raw = 0;
  waitpid(pid, &raw, 0);
  REQUIRE(WIFEXITED(raw));
  CHECK(WEXITSTATUS(raw) == 3);  // it threw
  CHECK_THAT(slurp(message_path),
             Contains(path + ": cannot write " + path + ".tmp: File too large"));
  CHECK(slurp(path) == old_bytes);
  CHECK(nas::read_tensor_file(path).find("w")->data == std::vector<float>{1.5f, -2.0f});
  CHECK_FALSE(fs::exists(path + ".tmp"));
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
