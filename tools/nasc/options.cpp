#include "tools/nasc/options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "nasc/nasc.h"
#include "tools/nasc/help.h"

namespace nas::cli {

namespace {

// `nasc ir`'s older stage names: what they dump in terms of the pipeline's stages.
struct StageAlias {
  const char* name;
  const char* stage;
  bool training;
};
constexpr StageAlias kStageAliases[] = {
    {"ast", "load", false},     {"ir", "dce", false},           {"pruned", "zero-prune", false},
    {"grad", "autodiff", true}, {"plan", "memory-plan", false}, {"train-plan", "memory-plan", true},
    {"fused", "fusion", false},
};

// The pipeline's stage names in order, and a name's place in it (-1: not a stage).
std::vector<std::string> stage_names() {
  std::vector<std::string> names;
  for (const nasc::StageDescription& s : nasc::pipeline_stages()) names.push_back(s.name);
  return names;
}

int stage_index(const std::string& name) {
  const std::vector<std::string> names = stage_names();
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// "a,b" -> {"a", "b"}, appended to `out`; an empty item is an error.
void split_list(const std::string& flag, const std::string& value, std::vector<std::string>& out,
                std::string& error) {
  size_t start = 0;
  while (error.empty()) {
    size_t comma = value.find(',', start);
    std::string item = value.substr(start, comma == std::string::npos ? comma : comma - start);
    if (item.empty())
      error = flag + " needs a comma-separated list of stages, got \"" + value + "\"";
    out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
}

// Checks `names` are pipeline stages ("" when they are), with a suggestion for a typo.
std::string unknown_stage(const std::string& flag, const std::vector<std::string>& names,
                          const std::vector<std::string>& allowed) {
  for (const std::string& n : names)
    if (std::find(allowed.begin(), allowed.end(), n) == allowed.end())
      return "unknown " + flag + " `" + n + "`" + nasc::did_you_mean(n, allowed) + " (" +
             (flag == "--passes" ? "passes: " : "stages: ") + joined(allowed) + ")";
  return "";
}

// `nasc opt`: the passes it can run (a graph in: shapes and later), and their order rules.
std::string check_passes(const std::vector<std::string>& passes) {
  std::vector<std::string> allowed;
  for (const std::string& name : stage_names())
    if (stage_index(name) >= stage_index("shapes")) allowed.push_back(name);
  if (std::string e = unknown_stage("--passes", passes, allowed); !e.empty()) {
    if (passes.size() == 1 && (passes[0] == "load" || passes[0] == "elaborate"))
      return "--passes " + passes[0] + " reads .nas source; `nasc opt` reads IR, so its passes " +
             "are " + joined(allowed) + " (use `nasc ir FILE.nas --stage " + passes[0] + "`)";
    return e;
  }
  for (size_t i = 0; i < passes.size(); ++i) {
    const bool after_plan = i > 0 && (passes[i - 1] == "memory-plan" || passes[i - 1] == "lower");
    if (passes[i] == "lower" && (i == 0 || passes[i - 1] != "memory-plan"))
      return "--passes: lower lowers a memory plan; put memory-plan right before it";
    if (after_plan && passes[i] != "lower")
      return "--passes: " + passes[i] + " runs on a graph, but " + passes[i - 1] +
             " ends the graph passes; put it before memory-plan";
  }
  return "";
}

}  // namespace

std::vector<std::string> ir_stage_names() {
  std::vector<std::string> names = stage_names();
  for (const StageAlias& alias : kStageAliases) names.push_back(alias.name);
  names.insert(names.end(), {"llvm", "asm"});  // the JIT's module of the lowered plan
  return names;
}

IrStage ir_stage(const Options& o) {
  for (const StageAlias& a : kStageAliases)
    if (o.stage == a.name) return {a.stage, a.training || o.train};
  return {o.stage, o.stage == "autodiff" || o.stage == "remat" || o.train};
}

nasc::CompileOptions compile_options(const Options& o) {
  nasc::CompileOptions c;
  c.import_paths = o.include_paths;
  c.network = o.network;
  c.overrides = o.overrides;
  return c;
}

namespace {

// The checks that need the whole command line: a command and FILE, the stage and pass
// names, and flags given to a command they do not apply to (a mistake worth saying so,
// not silently dropping). Sets o.error to the first problem.
void check_combinations(Options& o, bool stage_given, bool batch_given, bool passes_given) {
  if (o.error.empty() && o.command.empty()) o.error = "no command given";
  if (o.error.empty() && o.file.empty())
    o.error = "`nasc " + o.command + "` needs a " + (o.command == "opt" ? "FILE.ir" : ".nas FILE");
  const bool ir = o.command == "ir", opt = o.command == "opt";
  const std::vector<std::string> ir_names = ir_stage_names();
  if (o.error.empty() && ir &&
      std::find(ir_names.begin(), ir_names.end(), o.stage) == ir_names.end())
    o.error = "unknown --stage `" + o.stage + "`" + nasc::did_you_mean(o.stage, ir_names) +
              " (stages: " + joined(stage_names()) + "; also ast, ir, pruned, grad, plan, " +
              "train-plan, fused, llvm, asm)";
  // The stage `nasc ir` stops after (valid once the name is), for the checks below.
  const IrStage stop = ir && o.error.empty() ? ir_stage(o) : IrStage{"lower", false};
  // The JIT's dumps run the whole pipeline first.
  const int stop_index =
      stop.stage == "llvm" || stop.stage == "asm" ? stage_index("lower") : stage_index(stop.stage);
  if (o.error.empty() && ir && stop.stage == "zero-prune" && o.arch.empty())
    o.error = "--stage " + o.stage + " needs --arch A.json (the selection to prune with)";
  if (o.error.empty() && opt) o.error = check_passes(o.passes);
  if (o.error.empty()) o.error = unknown_stage("--dump-after", o.dump_after, stage_names());
  for (const std::string& d : o.dump_after) {
    if (!o.error.empty()) break;
    if (ir && stage_index(d) > stop_index)
      o.error = "--dump-after " + d + ": the run stops before it, after " + stop.stage +
                " (--stage " + o.stage + ")";
    if (opt && std::find(o.passes.begin(), o.passes.end(), d) == o.passes.end())
      o.error = "--dump-after " + d + ": not among the --passes (" + joined(o.passes) + ")";
  }
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
  const bool exporting = o.command == "export";
  only_for(!o.weights.empty(), "--weights", exporting, "`nasc export`");
  only_for(o.random_weights, "--random-weights", exporting, "`nasc export`");
  only_for(o.keep_batchnorm, "--keep-batchnorm", exporting, "`nasc export`");
  if (o.error.empty() && exporting && o.output.empty())
    o.error = "`nasc export` needs -o NET.onnx, the ONNX file to write";
  if (o.error.empty() && exporting && o.weights.empty() && !o.random_weights)
    o.error =
        "`nasc export` needs --weights W, the trained weights (a `nasc train` run's "
        "DIR/weights), or --random-weights for the untrained network";
  if (o.error.empty() && exporting && !o.weights.empty() && o.random_weights)
    o.error = "--weights and --random-weights exclude each other";
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
  only_for(
      !o.output.empty(), "-o",
      o.command == "graph" || o.command == "train" || o.command == "search" || profile || exporting,
      "`nasc graph`, `nasc train`, `nasc search`, `nasc profile` and `nasc export`");
  only_for(stage_given, "--stage", ir, "`nasc ir`");
  only_for(o.no_locations, "--no-locations", ir || opt, "`nasc ir` and `nasc opt`");
  only_for(!o.dump_after.empty(), "--dump-after", ir || opt, "`nasc ir` and `nasc opt`");
  only_for(passes_given, "--passes", opt, "`nasc opt`");
  only_for(o.train, "--train", ir && stop_index >= stage_index("autodiff"),
           "`nasc ir --stage autodiff|fusion|memory-plan|lower`");
  bool train = o.command == "train" || o.command == "search";
  only_for(!o.algorithm.empty(), "-a", o.command == "search", "`nasc search`");
  only_for(o.rerank >= 0, "--rerank", o.command == "search", "`nasc search`");
  only_for(o.retrain, "--retrain", o.command == "search", "`nasc search`");
  only_for(!o.config.empty(), "-c", train, "`nasc train` and `nasc search`");
  only_for(!o.data.empty(), "--data", train, "`nasc train` and `nasc search`");
  only_for(o.epochs > 0, "--epochs", train, "`nasc train` and `nasc search`");
  only_for(o.threads >= 0, "--threads", train || profile || estimate,
           "`nasc train`, `nasc search`, `nasc profile` and `nasc estimate`");
  only_for(o.resume, "--resume", train, "`nasc train` and `nasc search`");
  only_for(o.sync_bn, "--sync-bn", train, "`nasc train` and `nasc search`");
  only_for(o.comm_timeout > 0, "--comm-timeout", train, "`nasc train` and `nasc search`");
  only_for(!o.init.empty(), "--init", o.command == "train", "`nasc train`");
  only_for(o.calibrate >= 0, "--calibrate", profile, "`nasc profile`");
  only_for(o.rounds >= 0, "--rounds", profile, "`nasc profile`");
  only_for(!o.backend.empty(), "--backend", train || profile || estimate,
           "`nasc train`, `nasc search`, `nasc profile` and `nasc estimate`");
  if (o.error.empty() && train && o.output.empty() && o.resume)
    o.error = "--resume needs -o DIR, the run folder to continue";
  const bool prunes = std::find(o.passes.begin(), o.passes.end(), "zero-prune") != o.passes.end();
  only_for(!o.arch.empty(), "--arch",
           ir    ? stop_index >= stage_index("zero-prune")
           : opt ? prunes
                 : o.command != "search",
           "`nasc check`, `nasc graph`, `nasc train`, `nasc profile`, `nasc estimate`, `nasc "
           "export`, `nasc ir --stage zero-prune` and later stages, and `nasc opt --passes "
           "...,zero-prune,...`");
  // `nasc opt` reads IR, whose parameters and imports were resolved when it was printed.
  const char* nas_commands = "the commands that compile a .nas FILE (all but `nasc opt`)";
  only_for(!o.overrides.empty(), "--set", !opt, nas_commands);
  only_for(!o.network.empty(), "--network", !opt, nas_commands);
  only_for(!o.include_paths.empty(), "-I", !opt, nas_commands);
  const bool connects =
      std::find(o.passes.begin(), o.passes.end(), "partial-channels") != o.passes.end();
  const char* pc_where =
      "`nasc ir --stage partial-channels` and later stages, and `nasc opt --passes "
      "...,partial-channels,...`";
  const bool pc_applies = ir ? stop_index >= stage_index("partial-channels") : opt && connects;
  only_for(o.partial_channels > 1, "--partial-channels", pc_applies, pc_where);
  only_for(o.edge_normalization, "--edge-normalization", pc_applies, pc_where);
  if (o.error.empty() && (o.partial_channels > 1 || o.edge_normalization) && !o.arch.empty())
    o.error =
        "--partial-channels and --edge-normalization transform the supernet a DARTS search "
        "trains; they do not combine with --arch";
  if (o.error.empty() && opt && connects && o.partial_channels == 1 && !o.edge_normalization)
    o.error =
        "--passes partial-channels needs --partial-channels K or --edge-normalization (what "
        "to transform)";
  if (o.error.empty() && opt && prunes && o.arch.empty())
    o.error = "--passes zero-prune needs --arch A.json (the selection to prune with)";
  const bool plans =
      ir ? stop_index >= stage_index("memory-plan")
         : std::find(o.passes.begin(), o.passes.end(), "memory-plan") != o.passes.end();
  if (o.error.empty() && batch_given && !profile && !estimate && !exporting &&
      !((ir || opt) && plans))
    o.error = "--batch does not apply to `nasc " + o.command +
              (ir ? " --stage " + o.stage : std::string()) +
              "`; it is for `nasc ir --stage memory-plan|lower|plan|train-plan`, `nasc opt "
              "--passes ...,memory-plan`, `nasc profile`, `nasc estimate` and `nasc export`";
}

}  // namespace

namespace {

// Flags seen, for the checks that need the whole command line.
struct Given {
  bool stage = false, batch = false, passes = false;
};

// Reads argv in order; need_value() takes the value after a flag (an error when none).
struct ArgReader {
  const std::vector<std::string>& args;
  size_t i = 0;
  Options& o;
  std::string value(const std::string& flag) {
    if (i + 1 >= args.size()) {
      o.error = flag + " needs a value";
      return {};
    }
    return args[++i];
  }
};

// An integer flag's value in lo..hi; `what` says what it needs ("a positive integer").
int64_t integer_value(ArgReader& r, const std::string& flag, int64_t lo, int64_t hi,
                      const std::string& what) {
  std::string v = r.value(flag);
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (r.o.error.empty() && (ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi))
    r.o.error = flag + " needs " + what + ", got \"" + v + "\"";
  return n;
}

// The flags with numbers: --batch, --epochs, --rerank, --threads, --warmup, --repetitions,
// --comm-timeout, --trim.
// False when `a` is none of them.
bool parse_number_flag(ArgReader& r, const std::string& a, Given& given) {
  Options& o = r.o;
  if (a == "--batch") {
    given.batch = o.batch_given = true;
    o.batch = integer_value(r, a, 1, INT64_MAX, "a positive integer");
  } else if (a == "--epochs") {
    o.epochs = integer_value(r, a, 1, 1000000, "a positive integer");
  } else if (a == "--calibrate") {
    o.calibrate = integer_value(r, a, 0, 1000, "a count in 0..1000");
  } else if (a == "--rounds") {
    o.rounds = integer_value(r, a, 1, 100, "a count in 1..100");
  } else if (a == "--partial-channels") {
    o.partial_channels =
        integer_value(r, a, 1, nasc::kMaxPartialChannels,
                      "an integer in 1.." + std::to_string(nasc::kMaxPartialChannels));
  } else if (a == "--rerank") {
    o.rerank = integer_value(r, a, 0, 1000, "a count in 0..1000");
  } else if (a == "--threads") {
    o.threads = integer_value(r, a, 0, 1000000, "a count >= 0 (0 = all cores)");
  } else if (a == "--warmup" || a == "--repetitions") {
    const int64_t lo = a == "--warmup" ? 0 : 1;
    (a == "--warmup" ? o.warmup : o.repetitions) =
        integer_value(r, a, lo, 100000, "an integer in " + std::to_string(lo) + "..100000");
  } else if (a == "--comm-timeout") {
    std::string v = r.value(a);
    char* end = nullptr;
    double f = o.error.empty() ? std::strtod(v.c_str(), &end) : 0;
    if (o.error.empty() && (v.empty() || end != v.c_str() + v.size() || !(f > 0 && f <= 86400)))
      o.error = "--comm-timeout needs seconds in (0, 86400], got \"" + v + "\"";
    o.comm_timeout = f;
  } else if (a == "--trim") {
    std::string v = r.value(a);
    char* end = nullptr;
    double f = o.error.empty() ? std::strtod(v.c_str(), &end) : 0;
    if (o.error.empty() && (v.empty() || end != v.c_str() + v.size() || !(f >= 0 && f < 0.5)))
      o.error = "--trim needs a fraction in [0, 0.5), got \"" + v + "\"";
    o.trim = f;
  } else {
    return false;
  }
  return true;
}

// The flags whose value is a name from a fixed set: --data, -a, --statistic, --backend.
// False when `a` is none of them.
bool parse_name_flag(ArgReader& r, const std::string& a) {
  Options& o = r.o;
  if (a == "--data") {
    o.data = r.value(a);
    const std::string kind = o.data.substr(0, o.data.find(':'));
    const bool with_dir = kind == "cifar10" || kind == "npy" || kind == "images";
    if (o.error.empty() && o.data != "fashion-mnist" && o.data != "synthetic" &&
        !(with_dir && o.data.size() > kind.size()))
      o.error =
          "--data takes fashion-mnist, cifar10:DIR, npy:DIR, images:DIR or synthetic, got \"" +
          o.data + "\"";
    if (o.error.empty() && with_dir && o.data.size() == kind.size() + 1)
      o.error = "--data " + o.data + "DIR needs the folder: " +
                (kind == "cifar10" ? "of the CIFAR-10 binary files"
                 : kind == "npy"   ? "holding x.npy and y.npy"
                                   : "of class sub-folders of PNG/JPEG images");
  } else if (a == "-a" || a == "--algorithm") {
    o.algorithm = r.value(a);
    if (o.error.empty() && o.algorithm != "darts" && o.algorithm != "darts2" &&
        o.algorithm != "pnas" && o.algorithm != "random" && o.algorithm != "evolution")
      o.error = "-a takes darts, darts2, pnas, random or evolution, got \"" + o.algorithm + "\"";
  } else if (a == "--statistic") {
    o.statistic = r.value(a);
    if (o.error.empty() && o.statistic != "min" && o.statistic != "median" &&
        o.statistic != "trimmed_mean")
      o.error = "--statistic takes min, median or trimmed_mean, got \"" + o.statistic + "\"";
  } else if (a == "--backend") {
    o.backend = r.value(a);
    try {
      // An unknown name (backend_problem throws, naming the known ones), or a backend
      // whose device is missing (the CUDA plugin without a GPU): refused before any work.
      const std::string problem = o.error.empty() ? nasc::backend_problem(o.backend) : "";
      if (!problem.empty()) o.error = "--backend " + o.backend + ": " + problem;
    } catch (const nasc::Error& e) {
      o.error = e.what();
    }
  } else {
    return false;
  }
  return true;
}

// The other flags. False when `a` is no flag nasc knows.
bool parse_flag(ArgReader& r, const std::string& a, Given& given) {
  Options& o = r.o;
  if (parse_number_flag(r, a, given) || parse_name_flag(r, a)) return true;
  if (a == "--json") {
    o.json = true;
  } else if (a == "--no-locations") {
    o.no_locations = true;
  } else if (a == "-o" || a == "--output") {
    o.output = r.value(a);
  } else if (a == "--arch") {
    o.arch = r.value(a);
  } else if (a == "--init") {
    o.init = r.value(a);
  } else if (a == "--weights") {
    o.weights = r.value(a);
  } else if (a == "--random-weights") {
    o.random_weights = true;
  } else if (a == "--keep-batchnorm") {
    o.keep_batchnorm = true;
  } else if (a == "--edge-normalization") {
    o.edge_normalization = true;
  } else if (a == "--stage") {
    o.stage = r.value(a);
    given.stage = true;
  } else if (a == "--train") {
    o.train = true;
  } else if (a == "--dump-after" || a == "--passes") {
    std::string v = r.value(a);
    given.passes = given.passes || a == "--passes";
    if (o.error.empty()) split_list(a, v, a == "--passes" ? o.passes : o.dump_after, o.error);
  } else if (a == "-c" || a == "--config") {
    o.config = r.value(a);
  } else if (a == "--all-candidates") {
    o.all_candidates = true;
  } else if (a == "--measure") {
    o.measure = true;
  } else if (a == "--profile-missing") {
    o.profile_missing = true;
  } else if (a == "--lut") {
    o.lut = r.value(a);
  } else if (a == "--resume") {
    o.resume = true;
  } else if (a == "--retrain") {
    o.retrain = true;
  } else if (a == "--sync-bn") {
    o.sync_bn = true;
  } else if (a == "--network") {
    o.network = r.value(a);
  } else if (a == "-I") {
    o.include_paths.push_back(r.value(a));
  } else if (a.rfind("-I", 0) == 0 && a.size() > 2) {
    o.include_paths.push_back(a.substr(2));
  } else if (a == "--set") {
    std::string kv = r.value(a);
    size_t eq = kv.find('=');
    if (o.error.empty() && (eq == std::string::npos || eq == 0))
      o.error = "--set needs NAME=VALUE, got \"" + kv + "\"";
    else if (o.error.empty())
      o.overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  } else {
    return false;
  }
  return true;
}

}  // namespace

namespace {

// `nasc help [COMMAND]`, `nasc [COMMAND] --help`: the help of COMMAND, or the overview.
Options help_request(const std::string& topic) {
  Options o;
  o.command = "help";
  o.help_topic = topic;
  const std::vector<std::string> commands = command_names();
  if (!topic.empty() && std::find(commands.begin(), commands.end(), topic) == commands.end())
    o.error = "no help on `" + topic + "`" + nasc::did_you_mean(topic, commands) +
              " (commands: " + joined(commands) + ")";
  return o;
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  const std::vector<std::string> commands = command_names();
  std::vector<std::string> args(argv + 1, argv + argc);
  Given given;
  ArgReader r{args, 0, o};
  for (; r.i < args.size() && o.error.empty(); ++r.i) {
    const std::string& a = args[r.i];
    if (a == "-h" || a == "--help") return help_request(o.command);
    if (a == "help" && o.command.empty())
      return help_request(r.i + 1 < args.size() ? args[r.i + 1] : "");
    if (a == "--version" || a == "-V") {
      o.command = "version";
      return o;
    }
    if (a == "--print-pipeline" || a == "--man") {
      o.command = a.substr(2);
      return o;
    }
    if (a == "--completion") {
      std::string shell = r.value(a);
      if (o.error.empty() && shell != "bash")
        o.error = "--completion takes bash, got \"" + shell + "\"";
      o.command = "completion";
      return o;
    }
    if (parse_flag(r, a, given)) continue;
    if (a.size() > 1 && a[0] == '-') {
      // Short flags are one letter: any other letter would be "close" to all of them.
      o.error = "unknown option " + a +
                (a.rfind("--", 0) == 0 ? nasc::did_you_mean(a, documented_long_flags()) : "");
    } else if (o.command.empty()) {
      if (std::find(commands.begin(), commands.end(), a) == commands.end()) {
        o.error = "unknown command `" + a + "`" + nasc::did_you_mean(a, commands) +
                  " (commands: " + joined(commands) + ")";
      }
      o.command = a;
    } else if (o.file.empty()) {
      o.file = a;
    } else {
      o.error = "unexpected argument `" + a + "`";
    }
  }
  check_combinations(o, given.stage, given.batch, given.passes);
  return o;
}

}  // namespace nas::cli
