// nasc.train and nasc.search (python/nasc/__init__.py wraps them with keyword arguments):
// whole runs with the GIL released, whose per-step and per-epoch callbacks take it back
// to call Python. A callback's exception, or Ctrl-C (checked at every step), cannot pass
// through the run's C++ frames, which would report it as an internal error: it is kept,
// the callback answers "stop", and the exception is raised once the run has returned.
#include <pybind11/stl.h>

#include <algorithm>
#include <exception>
#include <ostream>

#include "bindings.h"
#include "nasc/nasc.h"

namespace nasc::python {
namespace {

// What the run's callbacks share; they run with the GIL taken, one at a time.
struct Callbacks {
  py::object on_step, on_epoch;
  PendingError pending;

  // Calls fn(info) when fn is given; a falsy answer, an exception or Ctrl-C stops the run.
  template <typename Info>
  bool call(const py::object& fn, const Info& info) {
    py::gil_scoped_acquire gil;
    if (!pending.check_signals()) return false;
    if (fn.is_none()) return true;
    try {
      py::object answer = fn(info);
      int truth = PyObject_IsTrue(answer.ptr());
      if (truth < 0) throw py::error_already_set();
      return truth == 1;
    } catch (py::error_already_set& e) {
      e.restore();
    } catch (py::builtin_exception& e) {  // a failed conversion of the answer
      e.set_error();
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    pending.capture();
    return false;
  }
};

// Runs fn(options) with the callbacks and the log bridged to Python.
template <typename Result, typename Fn>
Result run_from_python(RunOptions o, py::object on_step, py::object on_epoch, py::object log,
                       Fn fn) {
  for (const py::object* f : {&on_step, &on_epoch})
    if (!f->is_none() && !PyCallable_Check(f->ptr()))
      throw py::type_error("on_step and on_epoch must be callables (or None)");
  Callbacks callbacks{std::move(on_step), std::move(on_epoch), {}};
  // The C++ callbacks hold only this pointer: copying a py::object needs the GIL, and
  // the run copies its callbacks.
  Callbacks* c = &callbacks;
  // Always set, even without Python callbacks, so that Ctrl-C stops the run at a step.
  o.callbacks.on_step = [c](const StepInfo& s) { return c->call(c->on_step, s); };
  o.callbacks.on_epoch = [c](const EpochInfo& e) { return c->call(c->on_epoch, e); };
  std::optional<Result> result;
  std::exception_ptr failure;
  {
    PythonLog buffer(log, &callbacks.pending);
    std::ostream stream(&buffer);
    if (buffer.enabled()) o.log = &stream;
    py::gil_scoped_release release;
    try {
      result = fn(o);
    } catch (...) {
      failure = std::current_exception();
    }
    stream.flush();
  }
  // A callback's exception is the cause when the run failed after it too.
  callbacks.pending.raise_if_any();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

void bind_infos(py::module_& m) {
  py::class_<StepInfo>(m, "StepInfo",
                       "Passed to on_step after each optimizer step: epoch, epochs, step, "
                       "steps, global_step (1-based), the epoch's running loss and accuracy, "
                       "learning_rate.")
      .def_readonly("epoch", &StepInfo::epoch)
      .def_readonly("epochs", &StepInfo::epochs)
      .def_readonly("step", &StepInfo::step)
      .def_readonly("steps", &StepInfo::steps)
      .def_readonly("global_step", &StepInfo::global_step)
      .def_readonly("loss", &StepInfo::loss)
      .def_readonly("accuracy", &StepInfo::accuracy)
      .def_readonly("learning_rate", &StepInfo::learning_rate)
      .def("__repr__", [](const StepInfo& s) {
        return "<nasc.StepInfo epoch " + std::to_string(s.epoch) + "/" + std::to_string(s.epochs) +
               " step " + std::to_string(s.step) + "/" + std::to_string(s.steps) +
               " loss=" + std::to_string(s.loss) + ">";
      });
  py::class_<EpochInfo>(m, "EpochInfo",
                        "Passed to on_epoch after each epoch: epoch, epochs, train_loss, "
                        "train_accuracy, eval_loss, eval_accuracy, seconds.")
      .def_readonly("epoch", &EpochInfo::epoch)
      .def_readonly("epochs", &EpochInfo::epochs)
      .def_readonly("train_loss", &EpochInfo::train_loss)
      .def_readonly("train_accuracy", &EpochInfo::train_accuracy)
      .def_readonly("eval_loss", &EpochInfo::eval_loss)
      .def_readonly("eval_accuracy", &EpochInfo::eval_accuracy)
      .def_readonly("seconds", &EpochInfo::seconds)
      .def("__repr__", [](const EpochInfo& e) {
        return "<nasc.EpochInfo epoch " + std::to_string(e.epoch) + "/" + std::to_string(e.epochs) +
               " train_loss=" + std::to_string(e.train_loss) +
               " eval_accuracy=" + std::to_string(e.eval_accuracy) + ">";
      });
}

void bind_results(py::module_& m) {
  py::class_<TrainResult>(m, "TrainResult", "What nasc.train did.")
      .def_readonly("epochs", &TrainResult::epochs)
      .def_readonly("epochs_run", &TrainResult::epochs_run)
      .def_readonly("train_loss", &TrainResult::train_loss)
      .def_readonly("train_accuracy", &TrainResult::train_accuracy)
      .def_readonly("test_loss", &TrainResult::test_loss)
      .def_readonly("test_accuracy", &TrainResult::test_accuracy)
      .def_readonly("seconds", &TrainResult::seconds)
      .def_readonly("stopped", &TrainResult::stopped)
      .def_readonly("weights_file", &TrainResult::weights_file)
      .def_readonly("warnings", &TrainResult::warnings);
  py::class_<RetrainResult>(m, "RetrainResult", "What the retrain of the found network did.")
      .def_readonly("dir", &RetrainResult::dir)
      .def_readonly("network", &RetrainResult::network)
      .def_readonly("params", &RetrainResult::params)
      .def_readonly("macs", &RetrainResult::macs)
      .def_readonly("epochs", &RetrainResult::epochs)
      .def_readonly("epochs_run", &RetrainResult::epochs_run)
      .def_readonly("train_accuracy", &RetrainResult::train_accuracy)
      .def_readonly("test_loss", &RetrainResult::test_loss)
      .def_readonly("test_accuracy", &RetrainResult::test_accuracy)
      .def_readonly("seconds", &RetrainResult::seconds)
      .def_readonly("stopped", &RetrainResult::stopped)
      .def_readonly("weights_file", &RetrainResult::weights_file);
  py::class_<SearchResult>(m, "SearchResult", "What nasc.search found.")
      .def_readonly("epochs_run", &SearchResult::epochs_run)
      .def_readonly("arch_json", &SearchResult::arch_json)
      .def_readonly("choices", &SearchResult::choices)
      .def_readonly("params", &SearchResult::params)
      .def_readonly("macs", &SearchResult::macs)
      .def_readonly("latency_ms", &SearchResult::latency_ms)
      .def_readonly("measured_latency_ms", &SearchResult::measured_latency_ms)
      .def_readonly("valid_accuracy", &SearchResult::valid_accuracy)
      .def_readonly("seconds", &SearchResult::seconds)
      .def_readonly("search_seconds", &SearchResult::search_seconds)
      .def_readonly("stopped", &SearchResult::stopped)
      .def_readonly("arch_file", &SearchResult::arch_file)
      .def_readonly("retrained", &SearchResult::retrained)
      .def_readonly("retrain", &SearchResult::retrain)
      .def_readonly("result_file", &SearchResult::result_file)
      .def_readonly("warnings", &SearchResult::warnings);
}

void bind_options(py::module_& m) {
  py::class_<CompileOptions>(m, "CompileOptions")
      .def(py::init<>())
      .def_readwrite("import_paths", &CompileOptions::import_paths)
      .def_readwrite("network", &CompileOptions::network)
      .def_readwrite("overrides", &CompileOptions::overrides);
  py::class_<ParallelOptions>(m, "ParallelOptions")
      .def(py::init<>())
      .def_readwrite("use_mpi", &ParallelOptions::use_mpi)
      .def_readwrite("sync_batchnorm", &ParallelOptions::sync_batchnorm)
      .def_readwrite("timeout_seconds", &ParallelOptions::timeout_seconds);
  // Filled by nasc.train and nasc.search from their keyword arguments.
  py::class_<RunOptions>(m, "RunOptions")
      .def(py::init<>())
      .def_readwrite("space_file", &RunOptions::space_file)
      .def_readwrite("compile", &RunOptions::compile)
      .def_readwrite("config_file", &RunOptions::config_file)
      .def_readwrite("config_json", &RunOptions::config_json)
      .def_readwrite("data", &RunOptions::data)
      .def_readwrite("epochs", &RunOptions::epochs)
      .def_readwrite("threads", &RunOptions::threads)
      .def_readwrite("backend", &RunOptions::backend)
      .def_readwrite("output_dir", &RunOptions::output_dir)
      .def_readwrite("resume", &RunOptions::resume)
      .def_readwrite("arch_file", &RunOptions::arch_file)
      .def_readwrite("init_weights", &RunOptions::init_weights)
      .def_readwrite("algorithm", &RunOptions::algorithm)
      .def_readwrite("lut", &RunOptions::lut)
      .def_readwrite("rerank", &RunOptions::rerank)
      .def_readwrite("retrain", &RunOptions::retrain)
      .def_readwrite("parallel", &RunOptions::parallel);
}

}  // namespace

void bind_run(py::module_& m) {
  bind_infos(m);
  bind_results(m);
  bind_options(m);
  m.def(
      "_train",
      [](const RunOptions& o, py::object on_step, py::object on_epoch, py::object log) {
        return run_from_python<TrainResult>(o, std::move(on_step), std::move(on_epoch),
                                            std::move(log),
                                            [](const RunOptions& r) { return train(r); });
      },
      py::arg("options"), py::arg("on_step"), py::arg("on_epoch"), py::arg("log"));
  m.def(
      "_search",
      [](const RunOptions& o, py::object on_step, py::object on_epoch, py::object log) {
        return run_from_python<SearchResult>(o, std::move(on_step), std::move(on_epoch),
                                             std::move(log),
                                             [](const RunOptions& r) { return search(r); });
      },
      py::arg("options"), py::arg("on_step"), py::arg("on_epoch"), py::arg("log"));
  m.def(
      "process_group",
      [] {
        const ProcessGroup g = process_group();  // a nasc::Error becomes nasc.Error
        return py::make_tuple(g.rank, g.size);
      },
      "(rank, size) of the MPI job this process belongs to: (0, 1) when started alone. Under "
      "mpirun, the first call joins the job (train and search join it themselves).");
  m.def(
      "create_run_dir",
      [](py::handle space_file, py::handle parent) {
        return create_run_dir(fspath(space_file), fspath(parent));
      },
      py::arg("space_file"), py::arg("parent") = "runs",
      "A new, empty run folder parent/<stem>-<n> (what nasc train and search use without -o).");
}

}  // namespace nasc::python
