#include "runtime/exec/backend_registry.h"

#include <mutex>

#include "support/did_you_mean.h"
#include "support/errors.h"

namespace nas {

// The built-in backends' factories, defined next to their backends. Declared here and
// nowhere else, so that only the registry names a concrete backend.
std::unique_ptr<Backend> make_cpu_backend();
std::unique_ptr<Backend> make_jit_backend();

namespace {

struct Registry {
  std::mutex mutex;
  std::vector<BackendInfo> backends;
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;  // never destroyed: backends may outlive static destructors
    reg->backends.push_back({"cpu", "the host CPU: oneDNN kernels and plain loops (the reference)",
                             [] { return std::shared_ptr<Backend>(make_cpu_backend()); }});
    reg->backends.push_back({"jit",
                             "the host CPU with generated code: fused regions compiled by LLVM, "
                             "oneDNN for the rest",
                             [] { return std::shared_ptr<Backend>(make_jit_backend()); }});
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

std::string backend_name_problem(const std::string& name) {
  const std::vector<std::string> names = backend_names();
  for (const std::string& n : names)
    if (n == name) return "";
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return "unknown backend `" + name + "`" + did_you_mean(name, names) + " (built in: " + list + ")";
}

std::shared_ptr<Backend> make_backend(const std::string& name, const std::string& where) {
  const std::string problem = backend_name_problem(name);
  if (!problem.empty()) throw UserError(where, problem);
  for (const BackendInfo& b : registered_backends())
    if (b.name == name) return b.make();
  internal_error(__FILE__, __LINE__, "backend `" + name + "` vanished from the registry");
}

}  // namespace nas
