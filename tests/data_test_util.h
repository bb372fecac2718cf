// Checking data-set errors in tests: the message of the DataError a call throws.
#pragma once

#include <catch2/catch.hpp>
#include <string>

#include "runtime/data/dataset.h"

namespace nas::test {

// Runs f and returns the DataError message (fails the test if nothing is thrown).
template <typename F>
std::string data_error(F&& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  FAIL("expected a DataError");
  return {};
}

}  // namespace nas::test
