#include "tools/nasc/cli_output.h"

#include <iostream>

namespace nas::cli {

int report(const Diagnostics& diags) {
  std::cerr << diags.render();
  if (diags.has_errors()) {
    std::cerr << diags.error_count() << " error" << (diags.error_count() == 1 ? "" : "s")
              << (diags.error_count() >= kMaxErrors ? " (stopped at the limit)" : "") << "\n";
    return kUserError;
  }
  return kOk;
}

}  // namespace nas::cli
