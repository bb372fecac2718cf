#include "tools/nasc/options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "nasc/nasc.h"

namespace nas::cli {

std::string usage() {
  return R"(nasc — compiler for hardware-aware neural architecture search spaces

Usage:
  nasc check FILE [--json] [--arch A.json]   parse, elaborate and shape-check; print a summary
  nasc graph FILE [-o OUT.svg|.png|.pdf|.dot] [--arch A.json]
                                             draw the graph (DOT; SVG/PNG via graphviz)
  nasc ir    FILE [--stage STAGE] [--train] [--arch A.json] [--batch N]
             [--partial-channels K] [--edge-normalization]
             [--dump-after STAGE[,STAGE]]    dump the result of a pipeline stage (STAGE:
                                             load, elaborate, shapes, dce,
                                             partial-channels, zero-prune,
                                             cse, autodiff, remat, fusion, memory-plan,
                                             lower; also ast, ir, pruned, grad, plan,
                                             train-plan, fused; llvm, asm: the JIT's
                                             module of the lowered plan)
  nasc opt   FILE.ir [--passes PASS[,PASS]] [--arch A.json] [--batch N]
             [--partial-channels K] [--edge-normalization]
             [--dump-after PASS[,PASS]]      run passes on textual IR in the order given
                                             (shapes, dce, partial-channels, zero-prune,
                                             cse, autodiff, remat, fusion, memory-plan,
                                             lower); print the result
  nasc --print-pipeline                      list the pipeline's stages in order
  nasc train FILE [-o DIR] [--arch A.json]
             [--data fashion-mnist|cifar10:DIR|npy:DIR|images:DIR|synthetic]
             [-c CONFIG.json] [--epochs N] [--threads N] [--init W] [--resume]
                                             train the network (or the architecture --arch
                                             selects) on the CPU; DIR gets config.json,
                                             log.txt, metrics.jsonl, weights, checkpoint
                                             (safetensors files)
  nasc search FILE [-o DIR] [-a darts|darts2|pnas|random|evolution] [--data ...] [-c CFG.json]
             [--epochs N] [--threads N] [--lut LUT.json] [--rerank K] [--retrain]
             [--resume]                      search the space; DIR gets arch.json,
                                             arch.svg, config.json, log.txt, metrics.jsonl,
                                             TensorBoard events, report.html, result.json,
                                             checkpoint (--retrain: and DIR/retrain/)
  nasc profile FILE -o LUT.json [--arch A.json|--all-candidates] [--batch N]
             [--threads N] [--warmup N] [--repetitions N] [--trim F] [--statistic S]
             [--calibrate N]                 measure every op signature of the space (or of
                                             one architecture) into a latency table, then
                                             time N whole networks to calibrate it;
                                             resumable: rerun skips what LUT.json has
  nasc estimate FILE [--arch A.json] [--lut LUT.json] [--profile-missing] [--measure]
             [--batch N] [--threads N] [--json]
                                             params, MACs, activation memory, estimated
                                             latency (and with --measure, measured latency
                                             and the estimate's error); docs/estimate.md
  nasc export FILE -o NET.onnx [--arch A.json] (--weights W | --random-weights)
             [--batch N] [--keep-batchnorm]  write the fixed network with its weights as
                                             an ONNX model for inference (opset 17; any
                                             batch size unless --batch N); docs/onnx.md
  nasc --help | --version

Options:
  --set NAME=VALUE   override a network parameter (repeatable), e.g. --set C=8
  --network NAME     pick the network when FILE declares several
  --arch FILE        architecture JSON: {"choices": {"key": "candidate", ...}}
                     (ir --stage zero-prune and later; opt: for the zero-prune pass)
  --partial-channels K
                     PC-DARTS (ir --stage partial-channels and later; opt: for the
                     partial-channels pass): the candidates of each choice that keeps its
                     channel count see 1/K of them, the rest bypass (docs/search.md)
  --edge-normalization
                     PC-DARTS' edge normalisation (same stages): each DARTS node weighs
                     its incoming edges by softmax(beta)
  --train            ir: the training plan's stages (autodiff adds the loss and the
                     backward graph); without it the forward plan's
  --dump-after STAGE also print the result of STAGE to stderr as the run passes it
                     (ir, opt; repeatable or comma-separated)
  --passes LIST      opt: the passes to run, comma-separated, in that order
  -I DIR             add DIR to the import search path (before the stdlib)
  -o FILE            output file (graph, export); graph: `-` or none writes DOT to stdout. train,
                     search: the run folder; without -o a new runs/<FILE's stem>-<n>
                     (the first free n), printed first
  --batch N          batch size of the memory plan (ir --stage memory-plan|lower|plan,
                     opt; default 1), of the latency measurements (profile; default 1),
                     of the training memory estimate (estimate; default 64) or of the
                     ONNX model (export; default: symbolic, any batch size)
  -c FILE            train config JSON (docs/train.md); with --resume, DIR/config.json
  --data SET         training data: fashion-mnist (default), cifar10:DIR, synthetic,
                     npy:DIR (DIR/x.npy images NCHW or NHWC, uint8 or float32, DIR/y.npy
                     labels; optional x_test.npy, y_test.npy), images:DIR (one sub-folder
                     of PNG/JPEG files per class; optional DIR/train/ + DIR/test/)
  --epochs N         override the config's epochs
  --threads N        CPU threads (0 = all cores)
  --backend NAME     the backend that runs the network (train, search, profile,
                     estimate; default cpu); `nasc --version` lists those built in
  --init W           train: start from the weights in W (safetensors or nasc's older
                     format): a run's weights or checkpoint of the same network, or a
                     search's checkpoint of its space (the --arch candidates' weights)
  --weights W        export: the weights to write (a `nasc train` run's DIR/weights)
  --random-weights   export: the network's initial weights instead (untrained)
  --keep-batchnorm   export: write every BatchNormalization instead of folding batch
                     norm into the convolution before it
  --resume           continue the run in DIR from its last checkpoint
  -a ALGORITHM       search algorithm: darts (first order, the default), darts2
                     (unrolled second order), pnas (ProxylessNAS, REINFORCE), random or
                     evolution (SPOS: single-path supernet, then evolutionary search)
  --rerank K         search: train its K best candidates briefly from scratch (config
                     rerank_epochs, default 1) and keep the best on the validation split
  --retrain          search: then train the found architecture as the config's
                     "retrain" section says (e.g. the larger evaluation network) into
                     DIR/retrain, and report its test accuracy, read once at the end
  --all-candidates   profile every candidate of the space (the default without --arch)
  --lut FILE         latency table from `nasc profile` (estimate; search: the
                     regularizer's table, and the genotype's latency per epoch)
  --profile-missing  measure what the table lacks (written back into --lut), or, without
                     --lut, profile the network now
  --measure          also run the whole network and time it (estimate)
  --calibrate N      profile: time N random architectures whole (default 5; with --arch,
                     that one) and scale every estimate by the median measured/estimated
                     ratio; 0: no calibration
  --warmup N, --repetitions N, --trim F, --statistic min|median|trimmed_mean
                     measurement settings (profile; estimate --measure without --lut)
  --json             machine-readable output (check, estimate)
  --no-locations     omit @file:line:col from IR dumps (ir, opt)

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
  std::vector<std::string> ir_names = stage_names();
  for (const StageAlias& alias : kStageAliases) ir_names.push_back(alias.name);
  ir_names.insert(ir_names.end(), {"llvm", "asm"});  // the JIT's module of the lowered plan
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
  only_for(!o.init.empty(), "--init", o.command == "train", "`nasc train`");
  only_for(o.calibrate >= 0, "--calibrate", profile, "`nasc profile`");
  only_for(!o.backend.empty(), "--backend", train || profile || estimate,
           "`nasc train`, `nasc search`, `nasc profile` and `nasc estimate`");
  if (o.error.empty() && train && o.output.empty() && o.resume)
    o.error = "--resume needs -o DIR, the run folder to continue";
  const bool prunes = std::find(o.passes.begin(), o.passes.end(), "zero-prune") != o.passes.end();
  only_for(!o.arch.empty(), "--arch", ir ? stop_index >= stage_index("zero-prune") : !opt || prunes,
           "`nasc check`, `nasc graph`, `nasc export`, `nasc ir --stage zero-prune` and later "
           "stages, and `nasc opt --passes ...,zero-prune,...`");
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
// --trim.
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
      if (o.error.empty()) nasc::check_backend(o.backend);
    } catch (const nasc::Error& e) {  // an unknown name: the message names the known ones
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

Options parse_options(int argc, char** argv) {
  Options o;
  static const std::vector<std::string> commands = {
      "check", "graph", "ir", "opt", "train", "search", "profile", "estimate", "export"};
  std::vector<std::string> args(argv + 1, argv + argc);
  Given given;
  ArgReader r{args, 0, o};
  for (; r.i < args.size() && o.error.empty(); ++r.i) {
    const std::string& a = args[r.i];
    if (a == "-h" || a == "--help" || a == "help") {
      o.command = "help";
      return o;
    }
    if (a == "--version" || a == "-V") {
      o.command = "version";
      return o;
    }
    if (a == "--print-pipeline") {
      o.command = "print-pipeline";
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
                  " (commands: check, graph, ir, opt, train, search, profile, estimate, export)";
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
