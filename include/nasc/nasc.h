// libnasc, the embedding API of nasc: compile search spaces, estimate, build and train
// models, run searches from C++ (docs/embedding.md). Include this header and link
// nasc::nasc (find_package(nasc)).
#pragma once

#include <string>
#include <vector>

#include "nasc/diagnostics.h"
#include "nasc/model.h"
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

}  // namespace nasc
