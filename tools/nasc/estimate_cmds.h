// nasc profile and nasc estimate: libnasc's measurements (include/nasc/latency.h) and
// their output (docs/estimate.md, docs/cli.md).
#pragma once

#include "tools/nasc/options.h"

namespace nas::cli {

// Both return the exit status (0, or 1 after reporting a user error); they throw the
// nasc::Error of an internal one.
int cmd_profile(const Options& o);
int cmd_estimate(const Options& o);

}  // namespace nas::cli
