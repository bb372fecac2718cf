// What libnasc's public handles hold (include/nasc/*.h declare them opaque), and the
// conversion of the compiler's errors into nasc::Error. Internal to the driver library.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "compiler/estimate/estimator.h"
#include "compiler/ir/diagnostics.h"
#include "compiler/ir/ir.h"
#include "compiler/passes/selection.h"
#include "compiler/pipeline/pipeline.h"
#include "driver/onnx_export.h"
#include "nasc/diagnostics.h"
#include "nasc/export.h"
#include "nasc/space.h"
#include "runtime/estimate/lut.h"

namespace nas {
class ParamStore;
}

namespace nasc {

struct Space::Impl {
  std::string file;
  nas::Graph supernet;
  std::vector<Diagnostic> warnings;
  std::vector<Choice> choices;
};

struct Architecture::Impl {
  std::shared_ptr<const Space::Impl> space;
  nas::Selection selection;
  std::string file;  // the arch file it was read from, "" when made otherwise
};

struct LatencyTable::Impl {
  std::string path;
  nas::LatencyTable table;
};

namespace detail {

// The compiler stops after this many errors, as the CLI does.
constexpr size_t kMaxErrors = 20;

inline nas::CompileOptions internal_options(const CompileOptions& o) {
  nas::CompileOptions c;
  c.include_paths = o.import_paths;
  c.elaborate.network = o.network;
  c.elaborate.overrides = o.overrides;
  return c;
}

std::vector<Diagnostic> to_public(const nas::Diagnostics& diags);
StaticEstimate to_public(const nas::StaticEstimate& s);

// A user Error carrying every diagnostic, its message the rendered errors.
[[noreturn]] void throw_diagnostics(const nas::Diagnostics& diags);

// The ONNX export (driver/api_export.cpp), shared by export_onnx and Model::export_onnx:
// the writer's options from the public ones (a user Error for a bad batch), and the
// writing of `network` with the values of `values` (a store bound to a plan of it), or
// with null, of a store made here from `seed` and filled from `weights_file` unless "".
nas::OnnxOptions onnx_options(const OnnxExportOptions& o, const std::string& network,
                              const std::string& space_file, const std::string& arch_json);
// A weights file's recorded input normalisation (nasc train's) joins the options.
void export_network(const nas::Graph& network, nas::ParamStore* values, uint64_t seed,
                    const std::string& weights_file, nas::OnnxOptions options,
                    const std::string& path);

// Runs fn, turning the compiler's and runtime's error channels into nasc::Error: a
// nas::UserError into a user Error with its located message, an InternalError (or any
// other exception but a nasc::Error) into an internal Error.
template <typename F>
auto translate_errors(F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const nas::UserError& e) {
    throw Error(Error::Kind::User, e.what());
  } catch (const nas::InternalError& e) {
    throw Error(Error::Kind::Internal, e.what());
  } catch (const std::exception& e) {  // a library's exception: a bug, not bad input
    throw Error(Error::Kind::Internal, std::string("internal error: ") + e.what());
  }
}

}  // namespace detail
}  // namespace nasc
