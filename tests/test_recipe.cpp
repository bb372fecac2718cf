// The evaluation recipe of nasc train (docs/train.md, "Evaluation recipe"): label
// smoothing in the loss kernel and through a training plan, against a float64 reference
// and finite differences; random erasing's rectangles, statistics and determinism under a
// seed; drop_path (whole samples, its fixed or scheduled probability, its gradient, the
// schedule per epoch through nasc train); aux_loss (an auxiliary head's weighted loss and
// gradients); the recipe's config keys with malformed values.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "compiler/pipeline/pipeline.h"
#include "runtime/cpu/plain_kernels.h"
#include "runtime/data/augment.h"
#include "runtime/data/loader.h"
#include "runtime/exec/executor.h"
#include "runtime/search/search_config.h"
#include "runtime/train/train_config.h"
#include "runtime/train/trainer.h"
#include "support/errors.h"
#include "tests/cli_test_util.h"
#include "tests/cpu_test_util.h"
#include "tests/gradient_check_util.h"
#include "tests/ir_test_util.h"

using namespace nas;
using nlohmann::json;

namespace {

// The message of the ConfigError that parsing `text` as a train config throws.
std::string train_config_error(const std::string& text) {
  try {
    parse_train_config(json::parse(text), "cfg.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("no ConfigError for " << text);
  return "";
}

// Cross-entropy against the smoothed target distribution, written the textbook way
// (-sum_j q_j log p_j with q = (1 - eps) onehot + eps / K) in double: an independent
// formula, not the kernel's rearranged one. Fills the gradient of the mean loss.
double ref_smoothed_cross_entropy(int64_t n, int64_t k, const std::vector<float>& z,
                                  const std::vector<int32_t>& labels, double eps,
                                  std::vector<double>& grad) {
  grad.assign(static_cast<size_t>(n * k), 0.0);
  double total = 0;
  for (int64_t b = 0; b < n; ++b) {
    double zmax = z[b * k];
    for (int64_t j = 1; j < k; ++j) zmax = std::max(zmax, static_cast<double>(z[b * k + j]));
    double norm = 0;
    for (int64_t j = 0; j < k; ++j) norm += std::exp(z[b * k + j] - zmax);
    for (int64_t j = 0; j < k; ++j) {
      const double q = (j == labels[b] ? 1.0 - eps : 0.0) + eps / static_cast<double>(k);
      const double p = std::exp(z[b * k + j] - zmax) / norm;
      total -= q * std::log(p);
      grad[b * k + j] = (p - q) / static_cast<double>(n);
    }
  }
  return total / static_cast<double>(n);
}

}  // namespace

TEST_CASE("label smoothing: the loss kernel against the float64 reference and differences",
          "[recipe][label_smoothing]") {
  std::mt19937 rng(5);
  for (double eps : {0.0, 0.1, 0.5, 0.9}) {
    for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 2}, {4, 10}, {3, 7}}) {
      INFO("eps " << eps << " batch " << n << " classes " << k);
      plain::CrossEntropyParams p{n, k, eps};
      std::vector<float> z = test::random_floats(n * k, rng, -4, 4);
      std::vector<int32_t> labels;
      for (int64_t b = 0; b < n; ++b) labels.push_back(static_cast<int32_t>(rng() % k));
      std::vector<float> d(static_cast<size_t>(n * k), NAN);
      const double loss = plain::softmax_cross_entropy(p, z.data(), labels.data(), d.data());
      std::vector<double> want;
      CHECK(loss == Approx(ref_smoothed_cross_entropy(n, k, z, labels, eps, want)).epsilon(1e-10));
      test::check_close(d, want, 1e-6, "dlogits");
      auto f = [&] { return plain::softmax_cross_entropy(p, z.data(), labels.data()); };
      test::check_fd(z, d, f, 1e-3f, 1e-5, test::kApproxEpsilon, "dlogits");
    }
  }
  // The smoothed gradient of a row sums to 0 like the plain one, and eps 0 is the plain loss
  // bit for bit.
  plain::CrossEntropyParams plain_p{2, 3}, zero{2, 3, 0.0};
  std::vector<float> z = {0.5f, -1, 2, 3, 0, -2};
  std::vector<int32_t> labels = {2, 0};
  std::vector<float> d1(6), d2(6);
  CHECK(plain::softmax_cross_entropy(plain_p, z.data(), labels.data(), d1.data()) ==
        plain::softmax_cross_entropy(zero, z.data(), labels.data(), d2.data()));
  CHECK(d1 == d2);
  // Uniform logits: the smoothed loss is log K whatever eps, and the gradient is
  // (1/K - q) / n: -(1 - eps) (K - 1) / K at the label, (1 - eps) / K elsewhere (n = 1).
  plain::CrossEntropyParams u{1, 4, 0.2};
  std::vector<float> flat(4, 1.5f), du(4);
  std::vector<int32_t> one = {1};
  CHECK(plain::softmax_cross_entropy(u, flat.data(), one.data(), du.data()) ==
        Approx(std::log(4.0)).epsilon(1e-12));
  CHECK(du[1] == Approx(-0.8 * 0.75).epsilon(1e-6));
  CHECK(du[0] == Approx(0.8 * 0.25).epsilon(1e-6));
  // A smoothing out of range is a bug of the caller: the config parser refuses it first.
  plain::CrossEntropyParams bad{1, 4, 1.0};
  CHECK_THROWS_AS(plain::softmax_cross_entropy(bad, flat.data(), one.data()), InternalError);
}

