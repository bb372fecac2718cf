#include "compiler/lowering/compile_plan.h"

#include "compiler/lowering/lower.h"
#include "compiler/passes/autodiff.h"
#include "compiler/passes/cse.h"
#include "compiler/passes/memory_plan.h"

namespace nas {

Graph execution_graph(const Graph& network) {
  return eliminate_common_subexpressions(network);
}

ExecPlan compile_plan(const Graph& network_in, const PlanOptions& options) {
  Graph network = execution_graph(network_in);
  if (network.inputs.size() != 1)
    throw UserError(node_place(network, network.inputs.empty() ? -1 : network.inputs.back()),
                    "network `" + network.name + "` has " + std::to_string(network.inputs.size()) +
                        " inputs; training and evaluation take exactly one");
  AutodiffOptions ad;
  ad.arch_grads = options.arch_grads;
  ad.weight_grads = options.weight_grads;
  Graph g = options.training ? build_training_graph(network, ad) : with_loss(network);
  return lower(g, plan_memory(g, options.batch));
}

}  // namespace nas
