#!/usr/bin/env python3
"""Data-parallel runs under `mpirun -n 2` on loopback, one thread per rank (docs/scaling.md).

    mpi_data_parallel.py NASC MPIEXEC SOURCE_DIR CASE

CASE is one of the functions named in CASES. Each runs real nasc processes:

  darts_matches_one_process  DARTS on Fashion-MNIST with --sync-bn: the same architecture and
                             metrics as one process, within what rounding alone explains (the
                             gap between one process on 1 and on 2 threads); a second 2-rank
                             run gives the same bits; rank 1 leaves no temporary folder.
  train_matches_one_process  nasc train of a network with batch norm, likewise.
  pnas_runs                  ProxylessNAS, each rank its own paths: the run completes (the
                             ranks check every epoch that they still hold the same weights).
  random_splits_candidates   random search, each rank its own architectures: the same records
                             as one process, bit for bit.
  evolution_splits_candidates  evolution's candidates split over 2 ranks: with the supernet's
                             weights frozen, every generation's scores as one process's.
  jit_backend                DARTS under --backend jit over 2 ranks against 1 process.
  kill_one_rank              rank 1 is killed (SIGKILL) mid-run: mpirun ends the job with an
                             error instead of hanging; the last checkpoint resumes with 2 ranks
                             to the same metrics as an uninterrupted run.
  stalled_rank_times_out     rank 1 hangs: rank 0 stops after --comm-timeout with an error
                             naming the operation, and the job ends.
  refused_setups             batches that do not split, --rerank, --sync-bn with pnas:
                             located errors, exit 1.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time

NASC, MPIEXEC, SOURCE = sys.argv[1], sys.argv[2], sys.argv[3]
HANG_LIMIT = 240  # seconds: a run still going after this is a hang, and fails the test

# Loopback, as root in CI, more ranks than cores allowed, no core binding (the ranks share
# this machine's cores with other tests).
MPI_ARGS = ["--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
            "--mca", "btl_vader_single_copy_mechanism", "none"]


def run(args, env=None, expect=0, ranks=0):
    cmd = ([MPIEXEC, "-n", str(ranks)] + MPI_ARGS if ranks else []) + [NASC] + args
    full_env = dict(os.environ, **(env or {}))
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=HANG_LIMIT)
    except subprocess.TimeoutExpired:
        sys.exit(f"FAIL: still running after {HANG_LIMIT} s (a hang): {' '.join(cmd)}")
    seconds = time.monotonic() - start
    if expect is not None and p.returncode != expect:
        sys.exit(f"FAIL: exit {p.returncode} (expected {expect}): {' '.join(cmd)}\n"
                 f"--- stdout\n{p.stdout[-4000:]}\n--- stderr\n{p.stderr[-4000:]}")
    return p, seconds


def records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


TIMING_KEYS = {"seconds", "images_per_s"}


def compare_records(a, b, rtol, what):
    if len(a) != len(b):
        sys.exit(f"FAIL: {what}: {len(a)} epochs against {len(b)}")
    for ra, rb in zip(a, b):
        for key, va in ra.items():
            if key in TIMING_KEYS:
                continue
            vb = rb.get(key)
            if isinstance(va, float) or isinstance(vb, float):
                if not math.isclose(va, vb, rel_tol=rtol, abs_tol=rtol):
                    sys.exit(f"FAIL: {what}: epoch {ra['epoch']} {key}: {va!r} against {vb!r}")
            elif isinstance(va, dict) and rtol > 0 and key == "probabilities":
                for choice, pa in va.items():
                    for x, y in zip(pa, vb[choice]):
                        if not math.isclose(x, y, rel_tol=rtol, abs_tol=rtol):
                            sys.exit(f"FAIL: {what}: epoch {ra['epoch']} {choice}: {pa} vs "
                                     f"{vb[choice]}")
            elif va != vb:
                sys.exit(f"FAIL: {what}: epoch {ra['epoch']} {key}: {va!r} against {vb!r}")


def compare_to_one_process(one, other_threads, ranks, what):
    """N ranks against one process, within what float rounding alone explains: the larger of
    1e-5 relative and 4 times the gap between one process and itself with another thread
    count (training amplifies rounding differences, tenfold per step on these runs)."""
    a, b, c = records(one), records(other_threads), records(ranks)
    if not (len(a) == len(b) == len(c)):
        sys.exit(f"FAIL: {what}: {len(a)}, {len(b)} and {len(c)} epochs")
    worst = 0.0
    for ra, rb, rc in zip(a, b, c):
        for key, va in ra.items():
            if key in TIMING_KEYS or not isinstance(va, (int, float)):
                continue
            allowed = max(1e-5 * abs(va), 4 * abs(rb[key] - va), 1e-9)
            gap = abs(rc[key] - va)
            worst = max(worst, gap / allowed)
            if gap > allowed:
                sys.exit(f"FAIL: {what}: epoch {ra['epoch']} {key}: one process {va!r}, "
                         f"2 ranks {rc[key]!r}, one process on another thread count {rb[key]!r}")
    print(f"{what}: the largest gap is {worst:.2f} of the allowance")


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)
    return path


# Training is chaotic: float rounding differences grow about tenfold per step on DARTS (one
# process with 2 threads instead of 1 differs by 4e-6 in the loss after 3 steps, as much as
# 2 ranks do). So the runs compared are short (2 epochs of 2 steps), and the tolerance is
# what another thread count alone changes (compare_to_one_process).
def darts_config(tmp):
    return write_json(os.path.join(tmp, "darts.json"), {
        "epochs": 2, "seed": 3, "threads": 1,
        "data": {"name": "fashion-mnist", "limit_train": 64, "limit_test": 64,
                 "train_portion": 0.5, "batch_size": 16},
        "train": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 3e-4,
                  "grad_clip": 5},
        "valid": {"name": "adam", "lr": 0.03, "betas": [0.5, 0.999], "weight_decay": 1e-3},
        "network": {"C": 4, "layers": 2}})


def arch_choices(run_dir):
    with open(os.path.join(run_dir, "arch.json")) as f:
        return json.load(f)["choices"]


def darts_matches_one_process(tmp):
    cfg = darts_config(tmp)
    space = os.path.join(SOURCE, "examples/darts_fmnist.nas")
    scratch = os.path.join(tmp, "rank-scratch")
    os.makedirs(scratch)
    one, two, again = (os.path.join(tmp, d) for d in ("one", "two", "again"))
    two_threads = os.path.join(tmp, "two-threads")
    run(["search", space, "-c", cfg, "-o", one])
    run(["search", space, "-c", cfg, "--threads", "2", "-o", two_threads])
    p, _ = run(["search", space, "-c", cfg, "--sync-bn", "-o", two], ranks=2,
               env={"TMPDIR": scratch})
    if "data parallel: 2 ranks over mpi" not in p.stdout:
        sys.exit("FAIL: rank 0 does not say that the run is data-parallel:\n" + p.stdout)
    if p.stdout.count("found ") != 1:
        sys.exit("FAIL: the result line should be printed once (rank 0 only):\n" + p.stdout)
    compare_to_one_process(one, two_threads, two, "DARTS, 1 process against 2 ranks")
    if arch_choices(one) != arch_choices(two):
        sys.exit(f"FAIL: architectures differ: {arch_choices(one)} vs {arch_choices(two)}")
    left = os.listdir(scratch)
    if any(name.startswith("nasc-rank-") for name in left):
        sys.exit(f"FAIL: rank 1's temporary folder was left behind: {left}")
    run(["search", space, "-c", cfg, "--sync-bn", "-o", again], ranks=2)
    compare_records(records(two), records(again), 0, "two 2-rank runs (bit for bit)")
    print("ok: DARTS over 2 ranks matches 1 process within float tolerance, same architecture; "
          "2-rank runs are bit-identical")


def train_matches_one_process(tmp):
    space = os.path.join(SOURCE, "examples/fmnist_cnn.nas")
    cfg = write_json(os.path.join(tmp, "train.json"), {
        "epochs": 2, "seed": 5, "threads": 1,
        "data": {"name": "fashion-mnist", "limit_train": 256, "limit_test": 100,
                 "batch_size": 32, "augment": {"crop_padding": 2, "hflip": True}},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}})
    one, two = os.path.join(tmp, "one"), os.path.join(tmp, "two")
    two_threads = os.path.join(tmp, "two-threads")
    run(["train", space, "-c", cfg, "-o", one])
    run(["train", space, "-c", cfg, "--threads", "2", "-o", two_threads])
    run(["train", space, "-c", cfg, "--sync-bn", "-o", two], ranks=2)
    compare_to_one_process(one, two_threads, two, "train, 1 process against 2 ranks")
    print("ok: training over 2 ranks with --sync-bn matches 1 process within float tolerance")


def tiny_config(tmp, epochs=3):
    return write_json(os.path.join(tmp, "tiny.json"), {
        "epochs": epochs, "seed": 1, "threads": 1,
        "data": {"name": "synthetic", "limit_train": 256, "train_portion": 0.5,
                 "batch_size": 16}})


def pnas_runs(tmp):
    space = os.path.join(SOURCE, "examples/tiny.nas")
    out = os.path.join(tmp, "pnas")
    run(["search", space, "-a", "pnas", "-c", tiny_config(tmp), "-o", out], ranks=2)
    if len(records(out)) != 3 or not os.path.exists(os.path.join(out, "arch.json")):
        sys.exit("FAIL: the pnas run folder is incomplete")
    print("ok: pnas over 2 ranks completes with identical replicas")


def random_splits_candidates(tmp):
    space = os.path.join(SOURCE, "examples/tiny.nas")
    cfg = json.load(open(tiny_config(tmp, epochs=1)))
    cfg["random"] = {"samples": 5}  # rounds of 2, 2 and 1
    cfg = write_json(os.path.join(tmp, "random.json"), cfg)
    one, two = os.path.join(tmp, "one"), os.path.join(tmp, "two")
    run(["search", space, "-a", "random", "-c", cfg, "-o", one])
    run(["search", space, "-a", "random", "-c", cfg, "-o", two], ranks=2)
    # Each architecture is trained whole by one rank, as one process trains it: same bits.
    compare_records(records(one), records(two), 0, "1 process against 2 ranks")
    if arch_choices(one) != arch_choices(two):
        sys.exit("FAIL: random search over 2 ranks found another architecture")
    print("ok: random search over 2 ranks (rounds of candidates) equals 1 process bit for bit")


def evolution_splits_candidates(tmp):
    space = os.path.join(SOURCE, "examples/convnet_fmnist.nas")
    # Weights frozen by a learning rate of 1e-30 (w - 1e-30 g == w in float32), so that the
    # supernet phase's rounding cannot make the scores differ: the evolution phase alone is
    # compared, and its candidates, scored by one rank each on whole batches with batch norm
    # recalibrated from zero, must give one process's numbers exactly.
    cfg = write_json(os.path.join(tmp, "evolution.json"), {
        "algorithm": "evolution", "epochs": 1, "seed": 1, "threads": 1,
        "data": {"name": "fashion-mnist", "limit_train": 256, "train_portion": 0.5,
                 "batch_size": 16},
        "train": {"name": "sgd", "lr": 1e-30, "momentum": 0, "weight_decay": 0,
                  "nesterov": False},
        "evolution": {"population": 5, "generations": 3, "parents": 2, "bn_batches": 2,
                      "valid_batches": 4}})
    one, two = os.path.join(tmp, "one"), os.path.join(tmp, "two")
    run(["search", space, "-c", cfg, "-o", one])
    run(["search", space, "-c", cfg, "-o", two], ranks=2)
    generations = []
    for d in (one, two):
        with open(os.path.join(d, "evolution.jsonl")) as f:
            generations.append([{k: v for k, v in json.loads(line).items() if k != "seconds"}
                                for line in f if line.strip()])
    if generations[0] != generations[1] or len(generations[0]) != 3:
        sys.exit(f"FAIL: the generations differ:\n{generations[0]}\n{generations[1]}")
    if arch_choices(one) != arch_choices(two):
        sys.exit("FAIL: evolution over 2 ranks found another architecture")
    print("ok: evolution over 2 ranks (candidates split, scores shared) equals 1 process exactly")


def jit_backend(tmp):
    space = os.path.join(SOURCE, "examples/tiny.nas")
    cfg = tiny_config(tmp, epochs=2)
    one, two = os.path.join(tmp, "one"), os.path.join(tmp, "two")
    run(["search", space, "-c", cfg, "--backend", "jit", "-o", one])
    run(["search", space, "-c", cfg, "--backend", "jit", "-o", two], ranks=2)
    # No batch norm and 16 steps: rounding alone, far below 1e-6.
    compare_records(records(one), records(two), 1e-6, "JIT: 1 process against 2 ranks")
    print("ok: under --backend jit (buckets reduced after the generated plan function), "
          "2 ranks match 1 process within 1e-6")


def kill_one_rank(tmp):
    space = os.path.join(SOURCE, "examples/tiny.nas")
    cfg = tiny_config(tmp)
    whole, killed = os.path.join(tmp, "whole"), os.path.join(tmp, "killed")
    scratch = os.path.join(tmp, "rank-scratch")
    os.makedirs(scratch)
    run(["search", space, "-c", cfg, "-o", whole], ranks=2)
    # 8 steps per epoch: step 12 is in the second epoch, after the first checkpoint.
    p, seconds = run(["search", space, "-c", cfg, "-o", killed], ranks=2, expect=None,
                     env={"NASC_TEST_KILL_AT": "step:12", "NASC_TEST_KILL_RANK": "1",
                          "TMPDIR": scratch})
    if p.returncode == 0:
        sys.exit("FAIL: the job succeeded although rank 1 was killed")
    print(f"the job ended {seconds:.1f} s after its start, exit {p.returncode}; mpirun said:\n"
          + "\n".join(line for line in p.stderr.splitlines() if "rank" in line.lower())[:600])
    if len(records(killed)) != 1:
        sys.exit(f"FAIL: expected the first epoch's record only, got {len(records(killed))}")
    if not os.listdir(scratch):
        sys.exit("FAIL: the killed rank should have left its temporary folder")
    run(["search", space, "-c", cfg, "-o", killed, "--resume"], ranks=2, env={"TMPDIR": scratch})
    compare_records(records(whole), records(killed), 0, "resumed against uninterrupted")
    if os.listdir(scratch):
        sys.exit(f"FAIL: the killed rank's temporary folder outlived the next run: "
                 f"{os.listdir(scratch)}")
    print("ok: a killed rank ends the job; the checkpoint resumes bit-identically on 2 ranks")


def stalled_rank_times_out(tmp):
    space = os.path.join(SOURCE, "examples/tiny.nas")
    out = os.path.join(tmp, "stalled")
    p, seconds = run(["search", space, "-c", tiny_config(tmp), "--comm-timeout", "3", "-o", out],
                     ranks=2, expect=None,
                     env={"NASC_TEST_KILL_AT": "stall:3", "NASC_TEST_KILL_RANK": "1"})
    if p.returncode == 0:
        sys.exit("FAIL: the job succeeded although rank 1 stalled")
    if "no answer from the other ranks for 3 s" not in p.stderr:
        sys.exit("FAIL: rank 0 did not report the timeout:\n" + p.stderr[-3000:])
    if seconds > 60:
        sys.exit(f"FAIL: the job took {seconds:.0f} s to end")
    print(f"ok: a stalled rank: rank 0 stopped after the 3 s timeout, job ended in {seconds:.1f} s")


def refused_setups(tmp):
    space = os.path.join(SOURCE, "examples/tiny.nas")
    cfg = json.load(open(tiny_config(tmp)))
    cfg["data"]["batch_size"] = 15
    odd = write_json(os.path.join(tmp, "odd.json"), cfg)
    cases = [
        (["search", space, "-c", odd, "-o", os.path.join(tmp, "a")],
         "a batch of 15 does not split evenly over 2 ranks"),
        (["search", space, "-c", tiny_config(tmp), "--rerank", "2", "-o",
          os.path.join(tmp, "b")], "--rerank's trials do not run over several processes"),
        (["search", space, "-c", tiny_config(tmp), "-a", "pnas", "--sync-bn", "-o",
          os.path.join(tmp, "c")], "--sync-bn needs every rank to run the same network"),
    ]
    for args, message in cases:
        p, _ = run(args, ranks=2, expect=None)
        if p.returncode == 0 or message not in p.stderr:
            sys.exit(f"FAIL: expected an error with \"{message}\", got exit {p.returncode}:\n"
                     + p.stderr[-2000:])
        if "odd.json" in args[3] and "odd.json" not in p.stderr:
            sys.exit("FAIL: the error does not name the config file:\n" + p.stderr)
    print("ok: setups that cannot run data-parallel are refused with located errors")


CASES = {f.__name__: f for f in (darts_matches_one_process, train_matches_one_process, pnas_runs,
                                 random_splits_candidates, evolution_splits_candidates,
                                 jit_backend, kill_one_rank,
                                 stalled_rank_times_out, refused_setups)}

if __name__ == "__main__":
    case = sys.argv[4]
    with tempfile.TemporaryDirectory(prefix="nasc-mpi-") as tmp:
        CASES[case](tmp)