TEST_CASE("label smoothing: a training plan's loss and gradients with eps 0.1",
          "[recipe][label_smoothing]") {
  Graph net = test::compile_source(
      "network ls(x: tensor[2, 6, 6]) {\n"
      "  let h = relu(conv(x, 3, kernel=3, pad=1));\n"
      "  return linear(flatten(h), 5);\n"
      "}\n");
  PlanOptions o;
  o.batch = 4;
  o.training = true;
  ParamStore store;
  Executor ex(compile_plan(net, o), store, 3);
  ex.set_label_smoothing(0.1);
  std::mt19937 rng(9);
  std::vector<float> x = test::random_floats(4 * 2 * 6 * 6, rng);
  std::vector<int32_t> labels = {0, 3, 4, 1};
  // The loss the plan reports is the smoothed cross-entropy of the logits it hands out.
  std::vector<float> logits(4 * 5);
  RunResult r = ex.run(x.data(), labels.data(), 4, logits.data());
  std::vector<double> unused;
  CHECK(r.loss_sum / 4 ==
        Approx(ref_smoothed_cross_entropy(4, 5, logits, labels, 0.1, unused)).epsilon(1e-5));
  // Every parameter's gradient against central differences of that loss.
  auto loss = [&] { return ex.run(x.data(), labels.data(), 4).loss_sum / 4; };
  test::check_store_gradients(store, loss, rng, 6);
  // Smoothing changes the loss: the same run with eps 0 reports the plain cross-entropy.
  ex.set_label_smoothing(0.0);
  RunResult plain_run = ex.run(x.data(), labels.data(), 4);
  CHECK(plain_run.loss_sum / 4 ==
        Approx(ref_smoothed_cross_entropy(4, 5, logits, labels, 0.0, unused)).epsilon(1e-5));
  CHECK(plain_run.loss_sum != Approx(r.loss_sum).epsilon(1e-3));
}

TEST_CASE("label smoothing: the config key, its range and its round trip",
          "[recipe][label_smoothing][train]") {
  CHECK(default_train_config().label_smoothing == 0);
  TrainConfig c = parse_train_config(json::parse(R"({"label_smoothing": 0.1})"), "cfg.json");
  CHECK(c.label_smoothing == 0.1);
  CHECK(train_config_to_json(c)["label_smoothing"] == 0.1);
  CHECK(parse_train_config(json::parse(train_config_to_json(c).dump()), "") == c);
  TrainConfig other = c;
  other.label_smoothing = 0.2;
  CHECK(other != c);

  CHECK(train_config_error(R"({"label_smoothing": 1})") ==
        "cfg.json: label_smoothing: must be in [0, 1), got 1");
  CHECK(train_config_error(R"({"label_smoothing": 1.5})") ==
        "cfg.json: label_smoothing: must be in [0, 1), got 1.5");
  CHECK(train_config_error(R"({"label_smoothing": -0.1})") ==
        "cfg.json: label_smoothing: must be >= 0, got -0.1");
  CHECK(train_config_error(R"({"label_smoothing": "0.1"})") ==
        "cfg.json: label_smoothing: expected a number, got string");
  CHECK(train_config_error(R"({"label_smoothing": null})") ==
        "cfg.json: label_smoothing: expected a number, got null");
  CHECK(train_config_error(R"({"label_smothing": 0.1})") ==
        "cfg.json: label_smothing: unknown key (did you mean label_smoothing?)");

  // A search does not read the recipe: its config refuses the key and never writes it.
  try {
    parse_search_config(json::parse(R"({"label_smoothing": 0.1})"), "search.json");
    FAIL("a search config accepted label_smoothing");
  } catch (const ConfigError& e) {
    CHECK(e.key_path() == "label_smoothing");
    CHECK_THAT(e.what(), Catch::Matchers::StartsWith("search.json: label_smoothing: unknown key"));
  }
  CHECK_FALSE(search_config_to_json(default_search_config()).contains("label_smoothing"));
}

// ---------------------------------------------------------------------------------------
// Random erasing

TEST_CASE("random erasing: erase fills the box in every channel", "[recipe][erasing][data]") {
  std::vector<float> x(2 * 3 * 4, 1.0f);  // 2 channels of 3x4
  ErasingBox box;
  box.y = 1, box.x = 1, box.h = 2, box.w = 2;
  erase(x.data(), 2, 3, 4, box, 7.0f);
  const std::vector<float> channel = {1, 1, 1, 1, 1, 7, 7, 1, 1, 7, 7, 1};
  std::vector<float> want = channel;
  want.insert(want.end(), channel.begin(), channel.end());
  CHECK(x == want);
  erase(x.data(), 2, 3, 4, ErasingBox{}, 9.0f);  // an empty box changes nothing
  CHECK(x == want);
}

