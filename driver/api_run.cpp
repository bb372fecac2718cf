// libnasc's train and search over the driver's runs (driver/run_setup.h), and the
// library's version, backends and number formatting.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <ostream>
#include <streambuf>

#include "driver/api_internal.h"
#include "driver/run_setup.h"
#include "nasc/nasc.h"
#include "runtime/dist/collectives.h"
#include "runtime/exec/backend_registry.h"
#include "support/format.h"

namespace nasc {
namespace {

// Where a run prints when the caller wants no output.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

// create_run_dir's work, on the rank that creates the folder.
std::string create_run_dir_here(const std::string& space_file, const std::string& parent);

// The MPI job this process is part of, if any (mpi_world initialises MPI on first use);
// a positive timeout replaces the collectives' current one.
nas::Collectives* world(double timeout_seconds) {
  return detail::translate_errors([&] { return nas::mpi_world(timeout_seconds); });
}

nas::DataParallel join_parallel_run(const RunOptions& o) {
  nas::DataParallel p;
  if (!(o.parallel.timeout_seconds > 0))
    throw Error(Error::Kind::User, "RunOptions::parallel.timeout_seconds: must be positive");
  if (!o.parallel.use_mpi) return p;
  p.collectives = world(o.parallel.timeout_seconds);
  p.sync_batchnorm = o.parallel.sync_batchnorm;
  // The collectives reduce host memory; a GPU backend's gradients live on the device.
  if (p.ranks() > 1 && o.backend == "cuda")
    throw Error(Error::Kind::User,
                "--backend cuda does not run under mpirun yet (the gradient allreduce works "
                "on host memory); run one process, or use --backend jit");
  return p;
}

// The temporary folders of ranks whose process is gone (killed, or ended by MPI_Abort
// before they could remove theirs): nasc-rank-<pid>-XXXXXX with no process <pid>.
void remove_abandoned_rank_folders() {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(fs::temp_directory_path(), ec)) {
    const std::string name = e.path().filename().string();
    const std::string prefix = "nasc-rank-";
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      fs::remove_all(e.path(), ec);
  }
}

// Where this rank's run writes: rank 0 (and a process alone) the run folder; another rank
// a private temporary folder, removed at the end (or by a later run, when this process is
// killed), holding a copy of the run folder when resuming (the checkpoint it continues
// from). The ranks wait for each other once, so that rank 0 changes nothing in the run
// folder before the others have copied it.
class RankRunFolder {
 public:
  RankRunFolder(const RunOptions& o, const nas::DataParallel& p) : dir_(o.output_dir) {
    namespace fs = std::filesystem;
    if (p.ranks() == 1) return;
    if (p.rank() > 0) {
      remove_abandoned_rank_folders();
      std::string pattern =
          (fs::temp_directory_path() / ("nasc-rank-" + std::to_string(::getpid()) + "-XXXXXX"))
              .string();
      if (mkdtemp(pattern.data()) == nullptr)
        throw Error(Error::Kind::User, pattern + ": cannot create rank " +
                                           std::to_string(p.rank()) + "'s temporary folder");
      scratch_ = pattern;
      dir_ = (fs::path(scratch_) / "run").string();
      std::error_code ec;
      if (o.resume && fs::is_directory(o.output_dir, ec))
        fs::copy(o.output_dir, dir_, fs::copy_options::recursive, ec);
      if (ec)
        throw Error(Error::Kind::User, o.output_dir + ": rank " + std::to_string(p.rank()) +
                                           " cannot copy the run folder: " + ec.message());
    }
    detail::translate_errors([&] { p.collectives->barrier("start of the run"); });
  }
  ~RankRunFolder() {
    std::error_code ec;
    if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
  }
  RankRunFolder(const RankRunFolder&) = delete;
  RankRunFolder& operator=(const RankRunFolder&) = delete;

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, scratch_;
};

// This rank's side of a train or search: its place in the job, its folder, and the options
// it runs with (its folder, and no output on ranks other than 0).
struct RankRun {
  explicit RankRun(const RunOptions& o)
      : parallel(join_parallel_run(o)), folder(o, parallel), options(o) {
    options.output_dir = folder.dir();
    if (parallel.rank() > 0) options.log = nullptr;
  }

