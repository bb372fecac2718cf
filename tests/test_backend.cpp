// The backend interface on every registered backend: buffers, host copies, the vector
// and optimizer operations against naive float64 loops written here, streams and events;
// and the registry (names, descriptions, the unknown-name message). A backend added to
// the registry is covered without editing this file.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/exec/backend_registry.h"
#include "support/errors.h"
#include "tests/backend_test_util.h"

using namespace nas;
using Catch::Matchers::Contains;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

DeviceBuffer buffer_of(Backend& b, const std::vector<float>& host) {
  DeviceBuffer d(b, host.size());
  upload_floats(b, d, host);
  return d;
}

void check_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).margin(tol).epsilon(tol));
  }
}

}  // namespace

TEST_CASE("backend registry: the built-in backends, by name", "[backend]") {
  const std::vector<BackendInfo> all = registered_backends();
  REQUIRE(!all.empty());
  CHECK(all[0].name == "cpu");
  CHECK(std::string(default_backend_name()) == "jit");
  CHECK(all[1].name == "jit");
  for (const BackendInfo& info : all) {
    CHECK(!info.description.empty());
    CHECK(backend_name_problem(info.name).empty());
    const BackendProbe probe = probe_backend(info);
    if (probe.problem.empty()) {
      CHECK(make_backend(info.name)->name() == info.name);
      continue;
    }
    // A backend that cannot run here (the CUDA plugin without a GPU) is a UserError at the
    // flag that asked for it, with the reason.
    WARN("backend " << info.name << " cannot run here: " << probe.problem);
    try {
      make_backend(info.name, "--backend");
      FAIL("no error");
    } catch (const UserError& e) {
      CHECK(e.where() == "--backend");
      CHECK(e.message() == "backend `" + info.name + "`: " + probe.problem);
    }
  }
  const std::string list = test::backend_list();
  CHECK(backend_name_problem("cpx") ==
        "unknown backend `cpx`; did you mean `cpu`? (built in: " + list + ")");
  CHECK(backend_name_problem("metal") == "unknown backend `metal` (built in: " + list + ")");
  try {
    make_backend("cpx", "--backend");
    FAIL("no error");
  } catch (const UserError& e) {
    CHECK(e.where() == "--backend");
    CHECK(std::string(e.what()) ==
          "--backend: unknown backend `cpx`; did you mean `cpu`? (built in: " + list + ")");
  }
  CHECK_THROWS_AS(register_backend({"cpu", "again", [] { return make_backend("cpu"); }}),
                  InternalError);
  // The interpreter answers to `interp` too; no backend is registered under that name.
  CHECK(backend_name_problem("interp").empty());
  CHECK(make_backend("interp")->name() == "cpu");
  CHECK(canonical_backend_name("interp") == "cpu");
  CHECK(canonical_backend_name("jit") == "jit");
}

TEST_CASE("backend: memory use counts what the backend holds, now and at most", "[backend]") {
  for (const BackendInfo& info : test::usable_backends()) {
    DYNAMIC_SECTION(info.name) {
      std::shared_ptr<Backend> backend = info.make();
      const MemoryUse before = backend->memory_use();
      CHECK(before.peak >= before.current);
      void* a = backend->allocate(1 << 20);
      void* b = backend->allocate(1000);
      const MemoryUse both = backend->memory_use();
      CHECK(both.current >= before.current + (1 << 20) + 1000);
      CHECK(both.peak >= both.current);
      backend->release(a);
      const MemoryUse after = backend->memory_use();
      CHECK(after.current + (1 << 20) <= both.current);
      CHECK(after.peak == both.peak);  // the most held stays
      backend->release(b);
      CHECK(backend->memory_use().current == before.current);
    }
  }
}

