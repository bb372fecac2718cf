// Space, Architecture and their estimates, LatencyTable and LatencyEstimator for Python.
// Compiling and measuring release the GIL; everything else is quick.
#include <pybind11/stl.h>

#include <algorithm>
#include <fstream>

#include "bindings.h"
#include "nasc/nasc.h"

namespace nasc::python {
namespace {

// A network parameter value as a .nas literal: Python's bool, int, float and lists of
// them are written as .nas writes them; a str is passed as it is (it is the literal's
// text, as after --set NAME=).
std::string nas_literal(py::handle v) {
  if (py::isinstance<py::bool_>(v)) return v.cast<bool>() ? "true" : "false";
  if (py::isinstance<py::int_>(v)) return py::str(v).cast<std::string>();
  if (py::isinstance<py::float_>(v)) return py::repr(v).cast<std::string>();
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
    std::string out = "[";
    for (py::handle item : v) out += (out.size() > 1 ? ", " : "") + nas_literal(item);
    return out + "]";
  }
  throw py::type_error("an override's value must be bool, int, float, str or a list of them, got " +
                       py::str(py::type::of(v).attr("__name__")).cast<std::string>());
}

CompileOptions compile_options(py::object import_paths, const std::string& network,
                               py::object overrides) {
  CompileOptions o;
  if (!import_paths.is_none()) {
    if (py::isinstance<py::str>(import_paths))  // a lone folder, not a list of characters
      throw py::type_error("import_paths must be a list of folders, not a str");
    for (py::handle p : import_paths) o.import_paths.push_back(fspath(p));
  }
  o.network = network;
  if (!overrides.is_none()) {
    if (!py::isinstance<py::dict>(overrides))
      throw py::type_error("overrides must be a dict: network parameter name -> value");
    for (auto item : overrides.cast<py::dict>())
      o.overrides.emplace_back(py::str(item.first).cast<std::string>(), nas_literal(item.second));
  }
  return o;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The candidate names a dict value picks: "a", "a+b" or a list of names.
std::vector<std::string> picked_names(py::handle value, const std::string& key) {
  std::vector<std::string> names;
  if (py::isinstance<py::str>(value)) {
    std::string s = value.cast<std::string>();
    for (size_t start = 0;;) {
      size_t plus = s.find('+', start);
      names.push_back(s.substr(start, plus - start));
      if (plus == std::string::npos) break;
      start = plus + 1;
    }
  } else if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    for (py::handle item : value) {
      if (!py::isinstance<py::str>(item))
        throw py::type_error("choice `" + key + "`: candidate names must be str");
      names.push_back(item.cast<std::string>());
    }
  } else {
    throw py::type_error("choice `" + key +
                         "`: give a candidate name, 'a+b' or a list of names for a join");
  }
  return names;
}

// {"op": "conv"} -> the candidate indices of every choice, with nasc's own user errors
// (did-you-mean included) for unknown keys and names, and for a missing choice.
std::vector<std::vector<int>> indices_of_names(const Space& space, const py::dict& names) {
  const std::vector<Choice>& choices = space.choices();
  std::vector<std::string> keys;
  for (const Choice& c : choices) keys.push_back(c.key);
  for (auto item : names) {
    std::string key = py::str(item.first).cast<std::string>();
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
      throw Error(Error::Kind::User, "architecture: the space has no choice `" + key + "`" +
                                         did_you_mean(key, keys) + " (choices: " + joined(keys) +
                                         ")");
  }
  std::vector<std::vector<int>> chosen;
  for (const Choice& c : choices) {
    if (!names.contains(c.key))
      throw Error(Error::Kind::User, "architecture: choice `" + c.key +
                                         "` is not given (candidates: " + joined(c.candidates) +
                                         ")");
    std::vector<int> picks;
    for (const std::string& name : picked_names(names[py::str(c.key)], c.key)) {
      auto at = std::find(c.candidates.begin(), c.candidates.end(), name);
      if (at == c.candidates.end())
        throw Error(Error::Kind::User, "architecture: choice `" + c.key + "` has no candidate `" +
                                           name + "`" + did_you_mean(name, c.candidates) +
                                           " (candidates: " + joined(c.candidates) + ")");
      picks.push_back(static_cast<int>(at - c.candidates.begin()));
    }
    chosen.push_back(std::move(picks));
  }
  return chosen;
}

// [0, [1, 2]] -> {{0}, {1, 2}}: a plain int for a choice, a list for a join.
std::vector<std::vector<int>> indices_of_list(py::handle list) {
  std::vector<std::vector<int>> chosen;
  for (py::handle item : list) {
    if (py::isinstance<py::int_>(item) && !py::isinstance<py::bool_>(item)) {
      chosen.push_back({item.cast<int>()});
    } else if (py::isinstance<py::list>(item) || py::isinstance<py::tuple>(item)) {
      chosen.push_back(item.cast<std::vector<int>>());
    } else {
      throw py::type_error(
          "Space.fix: each entry is a candidate index (int) or, for a join, a "
          "list of indices");
    }
  }
  return chosen;
}

Architecture fix(const Space& space, py::handle choices) {
  if (py::isinstance<py::dict>(choices))
    return space.fix(indices_of_names(space, choices.cast<py::dict>()));
  if (py::isinstance<py::list>(choices) || py::isinstance<py::tuple>(choices))
    return space.fix(indices_of_list(choices));
  throw py::type_error(
      "Space.fix takes a list of candidate indices or a dict key -> candidate name; use "
      "fix_json for arch JSON text and fix_file for an arch file");
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

void bind_value_types(py::module_& m) {
  py::class_<Choice>(m, "Choice", "One architecture choice: key, candidates, k, sites.")
      .def_readonly("key", &Choice::key)
      .def_readonly("candidates", &Choice::candidates)
      .def_readonly("k", &Choice::k)
      .def_readonly("sites", &Choice::sites)
      .def("__repr__", [](const Choice& c) {
        return "<nasc.Choice " + c.key + ": " + joined(c.candidates) +
               " (k=" + std::to_string(c.k) + ", sites=" + std::to_string(c.sites) + ")>";
      });
  py::class_<Input>(m, "Input", "A network input: its name and per-sample shape.")
      .def_readonly("name", &Input::name)
      .def_readonly("shape", &Input::shape)
      .def("__repr__", [](const Input& i) {
        return "<nasc.Input " + i.name + " " + shape_text(i.shape) + ">";
      });
  py::class_<SpaceStatistics>(m, "SpaceStatistics", "What `nasc check` prints about a space.")
      .def_readonly("nodes", &SpaceStatistics::nodes)
      .def_readonly("choices", &SpaceStatistics::choices)
      .def_readonly("choice_sites", &SpaceStatistics::choice_sites)
      .def_readonly("log10_size", &SpaceStatistics::log10_size)
      .def_readonly("supernet_params", &SpaceStatistics::supernet_params)
      .def_readonly("supernet_macs", &SpaceStatistics::supernet_macs)
      .def_readonly("largest_params", &SpaceStatistics::largest_params)
      .def_readonly("smallest_params", &SpaceStatistics::smallest_params)
      .def_readonly("extremes_exact", &SpaceStatistics::extremes_exact)
      .def_readonly("search_truncated", &SpaceStatistics::search_truncated);
  py::class_<NetworkSize>(m, "NetworkSize", "A fixed network's IR nodes, params and MACs.")
      .def_readonly("nodes", &NetworkSize::nodes)
      .def_readonly("params", &NetworkSize::params)
      .def_readonly("macs", &NetworkSize::macs);
  py::class_<StaticEstimate>(m, "StaticEstimate",
                             "Static cost: params, bytes, MACs per sample, activation memory.")
      .def_readonly("params", &StaticEstimate::params)
      .def_readonly("param_bytes", &StaticEstimate::param_bytes)
      .def_readonly("macs", &StaticEstimate::macs)
      .def_readonly("activation_bytes", &StaticEstimate::activation_bytes)
      .def_readonly("train_batch", &StaticEstimate::train_batch)
      .def_readonly("train_activation_bytes", &StaticEstimate::train_activation_bytes)
      .def_readonly("train_not_applicable", &StaticEstimate::train_not_applicable)
      .def("__repr__", [](const StaticEstimate& e) {
        return "<nasc.StaticEstimate params=" + std::to_string(e.params) +
               " macs=" + std::to_string(e.macs) + ">";
      });
  py::class_<LatencyEstimate>(m, "LatencyEstimate",
                              "Estimated latency in ms at the table's batch: fused and "
                              "accumulated, calibration applied.")
      .def_readonly("fused_ms", &LatencyEstimate::fused_ms)
      .def_readonly("accumulated_ms", &LatencyEstimate::accumulated_ms)
      .def_readonly("batch", &LatencyEstimate::batch)
      .def_readonly("calibration", &LatencyEstimate::calibration);
}

void bind_architecture(py::module_& m) {
  py::class_<Architecture>(m, "Architecture", "An architecture of a space: every choice fixed.")
      .def_property_readonly("file", &Architecture::file)
      .def_property_readonly("chosen", &Architecture::chosen)
      .def_property_readonly("names", &Architecture::names)
      .def("to_json", &Architecture::to_json, "The arch file text (`nasc train --arch`).")
      .def("describe", &Architecture::describe, "One line: 'op=conv, cell=sep_conv_3x3+skip'.")
      .def("size", &Architecture::size, "The fixed network's NetworkSize.")
      .def("to_dot", &Architecture::to_dot, "The fixed network as Graphviz DOT text.")
      .def(
          "save",
          [](const Architecture& a, py::handle path) {
            std::ofstream out(fspath(path));
            if (!out || !(out << a.to_json())) {
              PyErr_SetString(PyExc_OSError, ("cannot write " + fspath(path)).c_str());
              throw py::error_already_set();
            }
          },
          py::arg("path"), "Writes the arch file (what Space.fix_file and nasc train read).")
      .def("__repr__",
           [](const Architecture& a) { return "<nasc.Architecture " + a.describe() + ">"; });
}

Space compile_file(py::handle path, py::object import_paths, const std::string& network,
                   py::object overrides) {
  std::string file = fspath(path);
  CompileOptions o = compile_options(import_paths, network, overrides);
  py::gil_scoped_release release;
  return Space::compile_file(file, o);
}

Space compile_string(const std::string& text, const std::string& name, py::object import_paths,
                     const std::string& network, py::object overrides) {
  CompileOptions o = compile_options(import_paths, network, overrides);
  py::gil_scoped_release release;
  return Space::compile_string(name, text, o);
}

void bind_space_class(py::module_& m) {
  py::class_<Space>(m, "Space", "A compiled search space (Space.compile_file / compile_string).")
      .def_static("compile_file", &compile_file, py::arg("path"), py::kw_only(),
                  py::arg("import_paths") = py::none(), py::arg("network") = "",
                  py::arg("overrides") = py::none(),
                  "Compiles a .nas file. import_paths: folders for `import` (-I); network: the "
                  "network to compile (needed when the file has several); overrides: {name: value} "
                  "as --set. "
                  "Raises nasc.UserError with located diagnostics when it does not compile.")
      .def_static("compile_string", &compile_string, py::arg("text"), py::kw_only(),
                  py::arg("name") = "<string>.nas", py::arg("import_paths") = py::none(),
                  py::arg("network") = "", py::arg("overrides") = py::none(),
                  "Compiles .nas text; `name` stands for its file in diagnostics.")
      .def_property_readonly("file", &Space::file)
      .def_property_readonly("name", &Space::name)
      .def_property_readonly("network_parameters",
                             [](const Space& s) {
                               py::dict d;
                               for (const auto& [k, v] : s.network_parameters()) d[py::str(k)] = v;
                               return d;
                             })
      .def_property_readonly("inputs", &Space::inputs)
      .def_property_readonly("input_shape", &Space::input_shape)
      .def_property_readonly("output_shape", &Space::output_shape)
      .def_property_readonly("diagnostics", &Space::diagnostics, "The compiler's warnings.")
      .def_property_readonly("choices", &Space::choices)
      .def("statistics", &Space::statistics, py::call_guard<py::gil_scoped_release>())
      .def("fix", &fix, py::arg("choices"),
           "An architecture from candidate indices ([0] or [[0], [1, 2]] for a join) or from "
           "names ({'op': 'conv'}; 'a+b' or a list for a join).")
      .def("fix_json", &Space::fix_json, py::arg("json"), py::arg("name") = "arch.json",
           "An architecture from arch file text; `name` names it in errors.")
      .def(
          "fix_file", [](const Space& s, py::handle path) { return s.fix_file(fspath(path)); },
          py::arg("path"))
      .def("first_candidates", &Space::first_candidates)
      .def("sample", &Space::sample, py::arg("seed"), "A uniformly drawn architecture.")
      .def("estimate", &Space::estimate, py::arg("arch"), py::arg("train_batch") = 64,
           py::call_guard<py::gil_scoped_release>())
      .def("estimate_supernet", &Space::estimate_supernet, py::arg("train_batch") = 64,
           py::call_guard<py::gil_scoped_release>())
      .def("to_dot", &Space::to_dot)
      .def("__repr__", [](const Space& s) {
        return "<nasc.Space " + s.name() + " from " + s.file() + ", " +
               std::to_string(s.choices().size()) + " choices>";
      });
}

LatencyTable measure(const Space& space, int64_t batch, int threads, const std::string& backend,
                     int warmup, int repetitions, double trim, const std::string& statistic,
                     std::optional<Architecture> arch, py::object output, int calibrate,
                     py::object log) {
  ProfileOptions o;
  o.batch = batch;
  o.threads = threads;
  o.backend = backend;
  o.settings = {warmup, repetitions, trim, statistic};
  o.arch = std::move(arch);
  if (!output.is_none()) o.output = fspath(output);
  o.calibrate = calibrate;
  PendingError pending;
  std::optional<LatencyTable> table;
  {
    PythonLog buffer(log, &pending);
    std::ostream stream(&buffer);
    if (buffer.enabled()) o.log = &stream;
    py::gil_scoped_release release;
    table = LatencyTable::measure(space, o);
    stream.flush();
  }
  pending.raise_if_any();
  return *table;
}

void bind_latency(py::module_& m) {
  py::class_<LatencyTable>(m, "LatencyTable", "A latency table as `nasc profile` writes it.")
      .def_static(
          "load", [](py::handle path) { return LatencyTable::load(fspath(path)); }, py::arg("path"))
      .def_static("measure", &measure, py::arg("space"), py::kw_only(), py::arg("batch") = 1,
                  py::arg("threads") = 1, py::arg("backend") = "", py::arg("warmup") = -1,
                  py::arg("repetitions") = -1, py::arg("trim") = -1.0, py::arg("statistic") = "",
                  py::arg("arch") = py::none(), py::arg("output") = py::none(),
                  py::arg("calibrate") = 5, py::arg("log") = py::none(),
                  "Measures the space's op signatures (or arch's alone) as `nasc profile` "
                  "does; with output, resumes that table file and saves into it. log: None, "
                  "True (sys.stdout) or a file-like object for the progress lines.")
      .def_property_readonly("path", &LatencyTable::path)
      .def_property_readonly("batch", &LatencyTable::batch)
      .def_property_readonly("device", &LatencyTable::device)
      .def_property_readonly("entries", &LatencyTable::entries)
      .def_property_readonly("calibration", &LatencyTable::calibration)
      .def(
          "save", [](const LatencyTable& t, py::handle path) { t.save(fspath(path)); },
          py::arg("path"));
  py::class_<LatencyEstimator>(m, "LatencyEstimator",
                               "Latency of a space's architectures from a table; raises "
                               "nasc.UserError listing the signatures the table lacks.")
      .def(py::init<const Space&, const LatencyTable&>(), py::arg("space"), py::arg("table"))
      .def_property_readonly("warning", &LatencyEstimator::warning)
      .def("estimate", &LatencyEstimator::estimate, py::arg("arch"))
      .def("estimate_supernet", &LatencyEstimator::estimate_supernet);
}

}  // namespace

void bind_space(py::module_& m) {
  bind_value_types(m);
  bind_architecture(m);
  bind_space_class(m);
  bind_latency(m);
  // nasc.train and nasc.search read import_paths and overrides as Space.compile_file does.
  m.def("_compile_options", &compile_options, py::arg("import_paths"), py::arg("network"),
        py::arg("overrides"));
}

}  // namespace nasc::python
