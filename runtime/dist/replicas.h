// What keeps the ranks of a data-parallel run replicas of one another between steps.
#pragma once

#include <string>

#include "runtime/dist/collectives.h"
#include "runtime/exec/param_store.h"

namespace nas {

// Batch norm's running statistics averaged over the ranks. Each rank updates its own from
// its own samples (unless batch norm is synchronised, when they are equal already and stay
// bit for bit the same), so before an evaluation or a checkpoint they are made one.
void average_running_statistics(ParamStore& store, const DataParallel& parallel);

// Checks that every rank holds the same weights, running statistics and alphas (a hash of
// their bytes, compared across the ranks). Ranks that drifted apart are a bug in nasc: an
// InternalError naming the ranks' disagreement.
void check_replicas_agree(const ParamStore& store, const DataParallel& parallel);

// The line a batch-splitting data-parallel run logs at its start: how many ranks over
// what, batch norm's mode, and what one step all-reduces (the weight gradients, and with
// `alphas` the architecture's). `parallel` has collectives.
std::string data_parallel_line(const ParamStore& store, const DataParallel& parallel, bool alphas);

}  // namespace nas
