// Optimizers, clipping, schedules, accumulation and the optimizer JSON config. The update
// rules are checked against float64 reference implementations written here from the
// PyTorch documentation (not from runtime/optim), plus hand-computed first steps. The
// tensors live in the default backend's memory, as the runtime's do.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "runtime/exec/backend_registry.h"
#include "runtime/optim/grad_accum.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/optim/optim_config.h"
#include "runtime/optim/optimizer.h"
#include "support/errors.h"

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using namespace nas;

Backend& backend() {
  static std::shared_ptr<Backend> b = make_backend(default_backend_name());
  return *b;
}

// A tensor in backend memory; the test reads and writes it through explicit copies.
struct Tensor {
  DeviceBuffer buf;
  Tensor(std::vector<float> v) : buf(backend(), v.size()) { set(v); }  // NOLINT: implicit
  std::vector<float> get() const { return download_floats(backend(), buf); }
  void set(const std::vector<float>& v) { upload_floats(backend(), buf, v); }
  float operator[](size_t i) const { return get()[i]; }
};

// Two parameter tensors with deterministic, step-dependent gradients kept away from zero
// so that relative comparisons are meaningful.
struct Model {
  Tensor w0{{1.0f, -0.5f, 0.25f}}, w1{{2.0f, -1.5f}};
  Tensor g0{std::vector<float>(3)}, g1{std::vector<float>(2)};

  void set_grads(int step) {
    std::vector<float> a(3), b(2);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(std::sin(step + 1.0 + i));
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(0.3 * std::cos(2.0 * step + i));
    g0.set(a);
    g1.set(b);
  }
  std::vector<ParamSlot> slots(bool decay1 = true) {
    return {{&w0.buf, &g0.buf, true}, {&w1.buf, &g1.buf, decay1}};
  }
};

// torch.optim.SGD (dampening 0) in float64.
struct RefSgd {
  double lr, mom, wd;
  bool nesterov;
  std::vector<double> buf;
  bool started = false;
  void step(std::vector<double>& w, const std::vector<double>& g, const std::vector<bool>& dec) {
    if (!started) buf.assign(w.size(), 0.0);
    for (size_t i = 0; i < w.size(); ++i) {
      double d = g[i] + (dec[i] ? wd * w[i] : 0.0);
      if (mom != 0) {
        buf[i] = started ? mom * buf[i] + d : d;
        d = nesterov ? d + mom * buf[i] : buf[i];
      }
      w[i] -= lr * d;
    }
    started = true;
  }
};

