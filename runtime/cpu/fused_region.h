// The CPU kernel of an elementwise region (StepKind::ElementwiseRegion, made by the fusion
// pass): the region's program (Step::region) runs over the output in blocks that stay in
// cache, every operation of the program on one block before the next block, so the
// region's inputs are read once, its output written once, and its intermediates live in a
// block-sized scratch instead of arena buffers.
//
// Blocks are processed in order and each operation is parallel inside its block: an
// activation with a oneDNN algorithm runs oneDNN's kernel on the block (the CPU stream is
// one thread's at a time, so blocks cannot run on several threads at once), any other
// operation an OpenMP loop; activations without one run their scalar formula
// (support/elementwise_ops.h), and a dropout or its gradient plain::dropout_range on the
// block's elements (each element draws its own mask). Inputs read through a crop's window
// (runtime/exec/region_read_map.h) are gathered per block first. No operation has code of
// its own op here.
//
// Which operations run is decided once per run, as the executor decides for unfused steps:
// a gradient sum adds the operands computed in this run, a choice the candidates with a
// nonzero weight, and any other operation needs all of its operands. When the region's
// last operation cannot run, the step writes nothing.
#pragma once

#include <memory>

#include "runtime/exec/backend.h"

namespace nas {

class FusedRegionKernel {
 public:
  explicit FusedRegionKernel(const Step& step);
  ~FusedRegionKernel();
  // Runs the region; false when its output was not computed (see above).
  bool run(RunState& st);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nas
