#include "runtime/search/rerank.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <ostream>
#include <set>

#include "support/format.h"
#include "support/json_file.h"
#include "support/rng.h"

namespace nas {
namespace {

// metrics.jsonl's whole records (a damaged line, from a crash mid-append, is left out).
std::vector<nlohmann::json> read_records(const std::string& file) {
  std::vector<nlohmann::json> records;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::optional<nlohmann::json> rec = try_parse_json(line);
    if (rec && rec->is_object()) records.push_back(std::move(*rec));
  }
  return records;
}

ChoiceSelection record_selection(const nlohmann::json& rec, const std::vector<ArchSpec>& groups) {
  auto it = rec.find("genotype");
  if (it == rec.end() || !it->is_object()) return {};
  std::map<std::string, std::string> names;
  for (const auto& [key, value] : it->items())
    if (value.is_string()) names[key] = value.get<std::string>();
  return selection_from_names(groups, names);
}

// Adds `c` when its path is valid and new, and tells whether k are gathered.
bool add_distinct(std::vector<RerankCandidate>& out, std::set<ChoiceSelection>& seen,
                  RerankCandidate c, int64_t k) {
  if (static_cast<int64_t>(out.size()) >= k) return true;
  if (!c.path.empty() && seen.insert(c.path).second) out.push_back(std::move(c));
  return static_cast<int64_t>(out.size()) >= k;
}

}  // namespace

ChoiceSelection selection_from_names(const std::vector<ArchSpec>& groups,
                                     const std::map<std::string, std::string>& names) {
  ChoiceSelection sel;
  for (const ArchSpec& g : groups) {
    auto it = names.find(g.key);
    if (it == names.end()) return {};
    std::vector<int> picks;
    size_t from = 0;
    while (from <= it->second.size()) {
      const size_t plus = std::min(it->second.find('+', from), it->second.size());
      const std::string name = it->second.substr(from, plus - from);
      auto c = std::find(g.candidates.begin(), g.candidates.end(), name);
      if (c == g.candidates.end()) return {};
      picks.push_back(static_cast<int>(c - g.candidates.begin()));
      from = plus + 1;
    }
    if (static_cast<int>(picks.size()) != g.k) return {};
    std::sort(picks.begin(), picks.end());
    sel.push_back(std::move(picks));
  }
  return sel;
}

std::vector<RerankCandidate> genotype_candidates(
    const std::string& metrics_file, const std::vector<ArchSpec>& groups,
    const std::vector<std::vector<double>>& probs,
    const std::function<GenotypeInfo(const std::vector<std::vector<double>>&)>& genotype, int64_t k,
    uint64_t seed) {
  std::vector<RerankCandidate> out;
  std::set<ChoiceSelection> seen;
  std::vector<nlohmann::json> records = read_records(metrics_file);
  for (auto rec = records.rbegin(); rec != records.rend(); ++rec) {
    if (rec->value("phase", std::string()) != "search") continue;
    RerankCandidate c{record_selection(*rec, groups),
                      fmt::format("epoch {}", rec->value("epoch", int64_t{0})), NAN};
    if (add_distinct(out, seen, std::move(c), k)) return out;
  }
  // Gumbel noise on log p: softmax(log p + G) picks candidate c with probability p[c].
  Rng rng(derive_seed(seed, 0x7e7a));
  for (int64_t draw = 0; draw < 20 * k; ++draw) {
    std::vector<std::vector<double>> noisy = probs;
    for (std::vector<double>& p : noisy) {
      double total = 0;
      for (double& v : p) {
        const double u = std::max(1e-12, static_cast<double>(rng.uniform_float()));
        v = std::exp(std::log(std::max(v, 1e-30)) - std::log(-std::log(u)));
        total += v;
      }
      for (double& v : p) v /= total;
    }
    RerankCandidate c{selection_from_names(groups, genotype(noisy).names), "perturbed", NAN};
    if (add_distinct(out, seen, std::move(c), k)) break;
  }
  return out;
}

