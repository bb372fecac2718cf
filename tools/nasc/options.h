// Command-line parsing for nasc: one Options struct for every subcommand, filled from
// argv with located, specific errors ("--set needs NAME=VALUE").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nas::cli {

struct Options {
  std::string command;  // check, graph, ir, train, help, version
  std::string file;
  std::string output;                                          // -o
  std::string arch;                                            // --arch
  std::string stage = "ir";                                    // --stage
  std::string network;                                         // --network
  std::vector<std::string> include_paths;                      // -I
  std::vector<std::pair<std::string, std::string>> overrides;  // --set
  int64_t batch = 1;                                           // --batch (ir --stage plan)
  std::string config;                                          // -c (train)
  std::string data;                                            // --data (train)
  int64_t epochs = 0;                                          // --epochs (train); 0 = config
  int64_t threads = -1;                                        // --threads (train); -1 = config
  bool resume = false;                                         // --resume (train, search)
  std::string algorithm;                                       // -a (search)
  bool json = false;
  bool no_locations = false;
  std::string error;  // set when argv is malformed
};

Options parse_options(int argc, char** argv);
std::string usage();

}  // namespace nas::cli
