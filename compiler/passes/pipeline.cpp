#include "compiler/passes/pipeline.h"

#include <pthread.h>

#include <exception>

#include "compiler/passes/dce.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/shape_inference.h"

namespace nas {
namespace {

Compilation run_pipeline(std::unique_ptr<Program> program, const CompileOptions& options,
                         Diagnostics& diags, bool parse_only) {
  Compilation c;
  c.program = std::move(program);
  if (!c.program || parse_only) return c;
  std::optional<Graph> g = elaborate(*c.program, options.elaborate, diags);
  if (!g) return c;
  if (!infer_shapes(*g, diags)) return c;
  c.supernet = eliminate_dead_code(*g);
  return c;
}

// Runs a front-end job on a large stack (the parser and evaluator recurse, and callers
// of the library should not have to know) and turns the error limit into a stop.
template <typename Fn>
Compilation guarded(Fn fn) {
  Compilation result;
  run_with_large_stack([&] {
    try {
      result = fn();
    } catch (const TooManyErrors&) {
      result = {};
    }
  });
  return result;
}

}  // namespace

Compilation compile_file(const std::string& path, const CompileOptions& options, Diagnostics& diags,
                         bool parse_only) {
  return guarded([&] {
    auto program = load_program(path, default_search_paths(options.include_paths), diags);
    return run_pipeline(std::move(program), options, diags, parse_only);
  });
}

Compilation compile_text(const std::string& path, std::string text, const CompileOptions& options,
                         Diagnostics& diags, bool parse_only) {
  return guarded([&] {
    auto program = load_program_from_text(path, std::move(text),
                                          default_search_paths(options.include_paths), diags);
    return run_pipeline(std::move(program), options, diags, parse_only);
  });
}

Graph specialise(const Graph& supernet, const Selection& sel) {
  return derive_fixed_network(supernet, sel);
}

void run_with_large_stack(const std::function<void()>& fn) {
  constexpr size_t kStackBytes = 512u << 20;  // reserved address space, not committed memory
  struct Task {
    const std::function<void()>* fn;
    std::exception_ptr error;
  } task{&fn, nullptr};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStackBytes);
  pthread_t thread;
  auto body = [](void* arg) -> void* {
    auto* t = static_cast<Task*>(arg);
    try {
      (*t->fn)();
    } catch (...) {
      t->error = std::current_exception();
    }
    return nullptr;
  };
  if (pthread_create(&thread, &attr, body, &task) != 0) {
    pthread_attr_destroy(&attr);
    fn();  // could not get a thread: run on this stack
    return;
  }
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  if (task.error) std::rethrow_exception(task.error);
}

}  // namespace nas
