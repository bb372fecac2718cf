"""nasc.train and nasc.search with Python callbacks: a falsy answer stops the run (and the
result says so), an exception raised in a callback stops it and is raised again, Ctrl-C
stops it, the log goes to a file-like object, and the GIL is free while it computes."""
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

import nasc
from conftest import EXAMPLES, SOURCE_DIR, TINY

# Small and single-threaded, as tests/test_api.cpp's runs: 8 steps per epoch.
TRAIN = {"epochs": 3, "seed": 1, "threads": 1,
         "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 32}}
SEARCH = {"epochs": 3, "seed": 1, "threads": 1, "warmup_epochs": 0,
          "data": {"name": "synthetic", "synthetic_samples": 512, "batch_size": 32}}
ARCH = EXAMPLES / "tiny_conv.json"


def test_train_whole_then_stopped_after_epoch_one(tmp_path):
    log = io.StringIO()
    steps = []
    whole = nasc.train(TINY, arch=ARCH, config=TRAIN, output_dir=tmp_path / "whole", log=log,
                       on_step=lambda s: steps.append(s.global_step) or True)
    assert not whole.stopped and whole.epochs_run == 3 and whole.epochs == 3
    assert steps == list(range(1, 25))
    assert os.path.exists(whole.weights_file)
    assert "epoch" in log.getvalue()

    epochs = []
    stopped = nasc.train(TINY, arch=ARCH, config=json.dumps(TRAIN), output_dir=tmp_path / "stop",
                         on_epoch=lambda e: epochs.append(e) or e.epoch < 1)
    assert stopped.stopped and stopped.epochs_run == 1
    assert [e.epoch for e in epochs] == [1] and epochs[0].epochs == 3
    assert (tmp_path / "stop" / "checkpoint").exists()


def test_search_stopped_by_a_step_callback(tmp_path):
    seen = []

    def on_step(s):
        seen.append(s)
        return 0 if s.global_step >= 3 else 1  # any falsy value stops

    r = nasc.search(TINY, algorithm="darts", config=SEARCH, output_dir=tmp_path / "s",
                    on_step=on_step)
    assert r.stopped and r.epochs_run == 0
    assert [s.global_step for s in seen] == [1, 2, 3]
    assert set(r.choices) == {"op"} and os.path.exists(r.arch_file)
    arch = nasc.Space.compile_file(TINY).fix_json(r.arch_json)
    assert arch.names == r.choices


def test_search_stopped_after_epoch_one(tmp_path):
    r = nasc.search(TINY, algorithm="darts", config=SEARCH, output_dir=tmp_path / "s",
                    on_epoch=lambda e: False)
    assert r.stopped and r.epochs_run == 1


def test_a_callback_that_raises_stops_the_run_and_is_raised(tmp_path):
    calls = []

    def on_step(s):
        calls.append(s.global_step)
        if s.global_step == 2:
            raise RuntimeError("stop here")
        return True

    with pytest.raises(RuntimeError, match="stop here"):
        nasc.train(TINY, arch=ARCH, config=TRAIN, output_dir=tmp_path / "r", on_step=on_step)
    assert calls == [1, 2]  # not called again after raising
    with pytest.raises(ZeroDivisionError):
        nasc.search(TINY, algorithm="darts", config=SEARCH, output_dir=tmp_path / "s",
                    on_epoch=lambda e: 1 / 0)


def test_a_failing_log_stops_the_run_with_its_error(tmp_path):
    class Broken:
        def write(self, text):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        nasc.train(TINY, arch=ARCH, config=TRAIN, output_dir=tmp_path / "r", log=Broken())
    with pytest.raises(TypeError, match="log must be"):
        nasc.train(TINY, arch=ARCH, config=TRAIN, output_dir=tmp_path / "r2", log=42)
    with pytest.raises(TypeError, match="callables"):
        nasc.train(TINY, arch=ARCH, config=TRAIN, output_dir=tmp_path / "r3", on_step=5)


def test_log_true_prints_to_sys_stdout(tmp_path, capsys):
    nasc.train(TINY, arch=ARCH, config=TRAIN, epochs=1, output_dir=tmp_path / "r", log=True)
    assert "epoch" in capsys.readouterr().out


def test_run_errors_are_user_errors(tmp_path):
    with pytest.raises(nasc.UserError, match="<config>: epochs"):
        nasc.train(TINY, arch=ARCH, config={"epochs": -1}, output_dir=tmp_path / "a")
    with pytest.raises(nasc.UserError, match="cpux"):
        nasc.train(TINY, arch=ARCH, config=TRAIN, backend="cpux", output_dir=tmp_path / "b")
    with pytest.raises(nasc.UserError, match="did you mean `darts`"):
        nasc.search(TINY, algorithm="dartz", config=SEARCH, output_dir=tmp_path / "c")
    config = tmp_path / "cfg.json"
    config.write_text('{"epochs": 1,\n "nonsense": 3}')
    with pytest.raises(nasc.UserError, match="nonsense"):
        nasc.train(TINY, arch=ARCH, config=config, output_dir=tmp_path / "d")


def test_the_gil_is_released_during_a_run(tmp_path):
    ticks = [0]
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    thread = threading.Thread(target=count)
    thread.start()
    at_epoch = []
    try:
        nasc.train(TINY, arch=ARCH, config=TRAIN, output_dir=tmp_path / "r",
                   on_epoch=lambda e: at_epoch.append(ticks[0]) or True)
    finally:
        done.set()
        thread.join()
    assert len(at_epoch) == 3 and at_epoch[2] > at_epoch[1] > at_epoch[0]


# A run far too long to finish, interrupted by SIGINT once its first epoch is recorded:
# the signal must stop it through the run's own check (no Python callback is given).
CHILD = """
import sys, nasc
cfg = {"epochs": 100000, "seed": 1, "threads": 1,
       "data": {"name": "synthetic", "synthetic_samples": 256, "batch_size": 32}}
try:
    nasc.train(sys.argv[1], arch=sys.argv[2], config=cfg, output_dir=sys.argv[3])
except KeyboardInterrupt:
    print("interrupted")
    sys.exit(3)
"""


def test_ctrl_c_stops_a_run(tmp_path):
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(TINY), str(ARCH), str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        metrics = out / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while not (metrics.exists() and metrics.read_text().strip()):
            assert child.poll() is None, child.communicate()[0]
            assert time.monotonic() < deadline, "the run recorded no epoch"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 3, output
    assert "interrupted" in output


def test_a_process_started_alone_is_rank_0_of_1_and_parallel_options_are_checked(tmp_path):
    assert nasc.process_group() == (0, 1)
    # Outside mpirun, --sync-bn changes nothing: the run is the plain one, bit for bit.
    plain = nasc.train(TINY, arch=ARCH, config=TRAIN, output_dir=tmp_path / "plain")
    synced = nasc.train(TINY, arch=ARCH, config=TRAIN, output_dir=tmp_path / "synced",
                        sync_bn=True, comm_timeout=30)
    assert plain.train_loss == synced.train_loss
    with pytest.raises(nasc.UserError, match="parallel.timeout_seconds: must be positive"):
        nasc.search(TINY, config=SEARCH, output_dir=tmp_path / "bad", comm_timeout=0)


def test_two_ranks_under_mpirun_from_python(tmp_path):
    mpiexec = "/usr/bin/mpiexec"
    if not os.path.exists(mpiexec):
        pytest.skip("mpiexec (openmpi-bin) is not installed")
    # Each rank writes its result to a file of its own: a line printed by a rank that exits
    # right after was now and then missing from mpirun's forwarded stdout (even flushed).
    script = tmp_path / "run.py"
    script.write_text(
        "import json, pathlib, sys, nasc\n"
        f"r = nasc.search({str(TINY)!r}, config=json.loads(sys.argv[1]), output_dir=sys.argv[2])\n"
        "rank, size = nasc.process_group()\n"
        "pathlib.Path(sys.argv[3], f'rank{rank}.txt').write_text(\n"
        "    f'rank {rank} of {size}: {r.valid_accuracy:.6f}')\n")
    out = tmp_path / "two"
    reports = tmp_path / "reports"
    reports.mkdir()
    p = subprocess.run(
        [mpiexec, "-n", "2", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
         "--mca", "btl_vader_single_copy_mechanism", "none", sys.executable, str(script),
         json.dumps(SEARCH), str(out), str(reports)],
        capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    lines = sorted(f.read_text() for f in reports.iterdir())
    assert [line.split(":")[0] for line in lines] == ["rank 0 of 2", "rank 1 of 2"]
    assert lines[0].split(":")[1] == lines[1].split(":")[1]  # both ranks hold the same result
    assert (out / "arch.json").exists()
