// nasc: the command-line driver, a client of libnasc's public API (include/nasc/) and
// nothing else: it parses flags, calls the API, prints. Exit status 0 ok, 1 user error,
// 2 internal error.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "nasc/nasc.h"
#include "tools/nasc/cli_output.h"
#include "tools/nasc/estimate_cmds.h"
#include "tools/nasc/help.h"
#include "tools/nasc/options.h"

namespace nas::cli {
namespace {

void print_check_json(const Options& o, const nasc::Space& space, const nasc::SpaceStatistics& s,
                      const std::optional<nasc::NetworkSize>& fixed) {
  nlohmann::ordered_json j;
  j["network"] = space.name();
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  for (const auto& [k, v] : space.network_parameters())
    params[k] = nlohmann::json::parse(v, nullptr, false);
  j["network_params"] = params;
  j["nodes"] = s.nodes;
  j["params"] = s.supernet_params;
  j["macs"] = s.supernet_macs;
  j["params_largest"] = s.largest_params;
  j["params_smallest"] = s.smallest_params;
  j["extremes_exact"] = s.extremes_exact;
  j["log10_space_size"] = s.log10_size;
  nlohmann::ordered_json choices = nlohmann::ordered_json::array();
  for (const nasc::Choice& c : space.choices())
    choices.push_back(
        {{"key", c.key}, {"candidates", c.candidates}, {"k", c.k}, {"nodes", c.sites}});
  j["choices"] = choices;
  if (fixed)
    j["arch"] = {{"file", o.arch},
                 {"params", fixed->params},
                 {"macs", fixed->macs},
                 {"nodes", fixed->nodes}};
  // Replace, not throw, on invalid UTF-8 in names ("é"[0] is one byte of two).
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void print_choices(const std::vector<nasc::Choice>& choices) {
  const size_t kShown = 40;
  for (size_t i = 0; i < choices.size() && i < kShown; ++i) {
    const nasc::Choice& c = choices[i];
    std::cout << "    " << c.key << ": " << c.candidates.size() << " candidates";
    if (c.k > 1) std::cout << ", picks " << c.k;
    if (c.sites > 1) std::cout << ", shared by " << c.sites << " nodes";
    std::cout << " {";
    for (size_t n = 0; n < c.candidates.size(); ++n)
      std::cout << (n ? ", " : "") << c.candidates[n];
    std::cout << "}\n";
  }
  if (choices.size() > kShown)
    std::cout << "    ... and " << choices.size() - kShown << " more (--json lists all)\n";
}

void print_check_text(const Options& o, const nasc::Space& space, const nasc::SpaceStatistics& s,
                      const std::optional<nasc::NetworkSize>& fixed) {
  const auto params = space.network_parameters();
  std::cout << o.file << ": network " << space.name() << "(";
  for (size_t i = 0; i < params.size(); ++i)
    std::cout << (i ? ", " : "") << params[i].first << "=" << params[i].second;
  std::cout << ")\n";
  std::cout << "  input            ";
  const std::vector<nasc::Input> inputs = space.inputs();
  for (size_t i = 0; i < inputs.size(); ++i)
    std::cout << (i ? ", " : "") << inputs[i].name << " " << shape_text(inputs[i].shape);
  std::cout << "\n  output           " << shape_text(space.output_shape()) << "\n";
  std::cout << "  nodes            " << s.nodes << "\n";
  std::cout << "  choices          " << s.choices << " (" << s.choice_sites << " choice nodes)\n";
  print_choices(space.choices());
  char size[64];
  std::snprintf(size, sizeof size, "10^%.2f", s.log10_size);
  std::cout << "  search space     " << size << " architectures\n";
  std::cout << "  params           supernet " << with_commas(s.supernet_params) << ", largest "
            << with_commas(s.largest_params) << ", smallest " << with_commas(s.smallest_params)
            << (s.extremes_exact     ? ""
                : s.search_truncated ? " (best found before the search's work limit)"
                                     : " (largest/smallest by coordinate search)")
            << "\n";
  std::cout << "  MACs             supernet " << with_commas(s.supernet_macs) << " ("
            << human_count(static_cast<double>(s.supernet_macs)) << ") per sample\n";
  if (fixed)
    std::cout << "  arch " << o.arch << ": " << fixed->nodes << " nodes, params "
              << with_commas(fixed->params) << ", MACs " << with_commas(fixed->macs) << "\n";
}

int cmd_check(const Options& o) {
  nasc::Space space = nasc::Space::compile_file(o.file, compile_options(o));
  return call_api(
      [&] {
        std::optional<nasc::NetworkSize> fixed;
        if (!o.arch.empty()) fixed = space.fix_file(o.arch).size();
        nasc::SpaceStatistics s = space.statistics();
        if (o.json)
          print_check_json(o, space, s, fixed);
        else
          print_check_text(o, space, s, fixed);
        return report(space.diagnostics());
      },
      &space);
}

int cmd_graph(const Options& o) {
  nasc::Space space = nasc::Space::compile_file(o.file, compile_options(o));
  return call_api(
      [&] {
        const std::string dot = o.arch.empty() ? space.to_dot() : space.fix_file(o.arch).to_dot();
        if (o.output.empty() || o.output == "-") {
          std::cout << dot;
          return report(space.diagnostics());
        }
        nasc::GraphFile written = nasc::write_graph(dot, o.output);
        if (written.rendered) std::cerr << "wrote " << o.output << "\n";
        return report(space.diagnostics(), written.warnings);
      },
      &space);
}

nasc::DumpOptions dump_options(const Options& o) {
  nasc::DumpOptions d;
  d.locations = !o.no_locations;
  d.after = o.dump_after;
  d.out = &std::cerr;
  return d;
}

// nasc ir: the pipeline from the file to the stage asked for, then that stage's result.
// The stages after dce work on the network --arch selects, or on the whole supernet
// (every candidate computed, as DARTS' full mode does; its training graph also carries
// the architecture gradients).
int cmd_ir(const Options& o) {
  const IrStage stage = ir_stage(o);
  nasc::IrOptions options;
  options.compile = compile_options(o);
  options.stage = stage.stage;
  options.training = stage.training;
  options.arch_file = o.arch;
  options.partial_channels = o.partial_channels;
  options.edge_normalization = o.edge_normalization;
  options.batch = o.batch;
  options.dump = dump_options(o);
  nasc::IrText ir = nasc::stage_text(o.file, options);
  std::cout << ir.text;
  return report(ir.warnings);
}

// nasc opt: textual IR in, the passes in the order given, the last one's result out.
int cmd_opt(const Options& o) {
  nasc::PassOptions options;
  options.passes = o.passes;
  options.arch_file = o.arch;
  options.partial_channels = o.partial_channels;
  options.edge_normalization = o.edge_normalization;
  options.batch = o.batch;
  options.dump = dump_options(o);
  nasc::IrText ir = nasc::run_passes_on_file(o.file, options);
  std::cout << ir.text;
  return report(ir.warnings);
}

// nasc export: the fixed network (the space itself, or the one --arch selects) with its
// weights as an ONNX model.
int cmd_export(const Options& o) {
  nasc::Space space = nasc::Space::compile_file(o.file, compile_options(o));
  return call_api(
      [&] {
        const size_t choices = space.choices().size();
        if (o.arch.empty() && choices > 0)
          throw nasc::Error(nasc::Error::Kind::User,
                            fmt::format("{}: `nasc export` writes a fixed network, but `{}` has {} "
                                        "choice{}; give --arch A.json (from `nasc search`) to "
                                        "select one",
                                        o.file, space.name(), choices, choices == 1 ? "" : "s"));
        const nasc::Architecture arch =
            o.arch.empty() ? space.first_candidates() : space.fix_file(o.arch);
        nasc::OnnxExportOptions options;
        options.weights_file = o.weights;
        options.random_weights = o.random_weights;
        options.batch = o.batch_given ? o.batch : 0;
        options.fold_batchnorm = !o.keep_batchnorm;
        nasc::export_onnx(arch, o.output, options);
        std::cerr << "wrote " << o.output << "\n";
        return report(space.diagnostics());
      },
      &space);
}

// train and search: the run's options from the flags.
nasc::RunOptions run_options(const Options& o) {
  nasc::RunOptions r;
  r.space_file = o.file;
  r.compile = compile_options(o);
  r.config_file = o.config;
  r.data = o.data;
  r.epochs = o.epochs;
  r.threads = static_cast<int>(o.threads);
  r.backend = o.backend;
  r.output_dir = o.output;
  r.resume = o.resume;
  r.arch_file = o.arch;
  r.init_weights = o.init;
  r.algorithm = o.algorithm;
  r.lut = o.lut;
  r.rerank = o.rerank;
  r.retrain = o.retrain;
  r.parallel.sync_batchnorm = o.sync_bn;
  if (o.comm_timeout > 0) r.parallel.timeout_seconds = o.comm_timeout;
  r.log = &std::cout;
  return r;
}

// Under mpirun, ranks other than 0 print nothing but their errors: rank 0 speaks for the job.
bool quiet_rank() {
  return nasc::process_group().rank > 0;
}

int cmd_train(const Options& o) {
  nasc::TrainResult r = nasc::train(run_options(o));
  if (quiet_rank()) return kOk;
  if (std::isnan(r.test_accuracy))  // test_every_epoch false: read only after the last epoch
    std::cout << "stopped after " << r.epochs_run << " epochs, before the test split is read ("
              << fmt::format("{:.0f}", r.seconds) << " s); wrote " << o.output << "/weights\n";
  else
    std::cout << "test accuracy " << fmt::format("{:.2f}", 100 * r.test_accuracy) << "% after "
              << r.epochs << " epochs (" << fmt::format("{:.0f}", r.seconds) << " s); wrote "
              << o.output << "/weights\n";
  return report(r.warnings);
}

int cmd_search(const Options& o) {
  nasc::SearchResult r = nasc::search(run_options(o));
  if (quiet_rank()) return kOk;
  std::cout << "found " << r.choices.size() << " choices, "
            << with_commas(static_cast<int64_t>(r.params)) << " params, " << human_count(r.macs)
            << " MACs (" << fmt::format("{:.0f}", r.search_seconds) << " s); wrote " << o.output
            << "/arch.json\n";
  if (!r.retrained) {
    std::cout << "retrain it: nasc train " << o.file << " --arch " << o.output
              << "/arch.json -o RUN_DIR (or search with --retrain)\n";
  } else if (r.retrain.stopped || std::isnan(r.retrain.test_accuracy)) {
    std::cout << "retrain stopped after " << r.retrain.epochs_run << " of " << r.retrain.epochs
              << " epochs; --resume continues it\n";
  } else {
    std::cout << "retrained: test accuracy " << fmt::format("{:.2f}", 100 * r.retrain.test_accuracy)
              << "% after " << r.retrain.epochs << " epochs ("
              << with_commas(static_cast<int64_t>(r.retrain.params)) << " params, "
              << human_count(r.retrain.macs) << " MACs, "
              << fmt::format("{:.0f}", r.retrain.seconds) << " s; total "
              << fmt::format("{:.0f}", r.seconds) << " s); wrote " << r.retrain.weights_file
              << " and " << o.output << "/result.json\n";
  }
  return report(r.warnings);
}

// train and search without -o: a new runs/<stem>-<n> (nasc::create_run_dir), said first;
// removed again when the run fails before writing anything into it.
int with_run_dir(Options o, int (*command)(const Options&)) {
  if (!o.output.empty()) return command(o);
  o.output = nasc::create_run_dir(o.file);
  if (!quiet_rank()) std::cout << "run folder " << o.output << "\n";
  auto remove_if_empty = [&] {
    std::error_code ec;
    std::filesystem::remove(o.output, ec);  // refuses a folder that is not empty
  };
  int status = kInternalError;
  try {
    status = command(o);
  } catch (...) {
    remove_if_empty();
    throw;
  }
  if (status != kOk) remove_if_empty();
  return status;
}

int run_command(const Options& o) {
  return call_api([&] {
    if (o.command == "train") return with_run_dir(o, cmd_train);
    if (o.command == "search") return with_run_dir(o, cmd_search);
    if (o.command == "profile") return cmd_profile(o);
    if (o.command == "estimate") return cmd_estimate(o);
    if (o.command == "ir") return cmd_ir(o);
    if (o.command == "opt") return cmd_opt(o);
    if (o.command == "check") return cmd_check(o);
    if (o.command == "export") return cmd_export(o);
    return cmd_graph(o);
  });
}

// Under mpirun, a rank whose train or search failed ends the whole job at once rather than
// leave the others waiting for it until their --comm-timeout.
// (main() does the same for an internal error that escapes.)
bool parallel_run(const Options& o) {
  return o.command == "train" || o.command == "search";
}

int run(const Options& o) {
  const int status = run_command(o);
  if (parallel_run(o) && status != kOk) nasc::abort_process_group(status);
  return status;
}

int print_version() {
  std::cout << "nasc " << nasc::version() << "\n";
  std::cout << "backends:\n";
  for (const nasc::BackendDescription& b : nasc::backends()) {
    std::cout << "  " << b.name << (b.is_default ? " (default)" : "") << ": " << b.description
              << "\n";
    std::string device;
    const std::string problem = nasc::backend_problem(b.name, &device);
    if (!problem.empty())
      std::cout << "    not available here: " << problem << "\n";
    else if (!device.empty())
      std::cout << "    device: " << device << "\n";
  }
  return kOk;
}

constexpr const char* kBugReport =
    "This is a bug in nasc; please report it with the command line and its input files.\n";

}  // namespace
}  // namespace nas::cli

int main(int argc, char** argv) {
  using namespace nas::cli;
  Options o = parse_options(argc, argv);
  if (o.command == "help" && o.error.empty()) {
    const CommandHelp* topic = find_command_help(o.help_topic);
    std::cout << (topic ? command_usage(*topic) : overview_help());
    return kOk;
  }
  if ((o.command == "man" || o.command == "completion") && o.error.empty()) {
    std::cout << (o.command == "man" ? man_page() : bash_completion());
    return kOk;
  }
  if (o.command == "version") return print_version();
  if (o.command == "print-pipeline") {
    std::cout << nasc::describe_pipeline();
    return kOk;
  }
  if (!o.error.empty()) {
    std::cerr << "nasc: error: " << o.error << "\n(see `nasc --help`)\n";
    return kUserError;
  }
  try {
    return run(o);
  } catch (const nasc::Error& e) {  // internal: run() reports the user errors
    std::cerr << "nasc: " << e.what() << "\n" << kBugReport;
  } catch (const std::exception& e) {  // a library's exception: not a user error either
    std::cerr << "nasc: internal error: " << e.what() << "\n" << kBugReport;
  }
  if (parallel_run(o)) nasc::abort_process_group(kInternalError);
  return kInternalError;
}
