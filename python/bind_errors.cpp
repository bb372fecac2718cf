// nasc.Error and its two kinds, raised for every nasc::Error: UserError for a mistake in
// the caller's inputs (a .nas file, an arch, a config, an array), InternalError for a bug
// in nasc. Each carries the message, the kind and the compiler's diagnostics as data, and
// the first located diagnostic's file, line and column for the common case of one error.
#include <pybind11/stl.h>

#include "bindings.h"
#include "nasc/diagnostics.h"

namespace nasc::python {
namespace {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::Error:
      return "error";
    case Severity::Warning:
      return "warning";
    case Severity::Note:
      return "note";
  }
  return "error";
}

// The classes, created once at import and kept alive by the module's attributes.
PyObject* error_class = nullptr;
PyObject* user_error_class = nullptr;
PyObject* internal_error_class = nullptr;

// Raises `e` as a nasc.UserError or nasc.InternalError instance with its attributes set.
void raise_error(const Error& e) {
  PyObject* cls = e.is_user_error() ? user_error_class : internal_error_class;
  py::object exc = py::reinterpret_steal<py::object>(PyObject_CallFunction(cls, "s", e.what()));
  if (!exc) return;  // the interpreter's own error (memory) is set and stays
  exc.attr("message") = py::str(e.what());
  exc.attr("kind") = py::str(e.is_user_error() ? "user" : "internal");
  exc.attr("diagnostics") = py::cast(e.diagnostics());
  py::object file = py::none(), line = py::none(), column = py::none();
  for (const Diagnostic& d : e.diagnostics()) {
    if (d.severity != Severity::Error || d.location.file.empty()) continue;
    file = py::str(d.location.file);
    if (d.location.line > 0) line = py::int_(d.location.line);
    if (d.location.column > 0) column = py::int_(d.location.column);
    break;
  }
  exc.attr("file") = file;
  exc.attr("line") = line;
  exc.attr("column") = column;
  PyErr_SetObject(cls, exc.ptr());
}

PyObject* new_class(const char* name, const char* doc, PyObject* base) {
  PyObject* cls = PyErr_NewExceptionWithDoc(name, doc, base, nullptr);
  if (!cls) throw py::error_already_set();
  return cls;
}

void bind_diagnostics(py::module_& m) {
  py::class_<Location>(m, "Location", "A place in a source file (1-based; 0 when unknown).")
      .def_readonly("file", &Location::file)
      .def_readonly("line", &Location::line)
      .def_readonly("column", &Location::column)
      .def("__repr__", [](const Location& l) {
        return "<nasc.Location " + l.file + ":" + std::to_string(l.line) + ":" +
               std::to_string(l.column) + ">";
      });
  py::class_<DiagnosticNote>(m, "DiagnosticNote", "A located remark attached to a diagnostic.")
      .def_readonly("location", &DiagnosticNote::location)
      .def_readonly("message", &DiagnosticNote::message);
  py::class_<Diagnostic>(m, "Diagnostic",
                         "A compiler diagnostic: severity ('error', 'warning', 'note'), "
                         "location, message, module instance path, notes, and `rendered`, "
                         "the text the nasc CLI prints for it.")
      .def_property_readonly("severity",
                             [](const Diagnostic& d) { return severity_name(d.severity); })
      .def_readonly("location", &Diagnostic::location)
      .def_property_readonly("file", [](const Diagnostic& d) { return d.location.file; })
      .def_property_readonly("line", [](const Diagnostic& d) { return d.location.line; })
      .def_property_readonly("column", [](const Diagnostic& d) { return d.location.column; })
      .def_readonly("message", &Diagnostic::message)
      .def_readonly("instance_path", &Diagnostic::instance_path)
      .def_readonly("notes", &Diagnostic::notes)
      .def_readonly("rendered", &Diagnostic::rendered)
      .def("__str__",
           [](const Diagnostic& d) { return d.rendered.empty() ? d.message : d.rendered; })
      .def("__repr__", [](const Diagnostic& d) {
        return "<nasc.Diagnostic " + std::string(severity_name(d.severity)) + " " +
               d.location.file + ":" + std::to_string(d.location.line) + ":" +
               std::to_string(d.location.column) + ": " + d.message + ">";
      });
}

}  // namespace

void bind_errors(py::module_& m) {
  bind_diagnostics(m);
  error_class =
      new_class("nasc.Error",
                "Raised for every failure of nasc. Attributes: message (str), kind ('user' or "
                "'internal'), diagnostics (list of nasc.Diagnostic: the compiler's, when compiling "
                "failed), and file, line, column of the first located error (None when unknown).",
                PyExc_Exception);
  user_error_class = new_class(
      "nasc.UserError",
      "A mistake in the caller's inputs (a .nas file, an architecture, a config, a latency "
      "table, a data set, an array): the message says which input and where.",
      error_class);
  internal_error_class =
      new_class("nasc.InternalError", "A bug in nasc: please report it.", error_class);
  // Class-level defaults, so that an instance raised from Python code (raise
  // nasc.UserError("...")) has every attribute too; the translator sets them per instance.
  py::handle base(error_class);
  base.attr("message") = "";
  base.attr("kind") = "internal";
  base.attr("diagnostics") = py::tuple();
  base.attr("file") = py::none();
  base.attr("line") = py::none();
  base.attr("column") = py::none();
  py::handle(user_error_class).attr("kind") = "user";
  m.attr("Error") = py::handle(error_class);
  m.attr("UserError") = py::handle(user_error_class);
  m.attr("InternalError") = py::handle(internal_error_class);

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      raise_error(e);
    }
  });
}

}  // namespace nasc::python
