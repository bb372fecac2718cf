// libnasc's ONNX export (nasc/export.h): the fixed network of an architecture, or of a
// built Model, with its weights, through the ONNX writer (driver/onnx_export.h).
#include <fmt/format.h>

#include "driver/api_internal.h"
#include "driver/onnx_export.h"
#include "nasc/export.h"
#include "runtime/exec/backend_registry.h"
#include "runtime/exec/param_store.h"
#include "runtime/train/tensor_file.h"
#include "runtime/train/trainer.h"

namespace nasc {
namespace detail {

nas::OnnxOptions onnx_options(const OnnxExportOptions& o, const std::string& network,
                              const std::string& space_file, const std::string& arch_json) {
  if (o.batch < 0)
    throw Error(
        Error::Kind::User,
        fmt::format("OnnxExportOptions::batch: must be >= 0 (0: any batch size), got {}", o.batch));
  nas::OnnxOptions options;
  options.batch = o.batch;
  options.fold_batchnorm = o.fold_batchnorm;
  options.metadata = {{"nasc.network", network}, {"nasc.file", space_file}};
  if (!arch_json.empty()) options.metadata["nasc.arch"] = arch_json;
  return options;
}

namespace {

// The input normalisation `nasc train` recorded in its weights file's meta (trainer.cpp:
// "input_normalization": {"mean": [...], "std": [...]}), into the model's first nodes and
// its metadata.
void take_input_normalization(const nlohmann::json& meta, const std::string& weights_file,
                              nas::OnnxOptions& options) {
  const auto it = meta.find("input_normalization");
  if (it == meta.end()) return;
  try {
    options.input_mean = it->at("mean").get<std::vector<float>>();
    options.input_std = it->at("std").get<std::vector<float>>();
  } catch (const nlohmann::json::exception&) {
    throw nas::DataFileError(weights_file,
                             "meta input_normalization: needs {\"mean\": [...], "
                             "\"std\": [...]}, one number a channel");
  }
  for (float s : options.input_std)
    if (!(s > 0))
      throw nas::DataFileError(weights_file, "meta input_normalization: a std is not positive");
  options.metadata["nasc.input_normalization"] = it->dump();
}

}  // namespace

// Writes `network` with the values a store bound to its forward plan holds.
void export_network(const nas::Graph& network, nas::ParamStore* values, uint64_t seed,
                    const std::string& weights_file, nas::OnnxOptions options,
                    const std::string& path) {
  nas::CompiledPlan forward = nas::onnx_forward_plan(network);
  nas::ParamStore own(nas::make_backend(nas::default_backend_name()));
  nas::ParamStore& store = values != nullptr ? *values : own;
  if (values == nullptr) {
    store.bind(forward.plan, seed);
    if (!weights_file.empty()) {
      const nas::TensorFile file = nas::read_tensor_file(weights_file);
      nas::params_from_file(store, file, weights_file);
      take_input_normalization(file.meta, weights_file, options);
    }
  }
  nas::ParamValues read = [&store](const std::string& name) {
    const int index = store.find(name);
    NAS_CHECK(index >= 0, "the model has no parameter `" + name + "` of its forward plan");
    return store.read(store.params()[index].value);
  };
  nas::write_onnx_model(forward, read, options, path);
}

}  // namespace detail

void export_onnx(const Architecture& arch, const std::string& path,
                 const OnnxExportOptions& options) {
  detail::translate_errors([&] {
    if (options.weights_file.empty() && !options.random_weights)
      throw Error(Error::Kind::User,
                  "OnnxExportOptions::weights_file: the weights to export are missing (a "
                  "`nasc train` run's OUTPUT/weights; or random_weights for a network with its "
                  "initial weights)");
    if (!options.weights_file.empty() && options.random_weights)
      throw Error(Error::Kind::User,
                  "OnnxExportOptions: weights_file and random_weights exclude each other");
    const nas::Graph network = nas::specialise(arch.impl().space->supernet, arch.impl().selection);
    nas::OnnxOptions o =
        detail::onnx_options(options, network.name, arch.impl().space->file, arch.to_json());
    if (!options.weights_file.empty()) o.metadata["nasc.weights"] = options.weights_file;
    detail::export_network(network, nullptr, options.seed, options.weights_file, o, path);
  });
}

}  // namespace nasc
