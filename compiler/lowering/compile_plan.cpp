#include "compiler/lowering/compile_plan.h"

#include <stdexcept>

#include "compiler/lowering/lower.h"
#include "compiler/passes/autodiff.h"
#include "compiler/passes/memory_plan.h"

namespace nas {

ExecPlan compile_plan(const Graph& network, const PlanOptions& options) {
  if (network.inputs.size() != 1)
    throw std::invalid_argument("network `" + network.name + "` has " +
                                std::to_string(network.inputs.size()) +
                                " inputs; training and evaluation take exactly one");
  AutodiffOptions ad;
  ad.arch_grads = options.arch_grads;
  Graph g = options.training ? build_training_graph(network, ad) : with_loss(network);
  return lower(g, plan_memory(g, options.batch));
}

}  // namespace nas
