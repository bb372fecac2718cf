// nasc.Model on numpy arrays: images float32 [n, C, H, W], labels int32 [n]. Arrays are
// checked here, before libnasc reads raw pointers from them: a wrong shape, a dtype that
// cannot stand for images or labels, or a label outside [0, classes) raises a Python
// exception naming the argument, where the C++ API would read out of bounds. Other real
// dtypes and non-contiguous arrays are converted (a copy), as numpy would.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <mutex>

#include "bindings.h"
#include "nasc/nasc.h"

namespace nasc::python {
namespace {

// A Model and a lock: runs release the GIL, and two Python threads must not run one
// model's buffers at once.
struct PyModel {
  explicit PyModel(Model m) : model(std::move(m)) {}
  Model model;
  std::mutex mutex;
};

struct PyStepResult {
  double loss = 0, accuracy = 0;
  int64_t samples = 0;
  py::object logits = py::none();  // [n, classes] float32 when forward was asked for them
};

std::string shape_of(const py::array& a) {
  std::string out = "[";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) out += (i ? ", " : "") + std::to_string(a.shape(i));
  return out + "]";
}

std::string dtype_of(const py::array& a) {
  return py::str(a.dtype()).cast<std::string>();
}

py::array as_array(py::handle obj, const char* what) {
  py::array a = py::array::ensure(obj);
  if (!a) {
    PyErr_Clear();
    throw py::type_error(std::string(what) + " must be a numpy array, got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  }
  return a;
}

// Images as a C-contiguous float32 array of n samples of the model's input shape.
py::array_t<float> checked_images(py::handle obj, const PyModel& m, int64_t* samples) {
  py::array a = as_array(obj, "images");
  char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw py::type_error(
        "images must be a real-valued array (float32; other float and integer "
        "dtypes are converted), got dtype " +
        dtype_of(a));
  const std::vector<int64_t> per_sample = m.model.input_shape();
  // A training model's plan runs whole batches only (its batch-norm statistics are of the
  // batch; the executor's check is an internal error), an eval model's 1..batch images.
  const bool whole = m.model.mode() == Mode::Train;
  const int64_t batch = m.model.batch();
  std::string expected = whole ? "[" + std::to_string(batch) : std::string("[n");
  for (int64_t d : per_sample) expected += ", " + std::to_string(d);
  expected += whole ? "] (a training model runs whole batches of " + std::to_string(batch) + ")"
                    : "] with n in 1.." + std::to_string(batch);
  bool fits = a.ndim() == static_cast<py::ssize_t>(per_sample.size() + 1);
  for (size_t i = 0; fits && i < per_sample.size(); ++i) fits = a.shape(i + 1) == per_sample[i];
  if (!fits || a.shape(0) < (whole ? batch : 1) || a.shape(0) > batch)
    throw py::value_error("images must have shape " + expected + ", got " + shape_of(a));
  *samples = a.shape(0);
  return py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
}

// Labels as a C-contiguous int32 array of `samples` classes in [0, classes).
py::array_t<int32_t> checked_labels(py::handle obj, const PyModel& m, int64_t samples) {
  py::array a = as_array(obj, "labels");
  char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(
        "labels must be an integer array (int32; other integer dtypes are "
        "converted), got dtype " +
        dtype_of(a));
  if (a.ndim() != 1 || a.shape(0) != samples)
    throw py::value_error("labels must have shape [" + std::to_string(samples) +
                          "] (one per image), got " + shape_of(a));
  // Checked as int64 so that no int32 conversion wraps a large value into range (a uint64
  // beyond int64 wraps to a negative number here, which is refused too).
  auto wide = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!wide) throw py::error_already_set();
  const int64_t classes = m.model.classes();
  const int64_t* v = wide.data();
  for (int64_t i = 0; i < samples; ++i)
    if (v[i] < 0 || v[i] >= classes)
      throw py::value_error("labels[" + std::to_string(i) + "] is " + std::to_string(v[i]) +
                            ": labels must be in [0, " + std::to_string(classes) + ")");
  return py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(wide);
}

PyStepResult to_python(const StepResult& r) {
  return {r.loss, r.accuracy, r.samples};
}

PyStepResult forward(PyModel& m, py::handle images, py::handle labels, bool logits) {
  int64_t n = 0;
  py::array_t<float> x = checked_images(images, m, &n);
  std::optional<py::array_t<int32_t>> y;
  if (!labels.is_none()) y = checked_labels(labels, m, n);
  py::array_t<float> out;
  if (logits) out = py::array_t<float>({n, m.model.classes()});
  float* out_data = logits ? out.mutable_data() : nullptr;
  StepResult r;
  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(m.mutex);
    r = m.model.forward(x.data(), y ? y->data() : nullptr, n, out_data);
  }
  PyStepResult p = to_python(r);
  if (logits) p.logits = out;
  return p;
}

// forward_backward and train_step: both need labels.
template <typename Run>
PyStepResult training_run(PyModel& m, py::handle images, py::handle labels, Run run) {
  int64_t n = 0;
  py::array_t<float> x = checked_images(images, m, &n);
  py::array_t<int32_t> y = checked_labels(labels, m, n);
  py::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(m.mutex);
  return to_python(run(m.model, x.data(), y.data(), n));
}

Mode mode_of(py::handle mode) {
  if (py::isinstance<py::str>(mode)) {
    std::string s = mode.cast<std::string>();
    if (s == "train") return Mode::Train;
    if (s == "eval") return Mode::Eval;
    throw py::value_error("mode must be 'train' or 'eval', got '" + s + "'");
  }
  return mode.cast<Mode>();
}

std::unique_ptr<PyModel> build(const Architecture& arch, int64_t batch, py::handle mode,
                               const std::string& backend, uint64_t seed,
                               const std::string& optimizer, double learning_rate, double momentum,
                               double weight_decay, int threads) {
  ModelOptions o;
  o.batch = batch;
  o.mode = mode_of(mode);
  o.backend = backend;
  o.seed = seed;
  o.optimizer = optimizer;
  o.learning_rate = learning_rate;
  o.momentum = momentum;
  o.weight_decay = weight_decay;
  o.threads = threads;
  if (batch < 1) throw py::value_error("batch must be at least 1, got " + std::to_string(batch));
  py::gil_scoped_release release;
  return std::make_unique<PyModel>(Model::build(arch, o));
}

// A method that only changes the model: run with the GIL released, under the model's lock.
template <typename F>
auto locked(F f) {
  return [f](PyModel& m) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(m.mutex);
    f(m.model);
  };
}

}  // namespace

