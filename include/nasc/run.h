// libnasc's whole runs: `nasc train` and `nasc search` as calls, writing the same run
// folder (config.json, metrics, checkpoints, weights or arch.json; docs/train.md,
// docs/search.md), with callbacks per step and per epoch that can stop the run. Part of
// the public API (docs/embedding.md).
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "nasc/space.h"

namespace nasc {

// After each optimizer step. epoch is 1-based; step counts the epoch's optimizer steps
// (1-based); global_step the run's. loss and accuracy are the epoch's running means.
// Random search counts architectures as its epochs (as EpochInfo does): epoch is the
// architecture being trained (1..samples), step counts the optimizer steps of its whole
// training (steps = its epochs times the steps per epoch), global_step every
// architecture's steps in turn, and loss and accuracy are the running means of its
// current training epoch.
struct StepInfo {
  int64_t epoch = 0, epochs = 0;
  int64_t step = 0, steps = 0;
  int64_t global_step = 0;
  double loss = 0, accuracy = 0;
  double learning_rate = 0;
};

// After each epoch's record. eval_* are the test split's (train) or the validation
// split's (search; 0 during warm-up epochs).
struct EpochInfo {
  int64_t epoch = 0, epochs = 0;
  double train_loss = 0, train_accuracy = 0;
  double eval_loss = 0, eval_accuracy = 0;
  double seconds = 0;
};

// Returning false stops the run. A stop after a step ends the epoch there: that partial
// epoch gets its log line, marked "stopped at step N", but no metrics.jsonl record and no
// checkpoint (train and search alike), so the records hold whole epochs only and the run
// keeps the checkpoint of its last whole epoch (--resume continues from it). The run
// writes its results from the state it has: train its weights, darts/darts2/pnas arch.json
// from the current probabilities; random search does not count an architecture stopped
// part-way, so arch.json stays the best finished one (none when stopped in the first).
// A stop after an epoch writes that epoch's record and checkpoint first. Either way the
// result says stopped = true. Evolution's callbacks come from its supernet epochs; a stop
// there leaves no architecture (arch_json is "null") and --resume trains on, then
// evolves; the evolution itself runs to its end.
struct RunCallbacks {
  std::function<bool(const StepInfo&)> on_step;
  std::function<bool(const EpochInfo&)> on_epoch;
};

// Data parallelism over MPI (docs/scaling.md). A process that an MPI launcher started
// (`mpirun -n N nasc train ...`, or an embedder's program under mpirun) joins the job:
// each rank takes 1/N of every batch, gradients are averaged over the ranks, and rank 0
// alone writes the run folder and prints; the other ranks write theirs into a temporary
// folder that is removed at the end. A process started alone runs alone.
struct ParallelOptions {
  bool use_mpi = true;          // false: run alone even when started by mpirun
  bool sync_batchnorm = false;  // batch-norm statistics over the global batch (--sync-bn)
  // The longest a rank waits for the others in one collective before it stops with an
  // error naming the operation (a dead or stalled rank); --comm-timeout.
  double timeout_seconds = 300;
};

struct RunOptions {
  std::string space_file;  // the .nas file
  CompileOptions compile;
  // The config (docs/train.md, docs/search.md): a file, or JSON text; neither gives the
  // defaults. On resume without either, the run folder's own config.json.
  std::string config_file;
  std::string config_json;
  std::string data;        // replaces the config's data set: fashion-mnist, cifar10:DIR, synthetic
  int64_t epochs = 0;      // > 0 replaces the config's
  int threads = -1;        // >= 0 replaces the config's
  std::string backend;     // "" = the default
  std::string output_dir;  // the run folder
  bool resume = false;
  std::string arch_file;  // train: the architecture of a space with choices
  // train: initial weights instead of random ones, matched by tensor name (`--init`): the
  // weights or checkpoint of a run of the same network, or the checkpoint of a search of
  // its space (the chosen candidates' weights). Not read when resuming from a checkpoint.
  std::string init_weights;
  std::string algorithm;  // search: darts, darts2, pnas, random, evolution ("" = the config's)
  std::string lut;        // search: a latency table for the regularizer
  // search: >= 0 replaces the config's `rerank`: the K best candidates trained briefly
  // from scratch, the best kept (docs/search.md#re-ranking); -1 = the config's.
  int64_t rerank = -1;
  // search: after the search, train the found architecture as the config's "retrain"
  // section says (defaults without one) into output_dir/retrain, reading the test split
  // once at the end (docs/search.md#retrain). A config with that section retrains without
  // this flag too.
  bool retrain = false;
  std::ostream* log = nullptr;  // progress and epoch lines; null prints nothing
  RunCallbacks callbacks;
  ParallelOptions parallel;
};

struct TrainResult {
  int64_t epochs = 0;      // the config's (after the overrides)
  int64_t epochs_run = 0;  // by this call (a resumed run counts only its own)
  double train_loss = 0, train_accuracy = 0;
  double test_loss = 0, test_accuracy = 0;
  double seconds = 0;
  bool stopped = false;      // a callback stopped it
  std::string weights_file;  // OUTPUT/weights
  std::vector<Diagnostic> warnings;
};

// What the retrain of the found architecture did (RunOptions::retrain).
struct RetrainResult {
  std::string dir;  // output_dir/retrain: its own run folder (config.json, metrics, weights)
  std::map<std::string, std::string> network;  // the parameters it was retrained with
  double params = 0, macs = 0;                 // of the retrained network
  int64_t epochs = 0, epochs_run = 0;
  double train_accuracy = 0;
  double test_loss = 0, test_accuracy = 0;  // read once after the last epoch; NaN if stopped
  double seconds = 0;
  bool stopped = false;
  std::string weights_file;  // dir/weights
};

struct SearchResult {
  int64_t epochs_run = 0;
  std::string arch_json;                       // the found architecture's arch file
  std::map<std::string, std::string> choices;  // key -> picked candidate(s)
  double params = 0, macs = 0;
  double latency_ms = 0;  // NaN without a latency table
  // evolution with a latency table: the found network timed whole on the backend (the
  // median of the table's repetitions); NaN otherwise.
  double measured_latency_ms = 0;
  double valid_accuracy = 0;
  double seconds = 0;         // the whole run, the retrain included
  double search_seconds = 0;  // the search alone
  bool stopped = false;       // a callback stopped it (the search or the retrain)
  std::string arch_file;      // OUTPUT/arch.json
  bool retrained = false;     // `retrain` holds the retrain's outcome
  RetrainResult retrain;
  std::string result_file;           // OUTPUT/result.json: these numbers, machine-readable
  std::vector<Diagnostic> warnings;  // e.g. a latency table measured on another device
};

// Both throw nasc::Error: a user error for bad inputs (with the compiler's diagnostics
// when the space does not compile), an internal error for a bug.
TrainResult train(const RunOptions& options);
SearchResult search(const RunOptions& options);

// A new, empty run folder for a run of `space_file`: `parent`/<stem>-<n> (runs/tiny-1,
// runs/tiny-2, ...), n the first number whose folder does not exist. Each try is one
// mkdir, which fails if the folder exists, so two runs started at the same moment never
// get the same folder. `parent` is created when missing. What `nasc train` and `nasc
// search` use without -o. Throws a user nasc::Error naming the folder when it cannot be
// created.
std::string create_run_dir(const std::string& space_file, const std::string& parent = "runs");

// This process's place in an MPI job: rank 0 of 1 when it was started alone. The first call
// in a process that an MPI launcher started with several ranks initialises MPI (finalised
// at exit), so every rank must make it; train, search and create_run_dir make it
// themselves. create_run_dir is then collective too: rank 0 creates the folder and every
// rank returns its name.
struct ProcessGroup {
  int rank = 0, size = 1;
};
ProcessGroup process_group();

// After a run failed on this rank: ends every rank of the MPI job with `exit_code` at once
// (the others would wait for this one until their timeout). Returns only when this
// process is not part of an MPI job of several ranks.
void abort_process_group(int exit_code);

}  // namespace nasc
