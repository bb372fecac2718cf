"""nasc for Python: compile search spaces, estimate, fix architectures, run networks on
numpy arrays, and train or search with Python callbacks (docs/python.md).

A thin layer over libnasc's C++ API (include/nasc/, docs/embedding.md):

    import nasc
    space = nasc.Space.compile_file("examples/tiny.nas")
    arch = space.fix({"op": "conv"})
    model = nasc.Model.build(arch, batch=16)
    result = model.train_step(images, labels)   # float32 [n, 1, 28, 28], int [n]

Every failure raises nasc.Error: nasc.UserError for a mistake in the inputs (with the
compiler's located diagnostics when a space does not compile), nasc.InternalError for a
bug in nasc. Wrong numpy arguments raise TypeError or ValueError.
"""
import json as _json
import os as _os

from ._nasc import (  # noqa: F401  (the public names)
    Architecture, Backend, Choice, CompileOptions, Diagnostic, DiagnosticNote, EpochInfo,
    Error, Input, InternalError, LatencyEstimate, LatencyEstimator, LatencyTable, Location,
    Mode, Model, NetworkSize, ParallelOptions, RetrainResult, RunOptions, SearchResult,
    Space, SpaceStatistics, StaticEstimate, StepInfo, StepResult, TrainResult, UserError,
    backend_problem, backends, check_backend, create_run_dir, human_count, process_group,
    version, with_commas)
from . import _nasc

__version__ = version()

# Shown as nasc.Space rather than nasc._nasc.Space in reprs, help() and tracebacks.
for _name in dir(_nasc):
    _obj = getattr(_nasc, _name)
    if isinstance(_obj, type) and getattr(_obj, "__module__", "") == "nasc._nasc":
        _obj.__module__ = "nasc"
del _name, _obj

__all__ = [
    "Architecture", "Backend", "Choice", "Diagnostic", "EpochInfo", "Error", "Input",
    "InternalError", "LatencyEstimate", "LatencyEstimator", "LatencyTable", "Mode", "Model",
    "NetworkSize", "RetrainResult", "SearchResult", "Space", "SpaceStatistics",
    "StaticEstimate", "StepInfo", "StepResult", "TrainResult", "UserError", "backend_problem",
    "backends", "check_backend", "create_run_dir", "human_count", "process_group", "search", "train",
    "version",
    "with_commas",
]


def _options(space_file, *, output_dir, config, data, epochs, threads, backend, resume,
             import_paths, network, overrides, sync_bn=False, comm_timeout=None):
    o = RunOptions()
    o.parallel.sync_batchnorm = bool(sync_bn)
    if comm_timeout is not None:
        o.parallel.timeout_seconds = float(comm_timeout)
    o.space_file = _os.fspath(space_file)
    o.compile = _nasc._compile_options(import_paths, network or "", overrides)
    if isinstance(config, dict):
        o.config_json = _json.dumps(config)
    elif isinstance(config, str) and config.lstrip().startswith("{"):
        o.config_json = config
    elif config is not None:
        o.config_file = _os.fspath(config)
    if data is not None:
        o.data = str(data)
    if epochs is not None:
        o.epochs = int(epochs)
    if threads is not None:
        o.threads = int(threads)
    if backend is not None:
        o.backend = backend
    o.output_dir = (_os.fspath(output_dir) if output_dir is not None
                    else create_run_dir(o.space_file))
    o.resume = bool(resume)
    return o


def train(space_file, *, output_dir=None, arch=None, config=None, data=None, epochs=None,
          threads=None, backend=None, resume=False, init_weights=None, import_paths=None,
          network=None, overrides=None, log=None, on_step=None, on_epoch=None, sync_bn=False,
          comm_timeout=None):
    """Trains a network as `nasc train` does, into a run folder; returns a TrainResult.

    space_file: the .nas file; arch: its arch file (a space with choices needs one).
    output_dir: the run folder (None: a new runs/<stem>-<n>, as the CLI without -o).
    config: a dict, JSON text, or a config file's path (docs/train.md); None: defaults.
    data ('synthetic', 'fashion-mnist', 'cifar10:DIR', 'npy:DIR', 'images:DIR'), epochs,
    threads, backend: override the config's. resume: continue the run folder's checkpoint.
    init_weights: initial weights (`--init`). import_paths, network, overrides: as
    Space.compile_file. log: None (silent), True (sys.stdout) or a file-like object for the
    progress lines.

    on_step(nasc.StepInfo) after each optimizer step and on_epoch(nasc.EpochInfo) after each
    epoch: return a true value to go on; False or any falsy value (None included) stops the
    run, which then writes its results from the state it has and says stopped=True. An
    exception raised in a callback stops the run and is raised here, as is
    KeyboardInterrupt for Ctrl-C. The GIL is released while the run computes.

    Under `mpirun -n N python3 script.py` every rank's call is one rank of a data-parallel
    run (docs/scaling.md): sync_bn takes batch-norm statistics over the whole batch,
    comm_timeout (seconds) bounds every wait for the other ranks; process_group() says
    which rank this is.
    """
    o = _options(space_file, output_dir=output_dir, config=config, data=data, epochs=epochs,
                 threads=threads, backend=backend, resume=resume, import_paths=import_paths,
                 network=network, overrides=overrides, sync_bn=sync_bn,
                 comm_timeout=comm_timeout)
    if arch is not None:
        o.arch_file = _os.fspath(arch)
    if init_weights is not None:
        o.init_weights = _os.fspath(init_weights)
    return _nasc._train(o, on_step, on_epoch, log)


def search(space_file, *, output_dir=None, algorithm=None, config=None, data=None,
           epochs=None, threads=None, backend=None, resume=False, lut=None, rerank=None,
           retrain=False, import_paths=None, network=None, overrides=None, log=None,
           on_step=None, on_epoch=None, sync_bn=False, comm_timeout=None):
    """Searches a space as `nasc search` does, into a run folder; returns a SearchResult
    (its choices, arch_json and arch_file hold the architecture found).

    algorithm: 'darts', 'darts2', 'pnas', 'random' or 'evolution' (None: the config's).
    lut: a latency table for the latency regularizer. rerank: the K best candidates
    trained briefly from scratch. retrain: train the found architecture afterwards into
    output_dir/retrain. The other arguments, the callbacks included, are train()'s.
    """
    o = _options(space_file, output_dir=output_dir, config=config, data=data, epochs=epochs,
                 threads=threads, backend=backend, resume=resume, import_paths=import_paths,
                 network=network, overrides=overrides, sync_bn=sync_bn,
                 comm_timeout=comm_timeout)
    if algorithm is not None:
        o.algorithm = algorithm
    if lut is not None:
        o.lut = _os.fspath(lut)
    if rerank is not None:
        o.rerank = int(rerank)
    o.retrain = bool(retrain)
    return _nasc._search(o, on_step, on_epoch, log)
