// Architecture files: JSON that fixes every choice, and the derivation of the fixed
// network they describe. The format (docs/language.md, "Architecture files"):
//
//   { "network": "darts",                       // optional; checked when present
//     "choices": { "normal_0_1": "sep_conv_3x3",  // choice key -> candidate name
//                  "node_2": ["e0", "e3"] } }      // join key -> k candidate names
//
// Other top-level keys (genotype, alphas, ...) are allowed and ignored here.
#pragma once

#include <optional>
#include <string>

#include "compiler/ir/ir.h"
#include "compiler/passes/selection.h"

namespace nas {

// Parses an arch file's text against g's choices. Errors name the file, the offending
// key, and what was expected (the known keys, or the key's candidates).
std::optional<Selection> parse_arch(const Graph& g, const std::string& path,
                                    const std::string& text, Diagnostics& diags);
std::optional<Selection> load_arch(const Graph& g, const std::string& path, Diagnostics& diags);

// The arch file text for a selection (used by `nasc search` later, and by tests).
std::string arch_to_json(const Graph& g, const Selection& sel);

// The fixed network for `sel`: zero-pruned, dead code removed, shapes re-checked.
Graph derive_fixed_network(const Graph& g, const Selection& sel);

}  // namespace nas
