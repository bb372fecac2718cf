#include "tools/nasc/help.h"

#include <algorithm>
#include <sstream>

#include "nasc/nasc.h"
#include "tools/nasc/options.h"

namespace nas::cli {

namespace {

// Flags several commands share, with their text.
FlagHelp arch_flag(const std::string& text) {
  return {{"--arch"}, "A.json", text};
}
FlagHelp threads_flag() {
  return {
      {"--threads"}, "N", "CPU threads for the kernels (0 = all cores; overrides the config's)"};
}
FlagHelp sync_bn_flag() {
  return {{"--sync-bn"},
          "",
          "under mpirun: batch-norm statistics over the whole batch, not each rank's share "
          "(docs/scaling.md)"};
}
FlagHelp comm_timeout_flag() {
  return {{"--comm-timeout"},
          "SECONDS",
          "under mpirun: stop with an error when the other ranks do not answer for this "
          "long (default 300)"};
}
FlagHelp backend_flag() {
  return {{"--backend"},
          "NAME",
          "the backend that runs the network: jit (the default: fused regions and the plan "
          "compiled by LLVM) or cpu, also named interp (the interpreter, the reference); "
          "`nasc --version` lists them"};
}
FlagHelp json_flag() {
  return {{"--json"}, "", "print the result as JSON"};
}
FlagHelp data_flag() {
  return {{"--data"},
          "SET",
          "the data set: fashion-mnist (the default), cifar10:DIR (the CIFAR-10 binary files), "
          "npy:DIR (DIR/x.npy images, uint8 or float32, NCHW or NHWC, DIR/y.npy labels; "
          "optional x_test.npy, y_test.npy), images:DIR (one sub-folder of PNG/JPEG images per "
          "class; optional DIR/train/ and DIR/test/) or synthetic"};
}
FlagHelp config_flag() {
  return {{"-c", "--config"},
          "CONFIG.json",
          "the run's config (docs/train.md, docs/search.md); with --resume, DIR/config.json"};
}
FlagHelp epochs_flag() {
  return {{"--epochs"}, "N", "override the config's epochs"};
}
FlagHelp resume_flag() {
  return {{"--resume"}, "", "continue the run in -o DIR from its last checkpoint"};
}
FlagHelp run_dir_flag() {
  return {{"-o", "--output"},
          "DIR",
          "the run folder; without -o a new runs/<FILE's stem>-<n> (the first free n), "
          "printed first"};
}
std::vector<FlagHelp> measurement_flags(const std::string& when) {
  return {
      {{"--warmup"}, "N", "untimed runs before the timed ones (default 10)" + when},
      {{"--repetitions"}, "N", "timed runs per measurement (default 50)" + when},
      {{"--trim"}, "F", "the fraction trimmed off each end for trimmed_mean (default 0.1)" + when},
      {{"--statistic"},
       "min|median|trimmed_mean",
       "how the timed runs make one figure (default min)" + when},
  };
}
std::vector<FlagHelp> pass_option_flags(const std::string& where) {
  return {
      {{"--partial-channels"},
       "K",
       "PC-DARTS (" + where +
           "): the candidates of each choice that keeps its channel count see 1/K of them, "
           "the rest bypass"},
      {{"--edge-normalization"},
       "",
       "PC-DARTS' edge normalisation (" + where +
           "): each DARTS node weighs its incoming edges by softmax(beta)"},
      {{"--dump-after"},
       "STAGE[,STAGE]",
       "also print the result of STAGE on standard error as the run passes it (repeatable)"},
      {{"--no-locations"}, "", "omit @file:line:col from the IR"},
  };
}

std::vector<CommandHelp> make_command_help() {
  std::vector<CommandHelp> c;
  c.push_back(
      {"check",
       "FILE.nas",
       "compile and print a summary: choices, search-space size, params, MACs",
       "Parses, elaborates and shape-checks FILE and prints its inputs, output shape, "
       "choices, the number of architectures, and the params and MACs of the supernet "
       "and of its largest and smallest architectures. Errors are located at "
       "FILE:LINE:COL.",
       {json_flag(), arch_flag("also print the counts of the architecture A.json fixes")},
       true,
       {{"nasc check examples/darts.nas", "choices, search-space size, params, MACs"},
        {"nasc check examples/darts.nas --json", "the same, machine-readable"},
        {"nasc check examples/darts.nas --set C=8 --set layers=5", "override network parameters"},
        {"nasc check examples/zero_join.nas --arch examples/zero_join_zero.json",
         "one architecture's counts"}}});
  c.push_back({"graph",
               "FILE.nas",
               "draw the supernet (or one architecture) with Graphviz",
               "Draws the supernet, one dashed cluster per choice with a cluster per candidate, "
               "or with --arch the fixed network after zero-pruning. The extension of -o picks "
               "the format; without Graphviz the DOT text is written instead, with a warning.",
               {{{"-o", "--output"},
                 "OUT",
                 "OUT.svg, .png or .pdf (drawn by Graphviz's dot), .dot or .gv (the DOT text); "
                 "none or - writes DOT to standard output"},
                arch_flag("draw the fixed network A.json selects")},
               true,
               {{"nasc graph examples/tiny.nas -o tiny.svg", "candidates grouped per choice"},
                {"nasc graph examples/zero_join.nas --arch examples/zero_join_zero.json -o "
                 "pruned.svg",
                 "only what the architecture keeps"}}});
  std::vector<FlagHelp> ir_flags = {
      {{"--stage"},
       "STAGE",
       "the stage to dump (default ir): a pipeline stage (nasc --print-pipeline: load, "
       "elaborate, shapes, dce, partial-channels, zero-prune, cse, autodiff, remat, fusion, "
       "memory-plan, lower), an older name (ast, ir, pruned, grad, plan, train-plan, fused), "
       "or llvm or asm (the JIT's module of the lowered plan)"},
      {{"--train"}, "", "the training plan's stages: autodiff adds the loss and backward graph"},
      arch_flag("the architecture (zero-prune and later stages; required by zero-prune)"),
      {{"--batch"}, "N", "the batch size of the memory plan (memory-plan and later; default 1)"},
  };
  for (FlagHelp& f : pass_option_flags("partial-channels and later")) ir_flags.push_back(f);
  c.push_back({"ir",
               "FILE.nas",
               "dump the result of any compiler stage",
               "Runs the compiler pipeline up to STAGE and prints its result: the AST, the IR "
               "after a pass, the memory plan, the lowered execution plan, or the JIT's LLVM "
               "module or assembly.",
               ir_flags,
               true,
               {{"nasc ir examples/zero_join.nas --stage pruned --arch "
                 "examples/zero_join_zero.json",
                 "the fixed network after zero-pruning"},
                {"nasc ir examples/tiny.nas --stage grad --arch examples/tiny_conv.json",
                 "the backward graph"},
                {"nasc ir examples/darts.nas --stage train-plan --batch 64",
                 "training memory, before running"},
                {"nasc ir examples/tiny.nas --stage lower --train --batch 8",
                 "the plan the executor runs"}}});
  std::vector<FlagHelp> opt_flags = {
      {{"--passes"},
       "PASS[,PASS]",
       "the passes to run, in that order: shapes, dce, partial-channels, zero-prune, cse, "
       "autodiff, remat, fusion, memory-plan, lower (lower right after memory-plan)"},
      arch_flag("the selection of the zero-prune pass"),
      {{"--batch"}, "N", "the batch size of the memory-plan pass (default 1)"},
  };
  for (FlagHelp& f : pass_option_flags("the partial-channels pass")) opt_flags.push_back(f);
  c.push_back({"opt",
               "FILE.ir",
               "run passes on textual IR and print the result",
               "Reads textual IR (the form nasc ir prints), runs the passes --passes names in "
               "that order and prints the result of the last; without --passes it prints the "
               "IR it read. The pass tests (tests/filecheck) are such runs.",
               opt_flags,
               false,
               {{"nasc opt zero_join.ir --passes zero-prune,cse --arch "
                 "examples/zero_join_zero.json",
                 "prune, then eliminate common subexpressions"},
                {"nasc opt net.ir --passes autodiff,remat,memory-plan --batch 64",
                 "the training plan's memory"}}});
  c.push_back(
      {"train",
       "FILE.nas",
       "train a network (or one architecture of a space) and write a run folder",
       "Trains the network. The run folder gets config.json, log.txt, metrics.jsonl, a "
       "checkpoint after every epoch and the final weights (safetensors files).",
       {run_dir_flag(),
        arch_flag("the architecture to train (required for a space with "
                  "choices)"),
        data_flag(),
        config_flag(),
        epochs_flag(),
        threads_flag(),
        backend_flag(),
        {{"--init"},
         "W",
         "start from the weights in W, matched by tensor name: a run's weights or "
         "checkpoint of the same network, or a search's checkpoint of its space"},
        sync_bn_flag(),
        comm_timeout_flag(),
        resume_flag()},
       true,
       {{"nasc train examples/fmnist_cnn.nas -o runs/cnn",
         "Fashion-MNIST, ~92.6% in 10 "
         "epochs"},
        {"nasc train examples/fmnist_cnn.nas --data npy:DIR -o runs/mine",
         "your data: DIR/x.npy, DIR/y.npy"},
        {"nasc train examples/fmnist_cnn.nas --init runs/cnn/weights -o runs/ft", "fine-tune"},
        {"nasc train examples/fmnist_cnn.nas -o runs/cnn --resume", "continue an interrupted run"},
        {"mpirun -n 2 nasc train examples/fmnist_cnn.nas -o runs/cnn2",
         "two processes, each half of every batch"}}});
  c.push_back(
      {"search",
       "FILE.nas",
       "search the space's architectures and write a run folder with arch.json",
       "Searches with DARTS (first or second order), ProxylessNAS, random search or "
       "SPOS evolution, optionally under a hardware budget (params, MACs, or latency "
       "from a table). The run folder gets arch.json, arch.svg, config.json, log.txt, "
       "metrics.jsonl, TensorBoard events, report.html, result.json and a checkpoint; "
       "with --retrain also retrain/.",
       {run_dir_flag(),
        {{"-a", "--algorithm"},
         "darts|darts2|pnas|random|evolution",
         "the search algorithm (default darts, or the config's)"},
        data_flag(),
        config_flag(),
        epochs_flag(),
        threads_flag(),
        backend_flag(),
        {{"--lut"},
         "LUT.json",
         "a latency table from nasc profile: the latency regularizer's, and the found "
         "architecture's latency per epoch"},
        {{"--rerank"}, "K", "train the K best candidates briefly from scratch and keep the best"},
        {{"--retrain"},
         "",
         "then train the found architecture as the config's retrain section says, into "
         "DIR/retrain, and report its test accuracy"},
        sync_bn_flag(),
        comm_timeout_flag(),
        resume_flag()},
       true,
       {{"nasc search examples/tiny.nas --data synthetic --epochs 1",
         "no -o: a new runs/tiny-<n>/"},
        {"nasc search examples/darts_fmnist.nas -a pnas -c examples/search_fmnist.json "
         "-o runs/pnas",
         "ProxylessNAS on Fashion-MNIST"},
        {"nasc search examples/convnet_fmnist.nas --retrain -c "
         "examples/search_convnet_fmnist.json -o runs/convnet",
         "evolution under a MAC bound, then the found network retrained"},
        {"mpirun -n 2 nasc search examples/darts_fmnist.nas --sync-bn -o runs/darts2p",
         "DARTS over two processes, as one process would run it"}}});
  std::vector<FlagHelp> profile_flags = {
      {{"-o", "--output"}, "LUT.json", "the latency table to write, or to resume (required)"},
      arch_flag("profile only this architecture's ops"),
      {{"--all-candidates"}, "", "profile every candidate (the default without --arch)"},
      {{"--batch"}, "N", "the batch the latencies are measured at (default 1)"},
      threads_flag(),
      backend_flag(),
      {{"--calibrate"},
       "N",
       "time N random architectures whole (default 5; with --arch, that one) and scale every "
       "estimate by the median measured/estimated ratio; 0: no calibration"},
      {{"--rounds"},
       "N",
       "measure the new signatures N times in turn, each keeping its fastest entry (default 3, "
       "1..100): a slow stretch of the machine then skews none of them"}};
  for (FlagHelp& f : measurement_flags("")) profile_flags.push_back(f);
  c.push_back(
      {"profile",
       "FILE.nas",
       "measure every op signature's latency into a table",
       "Times every op signature of the space (or of one architecture) on this machine "
       "and writes a latency table for nasc estimate and nasc search --lut. The table "
       "is saved as it grows: a rerun measures only what it lacks.",
       profile_flags,
       true,
       {{"nasc profile examples/mobilenet.nas -o lut.json", "per-op latency table of this CPU"},
        {"nasc profile examples/convnet_fmnist.nas --set C=16 --threads 1 -o lut.json",
         "one thread, a narrower network"}}});
  std::vector<FlagHelp> estimate_flags = {
      arch_flag("the architecture to estimate (default: the whole supernet)"),
      {{"--lut"}, "LUT.json", "estimate latency from this table"},
      {{"--profile-missing"},
       "",
       "measure what the table lacks (written back into --lut), or without --lut profile now"},
      {{"--measure"}, "", "also run the whole network, time it, and print the estimate's error"},
      {{"--batch"}, "N", "the batch of the training memory estimate (default 64)"},
      threads_flag(),
      backend_flag(),
      json_flag()};
  for (FlagHelp& f : measurement_flags(" (without --lut)")) estimate_flags.push_back(f);
  c.push_back({"estimate",
               "FILE.nas",
               "params, MACs, memory and latency of a network or architecture",
               "Prints the static cost (params, MACs, inference and training activation "
               "memory) and, with a table, the estimated latency; --measure times the network "
               "too.",
               estimate_flags,
               true,
               {{"nasc estimate examples/mobilenet.nas --arch a.json --lut lut.json --measure",
                 "estimated against measured"},
                {"nasc estimate examples/tiny.nas --profile-missing --json", "profile now"}}});
  c.push_back(
      {"export",
       "FILE.nas",
       "write the fixed network with its weights as an ONNX model",
       "Writes the fixed network (FILE's network, or the architecture --arch selects) with "
       "its weights as an ONNX model for inference (opset 17, float32): batch norm on its "
       "running statistics, folded into the convolution before it; dropout and auxiliary "
       "heads left out. Give the network parameters the weights were trained with (--set). "
       "docs/onnx.md shows how to run it in onnxruntime.",
       {{{"-o", "--output"},
         "NET.onnx",
         "the ONNX file to write (required; written whole or not at all)"},
        arch_flag("the architecture to export (required for a space with choices)"),
        {{"--weights"}, "W", "the weights to write: a nasc train run's DIR/weights"},
        {{"--random-weights"}, "", "the network's initial weights instead (untrained)"},
        {{"--batch"}, "N", "a fixed batch size (default: symbolic, any batch)"},
        {{"--keep-batchnorm"},
         "",
         "write each BatchNormalization instead of folding it into the convolution before it"}},
       true,
       {{"nasc export examples/fmnist_cnn.nas --weights runs/cnn/weights -o cnn.onnx",
         "a trained network, for onnxruntime"},
        {"nasc export examples/tiny.nas --arch examples/tiny_conv.json --random-weights -o "
         "tiny.onnx",
         "one architecture of a space, untrained"}}});
  return c;
}

// Lines of at most `width` characters, each starting with `indent` spaces.
std::string wrapped(const std::string& text, size_t indent, size_t width = 88) {
  std::istringstream words(text);
  std::string out, line, word;
  while (words >> word) {
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out += std::string(indent, ' ') + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += std::string(indent, ' ') + line + "\n";
  return out;
}

std::string flag_label(const FlagHelp& f) {
  std::string label;
  for (const std::string& n : f.names) label += (label.empty() ? "" : ", ") + n;
  return f.value.empty() ? label : label + " " + f.value;
}

std::string flag_list(const std::vector<FlagHelp>& flags) {
  std::string out;
  for (const FlagHelp& f : flags) out += "  " + flag_label(f) + "\n" + wrapped(f.text, 6);
  return out;
}

// Roff: a backslash and a hyphen escaped, a line's leading dot or quote made literal.
std::string roff(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '\\')
      out += "\\e";
    else if (ch == '-')
      out += "\\-";
    else
      out += ch;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

std::string roff_flags(const std::vector<FlagHelp>& flags) {
  std::string out;
  for (const FlagHelp& f : flags) {
    std::string label;
    for (const std::string& n : f.names)
      label += (label.empty() ? "" : ", ") + ("\\fB" + roff(n) + "\\fR");
    if (!f.value.empty()) label += " \\fI" + roff(f.value) + "\\fR";
    out += ".TP\n" + label + "\n" + roff(f.text) + "\n";
  }
  return out;
}

const char* kExitStatus =
    "0 success (warnings may have been printed); 1 an error in the input (a .nas file, an "
    "architecture file, a config, a data set, a latency table, weights) or on the command "
    "line, printed with its place (FILE:LINE:COL, the config key, the byte of a data file); 2 "
    "an internal error, a bug in nasc.";

}  // namespace

const std::vector<CommandHelp>& command_help() {
  static const std::vector<CommandHelp> commands = make_command_help();
  return commands;
}

const CommandHelp* find_command_help(const std::string& name) {
  for (const CommandHelp& c : command_help())
    if (c.name == name) return &c;
  return nullptr;
}

const std::vector<FlagHelp>& common_flags() {
  static const std::vector<FlagHelp> flags = {
      {{"--set"},
       "NAME=VALUE",
       "override a network parameter (repeatable), e.g. --set C=8; VALUE is a .nas literal"},
      {{"--network"}, "NAME", "the network to compile when FILE declares several"},
      {{"-I"}, "DIR", "add DIR to the import search path, before the standard library"},
  };
  return flags;
}

std::vector<std::string> command_names() {
  std::vector<std::string> names;
  for (const CommandHelp& c : command_help()) names.push_back(c.name);
  return names;
}

std::vector<std::string> documented_long_flags() {
  std::vector<std::string> flags = {"--help", "--version", "--print-pipeline", "--man",
                                    "--completion"};
  auto add = [&](const std::vector<FlagHelp>& list) {
    for (const FlagHelp& f : list)
      for (const std::string& n : f.names)
        if (n.rfind("--", 0) == 0 && std::find(flags.begin(), flags.end(), n) == flags.end())
          flags.push_back(n);
  };
  add(common_flags());
  for (const CommandHelp& c : command_help()) add(c.flags);
  return flags;
}

std::string overview_help() {
  std::string out =
      "nasc — compiler for hardware-aware neural architecture search spaces\n\n"
      "Usage: nasc COMMAND FILE [options]\n\nCommands:\n";
  for (const CommandHelp& c : command_help()) {
    std::string head = "  " + c.name + " " + c.operands;
    head.resize(std::max<size_t>(head.size() + 1, 22), ' ');
    out += head + c.summary + "\n";
  }
  out += "\nCommon options (every command that reads a .nas FILE):\n" + flag_list(common_flags()) +
         "\nOther invocations:\n"
         "  nasc COMMAND --help   a command's options and examples (also: nasc help COMMAND)\n"
         "  nasc --print-pipeline the compiler's stages in order\n"
         "  nasc --version        the version and the backends built in\n"
         "  nasc --man            this help as a man page (installed as nasc.1)\n"
         "  nasc --completion bash\n"
         "                        bash completion: source <(nasc --completion bash)\n\n"
         "Examples:\n";
  for (const char* name : {"check", "train", "search"})
    out += "  " + find_command_help(name)->examples.front().command_line + "\n";
  out += "\nExit status:\n" + wrapped(kExitStatus, 2) +
         "\nDocs: docs/cli.md (this tool), docs/language.md (the language), docs/train.md, "
         "docs/search.md.\n";
  return out;
}

std::string command_usage(const CommandHelp& cmd) {
  std::string out = "Usage: nasc " + cmd.name + " " + cmd.operands + " [options]\n\n" +
                    wrapped(cmd.description, 0) + "\nOptions:\n" + flag_list(cmd.flags);
  if (cmd.compiles_nas) out += "\nCommon options:\n" + flag_list(common_flags());
  out += "\nExamples:\n";
  for (const ExampleHelp& e : cmd.examples)
    out += "  " + e.command_line + "\n" + wrapped(e.comment, 6);
  out +=
      "\nExit status: 0 success, 1 an error in the input or the command line, 2 an "
      "internal error.\nMore: docs/cli.md#" +
      cmd.name + "\n";
  return out;
}

std::string man_page() {
  std::string out = ".TH NASC 1 \"\" \"nasc " + roff(nasc::version()) +
                    "\" \"User Commands\"\n"
                    ".SH NAME\nnasc \\- compiler for hardware\\-aware neural architecture "
                    "search spaces\n.SH SYNOPSIS\n";
  for (const CommandHelp& c : command_help())
    out += ".B nasc " + roff(c.name) + "\n.I " + roff(c.operands) + "\n[options]\n.br\n";
  out +=
      ".SH DESCRIPTION\nnasc compiles a search space written in a .nas file (modules, mixed "
      "ops, joins and static graphs) to a typed graph IR with static shapes, and checks, "
      "draws, trains, searches, profiles and estimates it.\n.SH COMMANDS\n";
  for (const CommandHelp& c : command_help()) {
    out += ".SS \"nasc " + roff(c.name) + " " + roff(c.operands) + "\"\n" + roff(c.description) +
           "\n" + roff_flags(c.flags);
  }
  out += ".SH COMMON OPTIONS\nEvery command that reads a .nas file takes these.\n" +
         roff_flags(common_flags()) +
         ".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nthe usage; after a command, that command's\n"
         ".TP\n\\fB\\-V\\fR, \\fB\\-\\-version\\fR\nthe version and the backends built in\n"
         ".TP\n\\fB\\-\\-print\\-pipeline\\fR\nthe compiler's stages in order\n"
         ".TP\n\\fB\\-\\-completion bash\\fR\nprint the bash completion script\n"
         ".SH EXAMPLES\n";
  for (const CommandHelp& c : command_help())
    for (const ExampleHelp& e : c.examples)
      out += ".TP\n.B " + roff(e.command_line) + "\n" + roff(e.comment) + "\n";
  out += ".SH EXIT STATUS\n" + roff(kExitStatus) +
         "\n.SH ENVIRONMENT\n.TP\n.B NASC_STDLIB\na folder searched for imports after the "
         "\\-I folders and before the installed standard library\n"
         ".SH SEE ALSO\n.BR dot (1);\ndocs/cli.md, docs/language.md, docs/train.md, "
         "docs/search.md and docs/estimate.md in nasc's source tree\n";
  return out;
}

std::string bash_completion() {
  std::string out =
      "# bash completion for nasc, printed by `nasc --completion bash`; generated from nasc's\n"
      "# help table. Load it with: source <(nasc --completion bash)\n"
      "_nasc() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=\"\" i\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac\n"
      "  done\n"
      "  case $prev in\n"
      "    --stage) COMPREPLY=($(compgen -W \"";
  for (const std::string& name : ir_stage_names()) out += name + " ";
  out +=
      "\" -- \"$cur\")); return ;;\n"
      "    --passes|--dump-after) return ;;\n"
      "    -a|--algorithm) COMPREPLY=($(compgen -W \"darts darts2 pnas random evolution\" -- "
      "\"$cur\")); return ;;\n"
      "    --statistic) COMPREPLY=($(compgen -W \"min median trimmed_mean\" -- \"$cur\")); "
      "return ;;\n"
      "    --backend) COMPREPLY=($(compgen -W \"";
  for (const nasc::BackendDescription& b : nasc::backends()) out += b.name + " ";
  out +=
      "\" -- \"$cur\")); return ;;\n"
      "    --data) COMPREPLY=($(compgen -W \"fashion-mnist synthetic cifar10: npy: images:\" -- "
      "\"$cur\")); compopt -o nospace 2>/dev/null; return ;;\n"
      "    -I|--set|--network|--batch|--epochs|--threads|--rerank|--warmup|--repetitions|"
      "--trim|--calibrate|--rounds|--partial-channels)\n"
      "      [ \"$prev\" = -I ] && COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n"
      "    -o|--output|--arch|-c|--config|--lut|--init|--weights) COMPREPLY=($(compgen -f -- "
      "\"$cur\")); "
      "return ;;\n"
      "    --completion) COMPREPLY=($(compgen -W bash -- \"$cur\")); return ;;\n"
      "  esac\n"
      "  if [ -z \"$cmd\" ]; then\n"
      "    COMPREPLY=($(compgen -W \"";
  for (const std::string& n : command_names()) out += n + " ";
  out +=
      "help --help --version --print-pipeline\" -- \"$cur\")); return\n"
      "  fi\n"
      "  local flags=\"--help\"\n"
      "  case $cmd in\n";
  for (const CommandHelp& c : command_help()) {
    out += "    " + c.name + ") flags=\"";
    auto add = [&](const std::vector<FlagHelp>& list) {
      for (const FlagHelp& f : list)
        for (const std::string& n : f.names) out += n + " ";
    };
    add(c.flags);
    if (c.compiles_nas) add(common_flags());
    out += "--help\" ;;\n";
  }
  out += "    help) COMPREPLY=($(compgen -W \"";
  for (const std::string& n : command_names()) out += n + " ";
  out +=
      "\" -- \"$cur\")); return ;;\n"
      "  esac\n"
      "  if [[ $cur == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
      "  elif [ \"$cmd\" = opt ]; then\n"
      "    COMPREPLY=($(compgen -f -X '!*.ir' -- \"$cur\") $(compgen -d -- \"$cur\"))\n"
      "  else\n"
      "    COMPREPLY=($(compgen -f -X '!*.nas' -- \"$cur\") $(compgen -d -- \"$cur\"))\n"
      "  fi\n"
      "}\n"
      "complete -F _nasc nasc\n";
  return out;
}

}  // namespace nas::cli
