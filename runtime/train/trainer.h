// The training loop of `nasc train`: a compiled network (a training plan at the
// mini-batch size and an evaluation plan at the eval batch size, bound to one
// ParamStore), data from the config, the optimizer and schedule, gradient accumulation
// and clipping; per epoch a progress bar, the test loss and accuracy, a metrics record,
// a log line and a checkpoint; at the end the `weights` file. Resuming from the last
// checkpoint continues bit-identically (same seed and thread count): the loader's order
// and augmentation are pure functions of (seed, epoch, batch), dropout masks of (seed,
// step), and weights, running statistics and optimizer state are restored exactly.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "runtime/data/dataset.h"
#include "runtime/data/loader.h"
#include "runtime/dist/collectives.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/exec_plan.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/param_store.h"
#include "runtime/train/run_control.h"
#include "runtime/train/run_dir.h"
#include "runtime/train/tensor_file.h"
#include "runtime/train/train_config.h"

namespace nas {

struct TrainData {
  Dataset train, test;
  std::vector<size_t> train_indices, test_indices;
  std::vector<size_t> valid_indices;  // of `train`: the part train_portion leaves out
};

// Loads the data sets the config names, applies the limits, then splits the training
// set by train_portion (stratified) into training and validation indices.
// Throws DataError (naming the file) for unreadable data, ConfigError at data.name when
// the samples do not match `input_shape` or the labels exceed `classes`.
TrainData load_train_data(const DataConfig& cfg, uint64_t seed,
                          const std::vector<int64_t>& input_shape, int64_t classes);

// The store's weights and running statistics as a tensor file, and back (every tensor
// the store holds must be in the file with its shape; `what` names the file in errors):
// explicit downloads and uploads of the store's backend memory.
TensorFile params_to_file(const ParamStore& store, const nlohmann::json& meta);
void params_from_file(ParamStore& store, const TensorFile& f, const std::string& what);

// Loader options for training batches of `batch` images: shuffled per epoch from `seed`,
// last partial batch dropped (batch-norm statistics and a plan's fixed batch need full
// batches), the config's augmentation, and with `normalize` the mean/std of the training
// split.
LoaderOptions training_loader_options(const DataConfig& cfg, const TrainData& data, int64_t batch,
                                      uint64_t seed);

// `options` cut to this rank's share of every batch (LoaderOptions::shard): what the
// batch-splitting loops of a data-parallel run (train, darts, darts2, pnas and evolution's
// supernet) load. Unchanged in a run of one process.
LoaderOptions rank_share(LoaderOptions options, const DataParallel& parallel);

// The drop probability of epoch `epoch` (0-based) of `epochs` under DARTS' schedule
// (train.py: drop_path_prob * epoch / epochs): 0 in the first epoch, growing linearly
// toward `final_prob`, which the end of training reaches.
double scheduled_drop_path_prob(double final_prob, int64_t epoch, int64_t epochs);

// Whether some drop_path step of `plan` takes the run's probability (p = -1), i.e. whether
// the config's drop_path_prob has anything to act on.
bool plan_reads_drop_path_prob(const ExecPlan& plan);

struct EvalResult {
  double loss = 0, accuracy = 0;  // means over the samples
};
// Runs `ex` (a forward plan) over one epoch of `loader` (restarted at epoch 0), any
// batch size up to ex.batch() (the last batch may be partial). In a data-parallel run
// (`ex` has collectives, `loader` is this rank's shard) the means are over every rank's
// samples.
EvalResult evaluate(Executor& ex, Loader& loader);

struct TrainSummary {
  int64_t epochs_run = 0;
  // The last epoch's test pass; with test_every_epoch false the one pass after the last
  // epoch, NaN when the run stopped before it.
  double test_accuracy = 0, test_loss = 0, train_accuracy = 0, train_loss = 0;
  double seconds = 0;
  bool stopped = false;  // setup.control stopped it (run_control.h)
};

struct TrainerSetup {
  TrainConfig config;
  ExecPlan train_plan;  // batch = config.data.effective_mini_batch()
  ExecPlan eval_plan;   // batch = config.data.eval_batch_size
  nlohmann::json network_meta = nlohmann::json::object();  // written into the weights header
  std::string backend = default_backend_name();  // a registered backend (backend_registry.h)
  RunControl control;                            // an embedder's callbacks, which may stop the run
  // Data parallelism (docs/scaling.md): the plans are this rank's share of each batch
  // (config batch / ranks); only rank 0 writes the run folder.
  DataParallel parallel;
  // --init: a weights file (or checkpoint) whose tensors replace the random initial
  // weights of a fresh run, matched by name. Ignored when resuming from a checkpoint.
  std::string init_weights;
};

// The tensors of `f` (read from `what`) that `plan`'s parameters take, by name, in the
// plan's order. Tensors the plan does not use are ignored: a search's checkpoint holds the
// whole supernet, of which a fixed network uses the chosen candidates' weights (the names
// coincide: fixing choices keeps the node names), and its optimizer state. Throws
// TensorFileError naming `what` and the tensor for a missing one or a shape mismatch.
TensorFile init_tensors_for(const TensorFile& f, const ExecPlan& plan, const std::string& what);

// Trains into `dir` (created fresh, or resumed from its checkpoint), printing progress to
// `out`. Throws for bad data, a corrupt checkpoint or I/O errors.
TrainSummary train_network(TrainerSetup setup, const std::string& dir, bool resume,
                           std::ostream& out);

}  // namespace nas
