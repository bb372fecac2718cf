"""nasc.Model on numpy arrays: training steps lower the loss, logits come back as an
array, other dtypes are converted, and wrong arrays (dtype, shape, labels out of range)
raise TypeError or ValueError naming the argument instead of reaching the C++ API."""
import numpy as np
import pytest

import nasc
from conftest import learnable_batch


@pytest.fixture(scope="module")
def conv(tiny):
    return tiny.fix({"op": "conv"})


def build(arch, **options):
    return nasc.Model.build(arch, batch=16, threads=1, **options)


def test_training_steps_lower_the_loss(conv):
    model = build(conv, learning_rate=0.1)
    assert model.mode == nasc.Mode.Train
    assert (model.batch, model.input_shape, model.input_size, model.classes) == (16, [1, 28, 28], 784, 10)
    assert model.parameter_count > 0
    x, y = learnable_batch(16)
    before = model.forward(x, y).loss
    for _ in range(10):
        model.train_step(x, y)
    after = model.forward(x, y)
    assert after.loss < before
    assert after.samples == 16 and 0 <= after.accuracy <= 1 and after.logits is None


def test_logits_and_manual_steps(conv):
    model = nasc.Model.build(conv, batch=8, threads=1, optimizer="adam", learning_rate=0.01)
    x, y = learnable_batch(8)
    r = model.forward(x, y, logits=True)
    assert r.logits.shape == (8, 10) and r.logits.dtype == np.float32
    assert np.isfinite(r.logits).all()
    # forward_backward accumulates; optimizer_step applies: the loss goes down.
    model.zero_grads()
    model.forward_backward(x, y)
    model.forward_backward(x[::-1], y[::-1])
    model.optimizer_step()
    model.set_learning_rate(0.001)
    assert model.forward(x, y).loss < r.loss


def test_eval_model_without_labels(conv):
    model = build(conv, mode="eval")
    x, y = learnable_batch(4)
    r = model.forward(x, logits=True)
    assert r.loss == 0 and r.logits.shape == (4, 10)
    assert model.forward(x, y).loss > 0
    with pytest.raises(nasc.UserError, match="Mode::Train"):
        model.optimizer_step()
    with pytest.raises(nasc.UserError):
        model.train_step(x, y)
    assert nasc.Model.build(conv, mode=nasc.Mode.Eval, batch=2).mode == nasc.Mode.Eval


def test_other_dtypes_and_layouts_are_converted(conv):
    model = build(conv, mode="eval")
    x, y = learnable_batch(6)
    want = model.forward(x, y, logits=True).logits
    as_double = model.forward(x.astype(np.float64), y.astype(np.int64), logits=True).logits
    np.testing.assert_allclose(as_double, want, rtol=1e-6)
    strided = np.repeat(x, 2, axis=0)[::2]  # not contiguous
    assert not strided.flags.c_contiguous
    np.testing.assert_allclose(model.forward(strided, y.astype(np.uint8), logits=True).logits, want)
    assert model.forward(x.astype(np.int16), y).samples == 6  # integer pixels are numbers too


def test_wrong_arrays_raise_python_errors(conv):
    model = nasc.Model.build(conv, batch=4, threads=1)
    x, y = learnable_batch(4)
    with pytest.raises(TypeError, match="images must be a real-valued array.*complex"):
        model.forward(x.astype(np.complex64), y)
    with pytest.raises(TypeError, match="images must be a real-valued array.*object"):
        model.forward(object(), y)
    with pytest.raises(ValueError, match=r"images must have shape \[4, 1, 28, 28\] \(a training "
                       r"model runs whole batches of 4\), got \[4, 28, 28\]"):
        model.forward(x[:, 0], y)
    with pytest.raises(ValueError, match=r"got \[3, 1, 28, 28\]"):
        model.train_step(x[:3], y[:3])
    evaluator = nasc.Model.build(conv, batch=4, mode="eval")
    with pytest.raises(ValueError, match=r"\[n, 1, 28, 28\] with n in 1..4, got \[5, 1, 28, 28\]"):
        evaluator.forward(np.zeros((5, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="images must have shape"):
        evaluator.forward(np.zeros((0, 1, 28, 28), np.float32))
    with pytest.raises(TypeError, match="labels must be an integer array.*float32"):
        model.train_step(x, y.astype(np.float32))
    with pytest.raises(ValueError, match=r"labels must have shape \[4\]"):
        model.train_step(x, y[:3])
    with pytest.raises(ValueError, match=r"labels\[2\] is 10: labels must be in \[0, 10\)"):
        model.train_step(x, np.array([0, 1, 10, 2]))
    with pytest.raises(ValueError, match=r"labels\[0\] is -1"):
        model.forward(x, np.array([-1, 1, 2, 3], np.int64))
    with pytest.raises(ValueError, match=r"labels\[1\] is 4294967296"):
        model.forward(x, np.array([0, 2**32, 0, 0], np.int64))  # no wrap-around into range
    with pytest.raises(nasc.UserError, match="needs labels"):
        model.forward(x)  # a training model's loss needs them
    with pytest.raises(TypeError):
        model.forward_backward(x, None)


def test_build_errors(conv, tiny):
    with pytest.raises(nasc.UserError, match="cpux"):
        nasc.Model.build(conv, backend="cpux")
    with pytest.raises(ValueError, match="mode must be 'train' or 'eval'"):
        nasc.Model.build(conv, mode="evaluate")
    with pytest.raises(ValueError, match="batch must be at least 1"):
        nasc.Model.build(conv, batch=0)
    with pytest.raises(TypeError):
        nasc.Model.build(tiny, batch=4)  # a space is not an architecture


def test_weights_saved_and_loaded(conv, tiny, tmp_path):
    x, y = learnable_batch(16)
    trained = build(conv, learning_rate=0.1)
    for _ in range(5):
        trained.train_step(x, y)
    trained.save_weights(tmp_path / "conv.weights")
    served = build(conv, mode="eval", seed=7)
    assert served.forward(x, y).loss != trained.forward(x, y).loss
    served.load_weights(tmp_path / "conv.weights")
    assert served.forward(x, y).loss == pytest.approx(trained.forward(x, y).loss)
    pool = build(tiny.fix({"op": "max_pool"}))
    pool.save_weights(str(tmp_path / "pool.weights"))
    with pytest.raises(nasc.UserError, match="another network"):
        served.load_weights(tmp_path / "pool.weights")
    with pytest.raises(nasc.UserError):
        served.load_weights(tmp_path / "missing")
