"""Shared fixtures of the Python module's tests (run by ctest with PYTHONPATH=build/python;
by hand: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python)."""
import os
import pathlib

import numpy as np
import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("NASC_SOURCE_DIR",
                                         pathlib.Path(__file__).resolve().parents[2]))
EXAMPLES = SOURCE_DIR / "examples"
TINY = EXAMPLES / "tiny.nas"


@pytest.fixture
def tiny_path():
    return TINY


@pytest.fixture(scope="module")
def tiny():
    import nasc
    return nasc.Space.compile_file(TINY)


def learnable_batch(n, classes=4, shape=(1, 28, 28)):
    """A fixed batch whose class is written into the image: learnable in a few steps."""
    labels = np.arange(n, dtype=np.int32) % classes
    flat = np.arange(int(np.prod(shape)))
    images = np.where(flat[None, :] % classes == labels[:, None], 1.0, -0.5)
    return images.reshape((n,) + tuple(shape)).astype(np.float32), labels
