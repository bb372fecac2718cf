#include "tools/nasc/options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <vector>

#include "runtime/exec/backend_registry.h"
#include "support/did_you_mean.h"

namespace nas::cli {

std::string usage() {
  return R"(nasc — compiler for hardware-aware neural architecture search spaces

Usage:
  nasc check FILE [--json] [--arch A.json]   parse, elaborate and shape-check; print a summary
  nasc graph FILE [-o OUT.svg|.png|.pdf|.dot] [--arch A.json]
                                             draw the graph (DOT; SVG/PNG via graphviz)
  nasc ir    FILE [--stage ast|ir|pruned|plan] [--arch A.json] [--batch N]
                                             dump a compiler stage, or the memory plan
  nasc train FILE -o DIR [--arch A.json] [--data fashion-mnist|cifar10:DIR|synthetic]
             [-c CONFIG.json] [--epochs N] [--threads N] [--resume]
                                             train the network (or the architecture --arch
                                             selects) on the CPU; DIR gets config.json,
                                             log.txt, metrics.jsonl, weights, checkpoint
  nasc search FILE -o DIR [-a darts|darts2|pnas|random] [--data ...] [-c CONFIG.json]
             [--epochs N] [--threads N] [--lut LUT.json] [--resume]
                                             search the space; DIR gets arch.json,
                                             arch.svg, config.json, log.txt, metrics.jsonl,
                                             TensorBoard events, report.html, checkpoint
  nasc profile FILE -o LUT.json [--arch A.json|--all-candidates] [--batch N]
             [--threads N] [--warmup N] [--repetitions N] [--trim F] [--statistic S]
                                             measure every op signature of the space (or of
                                             one architecture) into a latency table;
                                             resumable: rerun skips what LUT.json has
  nasc estimate FILE [--arch A.json] [--lut LUT.json] [--profile-missing] [--measure]
             [--batch N] [--threads N] [--json]
                                             params, MACs, activation memory, estimated
                                             latency (and with --measure, measured latency
                                             and the estimate's error); docs/estimate.md
  nasc --help | --version

Options:
  --set NAME=VALUE   override a network parameter (repeatable), e.g. --set C=8
  --network NAME     pick the network when FILE declares several
  --arch FILE        architecture JSON: {"choices": {"key": "candidate", ...}}
  -I DIR             add DIR to the import search path (before the stdlib)
  -o FILE            output file (graph); `-` or none writes DOT to stdout
  --batch N          batch size of the memory plan (ir --stage plan; default 1), of the
                     latency measurements (profile; default 1) or of the training memory
                     estimate (estimate; default 64)
  -c FILE            train config JSON (docs/train.md); with --resume, DIR/config.json
  --data SET         training data: fashion-mnist (default), cifar10:DIR, synthetic
  --epochs N         override the config's epochs
  --threads N        CPU threads (0 = all cores)
  --backend NAME     the backend that runs the network (train, search, profile,
                     estimate; default cpu); `nasc --version` lists those built in
  --resume           continue the run in DIR from its last checkpoint
  -a ALGORITHM       search algorithm: darts (first order, the default), darts2
                     (unrolled second order), pnas (ProxylessNAS, REINFORCE) or random
  --all-candidates   profile every candidate of the space (the default without --arch)
  --lut FILE         latency table from `nasc profile` (estimate; search: the
                     regularizer's table, and the genotype's latency per epoch)
  --profile-missing  measure what the table lacks (written back into --lut), or, without
                     --lut, profile the network now
  --measure          also run the whole network and time it (estimate)
  --warmup N, --repetitions N, --trim F, --statistic min|median|trimmed_mean
                     measurement settings (profile; estimate --measure without --lut)
  --json             machine-readable output (check, estimate)
  --no-locations     omit @file:line:col from IR dumps

Exit status: 0 success, 1 error in the input or the command line, 2 internal error.
Docs: docs/language.md (the language), docs/cli.md (this tool), docs/train.md (training).
)";
}

namespace {

// The long flags the usage text documents, so that the suggestion for a mistyped one
// stays in step with the help.
std::vector<std::string> documented_long_flags() {
  std::vector<std::string> flags;
  const std::string text = usage();
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    bool starts_word = i == 0 || text[i - 1] == ' ' || text[i - 1] == '[' || text[i - 1] == '|';
    if (!starts_word || text.compare(i, 2, "--") != 0 ||
        !std::isalpha(static_cast<unsigned char>(text[i + 2])))
      continue;
    size_t end = i + 2;
    while (end < text.size() &&
           (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '-'))
      ++end;
    std::string flag = text.substr(i, end - i);
    if (std::find(flags.begin(), flags.end(), flag) == flags.end()) flags.push_back(flag);
    i = end;
  }
  return flags;
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  static const std::vector<std::string> commands = {"check",  "graph",   "ir",      "train",
                                                    "search", "profile", "estimate"};
  std::vector<std::string> args(argv + 1, argv + argc);
  bool stage_given = false, batch_given = false;
  auto need_value = [&](size_t& i, const std::string& flag) -> std::string {
    if (i + 1 >= args.size()) {
      o.error = flag + " needs a value";
      return {};
    }
    return args[++i];
  };
  for (size_t i = 0; i < args.size() && o.error.empty(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help" || a == "help") {
      o.command = "help";
      return o;
    }
    if (a == "--version" || a == "-V") {
      o.command = "version";
      return o;
    }
    if (a == "--json") {
      o.json = true;
    } else if (a == "--no-locations") {
      o.no_locations = true;
    } else if (a == "-o" || a == "--output") {
      o.output = need_value(i, a);
    } else if (a == "--arch") {
      o.arch = need_value(i, a);
    } else if (a == "--stage") {
      o.stage = need_value(i, a);
      stage_given = true;
    } else if (a == "--batch") {
      std::string v = need_value(i, a);
      batch_given = o.batch_given = true;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), o.batch);
      if (o.error.empty() && (ec != std::errc() || end != v.data() + v.size() || o.batch < 1))
        o.error = "--batch needs a positive integer, got \"" + v + "\"";
    } else if (a == "-c" || a == "--config") {
      o.config = need_value(i, a);
    } else if (a == "--data") {
      o.data = need_value(i, a);
      if (o.error.empty() && o.data != "fashion-mnist" && o.data != "synthetic" &&
          o.data.rfind("cifar10:", 0) != 0)
        o.error = "--data takes fashion-mnist, cifar10:DIR or synthetic, got \"" + o.data + "\"";
      if (o.error.empty() && o.data == "cifar10:")
        o.error = "--data cifar10:DIR needs the folder of the CIFAR-10 binary files";
    } else if (a == "--epochs" || a == "--threads") {
      std::string v = need_value(i, a);
      int64_t n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      bool bad = ec != std::errc() || end != v.data() + v.size() || n > 1000000 ||
                 (a == "--epochs" ? n < 1 : n < 0);
      if (o.error.empty() && bad)
        o.error = a + " needs a " +
                  (a == "--epochs" ? "positive integer" : "count >= 0 (0 = all cores)") +
                  ", got \"" + v + "\"";
      (a == "--epochs" ? o.epochs : o.threads) = n;
    } else if (a == "-a" || a == "--algorithm") {
      o.algorithm = need_value(i, a);
      if (o.error.empty() && o.algorithm != "darts" && o.algorithm != "darts2" &&
          o.algorithm != "pnas" && o.algorithm != "random")
        o.error = "-a takes darts, darts2, pnas or random, got \"" + o.algorithm + "\"";
    } else if (a == "--all-candidates") {
      o.all_candidates = true;
    } else if (a == "--measure") {
      o.measure = true;
    } else if (a == "--profile-missing") {
      o.profile_missing = true;
    } else if (a == "--backend") {
      o.backend = need_value(i, a);
      if (o.error.empty()) o.error = backend_name_problem(o.backend);
    } else if (a == "--lut") {
      o.lut = need_value(i, a);
    } else if (a == "--warmup" || a == "--repetitions") {
      std::string v = need_value(i, a);
      int64_t n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      const int64_t lo = a == "--warmup" ? 0 : 1;
      if (o.error.empty() &&
          (ec != std::errc() || end != v.data() + v.size() || n < lo || n > 100000))
        o.error = a + " needs an integer in " + std::to_string(lo) + "..100000, got \"" + v + "\"";
      (a == "--warmup" ? o.warmup : o.repetitions) = n;
    } else if (a == "--trim") {
      std::string v = need_value(i, a);
      char* end = nullptr;
      double f = o.error.empty() ? std::strtod(v.c_str(), &end) : 0;
      if (o.error.empty() && (v.empty() || end != v.c_str() + v.size() || !(f >= 0 && f < 0.5)))
        o.error = "--trim needs a fraction in [0, 0.5), got \"" + v + "\"";
      o.trim = f;
    } else if (a == "--statistic") {
      o.statistic = need_value(i, a);
      if (o.error.empty() && o.statistic != "min" && o.statistic != "median" &&
          o.statistic != "trimmed_mean")
        o.error = "--statistic takes min, median or trimmed_mean, got \"" + o.statistic + "\"";
    } else if (a == "--resume") {
      o.resume = true;
    } else if (a == "--network") {
      o.network = need_value(i, a);
    } else if (a == "-I") {
      o.include_paths.push_back(need_value(i, a));
    } else if (a.rfind("-I", 0) == 0 && a.size() > 2) {
      o.include_paths.push_back(a.substr(2));
    } else if (a == "--set") {
      std::string kv = need_value(i, a);
      size_t eq = kv.find('=');
      if (o.error.empty() && (eq == std::string::npos || eq == 0))
        o.error = "--set needs NAME=VALUE, got \"" + kv + "\"";
      else if (o.error.empty())
        o.overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (a.size() > 1 && a[0] == '-') {
      // Short flags are one letter: any other letter would be "close" to all of them.
      o.error = "unknown option " + a +
                (a.rfind("--", 0) == 0 ? did_you_mean(a, documented_long_flags()) : "");
    } else if (o.command.empty()) {
      if (std::find(commands.begin(), commands.end(), a) == commands.end()) {
        o.error = "unknown command `" + a + "`" + did_you_mean(a, commands) +
                  " (commands: check, graph, ir, train, search, profile, estimate)";
      }
      o.command = a;
    } else if (o.file.empty()) {
      o.file = a;
    } else {
      o.error = "unexpected argument `" + a + "`";
    }
  }
  if (o.error.empty() && o.command.empty()) o.error = "no command given";
  if (o.error.empty() && o.file.empty()) o.error = "`nasc " + o.command + "` needs a .nas FILE";
  static const std::vector<std::string> stages = {"ast",  "ir",   "pruned",
                                                  "grad", "plan", "train-plan"};
  if (o.error.empty() && o.command == "ir" &&
      std::find(stages.begin(), stages.end(), o.stage) == stages.end())
    o.error = "unknown --stage `" + o.stage + "`" + did_you_mean(o.stage, stages) +
              " (stages: ast, ir, pruned, grad, plan, train-plan)";
  if (o.error.empty() && o.command == "ir" && o.stage == "pruned" && o.arch.empty())
    o.error = "--stage pruned needs --arch A.json (the selection to prune with)";
  // A flag the command would ignore is a mistake worth saying so, not silently dropping.
  auto only_for = [&](bool given, const char* flag, bool applies, const char* where) {
    if (o.error.empty() && given && !applies)
      o.error =
          std::string(flag) + " does not apply to `nasc " + o.command + "`; it is for " + where;
  };
  const bool profile = o.command == "profile", estimate = o.command == "estimate";
  only_for(o.json, "--json", o.command == "check" || estimate, "`nasc check` and `nasc estimate`");
  only_for(o.all_candidates, "--all-candidates", profile, "`nasc profile`");
  only_for(!o.lut.empty(), "--lut", estimate || o.command == "search",
           "`nasc estimate` and `nasc search`");
  only_for(o.measure, "--measure", estimate, "`nasc estimate`");
  only_for(o.profile_missing, "--profile-missing", estimate, "`nasc estimate`");
  const bool settings = o.warmup >= 0 || o.repetitions >= 0 || o.trim >= 0 || !o.statistic.empty();
  only_for(settings, "--warmup/--repetitions/--trim/--statistic", profile || estimate,
           "`nasc profile` and `nasc estimate`");
  if (o.error.empty() && profile && o.output.empty())
    o.error = "`nasc profile` needs -o LUT.json, the latency table to write (or resume)";
  if (o.error.empty() && profile && o.all_candidates && !o.arch.empty())
    o.error =
        "--all-candidates and --arch exclude each other: profile the whole space or one "
        "architecture";
  if (o.error.empty() && estimate && settings && !o.lut.empty())
    o.error =
        "measurement settings come from the --lut table; --warmup/--repetitions/--trim/"
        "--statistic apply to `nasc estimate` only without --lut";
  only_for(!o.output.empty(), "-o",
           o.command == "graph" || o.command == "train" || o.command == "search" || profile,
           "`nasc graph`, `nasc train`, `nasc search` and `nasc profile`");
  only_for(stage_given, "--stage", o.command == "ir", "`nasc ir`");
  only_for(o.no_locations, "--no-locations", o.command == "ir", "`nasc ir`");
  bool train = o.command == "train" || o.command == "search";
  only_for(!o.algorithm.empty(), "-a", o.command == "search", "`nasc search`");
  only_for(!o.config.empty(), "-c", train, "`nasc train` and `nasc search`");
  only_for(!o.data.empty(), "--data", train, "`nasc train` and `nasc search`");
  only_for(o.epochs > 0, "--epochs", train, "`nasc train` and `nasc search`");
  only_for(o.threads >= 0, "--threads", train || profile || estimate,
           "`nasc train`, `nasc search`, `nasc profile` and `nasc estimate`");
  only_for(o.resume, "--resume", train, "`nasc train` and `nasc search`");
  only_for(!o.backend.empty(), "--backend", train || profile || estimate,
           "`nasc train`, `nasc search`, `nasc profile` and `nasc estimate`");
  if (o.error.empty() && train && o.output.empty())
    o.error = "`nasc " + o.command + "` needs -o DIR, the run folder";
  only_for(!o.arch.empty(), "--arch",
           o.command != "ir" || o.stage == "pruned" || o.stage == "plan" || o.stage == "grad" ||
               o.stage == "train-plan",
           "`nasc check`, `nasc graph` and `nasc ir --stage pruned|grad|plan|train-plan`");
  if (o.error.empty() && batch_given && !profile && !estimate &&
      !(o.command == "ir" && (o.stage == "plan" || o.stage == "train-plan")))
    o.error = "--batch does not apply to `nasc " + o.command +
              (o.command == "ir" ? " --stage " + o.stage : std::string()) +
              "`; it is for `nasc ir --stage plan`, `nasc profile` and `nasc estimate`";
  return o;
}

}  // namespace nas::cli
