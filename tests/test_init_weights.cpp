// `nasc train --init W` end to end: fine-tuning from a fixed network's weights (written
// as safetensors, or in the older NASCWTS format) and from a search's supernet checkpoint
// for the architecture --arch picks; what a PyTorch user's reader sees of the weights a
// run writes; and the mistakes (another network, other shapes, a missing or corrupt file,
// --init where it does not apply), each exit 1 naming the file and the tensor, before any
// run folder is created.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/train/tensor_file.h"
#include "tests/cli_test_util.h"
#include "tests/safetensors_test_util.h"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using nas::test::CliResult;
using nas::test::run_nasc;
using nas::test::scratch_path;
using nas::test::slurp;

// lr 0: the weights a run starts from are the weights it ends with (only the batch-norm
// running statistics move), so a test can see exactly what --init loaded.
const char* kFrozen = R"({"epochs": 1, "seed": 3, "threads": 1,
  "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 32},
  "optimizer": {"name": "sgd", "lr": 0.0}})";

const char* kTinyConv = "train examples/tiny.nas --arch examples/tiny_conv.json ";

std::string write_config(const std::string& name, const std::string& text) {
  const std::string path = scratch_path(name);
  std::ofstream(path) << text;
  return path;
}

bool running_statistic(const std::string& name) {
  return name.find(".running_") != std::string::npos;
}

// Every tensor of `a` but the running statistics equals b's of the same name, bit for bit.
void same_weights(const nas::TensorFile& a, const nas::TensorFile& b) {
  size_t compared = 0;
  for (const nas::NamedTensor& t : a.tensors) {
    if (running_statistic(t.name)) continue;
    const nas::NamedTensor* u = b.find(t.name);
    INFO(t.name);
    REQUIRE(u != nullptr);
    REQUIRE(u->shape == t.shape);
    CHECK(std::memcmp(u->data.data(), t.data.data(), t.data.size() * 4) == 0);
    ++compared;
  }
  CHECK(compared > 0);
}

CliResult ok(const std::string& args) {
  CliResult r = run_nasc(args);
  INFO(args << "\n" << r.err << r.out);
  REQUIRE(r.status == 0);
  return r;
}

}  // namespace

TEST_CASE("nasc train writes safetensors weights a spec reader reads", "[train][cli][init]") {
  const std::string dir = scratch_path("st_run");
  ok(std::string(kTinyConv) + "--data synthetic --epochs 1 -o " + dir);
  for (const char* file : {"weights", "checkpoint"}) {
    INFO(file);
    const std::string path = dir + "/" + file;
    CHECK(nas::test::python_sees(path, nas::read_tensor_file(path)) == "");
  }
}

TEST_CASE("nasc train --init: fine-tunes from a fixed network's weights", "[train][cli][init]") {
  const std::string cfg = write_config("init_cfg.json", kFrozen);
  const std::string a = scratch_path("init_a"), b = scratch_path("init_b");
  ok(std::string(kTinyConv) + "--data synthetic --epochs 1 -o " + a);
  CliResult r = ok(std::string(kTinyConv) + "-c " + cfg + " --init " + a + "/weights -o " + b);
  const nas::TensorFile start = nas::read_tensor_file(a + "/weights");
  const nas::TensorFile end = nas::read_tensor_file(b + "/weights");
  same_weights(start, end);
  CHECK(end.meta["init"] == a + "/weights");
  CHECK_THAT(slurp(b + "/log.txt"),
             Contains("initial weights: " + std::to_string(start.tensors.size()) +
                      " tensors from " + a + "/weights"));

  // A file of the older NASCWTS format starts a run the same way.
  const std::string old = scratch_path("init_old.bin"), c = scratch_path("init_c");
  nas::write_nascwts_file(old, start);
  ok(std::string(kTinyConv) + "-c " + cfg + " --init " + old + " -o " + c);
  same_weights(start, nas::read_tensor_file(c + "/weights"));

  // Without --init the same config starts elsewhere: the test above can fail.
  const std::string d = scratch_path("init_d");
  ok(std::string(kTinyConv) + "-c " + cfg + " -o " + d);
  const nas::TensorFile fresh = nas::read_tensor_file(d + "/weights");
  CHECK(std::memcmp(fresh.tensors[0].data.data(), start.tensors[0].data.data(),
                    start.tensors[0].data.size() * 4) != 0);
}