TEST_CASE("random erasing: boxes as torchvision draws them", "[recipe][erasing][data]") {
  RandomErasing e;
  SECTION("a fixed share and ratio give a fixed size at a uniform position") {
    e.scale_min = e.scale_max = 0.25;  // 256 of 32x32
    e.ratio_min = e.ratio_max = 1.0;
    Rng rng(3);
    std::vector<int> ys(17, 0), xs(17, 0);
    for (int i = 0; i < 3400; ++i) {
      ErasingBox b = draw_erasing_box(e, 32, 32, rng);
      REQUIRE(b.h == 16);
      REQUIRE(b.w == 16);
      REQUIRE(b.y >= 0);
      REQUIRE(b.y <= 16);
      REQUIRE(b.x >= 0);
      REQUIRE(b.x <= 16);
      ++ys[b.y];
      ++xs[b.x];
    }
    // 17 positions, 200 expected each: every one is drawn, none far off.
    for (int k = 0; k <= 16; ++k) {
      INFO("offset " << k);
      CHECK(ys[k] > 120);
      CHECK(ys[k] < 280);
      CHECK(xs[k] > 120);
      CHECK(xs[k] < 280);
    }
  }
  SECTION("rows round(sqrt(area * r)), columns round(sqrt(area / r)), half to even") {
    e.scale_min = e.scale_max = 0.25;  // 64 of 16x16
    e.ratio_min = e.ratio_max = 2.25;  // sqrt(144) = 12 rows, sqrt(28.44) = 5.33 -> 5 columns
    Rng rng(1);
    ErasingBox b = draw_erasing_box(e, 16, 16, rng);
    CHECK(b.h == 12);
    CHECK(b.w == 5);
    e.scale_min = e.scale_max = 0.0625;  // 6.25 of 10x10: sqrt = 2.5 rounds to 2, as Python
    e.ratio_min = e.ratio_max = 1.0;
    b = draw_erasing_box(e, 10, 10, rng);
    CHECK(b.h == 2);
    CHECK(b.w == 2);
  }
  SECTION("a box that never fits strictly inside leaves the image alone") {
    e.scale_min = e.scale_max = 0.25;  // 256 of 32x32 at ratio 4: 32 rows, not < 32
    e.ratio_min = e.ratio_max = 4.0;
    Rng rng(2);
    ErasingBox b = draw_erasing_box(e, 32, 32, rng);
    CHECK(b.h == 0);
    CHECK(b.w == 0);
  }
  SECTION("torchvision's defaults: sizes, share and aspect statistics") {
    Rng rng(7);
    double share = 0, log_aspect = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) {
      ErasingBox b = draw_erasing_box(e, 32, 32, rng);
      REQUIRE(b.h > 0);
      REQUIRE(b.h < 32);
      REQUIRE(b.w < 32);
      REQUIRE(b.y + b.h <= 32);
      REQUIRE(b.x + b.w <= 32);
      // Area within the scale range up to the rounding of each side by 1/2.
      const double area = static_cast<double>(b.h) * b.w;
      REQUIRE(area >= 0.02 * 1024 * 0.5);
      REQUIRE(area <= 0.33 * 1024 * 1.2);
      share += area / 1024;
      log_aspect += std::log(static_cast<double>(b.h) / b.w);
    }
    // 0.1737: the mean share of 200,000 boxes drawn by the same rule in Python (torchvision's
    // get_params with random.uniform); the standard error here is about 0.0015.
    CHECK(share / n == Approx(0.1737).margin(0.008));
    // The log-uniform ratio range [0.3, 3.3] is nearly symmetric: mean log(h/w) ~ -0.005.
    CHECK(std::abs(log_aspect / n) < 0.06);
  }
}

TEST_CASE("random erasing: apply_augment erases with probability p, reproducibly",
          "[recipe][erasing][data]") {
  Augment a;
  a.erasing.p = 0.5;
  a.erasing.value = -3.0f;  // not a pixel value, so erased images are recognisable
  std::vector<float> scratch(3 * 16 * 16);
  Rng rng(11);
  int erased = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> x(3 * 16 * 16, 0.5f);
    apply_augment(a, x.data(), 3, 16, 16, rng, scratch.data());
    const auto filled = std::count(x.begin(), x.end(), -3.0f);
    erased += filled > 0;
    // Every channel alike.
    CHECK(filled % 3 == 0);
  }
  // Binomial(4000, 0.5): standard deviation 32.
  CHECK(erased > n / 2 - 160);
  CHECK(erased < n / 2 + 160);

  // The draws, replayed by hand: whether (53 bits against p), then the box.
  std::vector<float> got(3 * 16 * 16, 0.5f), want = got;
  Rng one(21), ref(21);
  int replayed_erasures = 0;
  for (int i = 0; i < 20; ++i) {
    std::fill(got.begin(), got.end(), 0.5f);
    std::fill(want.begin(), want.end(), 0.5f);
    apply_augment(a, got.data(), 3, 16, 16, one, scratch.data());
    if (static_cast<double>(ref.next_u64() >> 11) * 0x1p-53 < a.erasing.p) {
      erase(want.data(), 3, 16, 16, draw_erasing_box(a.erasing, 16, 16, ref), -3.0f);
      ++replayed_erasures;
    }
    CHECK(got == want);
  }
  CHECK(replayed_erasures > 0);
  CHECK(replayed_erasures < 20);

  // Evaluation draws nothing and erases nothing.
  Rng eval_rng(5);
  std::vector<float> x(3 * 16 * 16, 0.5f);
  apply_augment(a, x.data(), 3, 16, 16, eval_rng, scratch.data(), /*train=*/false);
  CHECK(std::count(x.begin(), x.end(), -3.0f) == 0);
  CHECK(eval_rng.next_u64() == Rng(5).next_u64());
}