  const nas::DataParallel parallel;
  const RankRunFolder folder;
  RunOptions options;
};

nas::driver::RunRequest request(const RunOptions& o, const nas::DataParallel& parallel) {
  nas::driver::RunRequest r;
  r.parallel = parallel;
  r.file = o.space_file;
  r.include_paths = o.compile.import_paths;
  r.network = o.compile.network;
  r.overrides = o.compile.overrides;
  r.config_file = o.config_file;
  r.config_json = o.config_json;
  r.data = o.data;
  r.epochs = o.epochs;
  r.threads = o.threads;
  r.backend = o.backend;
  r.output = o.output_dir;
  r.resume = o.resume;
  r.arch = o.arch_file;
  r.init = o.init_weights;
  r.algorithm = o.algorithm;
  r.lut = o.lut;
  r.rerank = o.rerank;
  r.retrain = o.retrain;
  if (o.callbacks.on_step)
    r.control.on_step = [cb = o.callbacks.on_step](const nas::StepReport& s) {
      return cb({s.epoch, s.epochs, s.step, s.steps, s.global_step, s.loss, s.accuracy, s.lr});
    };
  if (o.callbacks.on_epoch)
    r.control.on_epoch = [cb = o.callbacks.on_epoch](const nas::EpochReport& e) {
      return cb({e.epoch, e.epochs, e.train_loss, e.train_accuracy, e.eval_loss, e.eval_accuracy,
                 e.seconds});
    };
  return r;
}

void check_options(const RunOptions& o) {
  if (o.space_file.empty()) throw Error(Error::Kind::User, "RunOptions::space_file: not given");
  if (o.output_dir.empty()) throw Error(Error::Kind::User, "RunOptions::output_dir: not given");
  if (!o.config_file.empty() && !o.config_json.empty())
    throw Error(Error::Kind::User, "RunOptions: give config_file or config_json, not both");
  // A backend that cannot run here (the CUDA plugin without a GPU) is refused before the
  // run folder is made.
  if (!o.backend.empty()) {
    check_backend(o.backend);
    const std::string problem = backend_problem(o.backend);
    if (!problem.empty())
      throw Error(Error::Kind::User, "RunOptions::backend: " + o.backend + ": " + problem);
  }
}

// Runs fn(diags, out): its result and the warnings it reported; the errors it reported
// are thrown as a user Error with every diagnostic.
template <typename F>
auto run_reporting(const RunOptions& o, F&& fn) {
  return detail::translate_errors([&] {
    nas::Diagnostics diags;
    NullBuffer null;
    std::ostream quiet(&null);
    std::ostream& out = o.log ? *o.log : quiet;
    decltype(fn(diags, out)) result;
    try {
      result = fn(diags, out);
    } catch (const nas::TooManyErrors&) {  // the error limit: the diagnostics say why
      detail::throw_diagnostics(diags);
    }
    if (!result || diags.has_errors()) detail::throw_diagnostics(diags);
    return std::make_pair(std::move(*result), detail::to_public(diags));
  });
}

}  // namespace

TrainResult train(const RunOptions& options) {
  check_options(options);
  const RankRun rank(options);
  auto [run, warnings] =
      run_reporting(rank.options, [&](nas::Diagnostics& diags, std::ostream& out) {
        return nas::driver::train(request(rank.options, rank.parallel), diags, out);
      });
  const nas::TrainSummary& s = run.summary;
  TrainResult r;
  r.epochs = run.config.epochs;
  r.warnings = std::move(warnings);
  r.epochs_run = s.epochs_run;
  r.train_loss = s.train_loss;
  r.train_accuracy = s.train_accuracy;
  r.test_loss = s.test_loss;
  r.test_accuracy = s.test_accuracy;
  r.seconds = s.seconds;
  r.stopped = s.stopped;
  r.weights_file = (std::filesystem::path(options.output_dir) / "weights").string();
  return r;
}

