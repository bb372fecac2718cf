#include "runtime/exec/backend_registry.h"

#include <mutex>

#include "runtime/exec/backend_plugin.h"
#include "support/did_you_mean.h"
#include "support/errors.h"

namespace nas {

// The built-in backends' factories, defined next to their backends. Declared here and
// nowhere else, so that only the registry names a concrete backend.
std::unique_ptr<Backend> make_cpu_backend();
std::unique_ptr<Backend> make_jit_backend();

namespace {

#ifdef NASC_WITH_CUDA_PLUGIN
// The CUDA backend (runtime/cuda) is a plugin, loaded only when it is asked for.
const PluginBackend& cuda_plugin() {
  static const PluginBackend plugin{"libnasc_cuda.so", "NASC_CUDA_PLUGIN"};
  return plugin;
}
#endif

struct Registry {
  std::mutex mutex;
  std::vector<BackendInfo> backends;
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;  // never destroyed: backends may outlive static destructors
    reg->backends.push_back({"cpu",
                             "the host CPU: oneDNN kernels and plain loops (the reference)",
                             [] { return std::shared_ptr<Backend>(make_cpu_backend()); },
                             {}});
    reg->backends.push_back({"jit",
                             "the host CPU with generated code: fused regions compiled by LLVM, "
                             "oneDNN for the rest",
                             [] { return std::shared_ptr<Backend>(make_jit_backend()); },
                             {}});
#ifdef NASC_WITH_CUDA_PLUGIN
    reg->backends.push_back({"cuda",
                             "an NVIDIA GPU: cuDNN and cuBLAS kernels (the plugin libnasc_cuda.so)",
                             [] { return make_plugin_backend(cuda_plugin(), "--backend"); },
                             [] {
                               return BackendProbe{plugin_backend_problem(cuda_plugin()),
                                                   plugin_backend_device(cuda_plugin())};
                             }});
#endif
    return reg;
  }();
  return *r;
}

}  // namespace

const char* default_backend_name() {
  return "jit";
}

std::vector<BackendInfo> registered_backends() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.backends;
}

BackendProbe probe_backend(const BackendInfo& info) {
  return info.probe ? info.probe() : BackendProbe{};
}

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const BackendInfo& b : registered_backends()) names.push_back(b.name);
  return names;
}

void register_backend(BackendInfo info) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const BackendInfo& b : r.backends)
    NAS_CHECK(b.name != info.name, "backend `" + info.name + "` is registered twice");
  r.backends.push_back(std::move(info));
}

std::string canonical_backend_name(const std::string& name) {
  return name == "interp" ? "cpu" : name;
}

std::string backend_name_problem(const std::string& name) {
  const std::vector<std::string> names = backend_names();
  for (const std::string& n : names)
    if (n == canonical_backend_name(name)) return "";
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return "unknown backend `" + name + "`" + did_you_mean(name, names) + " (built in: " + list + ")";
}

std::shared_ptr<Backend> make_backend(const std::string& name, const std::string& where) {
  const std::string problem = backend_name_problem(name);
  if (!problem.empty()) throw UserError(where, problem);
  for (const BackendInfo& b : registered_backends()) {
    if (b.name != canonical_backend_name(name)) continue;
    const std::string problem = probe_backend(b).problem;
    if (!problem.empty()) throw UserError(where, "backend `" + name + "`: " + problem);
    return b.make();
  }
  internal_error(__FILE__, __LINE__, "backend `" + name + "` vanished from the registry");
}

}  // namespace nas