TEST_CASE("random erasing: the loader's batches are a function of the seed",
          "[recipe][erasing][data]") {
  Dataset ds = make_synthetic(64, {1, 12, 12}, 4, 3);
  std::vector<size_t> all(ds.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.seed = 5;
  opt.augment.erasing.p = 1.0;
  opt.augment.erasing.value = 9.0f;
  auto first_batch = [&](const LoaderOptions& o, int64_t epoch) {
    Loader loader(ds, all, o);
    loader.start_epoch(epoch);
    Batch b;
    REQUIRE(loader.next(b));
    return b;
  };
  Batch a = first_batch(opt, 0), again = first_batch(opt, 0);
  CHECK(a.images == again.images);
  CHECK(std::count(a.images.begin(), a.images.end(), 9.0f) > 0);
  CHECK(first_batch(opt, 1).images != a.images);
  LoaderOptions other = opt;
  other.seed = 6;
  CHECK(first_batch(other, 0).images != a.images);
  // Without erasing the same batch holds no 9s: the erasing made them.
  LoaderOptions off = opt;
  off.augment.erasing.p = 0;
  Batch plain_batch = first_batch(off, 0);
  CHECK(plain_batch.indices == a.indices);
  CHECK(std::count(plain_batch.images.begin(), plain_batch.images.end(), 9.0f) == 0);
}

TEST_CASE("random erasing: the config object, its defaults and malformed values",
          "[recipe][erasing][train]") {
  CHECK(default_train_config().data.augment.erasing == RandomErasing{});
  CHECK(default_train_config().data.augment.erasing.p == 0);
  // {} is torchvision's RandomErasing().
  TrainConfig c = parse_train_config(
      json::parse(R"({"data": {"augment": {"random_erasing": {}}}})"), "cfg.json");
  const RandomErasing& e = c.data.augment.erasing;
  CHECK(e.p == 0.5);
  CHECK(e.scale_min == 0.02);
  CHECK(e.scale_max == 0.33);
  CHECK(e.ratio_min == 0.3);
  CHECK(e.ratio_max == 3.3);
  CHECK(e.value == 0.0f);
  CHECK(c.data.augment.random());
  TrainConfig d = parse_train_config(json::parse(R"({"data": {"augment": {"random_erasing":
      {"p": 0.25, "scale": [0.1, 0.2], "ratio": [0.5, 2], "value": -1.5}}}})"),
                                     "cfg.json");
  CHECK(d.data.augment.erasing.p == 0.25);
  CHECK(d.data.augment.erasing.scale_max == 0.2);
  CHECK(d.data.augment.erasing.ratio_max == 2.0);
  CHECK(d.data.augment.erasing.value == -1.5f);
  for (const TrainConfig& cfg : {c, d, default_train_config()})
    CHECK(parse_train_config(json::parse(train_config_to_json(cfg).dump()), "") == cfg);
  TrainConfig changed = d;
  changed.data.augment.erasing.ratio_min = 0.4;
  CHECK(changed != d);

  const std::string at = "cfg.json: data.augment.random_erasing";
  auto error_of = [](const std::string& erasing) {
    return train_config_error(R"({"data": {"augment": {"random_erasing": )" + erasing + "}}}");
  };
  CHECK(error_of("true") == at + ": expected an object, got boolean");
  CHECK(error_of(R"({"p": 1.5})") == at + ".p: must be in [0, 1], got 1.5");
  CHECK(error_of(R"({"p": "half"})") == at + ".p: expected a number, got string");
  CHECK(error_of(R"({"scale": [0.5, 0.2]})") ==
        at + ".scale: must satisfy 0 < min <= max <= 1, got [0.5, 0.2]");
  CHECK(error_of(R"({"scale": [0, 0.2]})") ==
        at + ".scale: must satisfy 0 < min <= max <= 1, got [0, 0.2]");
  CHECK(error_of(R"({"scale": [0.1, 1.5]})") ==
        at + ".scale: must satisfy 0 < min <= max <= 1, got [0.1, 1.5]");
  CHECK(error_of(R"({"scale": 0.2})") == at + ".scale: expected [min, max], got number");
  CHECK(error_of(R"({"scale": [0.2]})") == at + ".scale: expected [min, max], got an array of 1");
  CHECK(error_of(R"({"scale": [0.1, "x"]})") == at + ".scale[1]: expected a number, got string");
  CHECK(error_of(R"({"ratio": [3.3, 0.3]})") ==
        at + ".ratio: must satisfy 0 < min <= max, got [3.3, 0.3]");
  CHECK(error_of(R"({"ratio": [-1, 2]})") ==
        at + ".ratio: must satisfy 0 < min <= max, got [-1, 2]");
  CHECK(error_of(R"({"value": "random"})") == at + ".value: expected a number, got string");
  CHECK_THAT(error_of(R"({"prob": 0.5})"), Catch::Matchers::StartsWith(at + ".prob: unknown key"));
  // The Augment check agrees with the parser (the loader refuses what the parser refuses).
  RandomErasing bad;
  bad.scale_min = 0.5;
  bad.scale_max = 0.2;
  CHECK_THAT(bad.check(), Catch::Matchers::Contains("scale [0.5, 0.2]"));
  CHECK(RandomErasing{}.check().empty());
}

