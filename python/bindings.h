// The Python module `nasc` (python/nasc/__init__.py over the extension nasc._nasc): one
// bind_* function per part of libnasc's public API (include/nasc/), and the helpers they
// share. Only public headers are included, so the module is a client of libnasc.so as the
// CLI is of the API (docs/python.md).
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <optional>
#include <streambuf>
#include <string>

namespace nasc::python {

namespace py = pybind11;

void bind_errors(py::module_& m);  // nasc.Error, UserError, InternalError, Diagnostic
void bind_space(py::module_& m);   // Space, Architecture, estimates, latency tables
void bind_model(py::module_& m);   // Model on numpy arrays
void bind_run(py::module_& m);     // train and search with Python callbacks

// A path argument as libnasc takes it: str, or any os.PathLike (pathlib.Path).
std::string fspath(py::handle path);

// Holds the first Python exception raised where C++ cannot let it through (a callback or
// a log write inside a run, whose C++ frames would turn it into an internal error), so
// that it is raised once the call is back in Python. Read and written with the GIL held.
class PendingError {
 public:
  // Stores the error now set in the interpreter (the first one wins) and clears it.
  void capture();
  bool has_error() const { return error_.has_value(); }
  // Raises the stored error (throws py::error_already_set); nothing when none.
  void raise_if_any();
  // Checks for Ctrl-C (PyErr_CheckSignals) and captures the KeyboardInterrupt: false
  // then, or when an error is already pending.
  bool check_signals();

 private:
  std::optional<py::error_already_set> error_;
};

// A streambuf writing whole lines to a Python file-like object (its `write`), for the
// progress output of runs and of latency measurement while the GIL is released: each
// line takes the GIL. Errors in `write` are captured into `pending` and further output
// is dropped. Construct and destroy it with the GIL held.
class PythonLog : public std::streambuf {
 public:
  // target: None (nothing printed), True (sys.stdout) or an object with write().
  PythonLog(py::object target, PendingError* pending);
  ~PythonLog() override;
  bool enabled() const { return !write_.is_none(); }
  // Writes what is buffered; call with the GIL released or held (it takes it).
  void flush_buffer();

 protected:
  int overflow(int c) override;
  int sync() override;

 private:
  py::object write_ = py::none();  // None: nothing is printed
  PendingError* pending_;
  std::string line_;
};

}  // namespace nasc::python
