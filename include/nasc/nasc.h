// libnasc, the embedding API of nasc: compile search spaces, estimate, build and train
// models, run searches from C++ (docs/embedding.md). Include this header and link
// nasc::nasc (find_package(nasc)).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nasc/diagnostics.h"
#include "nasc/export.h"
#include "nasc/latency.h"
#include "nasc/model.h"
#include "nasc/pipeline.h"
#include "nasc/run.h"
#include "nasc/space.h"

namespace nasc {

// The library's version ("0.1.0").
std::string version();

struct BackendDescription {
  std::string name;  // what ModelOptions::backend and RunOptions::backend take
  std::string description;
  bool is_default = false;
};
// The backends built into this library.
std::vector<BackendDescription> backends();
// Whether backend `name` can run on this machine: "" when it can, else why not ("no CUDA
// GPU: ..."). It loads a plugin backend's library and looks for its device, so it costs
// more than backends(); `device`, when given, gets what the backend found ("NVIDIA H200,
// 132 SMs, ...", "" for the CPU backends). An unknown name is a user Error.
std::string backend_problem(const std::string& name, std::string* device = nullptr);
// Throws a user Error ("unknown backend `cpx`; did you mean `cpu`? (built in: cpu)")
// unless `name` is one of backends().
void check_backend(const std::string& name);

// Numbers as nasc's own output writes them, for a tool printing beside it:
// 1234567 -> "1,234,567"; and three significant digits with K, M, G or T from a thousand
// up: 1234 -> "1.23K", 268160 -> "268K".
std::string with_commas(int64_t value);
std::string human_count(double value);

}  // namespace nasc
