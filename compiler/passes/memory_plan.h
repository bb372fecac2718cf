// Static memory planning: every intermediate tensor of a forward graph (inference) or of a
// training graph (forward + loss + backward, from autodiff) gets an offset in one arena
// whose size (the peak) is known before anything runs. Nodes execute in id order, one node
// per step. Choices are planned like any computed node (a supernet in full mode computes
// every candidate; a sampled sub-network skips steps but keeps the same plan).
//
//   - One buffer per node output, batch * numel(shape) * bytes_per_element bytes, placed
//     at a multiple of kArenaAlignment.
//   - Not in the arena: input nodes (owned by the caller) and the output node (written
//     into a buffer the caller owns and gets back). An output that is also an input is
//     simply that input.
//   - Zero nodes (after pruning they have no inputs) are planned like any other buffer:
//     the executor fills them with zeros at their step. (No shared read-only zero buffer;
//     pruning leaves few zeros, and one buffer kind keeps the executor simple.)
//   - Effect nodes (parameter-gradient writers, shape []) have no storage.
//   - In a training graph (one with gradient nodes) dropout is computed (it applies a
//     mask), not an alias.
//   - Aliases: identity, flatten, unflatten and dropout (inference) do not allocate; they
//     view their input's storage. The viewed buffer then stays live until the last
//     consumer of any alias of it. An alias that is the output node is not an alias: it
//     is computed (copied) into the caller's output buffer.
//   - Fused regions (compiler/passes/fusion.h), when a fusion plan is given: a region runs
//     at its root's step, so its members' values are never stored (StorageKind::Fused) and
//     a read by any member counts as a read at the root's step.
//   - Liveness: a buffer is live from its producer's step to the step of its last
//     consumer, both inclusive (the output node counts as a consumer; a buffer nobody
//     reads is live at its own step only). Two buffers whose lifetimes share a step never
//     share bytes.
//   - Placement: greedy by size (largest first; ties: earlier producer, then lower id),
//     each buffer into the smallest gap between already placed buffers with overlapping
//     lifetimes that fits it (lowest offset among equal gaps), else above them all.
//
// A tensor too large to allocate at the batch size (its bytes overflow int64) is a
// UserError at the node's source location (nasc exits 1). Misuse (batch < 1,
// bytes_per_element < 1) and internal inconsistencies are NAS_CHECKs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/passes/fusion.h"

namespace nas {

constexpr int64_t kArenaAlignment = 64;  // bytes

struct PlannedBuffer {
  int node = -1;       // the node that produces it
  int64_t offset = 0;  // from the arena start; a multiple of kArenaAlignment
  int64_t bytes = 0;   // batch * numel * bytes_per_element (not rounded up)
  int first = 0;       // producer's step
  int last = 0;        // last consumer's step (through aliases), inclusive
};

enum class StorageKind {
  Arena,   // owns PlannedBuffer `buffer`
  Alias,   // views the storage of node `root` (an arena buffer, an input or the output)
  Input,   // caller-owned input
  Output,  // caller-owned output
  None,    // an effect node: no tensor
  Fused,   // computed inside the fused region of node `root` and never stored
};

struct NodeStorage {
  StorageKind kind = StorageKind::Arena;
  int buffer = -1;  // index into MemoryPlan::buffers, or -1 when the storage is the caller's
  int root = -1;    // the node owning the storage (itself unless an alias)
};

struct MemoryPlan {
  int64_t batch = 1;
  int64_t bytes_per_element = 4;
  std::vector<PlannedBuffer> buffers;  // in node id order
  std::vector<NodeStorage> nodes;      // per node id
  int64_t peak_bytes = 0;              // arena size: max(offset + bytes) over buffers
  int64_t naive_bytes = 0;             // sum of buffers' bytes: one allocation each, no reuse
  int64_t live_bytes_max = 0;          // max over steps of the live buffers' bytes: a lower bound
};

// Precondition: g is topologically ordered and shape-checked; `fusion`, when given, was
// planned for g.
MemoryPlan plan_memory(const Graph& g, int64_t batch, int64_t bytes_per_element = 4,
                       const FusionPlan* fusion = nullptr);

// Checks a plan against its graph from scratch: storage kinds and aliases as described
// above, sizes, lifetimes covering every consumer, alignment, offsets within the peak, and
// no two buffers with overlapping lifetimes overlapping in memory. Returns the first
// problem, or an empty string. plan_memory NAS_CHECKs its result with it.
std::string check_plan(const Graph& g, const MemoryPlan& plan, const FusionPlan* fusion = nullptr);

// Stable text, one line per step, then the summary line
//   %3 conv -> [offset 0, 65536 B] live 3..5
//   %4 flatten -> alias of %3 [offset 0, 65536 B]
//   %5 relu -> fused into %7
//   %0 input -> caller input, 3136 B
//   %8 linear -> caller output, 40 B
//   arena peak: N bytes (naive: M bytes, batch B)
std::string print_plan(const Graph& g, const MemoryPlan& plan);

}  // namespace nas