TEST_CASE("evaluation recipe: the examples in docs/train.md are valid configs", "[recipe][train]") {
  std::string doc;
  {
    std::ifstream in(std::string(NASC_SOURCE_DIR) + "/docs/train.md");
    REQUIRE(in);
    doc.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  size_t from = doc.find("\n## Evaluation recipe"), to = doc.find("\n## ", from + 1);
  REQUIRE(from != std::string::npos);
  const std::string section = doc.substr(from, to - from);
  int blocks = 0;
  for (size_t at = section.find("```json\n"); at != std::string::npos;
       at = section.find("```json\n", at + 1)) {
    const size_t end = section.find("```", at + 8);
    const std::string block = section.substr(at + 8, end - at - 8);
    INFO(block);
    CHECK_NOTHROW(parse_train_config(json::parse(block), "docs/train.md"));
    ++blocks;
  }
  CHECK(blocks >= 1);
}

// ---------------------------------------------------------------------------------------
// drop_path

namespace {

// x -> linear(6) -> drop_path -> the logits: a training run hands out the drop_path's output.
const char* kDropPathNet =
    "network dp(x: tensor[4]) {\n"
    "  return drop_path(linear(x, 6), p=%s);\n"
    "}\n";

Graph drop_path_net(const std::string& p) {
  std::string text = kDropPathNet;
  text.replace(text.find("%s"), 2, p);
  return test::compile_source(text);
}

// Per sample of a training run's logits: 0 when dropped whole, `scale` times the inference
// logits when kept whole; anything else fails. Returns the samples kept.
int kept_samples(const std::vector<float>& train, const std::vector<float>& infer, int64_t batch,
                 int64_t per, float scale) {
  int kept = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const bool zero = std::all_of(train.begin() + b * per, train.begin() + (b + 1) * per,
                                  [](float v) { return v == 0.0f; });
    if (!zero) {
      ++kept;
      for (int64_t i = b * per; i < (b + 1) * per; ++i)
        REQUIRE(train[i] == Approx(scale * infer[i]).epsilon(1e-6));
    }
  }
  return kept;
}

}  // namespace

TEST_CASE("drop_path: whole samples kept with probability 1 - p and scaled by 1 / (1 - p)",
          "[recipe][drop_path]") {
  const int64_t batch = 64;
  for (bool scheduled : {false, true}) {
    INFO((scheduled ? "p from the run" : "p = 0.25 on the op"));
    Graph net = drop_path_net(scheduled ? "-1" : "0.25");
    PlanOptions train_o, infer_o;
    train_o.batch = infer_o.batch = batch;
    train_o.training = true;
    ParamStore store;
    Executor train(compile_plan(net, train_o), store, 3);
    Executor infer(compile_plan(net, infer_o), store, 3);
    if (scheduled) train.set_drop_path_prob(0.25);
    // At inference drop_path is a view of its input (in an evaluation plan, which ends in
    // the loss); as a forward plan's output it is copied there.
    auto kind_at_inference = [&](bool loss) {
      PlanOptions o = infer_o;
      o.loss = loss;
      for (const Step& st : compile_plan(net, o).steps)
        if (st.op == "drop_path") return st.kind;
      FAIL("no drop_path step");
      return StepKind::Input;
    };
    CHECK(kind_at_inference(true) == StepKind::View);
    CHECK(kind_at_inference(false) == StepKind::Copy);
    std::mt19937 rng(4);
    std::vector<float> x = test::random_floats(batch * 4, rng);
    std::vector<int32_t> labels(batch, 1);
    std::vector<float> want(batch * 6), got(batch * 6);
    infer.run(x.data(), nullptr, batch, want.data());
    int kept = 0;
    const int runs = 20;
    for (int r = 0; r < runs; ++r) {
      train.set_dropout_seed(static_cast<uint64_t>(r));
      train.run(x.data(), labels.data(), batch, got.data());
      kept += kept_samples(got, want, batch, 6, 1.0f / 0.75f);
    }
    // Binomial(1280, 0.75): mean 960, standard deviation 15.5.
    CHECK(kept > 960 - 78);
    CHECK(kept < 960 + 78);
    // The same seed keeps the same samples; another seed others.
    std::vector<float> again(batch * 6), other(batch * 6);
    train.set_dropout_seed(5);
    train.run(x.data(), labels.data(), batch, got.data());
    train.run(x.data(), labels.data(), batch, again.data());
    train.set_dropout_seed(6);
    train.run(x.data(), labels.data(), batch, other.data());
    CHECK(got == again);
    CHECK(got != other);
  }
  // With the run's probability at 0 (a search, or nasc train without drop_path_prob) the
  // op keeps everything: the training run's output is the inference output.
  Graph net = drop_path_net("-1");
  PlanOptions o;
  o.batch = 8;
  ParamStore store;
  Executor infer(compile_plan(net, o), store, 3);
  o.training = true;
  Executor train(compile_plan(net, o), store, 3);
  std::vector<float> x(8 * 4, 0.5f), a(8 * 6), b(8 * 6);
  std::vector<int32_t> labels(8, 0);
  infer.run(x.data(), nullptr, 8, a.data());
  train.run(x.data(), labels.data(), 8, b.data());
  CHECK(a == b);
}

