// Command-line parsing for nasc: one Options struct for every subcommand, filled from
// argv with located, specific errors ("--set needs NAME=VALUE").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nasc/space.h"

namespace nas::cli {

struct Options {
  // check, graph, ir, opt, train, search, profile, estimate, export; or help, version,
  // print-pipeline, man, completion
  std::string command;
  std::string help_topic;  // help: the command whose help to print ("" = the overview)
  std::string file;
  std::string output;                      // -o
  std::string arch;                        // --arch
  std::string init;                        // --init (train)
  std::string weights;                     // --weights (export)
  bool random_weights = false;             // --random-weights (export)
  bool keep_batchnorm = false;             // --keep-batchnorm (export)
  int64_t partial_channels = 1;            // --partial-channels K (ir, opt)
  bool edge_normalization = false;         // --edge-normalization (ir, opt)
  std::string stage = "ir";                // --stage
  bool train = false;                      // --train (ir: the training plan's stages)
  std::vector<std::string> dump_after;     // --dump-after (ir, opt): stage names, in order
  std::vector<std::string> passes;         // --passes (opt): stage names, in order
  std::string network;                     // --network
  std::vector<std::string> include_paths;  // -I
  std::vector<std::pair<std::string, std::string>> overrides;  // --set
  int64_t batch = 1;                                           // --batch (ir --stage plan, export)
  std::string config;                                          // -c (train)
  std::string data;                                            // --data (train)
  int64_t epochs = 0;                                          // --epochs (train); 0 = config
  int64_t threads = -1;                                        // --threads (train); -1 = config
  bool resume = false;                                         // --resume (train, search)
  std::string backend;       // --backend (train, search, profile, estimate); empty = the default
  std::string algorithm;     // -a (search)
  int64_t rerank = -1;       // --rerank K (search); -1 = the config's
  bool retrain = false;      // --retrain (search)
  bool sync_bn = false;      // --sync-bn (train, search under mpirun)
  double comm_timeout = -1;  // --comm-timeout SECONDS (train, search); -1 = the default
  bool json = false;
  bool no_locations = false;
  // profile / estimate (docs/estimate.md)
  bool batch_given = false;      // --batch: profile's latency batch, estimate's training batch
  bool all_candidates = false;   // --all-candidates (profile)
  std::string lut;               // --lut (estimate)
  bool measure = false;          // --measure (estimate)
  bool profile_missing = false;  // --profile-missing (estimate)
  int64_t warmup = -1, repetitions = -1;  // --warmup, --repetitions; -1 = default
  int64_t calibrate = -1;                 // --calibrate N (profile); -1 = the default
  int64_t rounds = -1;                    // --rounds N (profile); -1 = the default
  double trim = -1;                       // --trim; -1 = default
  std::string statistic;                  // --statistic median|trimmed_mean
  std::string error;                      // set when argv is malformed
};

Options parse_options(int argc, char** argv);

// What `nasc ir --stage NAME` dumps: the pipeline stage the run stops after, and whether
// the back half makes the training plan (autodiff's loss and backward). NAME is a stage
// of the pipeline or one of the older names (ast, ir, pruned, grad, plan, train-plan);
// parse_options has checked it.
struct IrStage {
  std::string stage;  // a name of nasc::pipeline_stages()
  bool training = false;
};
IrStage ir_stage(const Options& o);

// Every name `nasc ir --stage` takes: the pipeline's stages, the older names, llvm, asm.
std::vector<std::string> ir_stage_names();

// The compile options the flags give (-I, --network, --set).
nasc::CompileOptions compile_options(const Options& o);

}  // namespace nas::cli
