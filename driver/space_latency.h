// Latency tables checked against a search space: what libnasc's estimate_network
// (`nasc estimate`), nasc::search's latency regularizer and LatencyEstimator share.
// Internal to the driver library.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/estimate/estimator.h"
#include "compiler/ir/diagnostics.h"

namespace nas::driver {

// "the latency table lacks ..." with the first missing signatures and how to profile them
// (`file` is the .nas file the message's `nasc profile` command names).
std::string missing_signatures_message(const std::string& file, const std::string& lut,
                                       const LatencyTable& table, const ArchEstimator& est,
                                       const Selection* sel,
                                       const std::vector<std::string>& missing,
                                       const Graph& supernet);

// The warning for a table measured on another device, "" when it was measured here. With
// `same_threads` false (a search, whose own thread count is its business), only the
// hardware and libraries are compared.
std::string other_device_warning(const std::string& lut, const LatencyTable& table,
                                 bool same_threads = true);

// A latency table for every sub-network of `supernet`: loaded, a warning into `diags`
// when another device measured it, and an error listing the signatures it lacks. nullopt
// after reporting an error into `diags`.
struct SpaceLatencyTable {
  std::unique_ptr<LatencyTable> table;  // the estimator points into it
  std::unique_ptr<ArchEstimator> estimator;
};
std::optional<SpaceLatencyTable> load_space_latency(const std::string& file, const std::string& lut,
                                                    const Graph& supernet, Diagnostics& diags);
// The same from a table already loaded (`lut` names it in messages).
std::optional<SpaceLatencyTable> space_latency(const std::string& file, const std::string& lut,
                                               LatencyTable table, const Graph& supernet,
                                               Diagnostics& diags);

}  // namespace nas::driver
