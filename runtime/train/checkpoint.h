// Checkpoints for --resume: what a run needs to continue exactly where it stopped, in one
// file, run-folder/checkpoint, so that it is replaced as a whole or not at all.
//
// The file is a tensor file (tensor_file.h): the parameters and running statistics by
// name, plus the optimizer's state blob stored as one extra tensor named
// "#optimizer_state" (its bytes packed into float32 words, zero-padded to a multiple of 4,
// covered by the same CRC check as the weights). meta holds
//   {"kind": "nasc-checkpoint", "epoch": E, "global_step": S,
//    "optimizer_state_bytes": N, "extra": {...}}.
// Keeping the blob in the same file (rather than next to it) means a crash can never pair
// new weights with old optimizer state.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/train/tensor_file.h"

namespace nas {

inline constexpr const char* kCheckpointFileName = "checkpoint";
inline constexpr const char* kOptimizerStateTensor = "#optimizer_state";

struct Checkpoint {
  int64_t epoch = 0;  // epochs completed
  int64_t global_step = 0;
  TensorFile params;                                // weights + running stats, by name; params.meta
                                                    // is not stored (use `extra`)
  std::vector<uint8_t> optimizer_state;             // Optimizer::save_state()
  nlohmann::json extra = nlohmann::json::object();  // e.g. arch params, best accuracy
};

// Writes dir/checkpoint atomically: a crash mid-write leaves the previous checkpoint
// intact (and a harmless dir/checkpoint.tmp). Negative counters, `extra` not an object,
// or a parameter named "#optimizer_state" are InternalErrors (the trainers' invariants);
// an I/O error is a DataFileError naming the file.
void save_checkpoint(const std::string& dir, const Checkpoint& c);

// nullopt when dir/checkpoint does not exist (a leftover checkpoint.tmp is ignored).
// Throws TensorFileError, naming the file, for a corrupt or truncated checkpoint, or a
// valid tensor file that is not a checkpoint.
std::optional<Checkpoint> load_checkpoint(const std::string& dir);

}  // namespace nas