TEST_CASE("drop_path: gradients against finite differences, fixed and scheduled p",
          "[recipe][drop_path]") {
  // A cell-like block: two paths through drop_path, summed, so gradients of kept and dropped
  // samples both flow into shared weights.
  Graph net = test::compile_source(
      "network dpg(x: tensor[2, 6, 6]) {\n"
      "  let h = conv(x, 4, kernel=3, pad=1);\n"
      "  let a = drop_path(relu(conv(h, 4, kernel=3, pad=1)));\n"
      "  let b = drop_path(avg_pool(h, 3, stride=1, pad=1), p=0.5);\n"
      "  return linear(global_avg_pool(add(a, b, h)), 5);\n"
      "}\n");
  PlanOptions o;
  o.batch = 6;
  o.training = true;
  ParamStore store;
  Executor ex(compile_plan(net, o), store, 3);
  ex.set_drop_path_prob(0.3);
  ex.set_dropout_seed(2);
  std::mt19937 rng(8);
  std::vector<float> x = test::random_floats(6 * 2 * 6 * 6, rng);
  std::vector<int32_t> labels = {0, 1, 2, 3, 4, 0};
  auto loss = [&] { return ex.run(x.data(), labels.data(), 6).loss_sum / 6; };
  test::check_store_gradients(store, loss, rng, 6);
}

TEST_CASE("drop_path: the DARTS schedule per epoch", "[recipe][drop_path][train]") {
  // DARTS' train.py: model.drop_path_prob = args.drop_path_prob * epoch / args.epochs.
  const std::vector<double> want = {0.0, 0.04, 0.08, 0.12, 0.16};
  for (int64_t e = 0; e < 5; ++e) CHECK(scheduled_drop_path_prob(0.2, e, 5) == Approx(want[e]));
  CHECK(scheduled_drop_path_prob(0.2, 0, 1) == 0.0);
  CHECK(scheduled_drop_path_prob(0.0, 3, 5) == 0.0);
  CHECK(scheduled_drop_path_prob(0.3, 599, 600) == Approx(0.3 * 599 / 600));
  CHECK_THROWS_AS(scheduled_drop_path_prob(0.2, 5, 5), InternalError);

  PlanOptions o;
  o.batch = 2;
  o.training = true;
  CHECK(plan_reads_drop_path_prob(compile_plan(drop_path_net("-1"), o)));
  CHECK_FALSE(plan_reads_drop_path_prob(compile_plan(drop_path_net("0.2"), o)));
}

TEST_CASE("drop_path: a bad p is located at the call", "[recipe][drop_path][diagnostics]") {
  Diagnostics diags;
  Compilation c = compile_text("dp.nas",
                               "network dp(x: tensor[4]) {\n"
                               "  return drop_path(linear(x, 6), p=1.5);\n"
                               "}\n",
                               {}, diags);
  CHECK_FALSE(c.supernet);
  REQUIRE(diags.all().size() >= 1);
  const Diagnostic& d = diags.all()[0];
  CHECK(d.loc.line == 2);
  CHECK(d.loc.col == 10);
  CHECK(d.message == "drop_path attribute `p` must be in [0, 1), or -1 (the run's), got 1.5");
}

TEST_CASE("drop_path: the config key, its range and its round trip", "[recipe][drop_path][train]") {
  CHECK(default_train_config().drop_path_prob == 0);
  TrainConfig c = parse_train_config(json::parse(R"({"drop_path_prob": 0.2})"), "cfg.json");
  CHECK(c.drop_path_prob == 0.2);
  CHECK(parse_train_config(json::parse(train_config_to_json(c).dump()), "") == c);
  TrainConfig other = c;
  other.drop_path_prob = 0.3;
  CHECK(other != c);
  CHECK(train_config_error(R"({"drop_path_prob": 1})") ==
        "cfg.json: drop_path_prob: must be in [0, 1), got 1");
  CHECK(train_config_error(R"({"drop_path_prob": -0.2})") ==
        "cfg.json: drop_path_prob: must be >= 0, got -0.2");
  CHECK(train_config_error(R"({"drop_path_prob": [0.2]})") ==
        "cfg.json: drop_path_prob: expected a number, got array");
  CHECK(train_config_error(R"({"drop_pth_prob": 0.2})") ==
        "cfg.json: drop_pth_prob: unknown key (did you mean drop_path_prob?)");
  try {
    parse_search_config(json::parse(R"({"drop_path_prob": 0.2})"), "search.json");
    FAIL("a search config accepted drop_path_prob");
  } catch (const ConfigError& e) {
    CHECK(e.key_path() == "drop_path_prob");
  }
  CHECK_FALSE(search_config_to_json(default_search_config()).contains("drop_path_prob"));
}

