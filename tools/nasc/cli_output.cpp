#include "tools/nasc/cli_output.h"

#include <cstdio>
#include <iostream>

namespace nas::cli {

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return (v < 0 ? "-" : "") + out;
}

std::string human(int64_t v) {
  char buf[32];
  if (v >= 1000000000)
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (v >= 1000000)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1000)
    std::snprintf(buf, sizeof buf, "%.1fK", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  return buf;
}

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