TEST_CASE("backend: buffers, host copies and vector operations against naive loops", "[backend]") {
  for (const BackendInfo& info : test::usable_backends()) {
    DYNAMIC_SECTION(info.name) {
      std::shared_ptr<Backend> backend = info.make();
      Backend& b = *backend;
      CHECK(b.supports(DType::F32, Layout::NCHW));

      // Allocation, upload and download, whole and at an offset.
      const std::vector<float> x = random_floats(37, 1), y = random_floats(37, 2);
      DeviceBuffer dx = buffer_of(b, x);
      CHECK(dx.size() == 37);
      CHECK(dx.bytes() == 37 * sizeof(float));
      CHECK(dx.backend() == &b);
      CHECK(download_floats(b, dx) == x);
      const float seven = 7.0f;
      b.upload(dx, &seven, sizeof seven, 5 * sizeof(float));
      float back = 0;
      b.download(&back, dx, sizeof back, 5 * sizeof(float));
      CHECK(back == 7.0f);
      CHECK_THROWS_AS(b.upload(dx, &seven, sizeof seven, 37 * sizeof(float)), InternalError);
      upload_floats(b, dx, x);
      CHECK_THROWS_WITH(upload_floats(b, dx, std::vector<float>(5)),
                        Contains("5 floats into a buffer of 37 f32"));

      // A moved buffer owns the memory; the moved-from one is empty.
      DeviceBuffer moved = std::move(dx);
      CHECK(dx.empty());
      CHECK(download_floats(b, moved) == x);
      DeviceBuffer bytes(b, 3, DType::F64);
      CHECK(bytes.bytes() == 24);

      // copy, fill, scale, axpy, sum_squares.
      DeviceBuffer dy = buffer_of(b, y), dz(b, 37);
      b.copy(dz, moved);
      CHECK(download_floats(b, dz) == x);
      b.fill(dz, 0.5f);
      CHECK(download_floats(b, dz) == std::vector<float>(37, 0.5f));
      b.copy(dz, moved);
      b.scale(dz, -3.0f);
      b.axpy(dz, 0.25f, dy);
      std::vector<double> want(37);
      for (size_t i = 0; i < 37; ++i) want[i] = -3.0 * x[i] + 0.25 * y[i];
      check_close(download_floats(b, dz), want, 1e-6);
      double sq = 0;
      for (size_t i = 0; i < 37; ++i) sq += double(x[i]) * x[i] + double(y[i]) * y[i];
      CHECK(b.sum_squares({&moved, &dy}) == Approx(sq).epsilon(1e-12));
      DeviceBuffer shorter(b, 36);
      CHECK_THROWS_AS(b.copy(shorter, dy), InternalError);
      CHECK_THROWS_AS(b.axpy(shorter, 1.0f, dy), InternalError);

      // Streams and events order work; every backend accepts them.
      Stream s = b.create_stream();
      b.set_stream(s);
      b.fill(dz, 1.0f);
      Event e = b.record_event();
      b.set_stream(Stream{});
      b.wait_event(e);
      b.synchronize();
      CHECK(download_floats(b, dz) == std::vector<float>(37, 1.0f));
    }
  }
}

TEST_CASE("backend: optimizer updates against naive float64 loops", "[backend]") {
  for (const BackendInfo& info : test::usable_backends()) {
    DYNAMIC_SECTION(info.name) {
      std::shared_ptr<Backend> backend = info.make();
      Backend& b = *backend;
      const size_t n = 29;
      const std::vector<float> w0 = random_floats(n, 3), g0 = random_floats(n, 4);

      for (bool nesterov : {false, true}) {
        // torch.optim.SGD: d = g + wd w; buf = first ? d : m buf + d; d = nesterov ? d + m
        // buf : buf; w -= lr d. Two steps, the second with the buffer of the first.
        DeviceBuffer w = buffer_of(b, w0), g = buffer_of(b, g0), buf(b, n);
        SgdUpdate u;
        u.lr = 0.1f, u.momentum = 0.9f, u.weight_decay = 0.01f, u.nesterov = nesterov;
        std::vector<double> rw(w0.begin(), w0.end()), rbuf(n);
        for (int step = 0; step < 2; ++step) {
          u.first = step == 0;
          b.sgd_update(u, w, g, &buf);
          for (size_t i = 0; i < n; ++i) {
            double d = g0[i] + 0.01 * rw[i];
            rbuf[i] = step == 0 ? d : 0.9 * rbuf[i] + d;
            d = nesterov ? d + 0.9 * rbuf[i] : rbuf[i];
            rw[i] -= 0.1 * d;
          }
        }
        check_close(download_floats(b, w), rw, 1e-5);
      }
      {
        // Plain SGD without a momentum buffer.
        DeviceBuffer w = buffer_of(b, w0), g = buffer_of(b, g0);
        SgdUpdate u;
        u.lr = 0.5f;
        b.sgd_update(u, w, g, nullptr);
        std::vector<double> rw(n);
        for (size_t i = 0; i < n; ++i) rw[i] = w0[i] - 0.5 * g0[i];
        check_close(download_floats(b, w), rw, 1e-6);
      }
      {
        // torch.optim.Adam, three steps with bias correction as the optimizer computes it.
        DeviceBuffer w = buffer_of(b, w0), g = buffer_of(b, g0), m(b, n), v(b, n);
        b.fill(m, 0.0f);
        b.fill(v, 0.0f);
        const double lr = 0.01, b1 = 0.5, b2 = 0.999, eps = 1e-8, wd = 0.1;
        std::vector<double> rw(w0.begin(), w0.end()), rm(n), rv(n);
        for (int t = 1; t <= 3; ++t) {
          AdamUpdate u;
          u.step_size = static_cast<float>(lr / (1 - std::pow(b1, t)));
          u.bc2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(b2, t)));
          u.w1 = static_cast<float>(1 - b1);
          u.b2 = static_cast<float>(b2);
          u.w2 = static_cast<float>(1 - b2);
          u.eps = static_cast<float>(eps);
          u.weight_decay = static_cast<float>(wd);
          b.adam_update(u, w, g, m, v);
          for (size_t i = 0; i < n; ++i) {
            const double gi = g0[i] + wd * rw[i];
            rm[i] = b1 * rm[i] + (1 - b1) * gi;
            rv[i] = b2 * rv[i] + (1 - b2) * gi * gi;
            const double mhat = rm[i] / (1 - std::pow(b1, t));
            const double vhat = rv[i] / (1 - std::pow(b2, t));
            rw[i] -= lr * mhat / (std::sqrt(vhat) + eps);
          }
        }
        check_close(download_floats(b, w), rw, 1e-5);
      }
    }
  }
}
