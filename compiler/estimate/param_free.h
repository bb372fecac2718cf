// Parameter-free operations in a genotype, and the P-DARTS cap on them (Chen et al.,
// "Progressive DARTS", 2019; docs/search.md#robust-darts). DARTS drifts towards
// skip connections and pooling because they learn nothing and so win early; a genotype
// full of them trains badly. These functions find such candidates by their cost, count
// them per cell, and replace the weakest beyond a cap.
//
//   - A candidate is parameter-free when the estimator gives it no trainable parameter
//     (the nodes only it keeps alive hold none) and it is not the group's Zero. Names
//     play no part: a skip that needs a factorized reduce (a strided edge) has parameters.
//   - A cell is the set of single-pick choice keys that share the prefix before their last
//     '/' ("normal/n2_e0" is in cell "normal"); keys without '/' form one cell, "". In
//     spaces whose cells share keys (DARTS: every normal cell one set of alphas) a cell
//     stands for all its instances, as the genotype does. Joins pick inputs, not
//     operations, and are not counted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/passes/genotype.h"
#include "compiler/passes/selection.h"

namespace nas {

struct ParamFreeCells {
  std::vector<std::vector<char>> param_free;  // [group][candidate]
  std::vector<int> zero;                      // per group: its Zero candidate, or -1
  std::vector<int> cell;                      // per group: index into names; -1 for joins
  std::vector<std::string> names;             // the cells' key prefixes
};

// Which candidates of `supernet`'s groups are parameter-free, and the cells.
ParamFreeCells param_free_cells(const Graph& supernet);

// The parameter-free candidates `sel` picks, per cell (indexed like cells.names).
std::vector<int64_t> count_param_free(const ParamFreeCells& cells, const Selection& sel);

// Caps every cell at `cap` parameter-free picks: beyond it, the picks with the lowest
// probability are replaced by their group's most probable candidate with parameters
// (non-Zero); a group with no such candidate keeps its pick and the next weakest goes
// instead. Ties go to the lower group index. Returns the groups it changed.
// Precondition: probs[g] has one entry per candidate of group g; cap >= 0.
std::vector<int> cap_param_free(const ParamFreeCells& cells,
                                const std::vector<std::vector<double>>& probs, int64_t cap,
                                Selection& sel);

// DARTS' genotype (derive_genotype), its parameter-free picks per cell, and, with
// cap >= 0, the capped genotype and the groups the cap changed.
struct CappedGenotype {
  Selection selection;
  std::vector<int64_t> param_free;  // per cell, before the cap
  std::vector<int> replaced;
};
CappedGenotype derive_capped_genotype(const Graph& supernet, const ParamFreeCells& cells,
                                      const std::vector<std::vector<double>>& probs, int64_t cap,
                                      const GenotypeOptions& options = {});

}  // namespace nas
