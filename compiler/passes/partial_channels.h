// PC-DARTS' partial channel connections and edge normalisation (Xu et al., "PC-DARTS:
// Partial Channel Connections for Memory-Efficient Architecture Search", ICLR 2020), as
// a transform of a supernet's choices, so that a search space file stays as written.
//
// Partial channels (k > 1). A choice qualifies when all its candidates read one tensor x
// of shape [C,H,W] (its edge input) and produce [C,H',W'], with C a multiple of k. Then
//   part = channel_slice(x, 0, C/k)      rest = channel_slice(x, C/k, C - C/k)
//   mixed = the choice over its candidates rebuilt on `part` (each op's channel-count
//           attributes divided by k: OpDef::narrow_channels; conv(out=C) -> out=C/k)
//   y = channel_shuffle(concat(mixed, rest'), groups=k)
// where rest' is `rest`, or a max_pool of it (2x2 stride 2, as PC-DARTS; 3x3 stride 2
// pad 1 where the candidates round up) when the candidates reduce the resolution. A
// candidate's nodes are the ones only it uses (exclusive ancestors of its output).
// Choices that do not qualify stay whole and are listed with the reason.
//
// Edge normalisation. A DARTS node (an `add` of single-pick choices of distinct keys, as
// the genotype defines it, compiler/passes/genotype.h) becomes a weighted sum: a choice
// node over its edges with a new group (key edge_weights_key(edge keys), candidates the
// edge keys, k = every edge), which in full mode weighs the edges by softmax(beta). Nodes
// whose edges have the same keys (cells of one type) share one beta. The genotype then
// ranks an edge by softmax(beta)_edge times its best non-zero probability.
//
// The new groups are appended after the supernet's, so the supernet's groups keep their
// indices. The result is for training a DARTS supernet only: its choices no longer
// specialise by zero-pruning to the network the search finds, which is a selection of
// the original supernet.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compiler/ir/ir.h"

namespace nas {

struct PartialChannelsOptions {
  int64_t k = 1;  // the share of channels the candidates see: 1/k; 1 = all of them
  bool edge_normalization = false;
  // Whether there is anything to transform (else the pipeline skips the stage).
  bool active() const { return k > 1 || edge_normalization; }
};

struct PartialChannelsResult {
  Graph graph;
  int narrowed = 0;                       // choices whose candidates see 1/k of x
  std::vector<std::string> kept_whole;    // "key: why" for the choices left as they were
  std::vector<std::string> edge_weights;  // the keys of the beta groups, in group order
};

// Reports what cannot be transformed (no qualifying choice, a candidate that does not
// narrow) into `diags` and returns nullopt; each choice left whole is a warning.
// Precondition: g is shape-checked and topologically ordered (a supernet after dce).
std::optional<PartialChannelsResult> partial_channels(const Graph& g,
                                                      const PartialChannelsOptions& options,
                                                      Diagnostics& diags);

}  // namespace nas
