// A bench's main: its body run with nasc's error channels, so that a bad flag or a backend
// that cannot run here (`--backend cuda` without a GPU) prints its message and exits 1, and
// a bug exits 2, instead of ending in std::terminate.
#pragma once

#include <exception>
#include <iostream>

#include "support/errors.h"

namespace nas::bench {

inline int guarded_main(int argc, char** argv, int (*body)(int, char**)) {
  try {
    return body(argc, argv);
  } catch (const UserError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace nas::bench
