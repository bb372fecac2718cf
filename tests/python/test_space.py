"""nasc.Space and nasc.Architecture: compiling from a file or text with options, the
choices, inputs and statistics, fixing architectures every way, static estimates, and
the errors of each (located compile errors, unknown choices and candidates)."""
import math

import pytest

import nasc
from conftest import EXAMPLES, TINY

BROKEN = "network broken(x: tensor[1, 8, 8]) {\n  let h = relu(x;\n  return h;\n}\n"


def test_compile_file_lists_choices_inputs_and_statistics(tiny):
    assert tiny.name == "tiny"
    assert tiny.file == str(TINY)
    assert tiny.input_shape == [1, 28, 28]
    assert tiny.output_shape == [10]
    assert [(i.name, i.shape) for i in tiny.inputs] == [("x", [1, 28, 28])]
    assert tiny.network_parameters["classes"] == "10"
    [op] = tiny.choices
    assert (op.key, op.candidates, op.k, op.sites) == ("op", ["conv", "max_pool", "identity"], 1, 1)
    s = tiny.statistics()
    assert s.choices == 1 and s.choice_sites == 1
    assert math.isclose(s.log10_size, math.log10(3))
    assert s.largest_params > s.smallest_params
    assert s.extremes_exact and not s.search_truncated
    assert "op" in repr(op) and "tiny" in repr(tiny)


def test_compile_options_overrides_and_network():
    wide = nasc.Space.compile_file(TINY, overrides={"width": 16})
    assert wide.statistics().supernet_params > nasc.Space.compile_file(TINY).statistics().supernet_params
    assert wide.network_parameters["width"] == "16"
    two = ("network a(x: tensor[1, 4, 4]) { return relu(x); }\n"
           "network b(x: tensor[2, 4, 4]) { return relu(x); }\n")
    with pytest.raises(nasc.UserError, match="this file has 2 networks"):
        nasc.Space.compile_string(two)
    assert nasc.Space.compile_string(two, network="b").name == "b"
    assert nasc.Space.compile_string(two, network="a").input_shape == [1, 4, 4]
    with pytest.raises(TypeError, match="overrides must be a dict"):
        nasc.Space.compile_file(TINY, overrides=[("width", 16)])
    with pytest.raises(TypeError, match="import_paths"):
        nasc.Space.compile_file(TINY, import_paths="stdlib")


def test_compile_string_with_import_paths(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "blocks.nas").write_text("module twice(x: tensor) { return relu(relu(x)); }\n")
    text = 'import "blocks.nas";\nnetwork n(x: tensor[1, 4, 4]) { return twice(x); }\n'
    assert nasc.Space.compile_string(text, import_paths=[lib]).name == "n"
    with pytest.raises(nasc.UserError):
        nasc.Space.compile_string(text)  # blocks.nas is not found without the folder


def test_a_syntax_error_is_a_located_user_error():
    with pytest.raises(nasc.Error) as info:
        nasc.Space.compile_string(BROKEN, name="broken.nas")
    e = info.value
    assert isinstance(e, nasc.UserError) and not isinstance(e, nasc.InternalError)
    assert isinstance(e, Exception)
    assert e.kind == "user"
    assert (e.file, e.line, e.column) == ("broken.nas", 2, 17)
    d = e.diagnostics[0]
    assert d.severity == "error"
    assert (d.location.file, d.location.line, d.location.column) == ("broken.nas", 2, 17)
    assert d.message
    assert "broken.nas:2:17: error:" in d.rendered
    assert "broken.nas:2:17" in str(e) and e.message == str(e)


def test_errors_raised_from_python_have_the_attributes_too():
    e = nasc.UserError("mine")
    assert (e.kind, e.diagnostics, e.file, e.line) == ("user", (), None, None)
    assert nasc.InternalError("bug").kind == "internal"
    assert issubclass(nasc.UserError, nasc.Error) and issubclass(nasc.Error, Exception)


