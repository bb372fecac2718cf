#include "compiler/estimate/estimator.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <ostream>

#include "compiler/analysis/space_stats.h"
#include "compiler/estimate/latency_units.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/estimate/profiler.h"
#include "runtime/search/evolution.h"
#include "support/errors.h"
#include "support/rng.h"

namespace nas {
namespace {

// The plan latency work runs at `batch`: the evaluation plan (forward + loss) for a
// classifier, the forward plan for any other output; with the execution graph it was
// lowered from.
CompiledPlan inference_plan(const Graph& network, int64_t batch) {
  PlanOptions po;
  po.batch = batch;
  po.loss = training_output_problem(network).empty();
  // Latency tables time the steps that really run: conv epilogues, as in every inference
  // plan. Not the elementwise regions: a choice's weighted sum is costed per active
  // candidate count, which a region containing it could not be.
  po.fusion_kinds.elementwise = false;
  return compile_plan_keeping_graph(network, po);
}

// The arena peak of the pipeline's memory-plan stage for `network` (from cse on).
int64_t planned_peak(Graph network, Stage first, const PlanOptions& plan) {
  PipelineOptions p;
  p.plan = plan;
  p.stop_after = Stage::MemoryPlan;
  Diagnostics diags;
  PipelineResults r = run_pipeline_from(std::move(network), first, p, diags);
  NAS_CHECK(r.ok && r.memory, "memory planning reported diagnostics: " + diags.render());
  return r.memory->peak_bytes;
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
  PlanOptions forward;
  forward.loss = false;
  s.activation_bytes = planned_peak(g, Stage::Autodiff, forward);
  s.train_batch = train_batch;
  s.train_not_applicable = training_output_problem(g);
  if (!s.train_not_applicable.empty()) return s;
  PlanOptions training;
  training.batch = train_batch;
  training.training = true;
  training.arch_grads = !g.arch.empty();
  s.train_activation_bytes = planned_peak(std::move(g), Stage::Autodiff, training);
  return s;
}

SpaceLatency::SpaceLatency(const Graph& supernet, int64_t batch) {
  // One pipeline run gives both the plan and the execution graph its guards index.
  CompiledPlan compiled = inference_plan(supernet, batch);
  exec_ = std::move(compiled.exec);
  plan_ = std::move(compiled.plan);
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
                           const std::string& path, std::ostream* log, int rounds) {
  NAS_CHECK(rounds >= 1, "profile_space: rounds must be at least 1");
  const LatencyTable resumed = table;
  std::vector<ProfileJob> jobs = space.jobs(sel, table.device.backend);
  profile_units_in_context(table, space.plan(), space.units(), space.context_rounds(sel), path,
                           log);
  profile_into(table, space.plan(), jobs, path, log);
  ProfileStats s;
  s.measured = static_cast<int>(table.entries.size() - resumed.entries.size());
  s.skipped = std::max(0, static_cast<int>(jobs.size()) - s.measured);
  // The later rounds (estimator.h): what this call measured, again, into a table that
  // starts as the resumed one did; each signature keeps its fastest entry.
  for (int round = 2; round <= rounds && s.measured > 0; ++round) {
    if (log) {
      *log << "round " << round << "/" << rounds << ": measuring the " << s.measured
           << " signatures again\n";
      log->flush();
    }
    LatencyTable again = resumed;
    profile_units_in_context(again, space.plan(), space.units(), space.context_rounds(sel), "",
                             nullptr);
    profile_into(again, space.plan(), jobs, "", nullptr);
    int faster = 0;
    for (const auto& [signature, entry] : again.entries) {
      auto kept = table.entries.find(signature);
      if (kept != table.entries.end() && !resumed.entries.count(signature) &&
          entry.ms < kept->second.ms) {
        kept->second = entry;
        ++faster;
      }
    }
    if (!path.empty()) save_lut(table, path);
    if (log)
      *log << "round " << round << "/" << rounds << ": " << faster << " of " << s.measured
           << " signatures measured faster\n";
  }
  return s;
}

ArchEstimator::ArchEstimator(const Graph& supernet, const LatencyTable& lut)
    : space_(supernet, lut.batch),
      model_(space_.plan(), space_.units(), lut),
      scale_(lut.calibration ? lut.calibration->scale : 1.0) {}

std::vector<double> ArchEstimator::node_ms() const {
  std::vector<double> ms = model_.node_ms(space_.graph().nodes.size());
  for (double& m : ms) m *= scale_;
  return ms;
}

std::vector<std::string> ArchEstimator::missing(const Selection* sel) {
  if (!sel) return model_.missing(nullptr, nullptr);
  space_.mask(*sel, live_);
  return model_.missing(&sel->chosen, &live_);
}

namespace {

LatencyEstimate scaled(LatencyEstimate e, double scale) {
  e.accumulated_ms *= scale;
  e.fused_ms *= scale;
  return e;
}

}  // namespace

LatencyEstimate ArchEstimator::estimate(const Selection& sel) {
  space_.mask(sel, live_);
  return scaled(model_.estimate(&sel.chosen, live_), scale_);
}

LatencyEstimate ArchEstimator::estimate_full() {
  return scaled(model_.estimate(nullptr, {}), scale_);
}

std::string calibrate_table(LatencyTable& table, const Graph& supernet, const Selection* sel,
                            int networks, uint64_t seed, std::ostream* log) {
  NAS_CHECK(networks >= 1, "calibrate_table: no networks to time");
  LatencyTable raw = table;
  raw.calibration.reset();
  table.calibration.reset();
  ArchEstimator est(supernet, raw);
  MeasureSettings whole = table.settings;
  whole.warmup = std::max(whole.warmup, kCalibrationWarmup);
  whole.repetitions = std::max(whole.repetitions, kCalibrationRuns);
  Rng rng(seed);
  const int count = sel ? 1 : networks;
  std::vector<Selection> chosen;
  std::vector<double> estimated, measured(count, std::numeric_limits<double>::infinity());
  for (int i = 0; i < count; ++i) {
    chosen.push_back(sel ? *sel : Selection{random_architecture(est.space().plan().arch, rng)});
    estimated.push_back(est.estimate(chosen.back()).fused_ms);
  }
  // In interleaved rounds, keeping each network's fastest (estimator.h says why).
  for (int round = 0; round < kCalibrationRounds; ++round)
    for (int i = 0; i < count; ++i)
      measured[i] = std::min(
          measured[i],
          measure_network(supernet, &chosen[i], table.batch, whole, table.device.backend).ms);
  std::vector<double> ratios;
  for (int i = 0; i < count; ++i) {
    const double ratio = measured[i] / estimated[i];
    const bool kept = ratio >= 1 / kMaxCalibration && ratio <= kMaxCalibration;
    if (log)
      *log << fmt::format(
          "calibration {}/{}: measured {:.4f} ms, estimated {:.4f} ms (x{:.3f}){}\n", i + 1, count,
          measured[i], estimated[i], ratio,
          kept ? "" : "; left out: beyond the largest correction");
    if (kept) ratios.push_back(ratio);
  }
  if (ratios.empty())
    return fmt::format(
        "calibration: every network timed whole was more than {}x off its estimate (a busy "
        "machine, or measurements too short to mean anything); the table is uncalibrated",
        kMaxCalibration);
  table.calibration = calibration_from(ratios);
  return "";
}

LutEntry measure_network(const Graph& network, const Selection* sel, int64_t batch,
                         const MeasureSettings& settings, const std::string& backend) {
  ExecPlan plan = inference_plan(sel ? specialise(network, *sel) : network, batch).plan;
  return measure_plan(backend, plan, settings);
}

}  // namespace nas
