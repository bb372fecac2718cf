#include "runtime/exec/backend_plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

#include "support/errors.h"

namespace nas {
namespace fs = std::filesystem;

namespace {

// One plugin as this process found it: loaded and probed once.
struct LoadedPlugin {
  const NascBackendPlugin* table = nullptr;  // null: not loaded (problem says why)
  std::string problem;                       // "" when its device can run
  std::string device;                        // the probe's description of the device
};

// Where the plugin may be, in the order tried (backend_plugin.h).
std::vector<fs::path> candidate_paths(const PluginBackend& plugin) {
  std::vector<fs::path> paths;
  Dl_info info{};
  std::error_code ec;
  if (dladdr(reinterpret_cast<void*>(&plugin_backend_problem), &info) != 0 &&
      info.dli_fname != nullptr) {
    const fs::path self = fs::canonical(info.dli_fname, ec);
    if (!ec) {
      const fs::path dir = self.parent_path();
      paths.push_back(dir / plugin.file_name);           // a build tree: beside nasc
      paths.push_back(dir / "nasc" / plugin.file_name);  // PREFIX/lib/libnasc.so
      paths.push_back(dir / NASC_PLUGIN_DIR_FROM_BINDIR / plugin.file_name);  // PREFIX/bin/nasc
    }
  }
  paths.push_back(fs::path(NASC_BUILD_PLUGIN_DIR) / plugin.file_name);
  return paths;
}

// The file to load, or "" with `problem` set.
std::string find_plugin(const PluginBackend& plugin, std::string& problem) {
  std::error_code ec;
  if (const char* env = std::getenv(plugin.env_var.c_str()); env != nullptr && *env != 0) {
    if (fs::is_regular_file(env, ec)) return env;
    problem = plugin.env_var + "=" + env + " names no file";
    return {};
  }
  std::string tried;
  for (const fs::path& p : candidate_paths(plugin)) {
    if (fs::is_regular_file(p, ec)) return fs::weakly_canonical(p, ec).string();
    tried += (tried.empty() ? "" : ", ") + p.lexically_normal().string();
  }
  problem = plugin.file_name + " was not found (looked for " + tried + "; " + plugin.env_var +
            " may name it). This nasc may have been built without the CUDA toolkit";
  return {};
}

LoadedPlugin load(const PluginBackend& plugin) {
  LoadedPlugin loaded;
  const std::string path = find_plugin(plugin, loaded.problem);
  if (path.empty()) return loaded;
  // Never closed: the backends it makes may live until the process ends.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    loaded.problem = path + " did not load: " + (why ? why : "unknown dlopen error");
    return loaded;
  }
  auto entry = reinterpret_cast<NascBackendPluginEntry>(dlsym(handle, NASC_BACKEND_PLUGIN_ENTRY));
  if (entry == nullptr) {
    loaded.problem = path + " is not a nasc backend plugin (it has no " +
                     NASC_BACKEND_PLUGIN_ENTRY + " function)";
    return loaded;
  }
  const NascBackendPlugin* table = entry();
  if (table == nullptr || table->abi == nullptr || std::string(table->abi) != NASC_PLUGIN_ABI) {
    loaded.problem = path + " was built by another build of nasc (plugin interface " +
                     (table && table->abi ? table->abi : "?") + ", this nasc's " + NASC_PLUGIN_ABI +
                     "); rebuild it with this nasc";
    return loaded;
  }
  loaded.table = table;
  char message[512] = {0};
  if (table->probe(message, sizeof message) == 1)
    loaded.device = message;
  else
    loaded.problem = message[0] ? message : "the plugin found no device";
  return loaded;
}

const LoadedPlugin& loaded_plugin(const PluginBackend& plugin) {
  static std::mutex mutex;
  static auto* plugins = new std::map<std::string, LoadedPlugin>;  // never destroyed
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plugins->find(plugin.file_name);
  if (it == plugins->end()) it = plugins->emplace(plugin.file_name, load(plugin)).first;
  return it->second;
}

}  // namespace

std::string plugin_backend_problem(const PluginBackend& plugin) {
  return loaded_plugin(plugin).problem;
}

std::string plugin_backend_device(const PluginBackend& plugin) {
  return loaded_plugin(plugin).device;
}

std::shared_ptr<Backend> make_plugin_backend(const PluginBackend& plugin,
                                             const std::string& where) {
  const LoadedPlugin& loaded = loaded_plugin(plugin);
  if (!loaded.problem.empty()) throw UserError(where, loaded.problem);
  char message[512] = {0};
  Backend* backend = loaded.table->create(message, sizeof message);
  if (backend == nullptr)
    throw UserError(where, message[0] ? message : "the plugin could not start its device");
  return std::shared_ptr<Backend>(backend);
}

}  // namespace nas
