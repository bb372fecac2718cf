"""Latency tables from Python: measured (quick settings), saved, loaded, and estimates
from them; a table that lacks a space's signatures is refused naming what to profile."""
import io

import pytest

import nasc
from conftest import TINY


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("lut") / "lut.json"
    space = nasc.Space.compile_file(TINY)
    log = io.StringIO()
    t = nasc.LatencyTable.measure(space, warmup=0, repetitions=1, calibrate=0, output=path,
                                  log=log)
    assert log.getvalue()  # progress lines went to the file-like object
    return t


def test_a_measured_table_is_saved_and_loaded(table, tmp_path):
    assert table.batch == 1 and table.entries > 0 and table.device
    assert table.calibration is None  # calibrate=0
    loaded = nasc.LatencyTable.load(table.path)
    assert loaded.entries == table.entries
    table.save(tmp_path / "copy.json")
    assert nasc.LatencyTable.load(tmp_path / "copy.json").entries == table.entries


def test_estimates_from_a_table(table, tiny):
    latency = nasc.LatencyEstimator(tiny, table)
    assert latency.warning == ""  # measured here
    conv = latency.estimate(tiny.fix({"op": "conv"}))
    assert conv.fused_ms > 0 and conv.accumulated_ms > 0 and conv.batch == 1
    assert conv.calibration == 1
    assert latency.estimate_supernet().accumulated_ms >= conv.accumulated_ms * 0.5


def test_tables_that_do_not_fit_or_do_not_exist(table, tmp_path):
    wide = nasc.Space.compile_file(TINY, overrides={"width": 16})
    with pytest.raises(nasc.UserError, match="nasc profile"):
        nasc.LatencyEstimator(wide, table)
    with pytest.raises(nasc.UserError, match="none.json"):
        nasc.LatencyTable.load(tmp_path / "none.json")
    (tmp_path / "junk.json").write_text("[1, 2")
    with pytest.raises(nasc.UserError, match="junk.json"):
        nasc.LatencyTable.load(tmp_path / "junk.json")


def test_one_architecture_measured(tiny):
    arch = tiny.fix({"op": "max_pool"})
    t = nasc.LatencyTable.measure(tiny, arch=arch, warmup=0, repetitions=1, calibrate=0)
    assert t.entries > 0
    with pytest.raises(nasc.UserError):
        nasc.LatencyTable.measure(tiny, backend="cpux", repetitions=1, calibrate=0)
