// The Catch2 main for nas_tests; every other tests/test_*.cpp holds test cases only.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