std::vector<RerankCandidate> sampled_candidates(const std::string& metrics_file,
                                                const std::vector<ArchSpec>& groups, int64_t k) {
  std::vector<nlohmann::json> records = read_records(metrics_file);
  std::stable_sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return a.value("valid_acc", 0.0) > b.value("valid_acc", 0.0);
  });
  std::vector<RerankCandidate> out;
  std::set<ChoiceSelection> seen;
  for (const nlohmann::json& rec : records) {
    RerankCandidate c{record_selection(rec, groups),
                      fmt::format("sample {}", rec.value("epoch", int64_t{0})),
                      rec.value("valid_acc", NAN)};
    if (add_distinct(out, seen, std::move(c), k)) break;
  }
  return out;
}

RerankResult rerank(const ScratchTraining& t, const std::vector<RerankCandidate>& candidates,
                    RunDir& run) {
  NAS_CHECK(!candidates.empty(), "rerank without candidates");
  const int64_t epochs = t.config.rerank_epochs;
  const size_t n = candidates.size();
  auto say = [&](const std::string& line) {
    t.out << line << "\n";
    run.log(line);
  };
  say(
      fmt::format("rerank: {} candidate{}, each trained {} epoch{} from scratch on {} samples and "
                  "validated on {}",
                  n, n == 1 ? "" : "s", epochs, epochs == 1 ? "" : "s",
                  t.data.data.train_indices.size(), t.data.data.valid_indices.size()));
  RerankResult best;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (size_t i = 0; i < n; ++i) {
    const RerankCandidate& c = candidates[i];
    const auto start = std::chrono::steady_clock::now();
    GenotypeInfo info = t.hooks.describe(c.path);
    TrialProgress progress;
    const std::string label = fmt::format("rerank {}/{}", i + 1, n);
    ScratchTrial trial = train_from_scratch(t, c.path, epochs, label,
                                            fmt::format("rerank candidate {}", i + 1), progress);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    say(fmt::format("{}: valid loss {:.4f} acc {:.2f}% | {} params, {} MACs | {}{} | {:.1f} s",
                    label, trial.valid_loss, 100 * trial.valid_acc,
                    with_commas(std::llround(info.params)), human_count(info.macs), c.source,
                    std::isnan(c.search_score)
                        ? std::string()
                        : fmt::format(" (search score {:.2f}%)", 100 * c.search_score),
                    seconds));
    nlohmann::ordered_json entry;
    entry["candidate"] = i + 1;
    entry["source"] = c.source;
    entry["search_score"] = std::isnan(c.search_score) ? nlohmann::ordered_json()
                                                       : nlohmann::ordered_json(c.search_score);
    entry["valid_acc"] = trial.valid_acc;
    entry["valid_loss"] = trial.valid_loss;
    entry["train_acc"] = trial.train_acc;
    entry["train_loss"] = trial.train_loss;
    entry["params"] = info.params;
    entry["macs"] = info.macs;
    entry["choices"] = info.arch.value("choices", nlohmann::ordered_json::object());
    list.push_back(std::move(entry));
    if (i == 0 || trial.valid_acc > best.valid_accuracy) {  // ties: the search's order
      best.kept = i;
      best.genotype = std::move(info);
      best.valid_accuracy = trial.valid_acc;
    }
  }
  nlohmann::ordered_json doc;
  doc["k"] = t.config.rerank;
  doc["epochs"] = epochs;
  doc["kept"] = best.kept + 1;
  doc["candidates"] = std::move(list);
  run.write_json("rerank.json", doc);
  nlohmann::ordered_json arch = best.genotype.arch;
  arch["rerank"] = {{"candidate", best.kept + 1},
                    {"source", candidates[best.kept].source},
                    {"valid_acc", best.valid_accuracy},
                    {"epochs", epochs}};
  arch["params"] = best.genotype.params;
  arch["macs"] = best.genotype.macs;
  run.write_json("arch.json", arch);
  say(fmt::format("rerank: kept candidate {} of {} ({}): {:.2f}% valid", best.kept + 1, n,
                  candidates[best.kept].source, 100 * best.valid_accuracy));
  return best;
}

}  // namespace nas
