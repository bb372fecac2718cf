// nasc's help text, in one table: every command with its operands, flags and examples.
// `nasc --help`, `nasc COMMAND --help`, the man page (`nasc --man`, built into nasc.1)
// and the bash completion (`nasc --completion bash`) are all printed from it, and the
// did-you-mean of a mistyped flag draws its names from it, so none can drift from another.
#pragma once

#include <string>
#include <vector>

namespace nas::cli {

struct FlagHelp {
  std::vector<std::string> names;  // {"-o", "--output"}
  std::string value;               // the value's placeholder ("DIR"); "" for a switch
  std::string text;                // what it does for this command
};

struct ExampleHelp {
  std::string command_line;  // starts with "nasc "
  std::string comment;
};

struct CommandHelp {
  std::string name;      // "search"
  std::string operands;  // "FILE.nas"
  std::string summary;   // one line, for the overview
  std::string description;
  std::vector<FlagHelp> flags;  // the flags this command takes, besides the common ones
  bool compiles_nas = true;     // takes the common --set, --network and -I
  std::vector<ExampleHelp> examples;
};

const std::vector<CommandHelp>& command_help();
const CommandHelp* find_command_help(const std::string& name);  // null when none
// --set, --network and -I: every command that compiles a .nas file takes them.
const std::vector<FlagHelp>& common_flags();
std::vector<std::string> command_names();
// Every long flag of every command, for did-you-mean.
std::vector<std::string> documented_long_flags();

std::string overview_help();                        // nasc --help
std::string command_usage(const CommandHelp& cmd);  // nasc COMMAND --help
std::string man_page();                             // roff, man(7)
std::string bash_completion();                      // a bash script defining _nasc

}  // namespace nas::cli