TEST_CASE("nasc train --init: takes a search's supernet checkpoint for the chosen path",
          "[train][cli][init]") {
  const std::string search_cfg =
      write_config("init_search.json", R"({"epochs": 1, "seed": 3, "threads": 1,
        "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 32}})");
  const std::string s = scratch_path("init_search"), t = scratch_path("init_from_search");
  ok("search examples/tiny.nas -c " + search_cfg + " -o " + s);
  const std::string cfg = write_config("init_cfg2.json", kFrozen);
  ok("train examples/tiny.nas --arch " + s + "/arch.json -c " + cfg + " --init " + s +
     "/checkpoint -o " + t);
  const nas::TensorFile supernet = nas::read_tensor_file(s + "/checkpoint");
  const nas::TensorFile fixed = nas::read_tensor_file(t + "/weights");
  // The fixed network's weights are the supernet's of the same names: the chosen
  // candidates'. The supernet holds more (the other candidates, the optimizer state).
  same_weights(fixed, supernet);
  CHECK(fixed.tensors.size() < supernet.tensors.size());

  // Every architecture of the space fits the supernet's checkpoint.
  for (const char* op : {"conv", "max_pool", "identity"}) {
    const std::string arch = write_config(std::string("init_arch_") + op,
                                          std::string(R"({"choices": {"op": ")") + op + "\"}}");
    const std::string u = scratch_path(std::string("init_op_") + op);
    ok("train examples/tiny.nas --arch " + arch + " -c " + cfg + " --init " + s +
       "/checkpoint -o " + u);
    same_weights(nas::read_tensor_file(u + "/weights"), supernet);
  }
}

TEST_CASE("nasc train --init: a file that does not fit is exit 1 naming the tensor",
          "[train][cli][init][errors]") {
  const std::string a = scratch_path("init_src");
  ok(std::string(kTinyConv) + "--data synthetic --epochs 1 -o " + a);
  auto fails = [](const std::string& args, const std::string& out,
                  const std::vector<std::string>& fragments) {
    CliResult r = run_nasc(args + " -o " + out);
    INFO(args << "\n" << r.err);
    CHECK(r.status == 1);
    for (const std::string& f : fragments) CHECK_THAT(r.err, Contains(f));
    CHECK_FALSE(fs::exists(out));  // refused before the run folder is made
  };
  const std::string out = scratch_path("init_refused");
  // Another network.
  fails("train examples/fmnist_cnn.nas --data synthetic --init " + a + "/weights", out,
        {"error: " + a + "/weights: has no tensor `fmnist_cnn/", "which the network needs"});
  // Other network parameters: the same names, other shapes.
  fails(std::string(kTinyConv) + "--set width=4 --data synthetic --init " + a + "/weights", out,
        {"error: " + a + "/weights: tensor `tiny/", "is [8,1,3,3], the network needs [4,1,3,3]"});
  // Not there, not a weights file, corrupt.
  fails(std::string(kTinyConv) + "--data synthetic --init /nonexistent/w.safetensors", out,
        {"/nonexistent/w.safetensors: cannot open"});
  fails(std::string(kTinyConv) + "--data synthetic --init examples/tiny.nas", out,
        {"examples/tiny.nas: byte 0: not a weights file"});
  std::string bytes = slurp(a + "/weights");
  bytes[bytes.size() - 3] ^= 0x40;
  const std::string corrupt = scratch_path("init_corrupt.safetensors");
  nas::test::write_bytes(corrupt, bytes);
  fails(std::string(kTinyConv) + "--data synthetic --init " + corrupt, out,
        {corrupt + ": byte ", "CRC mismatch"});
  // --init is for train only.
  CliResult r =
      run_nasc("search examples/tiny.nas --data synthetic --init " + a + "/weights -o " + out);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("--init does not apply to `nasc search`; it is for `nasc train`"));
}
