#include "tools/nasc/cli_output.h"

#include <iostream>

namespace nas::cli {

int report(const std::vector<nasc::Diagnostic>& diags) {
  return report(diags, {});
}

int report(const std::vector<nasc::Diagnostic>& first, const std::vector<nasc::Diagnostic>& then) {
  size_t errors = 0;
  for (const auto* list : {&first, &then})
    for (const nasc::Diagnostic& d : *list) {
      std::cerr << d.rendered;
      if (d.severity == nasc::Severity::Error) ++errors;
    }
  if (errors == 0) return kOk;
  std::cerr << errors << " error" << (errors == 1 ? "" : "s")
            << (errors >= kMaxErrors ? " (stopped at the limit)" : "") << "\n";
  return kUserError;
}

int report_error(const nasc::Error& e, const std::vector<nasc::Diagnostic>& before) {
  if (!e.is_user_error()) throw e;
  if (!e.diagnostics().empty()) return report(before, e.diagnostics());
  report(before);
  std::cerr << "nasc: error: " << e.what() << "\n";
  return kUserError;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace nas::cli
