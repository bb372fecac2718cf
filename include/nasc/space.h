// libnasc's compiler half: compile a search space from a .nas file or text, list its
// choices and statistics, fix an architecture, and estimate its cost (params, MACs,
// memory, and latency from a table `nasc profile` wrote). Part of the public API
// (docs/embedding.md); standard C++ types only, the compiler's own types stay inside.
//
// Space, Architecture, LatencyTable and LatencyEstimator are cheap to copy (they share
// their immutable state) and safe to read from several threads. Every function throws
// nasc::Error (include/nasc/diagnostics.h) on failure.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nasc/diagnostics.h"

namespace nasc {

struct CompileOptions {
  // Folders searched for `import`, after the importing file's own folder and before
  // $NASC_STDLIB and the installed standard library (the CLI's -I).
  std::vector<std::string> import_paths;
  // The network to compile when the file defines several (required then: a file with
  // several networks and no name is a user error listing them).
  std::string network;
  // Network parameters, as the CLI's --set NAME=VALUE (VALUE is a .nas literal).
  std::vector<std::pair<std::string, std::string>> overrides;
};

// One architecture choice of a space: a `choice` (k = 1) or a `join` (picks k of its
// candidates). Several choice sites may share one key; `sites` counts them.
struct Choice {
  std::string key;
  std::vector<std::string> candidates;
  int k = 1;
  int sites = 1;
};

// One input of a network: its name in the .nas file and its shape per sample.
struct Input {
  std::string name;
  std::vector<int64_t> shape;
};

// What `nasc check` prints about a space.
struct SpaceStatistics {
  int64_t nodes = 0;                               // IR nodes of the supernet
  int choices = 0;                                 // distinct keys
  int choice_sites = 0;                            // choice nodes (shared keys count each site)
  double log10_size = 0;                           // log10 of the number of architectures
  int64_t supernet_params = 0, supernet_macs = 0;  // every candidate at once
  int64_t largest_params = 0, smallest_params = 0;
  bool extremes_exact = false;    // largest/smallest by enumeration (else by search)
  bool search_truncated = false;  // not exact, and the search hit its work limit
};

// The size of a fixed network: its IR nodes, trainable weights and MACs per sample.
struct NetworkSize {
  int64_t nodes = 0;
  int64_t params = 0;
  int64_t macs = 0;
};

// Static cost of a network (docs/estimate.md): no measurement involved.
struct StaticEstimate {
  int64_t params = 0;
  int64_t param_bytes = 0;       // float32
  int64_t macs = 0;              // per sample
  int64_t activation_bytes = 0;  // inference arena peak at batch 1
  int64_t train_batch = 0;
  int64_t train_activation_bytes = 0;  // training arena peak at train_batch (0: see below)
  std::string train_not_applicable;    // why the network cannot train, "" when it can
};

// Estimated latency from a table: fused (the steps a plan runs as one) and accumulated
// (every op's own time summed), in milliseconds for one run at the table's batch size.
struct LatencyEstimate {
  double fused_ms = 0;
  double accumulated_ms = 0;
  int64_t batch = 1;
  // The table's calibration scale, already applied to both figures (1: uncalibrated).
  double calibration = 1;
};

class Space;
struct ProfileOptions;  // nasc/latency.h
struct ProfileReport;

// An architecture of a space: every choice fixed. For a space without choices there is
// exactly one, the network itself.
class Architecture {
 public:
  // The arch file (or fix_json's name) it was read from; "" when made otherwise.
  const std::string& file() const;
  // chosen()[i] = the candidate indices picked for choices()[i] (k of them for a join).
  const std::vector<std::vector<int>>& chosen() const;
  // key -> the picked candidate names, "+"-joined for a join.
  std::map<std::string, std::string> names() const;
  // The arch file text (`nasc train --arch` reads it).
  std::string to_json() const;
  // A one-line summary: "op=conv, cell=sep_conv_3x3+skip".
  std::string describe() const;
  // The fixed network's size (what `nasc check --arch` prints).
  NetworkSize size() const;
  // The fixed network as Graphviz DOT text (`nasc graph --arch`).
  std::string to_dot() const;

