// The extension module nasc._nasc (python/nasc/__init__.py re-exports it as `nasc`): the
// library-wide calls, and the helpers the bind_* files share (paths, errors captured
// while the GIL is released, a Python file as a C++ log stream).
#include <pybind11/stl.h>

#include "bindings.h"
#include "nasc/nasc.h"

namespace nasc::python {

std::string fspath(py::handle path) {
  if (py::isinstance<py::str>(path)) return path.cast<std::string>();
  py::object p = py::module_::import("os").attr("fspath")(path);  // TypeError if not a path
  if (!py::isinstance<py::str>(p)) throw py::type_error("a path must be str or os.PathLike of str");
  return p.cast<std::string>();
}

void PendingError::capture() {
  if (!PyErr_Occurred()) return;
  if (error_) {
    PyErr_Clear();  // a later error, usually a consequence of the first: the first is raised
    return;
  }
  error_.emplace();  // fetches and clears the interpreter's error indicator
}

void PendingError::raise_if_any() {
  if (!error_) return;
  py::error_already_set e = std::move(*error_);
  error_.reset();
  throw e;
}

bool PendingError::check_signals() {
  if (error_) return false;
  if (PyErr_CheckSignals() != 0) {
    capture();
    return false;
  }
  return true;
}

PythonLog::PythonLog(py::object target, PendingError* pending) : pending_(pending) {
  if (target.is_none() || (py::isinstance<py::bool_>(target) && !target.cast<bool>())) return;
  if (py::isinstance<py::bool_>(target)) target = py::module_::import("sys").attr("stdout");
  if (!py::hasattr(target, "write"))
    throw py::type_error("log must be None, True (sys.stdout) or a file-like object with write()");
  write_ = target.attr("write");
}

PythonLog::~PythonLog() {
  flush_buffer();
}

void PythonLog::flush_buffer() {
  if (line_.empty() || write_.is_none()) return;
  py::gil_scoped_acquire gil;
  if (!pending_->has_error()) {
    // Decoded leniently: a log line is never worth an exception.
    py::object text = py::reinterpret_steal<py::object>(
        PyUnicode_DecodeUTF8(line_.data(), static_cast<Py_ssize_t>(line_.size()), "replace"));
    if (text) {
      try {
        write_(text);
      } catch (py::error_already_set& e) {
        e.restore();
      }
    }
    pending_->capture();
  }
  line_.clear();
}

int PythonLog::overflow(int c) {
  if (c == traits_type::eof()) return traits_type::not_eof(c);
  if (write_.is_none()) return c;
  line_.push_back(static_cast<char>(c));
  if (c == '\n') flush_buffer();
  return c;
}

int PythonLog::sync() {
  flush_buffer();
  return 0;
}

namespace {

void bind_library(py::module_& m) {
  m.def("version", &nasc::version, "The library's version, e.g. '0.1.0'.");
  py::class_<BackendDescription>(m, "Backend", "A backend built into the library.")
      .def_readonly("name", &BackendDescription::name)
      .def_readonly("description", &BackendDescription::description)
      .def_readonly("is_default", &BackendDescription::is_default)
      .def("__repr__", [](const BackendDescription& b) { return "<nasc.Backend " + b.name + ">"; });
  m.def("backends", &nasc::backends, "The backends built in (what Model.build's backend takes).");
  m.def("check_backend", &nasc::check_backend, py::arg("name"),
        "Raises nasc.UserError unless `name` is a built-in backend.");
  m.def(
      "backend_problem",
      [](const std::string& name) {
        std::string device;
        std::string problem = nasc::backend_problem(name, &device);
        return py::make_tuple(problem, device);
      },
      py::arg("name"),
      "(problem, device): why backend `name` cannot run on this machine ('' when it can) and "
      "the device it found (the GPU's description for 'cuda', '' for the CPU backends).");
  m.def("with_commas", &nasc::with_commas, py::arg("value"), "1234567 -> '1,234,567'.");
  m.def("human_count", &nasc::human_count, py::arg("value"), "268160 -> '268K'.");
}

}  // namespace
}  // namespace nasc::python

PYBIND11_MODULE(_nasc, m) {
  using namespace nasc::python;
  m.doc() = "nasc's C++ library (libnasc) for Python; import it as `nasc` (docs/python.md).";
  bind_errors(m);
  bind_library(m);
  bind_space(m);
  bind_model(m);
  bind_run(m);
}
