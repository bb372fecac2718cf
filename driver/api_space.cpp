// libnasc's Space, Architecture, LatencyTable and LatencyEstimator over the compiler's
// pipeline, arch files and estimators.
#include <fmt/format.h>

#include <set>

#include "compiler/analysis/space_stats.h"
#include "compiler/dot/graph_dot.h"
#include "compiler/estimate/estimator.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/pipeline/pipeline.h"
#include "driver/api_internal.h"
#include "driver/space_latency.h"
#include "support/rng.h"

namespace nasc {
namespace {

using detail::internal_options;
using detail::kMaxErrors;

Space from_compilation(const std::string& file, nas::Compilation c, const nas::Diagnostics& diags) {
  if (diags.has_errors() || !c.supernet) detail::throw_diagnostics(diags);
  auto impl = std::make_shared<Space::Impl>();
  impl->file = file;
  impl->supernet = std::move(*c.supernet);
  impl->warnings = detail::to_public(diags);
  for (const nas::ArchGroup& g : impl->supernet.arch)
    impl->choices.push_back(
        {g.key, g.candidates, g.k, static_cast<int>(std::max<size_t>(1, g.nodes.size()))});
  return Space(std::move(impl));
}

Architecture make_architecture(const Space& space, nas::Selection sel, std::string file = {}) {
  auto impl = std::make_shared<Architecture::Impl>();
  impl->space = space.shared_impl();
  impl->selection = std::move(sel);
  impl->file = std::move(file);
  return Architecture(std::move(impl));
}

}  // namespace

StaticEstimate detail::to_public(const nas::StaticEstimate& s) {
  return {s.params,
          s.param_bytes,
          s.macs,
          s.activation_bytes,
          s.train_batch,
          s.train_activation_bytes,
          s.train_not_applicable};
}

// --- Architecture ---------------------------------------------------------------------------

Architecture::Architecture(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

const std::string& Architecture::file() const {
  return impl_->file;
}

const std::vector<std::vector<int>>& Architecture::chosen() const {
  return impl_->selection.chosen;
}

std::map<std::string, std::string> Architecture::names() const {
  std::map<std::string, std::string> out;
  const nas::Graph& g = impl_->space->supernet;
  for (size_t i = 0; i < g.arch.size(); ++i) {
    std::string names;
    for (int c : impl_->selection.chosen[i])
      names += (names.empty() ? "" : "+") + g.arch[i].candidates[c];
    out[g.arch[i].key] = names;
  }
  return out;
}

std::string Architecture::to_json() const {
  return detail::translate_errors(
      [&] { return nas::arch_to_json(impl_->space->supernet, impl_->selection); });
}

std::string Architecture::describe() const {
  std::string out;
  const nas::Graph& g = impl_->space->supernet;
  for (size_t i = 0; i < g.arch.size(); ++i) {
    out += (i ? ", " : "") + g.arch[i].key + "=";
    for (size_t j = 0; j < impl_->selection.chosen[i].size(); ++j)
      out += (j ? "+" : "") + g.arch[i].candidates[impl_->selection.chosen[i][j]];
  }
  return out;
}

NetworkSize Architecture::size() const {
  return detail::translate_errors([&] {
    nas::Graph fixed = nas::specialise(impl_->space->supernet, impl_->selection);
    const nas::NetworkCost c = nas::fixed_network_cost(fixed);
    return NetworkSize{static_cast<int64_t>(fixed.nodes.size()), c.params, c.macs};
  });
}

std::string Architecture::to_dot() const {
  return detail::translate_errors(
      [&] { return nas::graph_to_dot(nas::specialise(impl_->space->supernet, impl_->selection)); });
}

// --- Space ------------------------------------------------------------------------------------

Space::Space(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Space Space::compile_file(const std::string& path, const CompileOptions& options) {
  return detail::translate_errors([&] {
    nas::Diagnostics diags(kMaxErrors);
    nas::Compilation c = nas::compile_file(path, internal_options(options), diags);
    return from_compilation(path, std::move(c), diags);
  });
}

Space Space::compile_string(const std::string& name, const std::string& text,
                            const CompileOptions& options) {
  return detail::translate_errors([&] {
    nas::Diagnostics diags(kMaxErrors);
    nas::Compilation c = nas::compile_text(name, text, internal_options(options), diags);
    return from_compilation(name, std::move(c), diags);
  });
}

const std::string& Space::file() const {
  return impl_->file;
}
std::string Space::name() const {
  return impl_->supernet.name;
}

std::vector<std::pair<std::string, std::string>> Space::network_parameters() const {
  return impl_->supernet.params;
}

std::vector<Input> Space::inputs() const {
  const nas::Graph& g = impl_->supernet;
  std::vector<Input> out;
  for (int id : g.inputs) out.push_back({g.nodes[id].name, g.nodes[id].shape});
  return out;
}

std::vector<int64_t> Space::input_shape() const {
  const nas::Graph& g = impl_->supernet;
  return g.inputs.empty() ? std::vector<int64_t>{} : g.nodes[g.inputs[0]].shape;
}

std::vector<int64_t> Space::output_shape() const {
  return impl_->supernet.nodes[impl_->supernet.output].shape;
}

const std::vector<Diagnostic>& Space::diagnostics() const {
  return impl_->warnings;
}
const std::vector<Choice>& Space::choices() const {
  return impl_->choices;
}

SpaceStatistics Space::statistics() const {
  return detail::translate_errors([&] {
    nas::SpaceStats s = nas::space_stats(impl_->supernet);
    SpaceStatistics out;
    out.nodes = static_cast<int64_t>(impl_->supernet.nodes.size());
    out.choices = s.num_choices;
    out.choice_sites = s.num_choice_nodes;
    out.log10_size = s.log10_space_size;
    out.supernet_params = s.supernet_params;
    out.supernet_macs = s.supernet_macs;
    out.largest_params = s.largest.params;
    out.smallest_params = s.smallest.params;
    out.extremes_exact = s.extremes_exact;
    out.search_truncated = s.search_truncated;
    return out;
  });
}

Architecture Space::fix(const std::vector<std::vector<int>>& chosen) const {
  const nas::Graph& g = impl_->supernet;
  if (chosen.size() != g.arch.size())
    throw Error(Error::Kind::User, fmt::format("`{}` has {} choices, but {} were given", g.name,
                                               g.arch.size(), chosen.size()));
  for (size_t i = 0; i < chosen.size(); ++i) {
    const nas::ArchGroup& group = g.arch[i];
    if (chosen[i].size() != static_cast<size_t>(group.k))
      throw Error(Error::Kind::User,
                  fmt::format("choice `{}` picks {} candidate{}, but {} were given", group.key,
                              group.k, group.k == 1 ? "" : "s", chosen[i].size()));
    std::set<int> seen;
    for (int c : chosen[i]) {
      if (c < 0 || c >= static_cast<int>(group.candidates.size()))
        throw Error(Error::Kind::User,
                    fmt::format("choice `{}`: candidate index {} is out of range (it has {} "
                                "candidates)",
                                group.key, c, group.candidates.size()));
      if (!seen.insert(c).second)
        throw Error(Error::Kind::User,
                    fmt::format("choice `{}`: candidate index {} is given twice", group.key, c));
    }
  }
  return make_architecture(*this, nas::Selection{chosen});
}

Architecture Space::fix_json(const std::string& json, const std::string& name) const {
  return detail::translate_errors([&] {
    nas::Diagnostics diags(kMaxErrors);
    std::optional<nas::Selection> sel;
    try {
      sel = nas::parse_arch(impl_->supernet, name, json, diags);
    } catch (const nas::TooManyErrors&) {
      detail::throw_diagnostics(diags);
    }
    if (!sel || diags.has_errors()) detail::throw_diagnostics(diags);
    return make_architecture(*this, std::move(*sel), name);
  });
}

Architecture Space::fix_file(const std::string& path) const {
  return detail::translate_errors([&] {
    nas::Diagnostics diags(kMaxErrors);
    std::optional<nas::Selection> sel;
    try {
      sel = nas::load_arch(impl_->supernet, path, diags);
    } catch (const nas::TooManyErrors&) {
      detail::throw_diagnostics(diags);
    }
    if (!sel || diags.has_errors()) detail::throw_diagnostics(diags);
    return make_architecture(*this, std::move(*sel), path);
  });
}

Architecture Space::first_candidates() const {
  return make_architecture(*this, nas::first_candidates(impl_->supernet));
}

Architecture Space::sample(uint64_t seed) const {
  nas::Rng rng(nas::derive_seed(seed, 0x5a3b1e));
  nas::Selection sel;
  for (const nas::ArchGroup& g : impl_->supernet.arch) {
    // k distinct candidates, drawn uniformly (a partial Fisher-Yates shuffle), in order.
    std::vector<int> order(g.candidates.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    for (int i = 0; i < g.k; ++i) std::swap(order[i], order[i + rng.uniform(order.size() - i)]);
    std::vector<int> picked(order.begin(), order.begin() + g.k);
    std::sort(picked.begin(), picked.end());
    sel.chosen.push_back(std::move(picked));
  }
  return make_architecture(*this, std::move(sel));
}

StaticEstimate Space::estimate(const Architecture& arch, int64_t train_batch) const {
  if (arch.impl().space != impl_)
    throw Error(Error::Kind::User, "the architecture belongs to another space");
  return detail::translate_errors([&] {
    return detail::to_public(
        nas::static_estimate(nas::specialise(impl_->supernet, arch.impl().selection), train_batch));
  });
}

StaticEstimate Space::estimate_supernet(int64_t train_batch) const {
  return detail::translate_errors(
      [&] { return detail::to_public(nas::static_estimate(impl_->supernet, train_batch)); });
}

std::string Space::to_dot() const {
  return detail::translate_errors([&] { return nas::graph_to_dot(impl_->supernet); });
}

// --- LatencyTable and LatencyEstimator ------------------------------------------------------

LatencyTable::LatencyTable(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

LatencyTable LatencyTable::load(const std::string& path) {
  return detail::translate_errors([&] {
    auto impl = std::make_shared<Impl>();
    impl->path = path;
    impl->table = nas::load_lut(path);
    return LatencyTable(std::move(impl));
  });
}

const std::string& LatencyTable::path() const {
  return impl_->path;
}
int64_t LatencyTable::batch() const {
  return impl_->table.batch;
}
std::string LatencyTable::device() const {
  return impl_->table.device.describe();
}
size_t LatencyTable::entries() const {
  return impl_->table.entries.size();
}

std::optional<double> LatencyTable::calibration() const {
  if (!impl_->table.calibration) return std::nullopt;
  return impl_->table.calibration->scale;
}

void LatencyTable::save(const std::string& path) const {
  detail::translate_errors([&] { nas::save_lut(impl_->table, path); });
}

struct LatencyEstimator::Impl {
  std::shared_ptr<const Space::Impl> space;
  nas::driver::SpaceLatencyTable latency;
  std::string warning;
};

LatencyEstimator::LatencyEstimator(const Space& space, const LatencyTable& table) {
  impl_ = detail::translate_errors([&] {
    auto impl = std::make_unique<Impl>();
    impl->space = space.shared_impl();
    nas::Diagnostics diags(kMaxErrors);
    std::optional<nas::driver::SpaceLatencyTable> t = nas::driver::space_latency(
        space.file(), table.path(), table.impl().table, impl->space->supernet, diags);
    if (!t) detail::throw_diagnostics(diags);
    impl->latency = std::move(*t);
    impl->warning = nas::driver::other_device_warning(table.path(), table.impl().table, false);
    return impl;
  });
}

LatencyEstimator::~LatencyEstimator() = default;
LatencyEstimator::LatencyEstimator(LatencyEstimator&&) noexcept = default;
LatencyEstimator& LatencyEstimator::operator=(LatencyEstimator&&) noexcept = default;

const std::string& LatencyEstimator::warning() const {
  return impl_->warning;
}

LatencyEstimate LatencyEstimator::estimate(const Architecture& arch) {
  if (arch.impl().space != impl_->space)
    throw Error(Error::Kind::User, "the architecture belongs to another space");
  return detail::translate_errors([&] {
    nas::LatencyEstimate e = impl_->latency.estimator->estimate(arch.impl().selection);
    return LatencyEstimate{e.fused_ms, e.accumulated_ms, impl_->latency.table->batch,
                           impl_->latency.estimator->calibration()};
  });
}

LatencyEstimate LatencyEstimator::estimate_supernet() {
  return detail::translate_errors([&] {
    nas::LatencyEstimate e = impl_->latency.estimator->estimate_full();
    return LatencyEstimate{e.fused_ms, e.accumulated_ms, impl_->latency.table->batch,
                           impl_->latency.estimator->calibration()};
  });
}

}  // namespace nasc
