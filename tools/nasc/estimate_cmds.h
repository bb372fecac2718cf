// nasc profile and nasc estimate: thin drivers over compiler/estimate and runtime/estimate
// (docs/estimate.md, docs/cli.md).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "compiler/estimate/estimator.h"
#include "compiler/ir/diagnostics.h"
#include "tools/nasc/options.h"

namespace nas::cli {

// Both return the exit status (0, or 1 after reporting a user error through `diags`).
int cmd_profile(const Options& o, Diagnostics& diags);
int cmd_estimate(const Options& o, Diagnostics& diags);

}  // namespace nas::cli