def test_a_shape_error_and_a_missing_file():
    bad = ("network n(x: tensor[1, 8, 8]) {\n  let a = conv(x, 4, kernel=3, pad=1);\n"
           "  let b = conv(x, 4, kernel=3, stride=2, pad=1);\n  return a + b;\n}\n")
    with pytest.raises(nasc.UserError) as info:
        nasc.Space.compile_string(bad, name="bad.nas")
    assert info.value.line == 4 and "same shape" in info.value.message
    with pytest.raises(nasc.UserError, match="no_such.nas"):
        nasc.Space.compile_file(EXAMPLES / "no_such.nas")


def test_fix_by_indices_names_json_file_and_sample(tiny):
    by_index = tiny.fix([1])
    assert by_index.chosen == [[1]] and by_index.describe() == "op=max_pool"
    assert tiny.fix([[2]]).names == {"op": "identity"}
    assert tiny.fix({"op": "conv"}).chosen == [[0]]
    text = tiny.fix({"op": "max_pool"}).to_json()
    assert tiny.fix_json(text).chosen == [[1]]
    from_file = tiny.fix_file(EXAMPLES / "tiny_conv.json")
    assert from_file.chosen == [[0]] and from_file.file == str(EXAMPLES / "tiny_conv.json")
    assert tiny.sample(3).chosen == tiny.sample(3).chosen
    assert tiny.first_candidates().chosen == [[0]]
    size = from_file.size()
    assert size.params > tiny.fix([2]).size().params and size.macs > 0 and size.nodes > 0
    assert "digraph" in from_file.to_dot() and "digraph" in tiny.to_dot()


def test_fix_errors_name_the_choice(tiny):
    with pytest.raises(nasc.UserError, match=r"no choice `opp`; did you mean `op`\?"):
        tiny.fix({"opp": "conv"})
    with pytest.raises(nasc.UserError, match=r"no candidate `convv`; did you mean `conv`\?"):
        tiny.fix({"op": "convv"})
    with pytest.raises(nasc.UserError, match="choice `op` is not given"):
        tiny.fix({})
    with pytest.raises(nasc.UserError, match="candidate index 3 is out of range"):
        tiny.fix([3])
    with pytest.raises(nasc.UserError):
        tiny.fix([])
    with pytest.raises(TypeError):
        tiny.fix("op=conv")
    with pytest.raises(nasc.UserError) as info:
        tiny.fix_json('{"choices": {"opp": "conv"}}', "mine.json")
    assert (info.value.file, info.value.line, info.value.column) == ("mine.json", 1, 14)
    with pytest.raises(nasc.UserError):
        tiny.fix_json("{not json", "junk.json")


def test_static_estimates(tiny):
    conv = tiny.estimate(tiny.fix([0]), train_batch=32)
    pool = tiny.estimate(tiny.fix([1]))
    assert conv.params > pool.params and conv.macs > pool.macs
    assert conv.param_bytes == 4 * conv.params
    assert conv.train_batch == 32 and conv.train_activation_bytes > conv.activation_bytes > 0
    assert conv.train_not_applicable == ""
    assert tiny.estimate_supernet().params >= conv.params


def test_architecture_saved_is_read_back(tiny, tmp_path):
    tiny.fix({"op": "identity"}).save(tmp_path / "a.json")
    assert tiny.fix_file(tmp_path / "a.json").names == {"op": "identity"}


def test_library_calls():
    assert nasc.version() == nasc.__version__ and nasc.version().count(".") == 2
    names = [b.name for b in nasc.backends()]
    assert "cpu" in names and sum(b.is_default for b in nasc.backends()) == 1
    nasc.check_backend("cpu")
    with pytest.raises(nasc.UserError, match="unknown backend `cpx`"):
        nasc.check_backend("cpx")
    assert nasc.backend_problem("cpu") == ("", "")
    with pytest.raises(nasc.UserError, match="unknown backend `cpx`"):
        nasc.backend_problem("cpx")
    if "cuda" in names:
        # The plugin's GPU: a description where it can run, else the reason.
        problem, device = nasc.backend_problem("cuda")
        assert (problem == "") != (device == "")
    assert nasc.with_commas(1234567) == "1,234,567"
    assert nasc.human_count(268160) == "268K"
