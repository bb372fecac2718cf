// Embedding nasc: compile a search space, print every candidate's estimated latency from a
// table `nasc profile` wrote, then train a sampled architecture for a few steps on
// synthetic data and print the loss going down. Usage: embed SPACE.nas LUT.json
#include <nasc/nasc.h>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SPACE.nas LUT.json\n", argv[0]);
    return 1;
  }
  try {
    nasc::Space space = nasc::Space::compile_file(argv[1]);
    std::printf("nasc %s: space %s, %zu choices\n", nasc::version().c_str(), space.name().c_str(),
                space.choices().size());

    // Each candidate's latency: the architecture with it, every other choice at its first.
    nasc::LatencyEstimator latency(space, nasc::LatencyTable::load(argv[2]));
    for (size_t i = 0; i < space.choices().size(); ++i) {
      const nasc::Choice& choice = space.choices()[i];
      for (size_t c = 0; c < choice.candidates.size() && choice.k == 1; ++c) {
        std::vector<std::vector<int>> chosen = space.first_candidates().chosen();
        chosen[i] = {static_cast<int>(c)};
        nasc::LatencyEstimate e = latency.estimate(space.fix(chosen));
        std::printf("  %s=%-8s %.4f ms\n", choice.key.c_str(), choice.candidates[c].c_str(),
                    e.fused_ms);
      }
    }

    nasc::Architecture arch = space.sample(7);
    nasc::ModelOptions options;
    options.batch = 32;
    options.threads = 1;
    options.learning_rate = 0.2;
    nasc::Model model = nasc::Model::build(arch, options);
    std::printf("training %s (%lld weights)\n", arch.describe().c_str(),
                static_cast<long long>(model.parameter_count()));

    // Synthetic data: each class lights up its own rows of the image.
    const int64_t n = model.batch(), size = model.input_size(), classes = model.classes();
    std::vector<float> images(n * size);
    std::vector<int32_t> labels(n);
    for (int64_t i = 0; i < n; ++i) {
      labels[i] = static_cast<int32_t>(i % classes);
      for (int64_t p = 0; p < size; ++p)
        images[i * size + p] = (p / 12) % classes == labels[i] ? 1.0f : 0.0f;
    }
    double first = 0, last = 0;
    for (int step = 1; step <= 30; ++step) {
      nasc::StepResult r = model.train_step(images.data(), labels.data(), n);
      if (step == 1) first = r.loss;
      last = r.loss;
      if (step == 1 || step % 5 == 0) std::printf("  step %2d  loss %.4f\n", step, r.loss);
    }
    std::printf("loss %.4f -> %.4f: %s\n", first, last,
                last < first ? "went down" : "did not go down");
    return last < first ? 0 : 3;
  } catch (const nasc::Error& e) {
    std::fprintf(stderr, "embed: %s\n", e.what());
    return e.is_user_error() ? 1 : 2;
  }
}