namespace {

// A small network with every part of the recipe, and a config that turns the rest on:
// 256 training samples in batches of 32 (8 steps per epoch), 3 epochs.
void write_recipe_run(const std::string& net, const std::string& cfg) {
  std::ofstream(net) << "network recipe(x: tensor[1, 8, 8]) {\n"
                        "  let h = relu(conv(x, 4, kernel=3, pad=1));\n"
                        "  let h2 = add(h, drop_path(relu(conv(h, 4, kernel=3, pad=1))));\n"
                        "  h2 = aux_loss(h2, linear(global_avg_pool(h2), 4), weight=0.4);\n"
                        "  return linear(global_avg_pool(h2), 4);\n"
                        "}\n";
  std::ofstream(cfg) << R"({"epochs": 3, "seed": 2, "threads": 1, "label_smoothing": 0.1,
    "drop_path_prob": 0.3,
    "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 32,
             "augment": {"random_erasing": {}}}})";
}

}  // namespace

TEST_CASE("nasc train: the recipe end to end, drop_path_prob per epoch in metrics.jsonl",
          "[recipe][drop_path][train][cli]") {
  const std::string net = test::scratch_path("recipe.nas"), cfg = test::scratch_path("recipe.json");
  write_recipe_run(net, cfg);
  const std::string dir = test::scratch_path("recipe_run");
  test::CliResult r = test::run_nasc("train " + net + " -c " + cfg + " -o " + dir);
  INFO(r.err << r.out);
  REQUIRE(r.status == 0);
  std::ifstream metrics(dir + "/metrics.jsonl");
  std::string line;
  std::vector<double> probs;
  while (std::getline(metrics, line)) probs.push_back(json::parse(line).at("drop_path_prob"));
  REQUIRE(probs.size() == 3);
  CHECK(probs[0] == 0.0);
  CHECK(probs[1] == Approx(0.1));
  CHECK(probs[2] == Approx(0.2));
  // config.json records the recipe, and repeats the run.
  json written = json::parse(test::slurp(dir + "/config.json"));
  CHECK(written["label_smoothing"] == 0.1);
  CHECK(written["drop_path_prob"] == 0.3);
  CHECK(written["data"]["augment"]["random_erasing"]["p"] == 0.5);

  // A schedule with nothing to act on is refused at its key, before the run folder exists.
  const std::string plain_net = test::scratch_path("plain.nas");
  std::ofstream(plain_net) << "network plain(x: tensor[1, 8, 8]) {\n"
                              "  return linear(flatten(x), 4);\n"
                              "}\n";
  const std::string refused = test::scratch_path("refused_run");
  test::CliResult bad = test::run_nasc("train " + plain_net + " -c " + cfg + " -o " + refused);
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Matchers::Contains(
                          cfg + ": drop_path_prob: the network has no drop_path(x) that takes "
                                "the run's probability"));
  CHECK_FALSE(std::filesystem::exists(refused));
}

// ---------------------------------------------------------------------------------------
// aux_loss

namespace {

// One network text, three networks of the same name and layer paths (so one ParamStore
// serves them): `aux` trains with the auxiliary head, `head` returns the head's logits,
// `main` the main logits.
std::string aux_network(const std::string& which) {
  std::string body;
  if (which == "aux")
    body = "  let s = stem(x);\n  return body(aux_loss(s, head(s), weight=0.4));\n";
  if (which == "head") body = "  return head(stem(x));\n";
  if (which == "main") body = "  return body(stem(x));\n";
  return "module stem(x: tensor) { return relu(conv(x, 4, kernel=3, pad=1)); }\n"
         "module head(h: tensor) { return linear(global_avg_pool(relu(conv(h, 3, kernel=1))), "
         "5); }\n"
         "module body(h: tensor) { return linear(flatten(conv(h, 2, kernel=1)), 5); }\n"
         "network auxnet(x: tensor[2, 6, 6]) {\n" +
         body + "}\n";
}

}  // namespace