// torch.optim.Adam in float64, written as in the paper with explicit m_hat / v_hat.
struct RefAdam {
  double lr, b1, b2, eps, wd;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& w, const std::vector<double>& g, const std::vector<bool>& dec) {
    if (t == 0) m.assign(w.size(), 0.0), v.assign(w.size(), 0.0);
    ++t;
    for (size_t i = 0; i < w.size(); ++i) {
      double gi = g[i] + (dec[i] ? wd * w[i] : 0.0);
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      double mhat = m[i] / (1 - std::pow(b1, t));
      double vhat = v[i] / (1 - std::pow(b2, t));
      w[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};

std::vector<double> flat(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.get(), y = b.get();
  std::vector<double> out(x.begin(), x.end());
  out.insert(out.end(), y.begin(), y.end());
  return out;
}
std::vector<double> flat_w(const Model& m) {
  return flat(m.w0, m.w1);
}
std::vector<double> flat_g(const Model& m) {
  return flat(m.g0, m.g1);
}

template <typename Ref>
void run_against_reference(Optimizer& opt, Model& model, Ref& ref, bool decay1, int steps) {
  std::vector<double> w = flat_w(model);
  std::vector<bool> dec = {true, true, true, decay1, decay1};
  for (int s = 0; s < steps; ++s) {
    model.set_grads(s);
    opt.step();
    ref.step(w, flat_g(model), dec);
    std::vector<double> got = flat_w(model);
    for (size_t i = 0; i < w.size(); ++i) {
      INFO("step " << s << " element " << i);
      CHECK(got[i] == Approx(w[i]).epsilon(1e-6));
    }
  }
}

void run_steps(Optimizer& opt, Model& m, int from, int to) {
  for (int s = from; s < to; ++s) {
    m.set_grads(s);
    opt.step();
  }
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("sgd first steps match hand-computed values", "[optim]") {
  Tensor w{{1.0f}}, g{{0.5f}};
  Sgd sgd(backend(), {{&w.buf, &g.buf}}, SgdOptions{0.1, 0.9, false, 0.01});
  sgd.step();  // d = 0.5 + 0.01 = 0.51, buf = d, w = 1 - 0.051
  CHECK(w[0] == Approx(0.949).epsilon(1e-7));
  sgd.step();  // d = 0.5 + 0.00949 = 0.50949, buf = 0.459 + 0.50949 = 0.96849
  CHECK(w[0] == Approx(0.949 - 0.096849).epsilon(1e-7));
  CHECK(sgd.steps_done() == 2);

  Tensor wn{{1.0f}};
  Sgd nes(backend(), {{&wn.buf, &g.buf}}, SgdOptions{0.1, 0.9, true, 0.01});
  nes.step();  // buf = 0.51, d = 0.51 + 0.9 * 0.51 = 0.969
  CHECK(wn[0] == Approx(1 - 0.0969).epsilon(1e-7));

  Tensor wp{{1.0f}};
  Sgd plain(backend(), {{&wp.buf, &g.buf}}, SgdOptions{0.1, 0, false, 0});
  plain.step();
  plain.step();
  CHECK(wp[0] == Approx(0.9).epsilon(1e-7));
}

TEST_CASE("sgd matches a float64 reference over several steps", "[optim]") {
  for (bool nesterov : {false, true}) {
    for (bool decay1 : {true, false}) {
      DYNAMIC_SECTION("nesterov " << nesterov << " decay1 " << decay1) {
        Model m;
        Sgd sgd(backend(), m.slots(decay1), SgdOptions{0.05, 0.9, nesterov, 3e-2});
        RefSgd ref{0.05, 0.9, 3e-2, nesterov, {}};
        run_against_reference(sgd, m, ref, decay1, 12);
      }
    }
  }
}

TEST_CASE("adam first step and float64 reference", "[optim]") {
  Tensor w{{1.0f}}, g{{0.5f}};
  Adam adam(backend(), {{&w.buf, &g.buf}}, AdamOptions{0.1, 0.9, 0.999, 1e-8, 0});
  adam.step();  // m_hat = g, v_hat = g^2: w -= lr * g / (|g| + eps)
  CHECK(w[0] == Approx(1 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-7));

  Tensor wd{{2.0f}}, gd{{-0.25f}};
  Adam adam_wd(backend(), {{&wd.buf, &gd.buf}}, AdamOptions{0.01, 0.5, 0.999, 1e-8, 0.5});
  adam_wd.step();  // g' = -0.25 + 1.0 = 0.75 > 0, so w moves down by ~lr
  CHECK(wd[0] == Approx(2 - 0.01).epsilon(1e-6));

  for (bool decay1 : {true, false}) {
    Model m;
    Adam a(backend(), m.slots(decay1), AdamOptions{3e-2, 0.5, 0.999, 1e-8, 1e-2});
    RefAdam ref{3e-2, 0.5, 0.999, 1e-8, 1e-2, {}, {}};
    run_against_reference(a, m, ref, decay1, 15);
  }
}

TEST_CASE("optimizer constructors reject bad hyperparameters", "[optim]") {
  Tensor w{{0.0f}}, g{{0.0f}}, g2{{0.0f, 0.0f}};
  Backend& b = backend();
  std::vector<ParamSlot> s{{&w.buf, &g.buf}};
  CHECK_THROWS_WITH(Sgd(b, s, SgdOptions{-0.1, 0, false, 0}), Contains("lr: must be"));
  CHECK_THROWS_WITH(Sgd(b, s, SgdOptions{0.1, 0, true, 0}),
                    Contains("nesterov: requires momentum"));
  CHECK_THROWS_WITH(Sgd(b, s, SgdOptions{0.1, 0.9, false, -1}), Contains("weight_decay"));
  CHECK_THROWS_WITH(Adam(b, s, AdamOptions{0.1, 1.0, 0.999, 1e-8, 0}), Contains("betas[0]"));
  CHECK_THROWS_WITH(Adam(b, s, AdamOptions{0.1, 0.9, -0.1, 1e-8, 0}), Contains("betas[1]"));
  std::vector<ParamSlot> null_grad{{&w.buf, nullptr}};
  CHECK_THROWS_WITH(Sgd(b, null_grad, SgdOptions{}), Contains("slot 0"));
  std::vector<ParamSlot> other_size{{&w.buf, &g2.buf}};
  CHECK_THROWS_WITH(Sgd(b, other_size, SgdOptions{}), Contains("sizes differ"));
  Sgd ok(b, s, SgdOptions{});
  CHECK_THROWS_WITH(ok.set_lr(-1), Contains("lr"));
}

TEST_CASE("saved optimizer state resumes bitwise identically", "[optim]") {
  auto check = [](auto make) {
    Model a;
    auto opt_a = make(a);
    run_steps(*opt_a, a, 0, 10);

    Model b;
    auto opt_b = make(b);
    run_steps(*opt_b, b, 0, 5);
    std::vector<uint8_t> blob = opt_b->save_state();
    std::vector<float> w0 = b.w0.get(), w1 = b.w1.get();  // a checkpoint also stores these

    Model c;
    c.w0.set(w0);
    c.w1.set(w1);
    auto opt_c = make(c);
    opt_c->load_state(blob);
    CHECK(opt_c->steps_done() == 5);
    run_steps(*opt_c, c, 5, 10);
    CHECK(bitwise_equal(a.w0.get(), c.w0.get()));
    CHECK(bitwise_equal(a.w1.get(), c.w1.get()));
    // Without the state the continuation differs, so the check above is not vacuous.
    Model d;
    d.w0.set(w0);
    d.w1.set(w1);
    auto opt_d = make(d);
    run_steps(*opt_d, d, 5, 10);
    CHECK_FALSE(bitwise_equal(a.w0.get(), d.w0.get()));
  };
  SECTION("sgd") {
    check([](Model& m) {
      return std::make_unique<Sgd>(backend(), m.slots(), SgdOptions{0.05, 0.9, true, 1e-3});
    });
  }
  SECTION("adam") {
    check([](Model& m) {
      return std::make_unique<Adam>(backend(), m.slots(),
                                    AdamOptions{1e-2, 0.5, 0.999, 1e-8, 1e-3});
    });
  }
}

TEST_CASE("load_state rejects mismatched blobs and keeps the state", "[optim]") {
  Model m;
  Sgd sgd(backend(), m.slots(), SgdOptions{0.1, 0.9, false, 0});
  Adam adam(backend(), m.slots(), AdamOptions{});
  adam.step();
  std::vector<uint8_t> adam_blob = adam.save_state();
  CHECK_THROWS_WITH(sgd.load_state(adam_blob), Contains("saved by adam"));
  CHECK_THROWS_WITH(sgd.load_state(adam_blob, "run/checkpoint"),
                    StartsWith("run/checkpoint: optimizer state: saved by adam"));
  CHECK_THROWS_AS(sgd.load_state(adam_blob), DataFileError);
  std::vector<uint8_t> truncated(adam_blob.begin(), adam_blob.end() - 4);
  CHECK_THROWS_WITH(adam.load_state(truncated), Contains("payload size"));
  CHECK_THROWS_WITH(adam.load_state({1, 2, 3}), Contains("bad magic"));
  CHECK(adam.steps_done() == 1);

  Model other;
  other.w1 = Tensor({2.0f, -1.5f, 0.0f});
  other.g1 = Tensor({0.0f, 0.0f, 0.0f});
  Adam bigger(backend(), other.slots(), AdamOptions{});
  CHECK_THROWS_WITH(bigger.load_state(adam_blob), Contains("slot 1 size 2 != 3"));

  // Layout: 24-byte header, two uint64 sizes, then m and v as float32.
  CHECK(adam_blob.size() == 4 + 4 + 4 + 4 + 8 + 2 * 8 + 2 * 5 * sizeof(float));
  CHECK(std::memcmp(adam_blob.data(), "NOPT", 4) == 0);
}

TEST_CASE("clip_grad_norm scales only above the limit and returns the norm", "[optim]") {
  Tensor a{{3.0f, 0.0f}}, b{{4.0f}};
  std::vector<DeviceBuffer*> g{&a.buf, &b.buf};
  CHECK(clip_grad_norm(backend(), g, 10) == Approx(5.0));
  CHECK(a[0] == 3.0f);
  CHECK(b[0] == 4.0f);  // untouched when below: not even multiplied by 1

  CHECK(clip_grad_norm(backend(), g, 1) == Approx(5.0));
  const double scale = 1 / (5 + 1e-6);
  CHECK(a[0] == Approx(3 * scale).epsilon(1e-7));
  CHECK(b[0] == Approx(4 * scale).epsilon(1e-7));
  CHECK(clip_grad_norm(backend(), g, 10) == Approx(1.0).epsilon(1e-6));

  Tensor n{{NAN, 1.0f}};
  CHECK(std::isnan(clip_grad_norm(backend(), {&n.buf}, 1)));
  CHECK(n[1] == 1.0f);
  CHECK_THROWS_WITH(clip_grad_norm(backend(), g, 0), Contains("max_norm"));
}

TEST_CASE("schedules follow their closed forms", "[optim]") {
  const double pi = std::acos(-1.0);
  const double base = 0.1, eta = 0.001;
  auto cos_at = [&](double t, double T) {
    return eta + (base - eta) * (1 + std::cos(pi * t / T)) / 2;
  };

  ScheduleConfig c;
  auto constant = make_schedule(c, base);
  CHECK(constant->lr_at(0, 10) == base);
  CHECK(constant->lr_at(99, 10) == base);

  c.name = "cosine";
  c.eta_min = eta;
  c.unit = "step";
  auto cs = make_schedule(c, base);
  CHECK(cs->lr_at(0, 100) == Approx(base));
  CHECK(cs->lr_at(25, 100) == Approx(cos_at(25, 100)));
  CHECK(cs->lr_at(50, 100) == Approx((base + eta) / 2));
  CHECK(cs->lr_at(100, 100) == Approx(eta));
  CHECK(cs->lr_at(150, 100) == Approx(eta));  // past the end: stays at eta_min

  c.unit = "epoch";
  auto ce = make_schedule(c, base, 10);  // 10 steps per epoch, 100 steps = 10 epochs
  CHECK(ce->lr_at(9, 100) == Approx(base));
  CHECK(ce->lr_at(10, 100) == Approx(cos_at(1, 10)));
  CHECK(ce->lr_at(19, 100) == Approx(cos_at(1, 10)));
  CHECK(ce->lr_at(55, 100) == Approx(cos_at(5, 10)));
  CHECK(ce->lr_at(55, 95) == Approx(cos_at(5, 10)));  // partial last epoch counts

  ScheduleConfig s;
  s.name = "step";
  s.unit = "step";
  s.step_size = 3;
  s.gamma = 0.5;
  auto st = make_schedule(s, base);
  CHECK(st->lr_at(2, 20) == Approx(base));
  CHECK(st->lr_at(3, 20) == Approx(base * 0.5));
  CHECK(st->lr_at(7, 20) == Approx(base * 0.25));

  ScheduleConfig w;
  w.name = "warmup_cosine";
  w.unit = "step";
  w.warmup = 5;
  w.eta_min = eta;
  auto wc = make_schedule(w, base);
  CHECK(wc->lr_at(0, 25) == Approx(base / 5));
  CHECK(wc->lr_at(2, 25) == Approx(base * 3 / 5));
  CHECK(wc->lr_at(4, 25) == Approx(base));
  CHECK(wc->lr_at(5, 25) == Approx(base));
  CHECK(wc->lr_at(15, 25) == Approx((base + eta) / 2));
  CHECK(wc->lr_at(25, 25) == Approx(eta));
  CHECK_THROWS_WITH(wc->lr_at(0, 4), Contains("schedule.warmup: must not exceed"));
  CHECK_THROWS_AS(wc->lr_at(0, 4), ConfigError);  // the run is too short for the config
  CHECK_THROWS_AS(wc->lr_at(0, 0), InternalError);
  CHECK_THROWS_WITH(wc->lr_at(0, 0), Contains("total_steps"));
}

TEST_CASE("invalid schedule configs name the field", "[optim]") {
  ScheduleConfig c;
  c.name = "exp";
  CHECK_THROWS_WITH(make_schedule(c, 0.1), Contains("schedule.name") && Contains("'exp'"));
  c.name = "step";
  c.gamma = 0;
  CHECK_THROWS_AS(make_schedule(c, 0.1), InternalError);
  CHECK_THROWS_WITH(make_schedule(c, 0.1), Contains("schedule.gamma"));
  c.gamma = 0.1;
  c.step_size = 0;
  CHECK_THROWS_WITH(make_schedule(c, 0.1), Contains("schedule.step_size"));
  c.step_size = 1;
  CHECK_THROWS_WITH(make_schedule(c, -0.1), Contains("lr: must be"));
  c.unit = "minute";
  CHECK_THROWS_WITH(make_schedule(c, 0.1), Contains("schedule.unit"));
  ScheduleConfig w;
  w.name = "warmup_cosine";
  CHECK_THROWS_WITH(make_schedule(w, 0.1), Contains("schedule.warmup"));
  w.warmup = 2;
  w.eta_min = -1;
  CHECK_THROWS_WITH(make_schedule(w, 0.1), Contains("schedule.eta_min"));
}

TEST_CASE("gradient accumulation averages mini-batch gradients", "[optim]") {
  CHECK(accumulation_steps(64, 16) == 4);
  CHECK_THROWS_WITH(accumulation_steps(10, 4), Contains("batch_size: must be a multiple"));
  CHECK_THROWS_AS(accumulation_steps(10, 4), InternalError);  // the config parser refuses it
  CHECK_THROWS_WITH(accumulation_steps(8, 0), Contains("mini_batch"));

  // Per-sample gradients of a batch of 8 split into 4 mini-batches of 2: the averaged
  // mini-batch means equal the mean over the batch.
  std::vector<float> per_sample{1, 2, 3, 4, 5, 6, 7, 8};
  GradAccumulator acc(backend(), 8, 2, {1, 2});
  auto read = [](const DeviceBuffer* b) { return download_floats(backend(), *b); };
  std::vector<bool> done;
  for (int k = 0; k < 4; ++k) {
    float mean = (per_sample[2 * k] + per_sample[2 * k + 1]) / 2;
    Tensor g0{{mean}}, g1{{-mean, 2 * mean}};
    done.push_back(acc.add({&g0.buf, &g1.buf}));
    CHECK(acc.pending() == k + 1);
  }
  CHECK(done == std::vector<bool>{false, false, false, true});
  CHECK(read(acc.grad(0))[0] == 4.5f);
  CHECK(read(acc.grad(1))[0] == -4.5f);
  CHECK(read(acc.grad(1))[1] == 9.0f);

  // The next add starts a new batch rather than adding to the finished one.
  Tensor g0{{1}}, g1{{1, 1}};
  CHECK_FALSE(acc.add({&g0.buf, &g1.buf}));
  CHECK(acc.pending() == 1);
  CHECK(read(acc.grad(0))[0] == 1.0f);
  CHECK_THROWS_WITH(acc.add({&g0.buf}), Contains("expected 2"));

  // The accumulated buffers drive an optimizer step directly.
  GradAccumulator one(backend(), 4, 4, {1});
  Tensor w{{1}};
  Sgd sgd(backend(), {{&w.buf, one.grad(0)}}, SgdOptions{0.5, 0, false, 0});
  Tensor g{{0.5f}};
  CHECK(one.add({&g.buf}));
  sgd.step();
  CHECK(w[0] == 0.75f);
}

TEST_CASE("optimizer JSON configs parse with defaults", "[optim]") {
  auto sgd = parse_optimizer_config_text(
      R"({"name":"sgd","lr":0.025,"momentum":0.9,"nesterov":false,"weight_decay":3e-4,)"
      R"("grad_clip":5,"schedule":{"name":"cosine","eta_min":0.001}})");
  CHECK(sgd.name == "sgd");
  CHECK(sgd.lr == 0.025);
  CHECK(sgd.momentum == 0.9);
  CHECK(sgd.weight_decay == 3e-4);
  CHECK(sgd.grad_clip == 5);
  CHECK(sgd.schedule.name == "cosine");
  CHECK(sgd.schedule.eta_min == 0.001);
  CHECK(sgd.schedule.unit == "epoch");

  auto adam = parse_optimizer_config_text(
      R"({"name":"adam","lr":3e-4,"betas":[0.5,0.999],"weight_decay":1e-3})");
  CHECK(adam.beta1 == 0.5);
  CHECK(adam.beta2 == 0.999);
  CHECK(adam.eps == 1e-8);
  CHECK(adam.grad_clip == 0);
  CHECK(adam.schedule.name == "constant");

  Tensor w{{1}}, g{{0.5f}};
  auto opt = make_optimizer(sgd, backend(), {{&w.buf, &g.buf}});
  REQUIRE(dynamic_cast<Sgd*>(opt.get()));
  CHECK(dynamic_cast<Sgd*>(opt.get())->options().momentum == 0.9);
  CHECK(opt->lr() == 0.025);
  auto opt2 = make_optimizer(adam, backend(), {{&w.buf, &g.buf}});
  REQUIRE(dynamic_cast<Adam*>(opt2.get()));
  CHECK(dynamic_cast<Adam*>(opt2.get())->options().beta1 == 0.5);

  auto step = parse_optimizer_config_text(
      R"({"name":"sgd","lr":1,"grad_clip":null,"schedule":{"name":"step","step_size":2,"gamma":0.5,"unit":"step"}})");
  CHECK(step.grad_clip == 0);
  CHECK(make_schedule(step.schedule, step.lr)->lr_at(4, 10) == 0.25);
}

TEST_CASE("malformed optimizer configs name the key path", "[optim]") {
  auto err = [](const std::string& text) {
    try {
      parse_optimizer_config_text(text);
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err(R"({"name":"sgd","lr":0.1,"schedule":{"name":"cosine","eta_mn":0.001}})") ==
        "optimizer.schedule.eta_mn: unknown key for schedule 'cosine' (did you mean eta_min?)");
  CHECK(err(R"({"name":"sgd","lr":0.1,"schedule":{"name":"cosine","gamma":0.5}})") ==
        "optimizer.schedule.gamma: unknown key for schedule 'cosine' (expected one of: name, "
        "unit, eta_min)");
  CHECK(err(R"({"name":"sgd","lr":0.1,"lrr":1})") ==
        "optimizer.lrr: unknown key for optimizer 'sgd' (did you mean lr?)");
  CHECK(err(R"({"name":"adam","lr":0.1,"momentum":0.9})") ==
        "optimizer.momentum: unknown key for optimizer 'adam' (expected one of: name, lr, "
        "weight_decay, grad_clip, schedule, betas, eps)");
  CHECK(err(R"({"name":"sgd","lr":"0.1"})") == "optimizer.lr: expected a number, got string");
  CHECK(err(R"({"name":"sgd","lr":-0.1})") == "optimizer.lr: must be >= 0, got -0.1");
  CHECK(err(R"({"name":"sgd"})") == "optimizer.lr: missing required key");
  CHECK(err(R"({"lr":0.1})") == "optimizer.name: missing required key");
  CHECK(err(R"({"name":"rmsprop","lr":0.1})") ==
        "optimizer.name: unknown optimizer 'rmsprop' (expected sgd or adam)");
  CHECK(err(R"({"name":"sgd","lr":0.1,"nesterov":"yes"})") ==
        "optimizer.nesterov: expected true or false, got string");
  CHECK(err(R"({"name":"sgd","lr":0.1,"nesterov":true})") ==
        "optimizer.nesterov: requires momentum > 0");
  CHECK(err(R"({"name":"adam","lr":0.1,"betas":[0.5,1.0]})") ==
        "optimizer.betas[1]: must be in [0, 1), got 1");
  CHECK(err(R"({"name":"adam","lr":0.1,"betas":[0.5]})") ==
        "optimizer.betas: expected an array of two numbers, got an array of 1");
  CHECK(err(R"({"name":"adam","lr":0.1,"betas":[0.5,"x"]})") ==
        "optimizer.betas[1]: expected a number, got string");
  CHECK(err(R"({"name":"sgd","lr":0.1,"schedule":{"name":"step","step_size":2.5}})") ==
        "optimizer.schedule.step_size: expected an integer, got number");
  CHECK(err(R"({"name":"sgd","lr":0.1,"schedule":{"name":"step","gamma":0}})") ==
        "optimizer.schedule.gamma: must be > 0, got 0");
  CHECK(err(R"({"name":"sgd","lr":0.1,"schedule":{"name":"poly"}})") ==
        "optimizer.schedule.name: unknown schedule 'poly' (expected constant, cosine, step, "
        "warmup_cosine)");
  CHECK(err(R"({"name":"sgd","lr":0.1,"schedule":"cosine"})") ==
        "optimizer.schedule: expected an object, got string");
  CHECK(err(R"([1,2])") == "optimizer: expected an object, got array");
  CHECK_THAT(err(R"({"name":"sgd",)"), StartsWith("1:15: invalid JSON: syntax error"));
  // The file, when given, names the config.
  try {
    parse_optimizer_config(nlohmann::json::parse(R"({"name":"sgd","lr":-1})"), "valid", "s.json");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.file() == "s.json");
    CHECK(e.key_path() == "valid.lr");
    CHECK(std::string(e.what()) == "s.json: valid.lr: must be >= 0, got -1");
  }
}

TEST_CASE("inactive slots are left alone: no update, decay or momentum", "[optim]") {
  for (const char* kind : {"sgd", "adam"}) {
    Tensor a{{1, 2}}, b{{3, 4}}, ga{{0.5f, 0.5f}}, gb{{0.0f, 0.0f}};
    std::vector<ParamSlot> slots = {{&a.buf, &ga.buf, true}, {&b.buf, &gb.buf, true}};
    OptimizerConfig cfg;
    cfg.name = kind;
    cfg.lr = 0.1;
    cfg.weight_decay = 0.1;
    if (cfg.name == "sgd") cfg.momentum = 0.9;
    std::unique_ptr<Optimizer> opt = make_optimizer(cfg, backend(), slots);
    opt->set_active({1, 0});
    opt->step();
    opt->step();
    CHECK(a[0] < 1.0f);                          // active: updated
    CHECK(b.get() == std::vector<float>{3, 4});  // inactive: weight decay did not touch it
    opt->set_active({});                         // all active again
    opt->step();
    CHECK(b[0] < 3.0f);
    CHECK_THROWS_AS(opt->set_active({1}), InternalError);
  }
}
