#include "compiler/estimate/estimator.h"

#include <algorithm>

#include "compiler/analysis/space_stats.h"
#include "compiler/estimate/latency_units.h"
#include "compiler/lowering/compile_plan.h"
#include "compiler/lowering/lower.h"
#include "compiler/passes/autodiff.h"
#include "compiler/passes/memory_plan.h"
#include "compiler/passes/pipeline.h"
#include "runtime/estimate/profiler.h"
#include "support/errors.h"

namespace nas {
namespace {

// The plan latency work runs at `batch`: compile_plan's evaluation plan (forward + loss)
// for a classifier, the forward graph alone for any other output.
ExecPlan inference_plan(const Graph& network, int64_t batch) {
  PlanOptions po;
  po.batch = batch;
  if (training_output_problem(network).empty()) return compile_plan(network, po);
  Graph g = execution_graph(network);
  if (g.inputs.size() != 1)
    throw UserError(node_place(g, g.inputs.empty() ? -1 : g.inputs.back()),
                    "network `" + g.name + "` has " + std::to_string(g.inputs.size()) +
                        " inputs; the executor runs networks with exactly one");
  return lower(g, plan_memory(g, batch));
}

}  // namespace

std::string training_output_problem(const Graph& network) {
  if (network.output >= 0 && network.nodes[network.output].shape.size() == 1) return "";
  return "`" + network.name + "` returns " +
         (network.output < 0 ? std::string("nothing")
                             : shape_str(network.nodes[network.output].shape)) +
         ", not 1-D logits [classes], so it has no training loss";
}

StaticEstimate static_estimate(const Graph& network, int64_t train_batch) {
  StaticEstimate s;
  NodeCosts costs = node_costs(network);
  std::vector<char> mask = supernet_mask(network);
  s.params = masked_sum(costs.params, mask);
  s.param_bytes = s.params * 4;
  s.macs = masked_sum(costs.macs, mask);
  Graph g = execution_graph(network);
  s.activation_bytes = plan_memory(g, 1).peak_bytes;
  s.train_batch = train_batch;
  s.train_not_applicable = training_output_problem(g);
  if (!s.train_not_applicable.empty()) return s;
  AutodiffOptions ad;
  ad.arch_grads = !g.arch.empty();
  s.train_activation_bytes = plan_memory(build_training_graph(g, ad), train_batch).peak_bytes;
  return s;
}

SpaceLatency::SpaceLatency(const Graph& supernet, int64_t batch)
    : exec_(execution_graph(supernet)) {
  // inference_plan applies execution_graph itself; CSE is deterministic, so its nodes are
  // exec_'s and the plan's guards index exec_.
  plan_ = inference_plan(supernet, batch);
  NAS_CHECK(plan_.forward_nodes == static_cast<int>(exec_.nodes.size()),
            "the plan was lowered from another execution graph");
  units_ = latency_units(exec_, plan_.steps.size());
  masker_ = std::make_unique<LiveMasker>(exec_);
}

std::vector<ProfileJob> SpaceLatency::jobs(const Selection* sel, const std::string& backend) const {
  if (!sel) return profile_jobs(plan_, units_, backend);
  std::vector<char> live;
  mask(*sel, live);
  return profile_jobs(plan_, units_, backend, &sel->chosen, &live);
}

std::vector<ContextRound> SpaceLatency::context_rounds(const Selection* sel) const {
  std::vector<ContextRound> rounds;
  if (sel) {
    rounds.push_back({sel->chosen, {}});
    mask(*sel, rounds.back().live);
    return rounds;
  }
  size_t most = 1;
  for (const ArchGroup& g : exec_.arch) most = std::max(most, g.candidates.size());
  for (size_t r = 0; r < most; ++r) {
    Selection pick;
    for (const ArchGroup& g : exec_.arch) {
      std::vector<int> c;
      for (int i = 0; i < g.k; ++i) c.push_back(static_cast<int>((r + i) % g.candidates.size()));
      std::sort(c.begin(), c.end());
      pick.chosen.push_back(c);
    }
    ContextRound round{pick.chosen, {}};
    mask(pick, round.live);
    rounds.push_back(std::move(round));
  }
  return rounds;
}

ProfileStats profile_space(LatencyTable& table, const SpaceLatency& space, const Selection* sel,
                           const std::string& path, std::ostream* log) {
  const size_t before = table.entries.size();
  std::vector<ProfileJob> jobs = space.jobs(sel, table.device.backend);
  profile_units_in_context(table, space.plan(), space.units(), space.context_rounds(sel), path,
                           log);
  profile_into(table, space.plan(), jobs, path, log);
  ProfileStats s;
  s.measured = static_cast<int>(table.entries.size() - before);
  s.skipped = std::max(0, static_cast<int>(jobs.size()) - s.measured);
  return s;
}

ArchEstimator::ArchEstimator(const Graph& supernet, const LatencyTable& lut)
    : space_(supernet, lut.batch), model_(space_.plan(), space_.units(), lut) {}

std::vector<std::string> ArchEstimator::missing(const Selection* sel) {
  if (!sel) return model_.missing(nullptr, nullptr);
  space_.mask(*sel, live_);
  return model_.missing(&sel->chosen, &live_);
}

LatencyEstimate ArchEstimator::estimate(const Selection& sel) {
  space_.mask(sel, live_);
  return model_.estimate(&sel.chosen, live_);
}

LatencyEstimate ArchEstimator::estimate_full() {
  return model_.estimate(nullptr, {});
}

LutEntry measure_network(const Graph& network, const Selection* sel, int64_t batch,
                         const MeasureSettings& settings, const std::string& backend) {
  ExecPlan plan = inference_plan(sel ? specialise(network, *sel) : network, batch);
  return measure_plan(backend, plan, settings);
}

}  // namespace nas
