"""Fuzzing the session loader and holding the compiled schema check to jsonschema.

Whatever the bytes, ``load_session`` returns a session or raises ``ProbekitError`` —
never another exception, never a hang. And the fast compiled check must give the same
verdict as the reference validator on every value tried.
"""

from __future__ import annotations

import io
import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import probekit as pk
from probekit.results import session_file, validation
from probekit.results.compiled_schema import compile_schema
from tests.unit.results.test_session_schema import HOSTILE_TEXT, make_result

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, 1, -1, 1.0, 0.5, 2**53, 2**53 + 1, ""])
    | st.text(max_size=12)
    | st.sampled_from(HOSTILE_TEXT)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def valid_doc() -> dict:
    results = [make_result(0), make_result(1, "😀 <b>x</b>")]
    return {
        "format": "probekit.session",
        "version": 1,
        "meta": {"model": {"name": "tiny", "source": "object"}, "settings": {"lr": 0.1}},
        "results": [session_file.result_json(r) for r in results],
    }


def paths(node, prefix=()):
    """Every path into a JSON value (to pick one to replace)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


DOC_PATHS = list(paths(valid_doc()))


def replaced(doc, path, value):
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def load_bytes(data: bytes):
    try:
        return pk.load_session(io.BytesIO(data))
    except pk.ProbekitError:
        return None


@FUZZ
@given(json_values)
def test_any_json_value_is_loaded_or_refused_cleanly(value):
    load_bytes(json.dumps(value).encode())


@FUZZ
@given(st.sampled_from(DOC_PATHS), json_values)
@example(("meta",), {"": "lone \ud800 surrogate \udfff"})
def test_a_valid_file_with_one_value_replaced(path, value):
    doc = replaced(valid_doc(), path, value)
    # Encoded as the writer does: a lone surrogate (a Python str may hold one) as its escape.
    saved = load_bytes(session_file._dumps(doc).encode("utf-8"))
    reference_ok = not validation.errors(doc, "session")
    assert compile_schema(validation.schema("session"))(doc) == reference_ok
    assert (saved is not None) == reference_ok, "loaded if and only if the schema accepts it"


@FUZZ
@given(st.data())
def test_mutated_bytes_of_a_saved_file(tmp_path, data):
    path = tmp_path / "s.probekit.json"
    if not path.exists():
        session_file.save(path, [make_result(0), make_result(1, "😀")], {"model": "tiny"})
        path.with_suffix(".orig").write_bytes(path.read_bytes())
    raw = bytearray(path.with_suffix(".orig").read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if op == "flip" and at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
        elif op == "delete":
            del raw[at : at + data.draw(st.integers(1, 50))]
        elif op == "insert":
            raw[at:at] = data.draw(st.sampled_from([b"[", b"{", b'"', b"\\", b"NaN", b"\n", b","]))
        else:
            del raw[at:]
    target = tmp_path / "mutated.probekit.json"
    target.write_bytes(bytes(raw))
    try:
        from_file = pk.load_session(target)  # the line-by-line path when the layout fits
    except pk.ProbekitError:
        from_file = None
    whole = load_bytes(bytes(raw))  # the whole-document path always
    assert (from_file is None) == (whole is None)
    if from_file is not None and whole is not None:
        assert from_file.meta == whole.meta and len(from_file) == len(whole)


@pytest.mark.parametrize("name", validation.SCHEMAS)
@FUZZ
@given(data=st.data())
def test_compiled_check_agrees_with_jsonschema_on_random_values(name, data):
    definitions = sorted(validation.schema(name)["definitions"])
    definition = data.draw(st.sampled_from([None, *definitions]))
    value = data.draw(json_values)
    fast = compile_schema(validation.schema(name), validation.subschema(name, definition))
    assert fast(value) == (not validation.errors(value, name, definition))


def test_the_lean_path_and_the_whole_document_path_agree(tmp_path):
    results = [make_result(i, text) for i, text in enumerate(HOSTILE_TEXT)]
    path = session_file.save(tmp_path / "s.json", results, {"model": "tiny"})
    lean = pk.load_session(path)
    whole = pk.load_session(io.BytesIO(path.read_bytes()))
    assert lean.results == whole.results or all(
        a.to_frame().equals(b.to_frame()) for a, b in zip(lean, whole, strict=True)
    )
    assert lean.meta == whole.meta


def test_a_bad_line_in_the_saved_layout_is_named(tmp_path):
    path = session_file.save(tmp_path / "s.json", [make_result(0), make_result(1)], {})
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"prompt": "the cat says"', '"prompt": {"x": 1}')
    path.write_text("\n".join(lines))
    with pytest.raises(pk.ProbekitError, match=r"results\[1\]\.prompt: expected string"):
        pk.load_session(path)


def test_a_reformatted_saved_file_still_loads(tmp_path):
    path = session_file.save(tmp_path / "s.json", [make_result(0), make_result(1)], {"a": 1})
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(', "committed"', ',\n  "committed"')  # one result over 2 lines
    path.write_text("\n".join(lines) + "\n\n")
    saved = pk.load_session(path)
    assert [r.step for r in saved] == [0, 1] and saved.meta == {"a": 1}


def test_empty_history_round_trips(tmp_path):
    path = session_file.save(tmp_path / "s.json", [], {"model": "tiny"})
    saved = pk.load_session(path)
    assert saved.results == () and saved.model == {"name": "tiny"}


def test_nan_and_inf_in_results_are_written_as_null(tmp_path):
    path = session_file.save(tmp_path / "s.json", [make_result()], {})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    (loaded,) = pk.load_session(path).results
    assert math.isnan(loaded.loss_after) and math.isnan(loaded.watch[0].dlogp_target)
