// The report.html of a search run: one self-contained page (inline CSS and SVG, no script,
// nothing fetched) that opens offline in any browser. It shows a summary table (after
// --retrain, one of the search and the retrain above it), the loss and accuracy curves, one
// probability heatmap per choice key, the genotype's params/MACs/latency per epoch, and the final
// architecture as a table and as the graphviz drawing. The page is documented in docs/report.md.
//
// Everything here is pure: the caller reads metrics.jsonl, arch.json and the drawing and
// fills a ReportInput. Keys and candidate names come from user files, so all text is
// HTML-escaped. Absent numbers are NaN and show as "—"; no series, a single epoch, a
// constant series or NaN everywhere all render without dividing by zero.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace nas {

// One search epoch, from a metrics.jsonl record.
struct ReportEpoch {
  int64_t epoch = 0;
  // Accuracies as fractions (0..1); NaN = absent (e.g. warm-up epochs without validation).
  double train_loss = NAN, train_acc = NAN, valid_loss = NAN, valid_acc = NAN;
  // Per choice key: softmax(alpha) or the sampling probabilities, one per candidate.
  std::map<std::string, std::vector<double>> probs;
  // Per choice key: the chosen candidate name(s) at this epoch, joined by "+".
  std::map<std::string, std::string> genotype;
  // Of the current genotype; NaN = unknown.
  double params = NAN, macs = NAN, latency_ms = NAN, activation_bytes = NAN;
};

// Evolution's candidates (pareto.json): validation accuracy against the bounded cost.
struct ReportPareto {
  std::string cost;  // "params", "macs" or "latency_ms": the x axis
  double bound = NAN;
  std::vector<std::pair<double, double>> points;  // every candidate: (cost, accuracy 0..1)
  std::vector<std::pair<double, double>> front;   // the Pareto front, by cost
};

// --retrain: the found architecture trained again (often as a larger evaluation network).
struct ReportRetrain {
  std::string network;                          // its network parameters, "C=16, evaluation=true"
  double params = NAN, macs = NAN;              // of the retrained network
  int64_t epochs = 0;                           // the retrain config's
  std::vector<ReportEpoch> curve;               // its metrics.jsonl: train and validation numbers
  double test_loss = NAN, test_accuracy = NAN;  // read once, after the last epoch
  double search_seconds = 0, seconds = 0;       // wall times of the search and the retrain
  bool stopped = false;
};

struct ReportInput {
  std::string title;  // e.g. "nasc search: darts_fmnist (darts)"
  std::string algorithm, space_file, command_line;
  // Per choice key: the candidate names (the heatmap rows, in the order of `probs`).
  std::map<std::string, std::vector<std::string>> candidates;
  std::vector<ReportEpoch> epochs;
  // The found architecture drawn by graphviz: an <svg> document (an XML prolog, doctype
  // and comments before <svg are dropped), or empty for none.
  std::string arch_svg;
  // The arch.json contents ({"network": ..., "choices": {key: name or [names]}}; a bare
  // {key: name} object is accepted too), shown as a key -> candidate table.
  nlohmann::json final_arch;
  double final_params = NAN, final_macs = NAN, final_latency_ms = NAN;
  double final_activation_bytes = NAN;     // inference at batch 1
  double final_measured_latency_ms = NAN;  // evolution: the found network timed whole
  ReportPareto pareto;                     // evolution; no points: no plot
  double seconds = 0;                      // wall time of the search; <= 0 = unknown
  std::optional<ReportRetrain> retrain;    // --retrain: a summary table and its curves
};

// The whole page. Each plot is one <svg> element: loss, accuracy, then params, MACs and
// latency per epoch (each only when some epoch has it), then the architecture drawing
// (when arch_svg holds one). Evolution adds a scatter of its candidates' accuracy against
// their cost, the Pareto front joined and the bound dashed. Heatmaps are HTML tables whose
// cells carry the exact probability in their title attribute.
std::string render_report_html(const ReportInput& in);

// Writes the page atomically (a temporary file renamed over `path`). Throws a
// DataFileError naming the path when it cannot.
void write_report_html(const std::string& path, const ReportInput& in);

// HTML-escapes & < > " ' (for text and attribute values alike).
std::string html_escape(const std::string& text);

}  // namespace nas
