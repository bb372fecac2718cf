// Data parallelism without mpirun (docs/scaling.md): the loader's shards, the bucketed
// gradient averaging over thread ranks, and the flags and options that set it up, with
// their malformed values. The runs under `mpirun -n 2` are tests/mpi_data_parallel.py.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "nasc/nasc.h"
#include "runtime/data/dataset.h"
#include "runtime/data/loader.h"
#include "runtime/dist/gradient_sync.h"
#include "tests/cli_test_util.h"
#include "tests/thread_collectives.h"

using Catch::Matchers::Contains;

namespace nas {
namespace {

// Every batch of an epoch, whole or as the concatenation of `shards` loaders' shards.
std::vector<Batch> epoch_batches(const Dataset& data, LoaderOptions o, int shards) {
  std::vector<size_t> indices(data.size());
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = i;
  std::vector<std::unique_ptr<Loader>> loaders;
  for (int s = 0; s < shards; ++s) {
    o.shard = s;
    o.shards = shards;
    loaders.push_back(std::make_unique<Loader>(data, indices, o));
    loaders.back()->start_epoch(1);
  }
  std::vector<Batch> whole;
  for (;;) {
    Batch joined;
    bool any = false;
    for (auto& loader : loaders) {
      Batch part;
      if (!loader->next(part)) continue;
      any = true;
      CHECK(part.first == joined.labels.size());
      joined.images.insert(joined.images.end(), part.images.begin(), part.images.end());
      joined.labels.insert(joined.labels.end(), part.labels.begin(), part.labels.end());
      joined.indices.insert(joined.indices.end(), part.indices.begin(), part.indices.end());
    }
    if (!any) break;
    whole.push_back(std::move(joined));
  }
  return whole;
}

TEST_CASE("loader shards: together they are the whole batch, augmentation included",
          "[data][parallel]") {
  const Dataset data = make_synthetic(23, {1, 8, 8}, 4, 7);
  LoaderOptions o;
  o.batch_size = 6;
  o.seed = 11;
  o.augment.crop_padding = 2;
  o.augment.hflip = true;
  o.augment.cutout = 3;
  for (bool drop_last : {true, false}) {
    o.drop_last = drop_last;  // false: a last batch of 5, cut 2+3 or 1+2+2
    const std::vector<Batch> whole = epoch_batches(data, o, 1);
    REQUIRE(whole.size() == (drop_last ? 3u : 4u));
    for (int shards : {2, 3}) {
      INFO("shards " << shards << ", drop_last " << drop_last);
      const std::vector<Batch> joined = epoch_batches(data, o, shards);
      REQUIRE(joined.size() == whole.size());
      for (size_t b = 0; b < whole.size(); ++b) {
        CHECK(joined[b].indices == whole[b].indices);
        CHECK(joined[b].labels == whole[b].labels);
        CHECK(joined[b].images == whole[b].images);  // the same bits
      }
    }
  }
}

TEST_CASE("loader shards: a shard out of range is a caller's bug", "[data][parallel]") {
  const Dataset data = make_synthetic(8, {1, 4, 4}, 2, 1);
  LoaderOptions o;
  o.batch_size = 4;
  o.shard = 2;
  o.shards = 2;
  CHECK_THROWS_AS(Loader(data, {0, 1, 2, 3}, o), InternalError);
}

// A training plan of three parameters whose gradients backward finishes at steps 1, 3 and
// 4 (a linear layer's weight, a convolution's weight and bias, batch norm's scale).
ExecPlan gradient_plan() {
  ExecPlan plan;
  plan.training = true;
  plan.params = {{"fc.weight", {4, 3}},
                 {"conv.weight", {2, 1, 3, 3}},
                 {"conv.bias", {2}},
                 {"bn.running_mean", {2}, false},
                 {"bn.weight", {2}}};
  plan.steps.resize(5);
  plan.steps[1].kind = StepKind::LinearGradWeight;
  plan.steps[1].weight = 0;
  plan.steps[3].kind = StepKind::ConvGradWeight;
  plan.steps[3].weight = 1;
  plan.steps[3].bias = 2;
  plan.steps[4].kind = StepKind::BatchNormGrad;
  plan.steps[4].weight = 4;
  return plan;
}

TEST_CASE("gradient sync: buckets start as backward completes them and hold the averages",
          "[parallel][executor]") {
  const ExecPlan plan = gradient_plan();
  const std::vector<size_t> sizes = {12, 18, 2, 2, 2};
  test::run_ranks(4, [&](test::ThreadCollectives& comm, int rank) {
    // 48 bytes: the linear weight fills a bucket, the convolution's two another.
    GradientSync sync(plan, comm, 48);
    CHECK(sync.buckets() == 3);
    CHECK(sync.floats() == 12 + 18 + 2 + 2);
    std::vector<std::vector<float>> grads(sizes.size());
    std::vector<float*> pointers;
    for (size_t p = 0; p < sizes.size(); ++p) {
      for (size_t k = 0; k < sizes[p]; ++k)
        grads[p].push_back(static_cast<float>(rank * 100 + p * 10 + k));
      pointers.push_back(plan.params[p].trainable ? grads[p].data() : nullptr);
    }
    sync.begin(pointers);
    sync.after_step(0);
    CHECK(comm.reductions() == 0);
    sync.after_step(1);  // the linear weight is final
    CHECK(comm.reductions() == 1);
    sync.after_step(3);
    CHECK(comm.reductions() == 2);
    sync.finish();
    CHECK(comm.reductions() == 3);
    for (size_t p = 0; p < sizes.size(); ++p)
      for (size_t k = 0; k < sizes[p]; ++k) {
        // Ranks 0..3 add 0..300: the average adds 150 (exact: 1/4 is). Running statistics stay.
        const float expected =
            static_cast<float>(p * 10 + k + (plan.params[p].trainable ? 150 : rank * 100));
        CHECK(grads[p][k] == expected);
      }
  });
}

}  // namespace
}  // namespace nas