  struct Impl;
  explicit Architecture(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// A latency table as `nasc profile` writes it (docs/estimate.md).
class LatencyTable {
 public:
  // Throws a user Error naming the file (and the entry) when it cannot be read.
  static LatencyTable load(const std::string& path);
  const std::string& path() const;
  int64_t batch() const;       // the batch size it was measured at
  std::string device() const;  // the device and thread count, in words
  size_t entries() const;      // measured signatures
  // The calibration scale its estimates are multiplied by (ProfileOptions::calibrate);
  // none for a table profiled without whole-network runs.
  std::optional<double> calibration() const;

  // Measures every op signature of a space (or of options.arch alone) on a backend, as
  // `nasc profile` does; nasc/latency.h has the options. With options.output set, an
  // existing table there is resumed (only what it lacks is measured; it must be of this
  // device, thread count, batch and settings, else a user Error says which differs) and
  // the table is saved there as it grows, so that an interrupted run keeps its work.
  // `report`, when given, receives how many signatures were measured and reused.
  static LatencyTable measure(const Space& space, const ProfileOptions& options,
                              ProfileReport* report = nullptr);
  // Writes the table as JSON (atomically: PATH.tmp, then renamed). Throws a user Error
  // naming the file when it cannot.
  void save(const std::string& path) const;

  struct Impl;
  explicit LatencyTable(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// A compiled search space (the supernet after dead-code elimination).
class Space {
 public:
  // Compiles a .nas file. Throws a user Error whose diagnostics() hold the located
  // compile errors (and warnings) when the file does not compile.
  static Space compile_file(const std::string& path, const CompileOptions& options = {});
  // Compiles .nas text; `name` stands for its file name in diagnostics, and relative
  // imports resolve against the working directory.
  static Space compile_string(const std::string& name, const std::string& text,
                              const CompileOptions& options = {});

  const std::string& file() const;  // the path or name it was compiled from
  std::string name() const;         // the network's name
  // The network's parameters as resolved ("classes" -> "10").
  std::vector<std::pair<std::string, std::string>> network_parameters() const;
  std::vector<Input> inputs() const;          // in declaration order
  std::vector<int64_t> input_shape() const;   // the first input's, per sample, [C, H, W]
  std::vector<int64_t> output_shape() const;  // per sample ([classes] for a classifier)
  // Warnings the compiler reported (errors throw instead).
  const std::vector<Diagnostic>& diagnostics() const;

  const std::vector<Choice>& choices() const;  // in declaration order
  SpaceStatistics statistics() const;

  // Fixing an architecture. Each throws a user Error naming the choice or key at fault.
  // chosen[i]: the candidate indices for choices()[i] (exactly k of them, distinct).
  Architecture fix(const std::vector<std::vector<int>>& chosen) const;
  // From arch file text ({"choices": {"op": "conv"}}); `name` names it in errors.
  Architecture fix_json(const std::string& json, const std::string& name = "arch.json") const;
  Architecture fix_file(const std::string& path) const;
  // Every choice's first k candidates.
  Architecture first_candidates() const;
  // A uniformly drawn architecture (the same for the same seed).
  Architecture sample(uint64_t seed) const;

  // The static cost of an architecture (the fixed network), or of the whole supernet.
  StaticEstimate estimate(const Architecture& arch, int64_t train_batch = 64) const;
  StaticEstimate estimate_supernet(int64_t train_batch = 64) const;

  // The supernet as Graphviz DOT text (`nasc graph`): one dashed cluster per choice, one
  // cluster per candidate inside it.
  std::string to_dot() const;

  struct Impl;
  explicit Space(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }
  const std::shared_ptr<const Impl>& shared_impl() const { return impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// Latency estimates of a space's architectures from a table. Construction checks that the
// table has every signature the space needs and throws a user Error listing what is
// missing (and how to profile it) otherwise.
class LatencyEstimator {
 public:
  LatencyEstimator(const Space& space, const LatencyTable& table);
  ~LatencyEstimator();
  LatencyEstimator(LatencyEstimator&&) noexcept;
  LatencyEstimator& operator=(LatencyEstimator&&) noexcept;
  // The table's warning when it was measured on another device; "" otherwise.
  const std::string& warning() const;
  LatencyEstimate estimate(const Architecture& arch);
  LatencyEstimate estimate_supernet();  // every candidate at once (DARTS' full mode)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What write_graph wrote: `path`, or the DOT text beside it when Graphviz is missing
// (then `warnings` says so).
struct GraphFile {
  std::string path;
  bool rendered = false;  // Graphviz drew it (.svg, .png, .pdf)
  std::vector<Diagnostic> warnings;
};
// Writes DOT text to `path` in the format its extension names: .dot or .gv as the text,
// .svg, .png or .pdf drawn by Graphviz's `dot` (without Graphviz, the text goes to the
// path with .dot instead, and a warning says so). Throws a user Error for another
// extension, a file it cannot write, or a failed drawing.
GraphFile write_graph(const std::string& dot, const std::string& path);

}  // namespace nasc
