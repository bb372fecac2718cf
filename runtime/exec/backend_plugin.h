// Backends built as plugins: shared objects nasc loads with dlopen only when one is asked
// for (the CUDA backend, runtime/cuda, is one: libnasc_cuda.so). A plugin is built from the
// same sources as the nasc that loads it, and shares its C++ classes (Backend, ExecPlan,
// the errors): the entry point is a C function returning the table below, and the table's
// `abi` must equal the host's NASC_PLUGIN_ABI, a digest of the headers the two share, so
// that a plugin from another build is refused with a message instead of crashing.
//
// The plugin is found, in order, at $NASC_CUDA_PLUGIN (a file), beside the binary or
// library the host code is in (the build tree), in PREFIX/lib/nasc/ of an installed nasc,
// and in the build tree nasc was built in.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "runtime/exec/backend.h"

extern "C" {

// What a backend plugin's entry point returns. Nothing here throws: failures come back as
// text in `message` (at most `size` bytes with the terminating 0).
struct NascBackendPlugin {
  const char* abi;  // the NASC_PLUGIN_ABI the plugin was built with
  // Whether the plugin's device can run: 1 with a description of it in `message` (the GPU's
  // name), or 0 with why not ("no CUDA GPU: CUDA driver version is insufficient ...").
  int (*probe)(char* message, size_t size);
  // A new backend the host owns (delete it through Backend's virtual destructor), or null
  // with why not in `message`.
  nas::Backend* (*create)(char* message, size_t size);
};

// Every plugin exports this name, with C linkage.
typedef const NascBackendPlugin* (*NascBackendPluginEntry)();
#define NASC_BACKEND_PLUGIN_ENTRY "nasc_backend_plugin"

}  // extern "C"

namespace nas {

// A backend plugin: the file it is looked for as ("libnasc_cuda.so") and the environment
// variable that names another file.
struct PluginBackend {
  std::string file_name;
  std::string env_var;
};

// Loads the plugin (once per process) and probes its device: "" when it can run, else why
// not, in a sentence: the plugin was not found (where it was looked for), did not load
// (dlerror), was built by another nasc, or found no device.
std::string plugin_backend_problem(const PluginBackend& plugin);

// What the plugin said about its device when it can run (the GPU's name), else "".
std::string plugin_backend_device(const PluginBackend& plugin);

// A new backend from the plugin. Any problem above is a UserError at `where` (the flag
// that asked for the backend).
std::shared_ptr<Backend> make_plugin_backend(const PluginBackend& plugin, const std::string& where);

}  // namespace nas
