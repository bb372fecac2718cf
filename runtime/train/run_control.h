// Callbacks an embedder (libnasc's train and search) passes into a run: told after each
// optimizer step and each epoch, and able to stop the run there. Unset, each costs one
// branch per step.
//
// A stop after a step ends the epoch at that step: the partial epoch gets its log line
// ("stopped at step N") but no metrics record and no checkpoint, so the run keeps the
// checkpoint of its last whole epoch (a resume continues from it), and writes its results
// (the weights, arch.json) from the state it has. A stop after an epoch writes that
// epoch's record and checkpoint first. The run's summary says it was stopped. The epoch
// driver (epoch_driver.h) applies this rule for train, search and random search alike.
//
// Random search counts architectures as its epochs: epoch is the architecture's number,
// step counts the optimizer steps of its training (all its epochs), global_step the run's
// (every architecture's steps in turn), and loss and accuracy are the running means of
// its current training epoch. An architecture stopped part-way is not a candidate.
#pragma once

#include <cstdint>
#include <functional>

namespace nas {

struct StepReport {
  int64_t epoch = 0, epochs = 0;  // 1-based
  int64_t step = 0, steps = 0;    // optimizer steps of this epoch, 1-based (random search:
                                  // of this architecture's training)
  int64_t global_step = 0;
  double loss = 0, accuracy = 0;  // the epoch's running means
  double lr = 0;
};

struct EpochReport {
  int64_t epoch = 0, epochs = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0;
  double eval_loss = 0, eval_accuracy = 0;  // test (train) or validation (search) split
  double seconds = 0;
};

struct RunControl {
  std::function<bool(const StepReport&)> on_step;    // false: stop
  std::function<bool(const EpochReport&)> on_epoch;  // false: stop
};

}  // namespace nas
