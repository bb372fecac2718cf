// The backends built into this nasc, by name. Application code (trainer, searchers,
// profiler, benches, the CLI) gets its backend here from a name (`--backend NAME`, the
// default "cpu") and never names a concrete backend; `nasc --version` lists them.
//
// Built-in backends are listed in backend_registry.cpp under their build options, as
// ggml's backend registry lists its own (a static library would drop an object file that
// registered itself from a static initializer). Tests and embedders may add more at run
// time with register_backend().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/exec/backend.h"

namespace nas {

// Whether a backend can run here: `problem` is "" when it can (then `device` may describe
// the device it found: "NVIDIA H200, 132 SMs, ..."), else why not.
struct BackendProbe {
  std::string problem;
  std::string device;
};

struct BackendInfo {
  std::string name;         // what --backend takes
  std::string description;  // one line for --version and the error listing the backends
  std::function<std::shared_ptr<Backend>()> make;
  // A backend whose device may be missing (a plugin's GPU) says whether it can run here,
  // for --version and for the tests that skip it visibly. Unset: it always can.
  std::function<BackendProbe()> probe;
};

// BackendInfo::probe, or "can run" for a backend without one.
BackendProbe probe_backend(const BackendInfo& info);

// The backend used when none is named.
const char* default_backend_name();

// Every registered backend, built-in ones first, then in registration order.
std::vector<BackendInfo> registered_backends();
std::vector<std::string> backend_names();

// Adds a backend; a name already registered is an InternalError.
void register_backend(BackendInfo info);

// A new instance of the backend `name`. An unknown name is a UserError at `where` (the
// flag or key that named it), with a did-you-mean and the list of built-in backends.
std::shared_ptr<Backend> make_backend(const std::string& name,
                                      const std::string& where = "--backend");
// The registered name of the backend `name` names: `interp` is another name of `cpu`, the
// interpreter (the reference every other backend is tested against); any other name is
// its own.
std::string canonical_backend_name(const std::string& name);
// What is wrong with `name` as a backend name: "" when it is registered, else "unknown
// backend `x`; did you mean `cpu`? (built in: cpu)". The CLI checks its flag with it
// before it starts any work.
std::string backend_name_problem(const std::string& name);

}  // namespace nas