TEST_CASE("aux_loss: the training loss adds weight * the head's cross-entropy",
          "[recipe][aux_loss]") {
  const int64_t batch = 4;
  ParamStore store;
  PlanOptions train_o, eval_o;
  train_o.batch = eval_o.batch = batch;
  train_o.training = true;
  Graph aux = test::compile_source(aux_network("aux"));
  Executor train(compile_plan(aux, train_o), store, 3);
  Executor eval(compile_plan(aux, eval_o), store, 3);
  Executor head(compile_plan(test::compile_source(aux_network("head")), eval_o), store, 3);
  Executor main(compile_plan(test::compile_source(aux_network("main")), eval_o), store, 3);
  // One set of parameters by layer path: the stem's conv; the head's conv and linear (w, b);
  // the body's conv and linear (w, b).
  CHECK(store.params().size() == 7);

  std::mt19937 rng(12);
  std::vector<float> x = test::random_floats(batch * 2 * 6 * 6, rng);
  std::vector<int32_t> labels = {4, 0, 2, 1};
  std::vector<float> head_logits(batch * 5), main_logits(batch * 5);
  head.run(x.data(), nullptr, batch, head_logits.data());
  main.run(x.data(), nullptr, batch, main_logits.data());
  std::vector<double> unused;
  const double main_ce = ref_smoothed_cross_entropy(batch, 5, main_logits, labels, 0.0, unused);
  const double head_ce = ref_smoothed_cross_entropy(batch, 5, head_logits, labels, 0.0, unused);
  std::vector<float> train_logits(batch * 5);
  RunResult r = train.run(x.data(), labels.data(), batch, train_logits.data());
  CHECK(r.loss_sum / batch == Approx(main_ce + 0.4 * head_ce).epsilon(1e-5));
  CHECK(train_logits == main_logits);  // the main output is unchanged by the head
  // The evaluation plan reports the main loss only: aux_loss is a view there.
  CHECK(eval.run(x.data(), labels.data(), batch).loss_sum / batch == Approx(main_ce).epsilon(1e-5));
  for (const Step& s : eval.plan().steps)
    if (s.op == "aux_loss") CHECK(s.kind == StepKind::View);
  // Label smoothing applies to the head's loss as to the main one.
  train.set_label_smoothing(0.2);
  const double main_smooth = ref_smoothed_cross_entropy(batch, 5, main_logits, labels, 0.2, unused);
  const double head_smooth = ref_smoothed_cross_entropy(batch, 5, head_logits, labels, 0.2, unused);
  CHECK(train.run(x.data(), labels.data(), batch).loss_sum / batch ==
        Approx(main_smooth + 0.4 * head_smooth).epsilon(1e-5));
}

TEST_CASE("aux_loss: gradients of the main and auxiliary losses against finite differences",
          "[recipe][aux_loss]") {
  PlanOptions o;
  o.batch = 5;
  o.training = true;
  ParamStore store;
  Executor ex(compile_plan(test::compile_source(aux_network("aux")), o), store, 3);
  std::mt19937 rng(13);
  std::vector<float> x = test::random_floats(5 * 2 * 6 * 6, rng);
  std::vector<int32_t> labels = {0, 1, 2, 3, 4};
  auto loss = [&] { return ex.run(x.data(), labels.data(), 5).loss_sum / 5; };
  // Every parameter, the head's included (only the auxiliary loss reaches them).
  test::check_store_gradients(store, loss, rng, 6);
  bool head_has_gradient = false;
  for (const StoredParam& p : store.params())
    if (p.spec.name.find("head") != std::string::npos && !p.grad.empty())
      for (float g : store.read(p.grad)) head_has_gradient |= g != 0.0f;
  CHECK(head_has_gradient);
}

TEST_CASE("aux_loss: a head of other classes than the network's is located at the call",
          "[recipe][aux_loss]") {
  Graph net = test::compile_source(
      "network mismatch(x: tensor[4]) {\n"
      "  let h = relu(linear(x, 8));\n"
      "  h = aux_loss(h, linear(h, 3));\n"
      "  return linear(h, 5);\n"
      "}\n");
  for (bool training : {true, false}) {
    INFO((training ? "training" : "evaluation") << " plan");
    PlanOptions o;
    o.training = training;
    try {
      compile_plan(net, o);
      FAIL("no error");
    } catch (const UserError& e) {
      CHECK(e.where() == "space.nas:3:7");
      CHECK(e.message() ==
            "`mismatch/aux_loss` scores [3] auxiliary logits against the labels, but the network "
            "returns [5] logits: the head must predict the same classes");
    }
  }
}

TEST_CASE("nasc train: the recipe killed mid-run resumes bit-identically",
          "[recipe][train][cli][resume]") {
  // Erasing draws, drop-path samples and the schedule are functions of (seed, epoch, step):
  // a run killed in its second epoch and resumed ends with the same bytes.
  const std::string net = test::scratch_path("resume_recipe.nas");
  const std::string cfg = test::scratch_path("resume_recipe.json");
  write_recipe_run(net, cfg);
  const std::string args = "train " + net + " -c " + cfg + " -o ";
  const std::string whole = test::scratch_path("recipe_whole"),
                    cut = test::scratch_path("recipe_cut");
  REQUIRE(test::run_nasc(args + whole).status == 0);
  test::run_nasc_killed_at(args + cut, "step:11");
  REQUIRE(std::filesystem::exists(cut + "/checkpoint"));
  REQUIRE_FALSE(std::filesystem::exists(cut + "/weights"));
  test::CliResult resumed = test::run_nasc("train " + net + " --resume -o " + cut);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK(test::run_outcome(cut, {"weights", "checkpoint"}) ==
        test::run_outcome(whole, {"weights", "checkpoint"}));
}