void bind_model(py::module_& m) {
  py::enum_<Mode>(m, "Mode", "Train: forward, loss and backward; Eval: forward and loss.")
      .value("Train", Mode::Train)
      .value("Eval", Mode::Eval);
  py::class_<PyStepResult>(m, "StepResult",
                           "What one run computed: mean loss, accuracy (0..1), samples, and "
                           "logits ([n, classes] float32) when forward(logits=True).")
      .def_readonly("loss", &PyStepResult::loss)
      .def_readonly("accuracy", &PyStepResult::accuracy)
      .def_readonly("samples", &PyStepResult::samples)
      .def_readonly("logits", &PyStepResult::logits)
      .def("__repr__", [](const PyStepResult& r) {
        return "<nasc.StepResult loss=" + std::to_string(r.loss) +
               " accuracy=" + std::to_string(r.accuracy) + " samples=" + std::to_string(r.samples) +
               ">";
      });
  py::class_<PyModel>(m, "Model", "A fixed architecture compiled at a batch size (Model.build).")
      .def_static("build", &build, py::arg("arch"), py::kw_only(), py::arg("batch") = 32,
                  py::arg("mode") = "train", py::arg("backend") = "", py::arg("seed") = 0,
                  py::arg("optimizer") = "sgd", py::arg("learning_rate") = 0.05,
                  py::arg("momentum") = 0.9, py::arg("weight_decay") = 0.0, py::arg("threads") = 0,
                  "Builds the architecture's network with fresh weights. mode: 'train' or "
                  "'eval' (or nasc.Mode); backend: '' for the default (nasc.backends()); "
                  "optimizer: 'sgd' or 'adam'; threads: CPU threads (0 = every core).")
      .def_property_readonly("mode", [](const PyModel& p) { return p.model.mode(); })
      .def_property_readonly("batch", [](const PyModel& p) { return p.model.batch(); })
      .def_property_readonly("input_shape", [](const PyModel& p) { return p.model.input_shape(); })
      .def_property_readonly("input_size", [](const PyModel& p) { return p.model.input_size(); })
      .def_property_readonly("classes", [](const PyModel& p) { return p.model.classes(); })
      .def_property_readonly("parameter_count",
                             [](const PyModel& p) { return p.model.parameter_count(); })
      .def("forward", &forward, py::arg("images"), py::arg("labels") = py::none(),
           py::arg("logits") = false,
           "Forward and loss on images [n, C, H, W] and labels [n] (None: an eval model "
           "computes no loss). No gradients. logits=True also returns the logits.")
      .def(
          "forward_backward",
          [](PyModel& p, py::handle x, py::handle y) {
            return training_run(p, x, y, [](Model& m, const float* a, const int32_t* b, int64_t n) {
              return m.forward_backward(a, b, n);
            });
          },
          py::arg("images"), py::arg("labels"),
          "Forward, loss and backward, adding to the gradients (zero_grads() first).")
      .def(
          "train_step",
          [](PyModel& p, py::handle x, py::handle y) {
            return training_run(p, x, y, [](Model& m, const float* a, const int32_t* b, int64_t n) {
              return m.train_step(a, b, n);
            });
          },
          py::arg("images"), py::arg("labels"),
          "zero_grads, forward_backward and optimizer_step: one training step.")
      .def("zero_grads", locked([](Model& m) { m.zero_grads(); }))
      .def("optimizer_step", locked([](Model& m) { m.optimizer_step(); }))
      .def(
          "set_learning_rate",
          [](PyModel& p, double lr) {
            std::lock_guard<std::mutex> lock(p.mutex);
            p.model.set_learning_rate(lr);
          },
          py::arg("learning_rate"))
      .def(
          "save_weights",
          [](PyModel& p, py::handle path) {
            std::string file = fspath(path);
            py::gil_scoped_release release;
            std::lock_guard<std::mutex> lock(p.mutex);
            p.model.save_weights(file);
          },
          py::arg("path"), "Writes the weights as safetensors (what nasc train leaves).")
      .def(
          "load_weights",
          [](PyModel& p, py::handle path) {
            std::string file = fspath(path);
            py::gil_scoped_release release;
            std::lock_guard<std::mutex> lock(p.mutex);
            p.model.load_weights(file);
          },
          py::arg("path"), "Reads a weights file of this network (save_weights', nasc train's).");
}

}  // namespace nasc::python