TEST_CASE("data parallelism: malformed flags and options are user errors", "[cli][parallel]") {
  using nas::test::run_nasc;
  struct Case {
    std::string args, message;
  };
  for (const Case& c : std::vector<Case>{
           {"train examples/tiny.nas --comm-timeout abc", "--comm-timeout needs seconds"},
           {"train examples/tiny.nas --comm-timeout 0",
            "--comm-timeout needs seconds in (0, 86400]"},
           {"search examples/tiny.nas --comm-timeout -3", "--comm-timeout needs seconds"},
           {"search examples/tiny.nas --comm-timeout 1e9", "--comm-timeout needs seconds"},
           {"search examples/tiny.nas --comm-timeout", "--comm-timeout needs a value"},
           {"check examples/tiny.nas --sync-bn", "--sync-bn does not apply to `nasc check`"},
           {"estimate examples/tiny.nas --comm-timeout 5", "--comm-timeout does not apply"},
       }) {
    const nas::test::CliResult r = run_nasc(c.args);
    INFO("nasc " << c.args << "\n" << r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Contains(c.message));
  }
  nasc::RunOptions o;
  o.space_file = NASC_SOURCE_DIR "/examples/tiny.nas";
  o.output_dir = nas::test::scratch_path("parallel_options");
  o.parallel.timeout_seconds = 0;
  try {
    nasc::train(o);
    FAIL("a zero timeout was accepted");
  } catch (const nasc::Error& e) {
    CHECK(e.kind() == nasc::Error::Kind::User);
    CHECK_THAT(e.what(), Contains("parallel.timeout_seconds: must be positive"));
  }
}

TEST_CASE("data parallelism: a process started alone is rank 0 of 1 and never joins MPI",
          "[parallel]") {
  const nasc::ProcessGroup g = nasc::process_group();
  CHECK(g.rank == 0);
  CHECK(g.size == 1);
  nasc::abort_process_group(3);  // no MPI job: returns
}

TEST_CASE("data parallelism: NASC_TEST_KILL_RANK must be a rank number", "[cli][parallel]") {
  ::setenv("NASC_TEST_KILL_AT", "step:1", 1);
  ::setenv("NASC_TEST_KILL_RANK", "one", 1);
  const nas::test::CliResult r = nas::test::run_nasc(
      "train examples/tiny.nas --arch examples/tiny_conv.json --data synthetic --epochs 1 -o " +
      nas::test::scratch_path("kill_rank"));
  ::unsetenv("NASC_TEST_KILL_AT");
  ::unsetenv("NASC_TEST_KILL_RANK");
  INFO(r.err);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("NASC_TEST_KILL_RANK: expected a rank number, got \"one\""));
}