SearchResult search(const RunOptions& options) {
  check_options(options);
  if (!options.init_weights.empty())
    throw Error(Error::Kind::User,
                "RunOptions::init_weights: a search starts from random weights; initial weights "
                "are for train");
  const RankRun rank(options);
  auto [summary, warnings] =
      run_reporting(rank.options, [&](nas::Diagnostics& diags, std::ostream& out) {
        return nas::driver::search(request(rank.options, rank.parallel), diags, out);
      });
  const nas::SearchSummary* s = &summary;
  SearchResult r;
  r.warnings = std::move(warnings);
  r.epochs_run = s->epochs_run;
  r.arch_json = s->genotype.arch.dump(2);
  r.choices = s->genotype.names;
  r.params = s->genotype.params;
  r.macs = s->genotype.macs;
  r.latency_ms = s->genotype.latency_ms;
  r.measured_latency_ms = s->genotype.measured_latency_ms;
  r.valid_accuracy = s->valid_accuracy;
  r.seconds = s->seconds;
  r.stopped = s->stopped;
  r.search_seconds = s->search_seconds;
  r.arch_file = (std::filesystem::path(options.output_dir) / "arch.json").string();
  r.result_file = (std::filesystem::path(options.output_dir) / "result.json").string();
  if (s->retrain) {
    const nas::RetrainOutcome& o = *s->retrain;
    r.retrained = true;
    r.retrain.dir = o.dir;
    for (auto it = o.network.begin(); it != o.network.end(); ++it)
      r.retrain.network[it.key()] = it->dump();
    r.retrain.params = o.params;
    r.retrain.macs = o.macs;
    r.retrain.epochs = o.epochs;
    r.retrain.epochs_run = o.epochs_run;
    r.retrain.train_accuracy = o.train_accuracy;
    r.retrain.test_loss = o.test_loss;
    r.retrain.test_accuracy = o.test_accuracy;
    r.retrain.seconds = o.seconds;
    r.retrain.stopped = o.stopped;
    r.retrain.weights_file = (std::filesystem::path(o.dir) / "weights").string();
  }
  return r;
}

std::string create_run_dir(const std::string& space_file, const std::string& parent) {
  nas::Collectives* group = world(0);
  if (group == nullptr) return create_run_dir_here(space_file, parent);
  // Rank 0 creates it and sends the name (its length first); an error there ends the job.
  std::string name = group->rank() == 0 ? create_run_dir_here(space_file, parent) : "";
  detail::translate_errors([&] {
    uint64_t length = name.size();
    group->broadcast(&length, sizeof length, 0, "run folder name");
    name.resize(length);
    group->broadcast(name.data(), length, 0, "run folder name");
  });
  return name;
}

ProcessGroup process_group() {
  nas::Collectives* group = world(0);
  return group ? ProcessGroup{group->rank(), group->size()} : ProcessGroup{};
}

void abort_process_group(int exit_code) {
  nas::abort_mpi_world(exit_code);
}

namespace {

std::string create_run_dir_here(const std::string& space_file, const std::string& parent) {
  namespace fs = std::filesystem;
  std::string stem = fs::path(space_file).stem().string();
  if (stem.empty()) stem = "run";
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec)
    throw Error(Error::Kind::User,
                parent + ": cannot create the folder for run folders (" + ec.message() + ")");
  // Bounded, so that a folder that refuses every name cannot loop forever.
  for (int n = 1; n <= 1000000; ++n) {
    const fs::path dir = fs::path(parent) / (stem + "-" + std::to_string(n));
    if (fs::create_directory(dir, ec)) return dir.string();
    if (ec)
      throw Error(Error::Kind::User,
                  dir.string() + ": cannot create the run folder (" + ec.message() + ")");
  }
  throw Error(Error::Kind::User, parent + ": no free run folder name " + stem + "-N left");
}

}  // namespace

std::string version() {
  return NASC_VERSION;
}

std::vector<BackendDescription> backends() {
  std::vector<BackendDescription> out;
  for (const nas::BackendInfo& b : nas::registered_backends())
    out.push_back({b.name, b.description, b.name == nas::default_backend_name()});
  return out;
}

std::string backend_problem(const std::string& name, std::string* device) {
  check_backend(name);
  for (const nas::BackendInfo& b : nas::registered_backends()) {
    if (b.name != nas::canonical_backend_name(name)) continue;
    nas::BackendProbe probe = nas::probe_backend(b);
    if (device) *device = probe.device;
    return probe.problem;
  }
  return {};
}

void check_backend(const std::string& name) {
  const std::string problem = nas::backend_name_problem(name);
  if (!problem.empty()) throw Error(Error::Kind::User, problem);
}

std::string with_commas(int64_t value) {
  return nas::with_commas(value);
}

std::string human_count(double value) {
  return nas::human_count(value);
}

}  // namespace nasc
