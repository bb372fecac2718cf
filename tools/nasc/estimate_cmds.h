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

// A latency table for every sub-network of `supernet` (`nasc search`'s latency
// regularizer): loaded, a warning when another device measured it, and an error listing
// the signatures it lacks. nullopt after reporting an error into `diags`.
struct SpaceLatencyTable {
  std::unique_ptr<LatencyTable> table;  // the estimator points into it
  std::unique_ptr<ArchEstimator> estimator;
};
std::optional<SpaceLatencyTable> load_space_latency(const std::string& file, const std::string& lut,
                                                    const Graph& supernet, Diagnostics& diags);

}  // namespace nas::cli
