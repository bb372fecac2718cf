// The backends a test runs on: every registered one that can run on this machine. A
// backend whose device is missing (the CUDA plugin without a GPU) is skipped with a WARN
// line naming it and why, so that a run without a GPU says what it did not test.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "runtime/exec/backend_registry.h"

namespace nas::test {

inline std::vector<BackendInfo> usable_backends() {
  std::vector<BackendInfo> usable;
  for (const BackendInfo& info : registered_backends()) {
    const std::string problem = probe_backend(info).problem;
    if (problem.empty())
      usable.push_back(info);
    else
      WARN("backend " << info.name << " skipped: " << problem);
  }
  return usable;
}

// "cpu, jit[, cuda]": the list the unknown-backend messages end with.
inline std::string backend_list() {
  std::string list;
  for (const std::string& name : backend_names()) list += (list.empty() ? "" : ", ") + name;
  return list;
}

}  // namespace nas::test
