"""Session files against their schema: round trips, atomic saves, hostile files, data only.

Cases 9 and 28-30 of the reliability promise (see docs/guarantees.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import probekit as pk
from probekit.results import session_file, validation
from probekit.results.probe import LayerDrift, ProbeResult, TensorDelta, WatchRow

REPO = Path(__file__).resolve().parents[3]
HOSTILE_TEXT = [
    "😀👩🏽‍🚀 family: 👨‍👩‍👧",
    "مرحبا بالعالم \u200f עברית",
    "zero\u200bwidth\u200d\ufeffjoin\u2060",
    "nul\x00inside\x00",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1) {{constructor}}",
    "lone \ud800 surrogate \udfff",
    'line\nbreak\ttab\\backslash"quote',
]


def make_result(step: int = 0, text: str = "the cat says", **changes: object) -> ProbeResult:
    """A hand-built result that uses every field (no model needed)."""
    watch = WatchRow(
        label=f"{text} → meow",
        prompt=text,
        target=" meow",
        is_example=False,
        kl=0.25,
        dlogp_target=math.nan,
        top1_flip=True,
        logit_l2=1.5,
        topk_before=((text, 0.5), (" dog", math.nan)),
        topk_after=((" meow", 0.75),),
        drift=(LayerDrift("h.0", 0.01, 0.2), LayerDrift(text, math.inf, 0.0)),
        influence=2.0,
    )
    tensor = TensorDelta(
        name=f"h.0.{text}",
        layer="h.0",
        numel=12,
        sum_sq=0.5,
        sum_abs=1.25,
        max_abs=0.125,
        changed=7,
        lost=1,
        theta_sq=3.0,
        grad_sq=math.nan,
        decay_sq=0.0,
        aliases=("lm_head.weight",),
    )
    fields = dict(
        step=step,
        committed=True,
        status="ok",
        prompt=text,
        target=" woof",
        target_tokens=(" wo", "of", text),
        optimizer="sgd",
        lr=0.05,
        steps=1,
        loss_before=5.0,
        loss_after=math.inf,
        token_nll_before=(1.0, math.nan),
        token_nll_after=(0.5, 2.0),
        tensors=(tensor,),
        watch=(watch,),
        notes=(text,),
        input_tokens=("the", text),
        token_grad=(0.1, math.nan),
    )
    fields.update(changes)
    return ProbeResult(**fields)  # type: ignore[arg-type]


def same_value(a: object, b: object) -> bool:
    """Equality where NaN equals NaN, and inf reads back as NaN (JSON null)."""
    if isinstance(a, float) and isinstance(b, float):
        return (not math.isfinite(a) and math.isnan(b)) or a == b
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        return type(a) is type(b) and all(
            same_value(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def valid_doc() -> dict:
    return {
        "format": "probekit.session",
        "version": 1,
        "meta": {"model": "tiny"},
        "results": [session_file.result_json(make_result())],
    }


def write(path: Path, content: bytes | str | dict) -> Path:
    if isinstance(content, dict):
        content = json.dumps(content, ensure_ascii=False)
    path.write_bytes(
        content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    )
    return path


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail (instead of hanging) if the block blocks longer than ``seconds``."""

    def expired(signum, frame):
        raise TimeoutError(f"blocked for over {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- the schemas ---------------------------------------------------------------------
@pytest.mark.parametrize("name", validation.SCHEMAS)
def test_schema_files_are_standard_draft7_with_limits(name):
    from jsonschema import Draft7Validator

    schema = validation.schema(name)
    Draft7Validator.check_schema(schema)
    text = json.dumps(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "maxLength" in text and "maxItems" in text
    for definition in schema["definitions"].values():  # every string and array is bounded
        for node in _walk(definition):
            if node.get("type") == "string" or node.get("type") == ["string", "null"]:
                assert "maxLength" in node, node
            if node.get("type") == "array":
                assert "maxItems" in node, node


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.slow
def test_schemas_ship_in_the_wheel(tmp_path):
    pytest.importorskip("hatchling")  # the build backend (no download in tests)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    import zipfile

    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in validation.SCHEMAS:
        assert f"probekit/results/schema/{name}.schema.json" in names


def test_schema_fields_match_the_result_classes():
    defs = validation.schema("session")["definitions"]
    pairs = [
        ("result", ProbeResult, {"total"}),
        ("tensor", TensorDelta, set()),
        ("watch", WatchRow, set()),
        ("drift", LayerDrift, set()),
    ]
    for definition, cls, extra in pairs:
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(defs[definition]["properties"]) == names | extra, definition
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        assert required <= set(defs[definition]["required"]), definition


def test_both_schemas_describe_a_model_the_same_way():
    session = validation.schema("session")["definitions"]["model"]
    board = validation.schema("board")["definitions"]["model"]
    assert session["properties"].keys() == board["properties"].keys()
    assert session["required"] == ["name"]


# -- round trips (case 9) ----------------------------------------------------------------
def test_case9_hostile_text_round_trips_byte_for_byte(tmp_path):
    results = [make_result(i, text) for i, text in enumerate(HOSTILE_TEXT)]
    meta = {"model": "tiny", "note": "".join(HOSTILE_TEXT)}
    first = session_file.save(tmp_path / "a.probekit.json", results, meta)
    loaded = pk.load_session(first)
    assert len(loaded) == len(results)
    for a, b in zip(results, loaded.results, strict=True):
        assert same_value(a, b)
        assert a.prompt.encode("utf-8", "surrogatepass") == b.prompt.encode(
            "utf-8", "surrogatepass"
        )
    assert loaded.meta == meta
    second = session_file.save(tmp_path / "b.probekit.json", loaded.results, loaded.meta)
    assert first.read_bytes() == second.read_bytes()
    first.read_bytes().decode("utf-8")  # valid UTF-8 throughout (surrogates as escapes)


def test_case9_html_in_strings_stays_literal_data(tmp_path):
    result = make_result(0, "<script>alert(1)</script>")
    path = session_file.save(tmp_path / "s.json", [result], {"model": "<b>x</b>"})
    assert b"<script>alert(1)</script>" in path.read_bytes()  # stored as it is, not escaped
    (loaded,) = pk.load_session(path).results
    assert loaded.prompt == "<script>alert(1)</script>"


def test_probe_save_and_load_session(tiny_gpt2, tmp_path):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=["the cat says", ("the dog", " says")])
    probe.step(pk.Example("the dog says", " woof"), commit=True)
    probe.step(pk.Example("the cat says", " meow"))
    path = probe.save(tmp_path / "run.probekit.json")
    saved = pk.load_session(path)
    assert isinstance(saved, pk.SavedSession)
    assert [r.step for r in saved] == [r.step for r in probe.history]
    for a, b in zip(probe.history, saved.results, strict=True):
        assert same_value(a, b)
        assert a.to_frame().equals(b.to_frame())
    assert saved.to_frame().shape[0] == sum(len(r.to_frame()) for r in probe.history)
    assert saved.model["source"] == "object" and saved.model["n_params"] > 0
    assert saved.meta["settings"]["lr"] == 0.05
    assert saved.meta["settings"]["watch"] == ["the cat says", ["the dog", " says"]]
    assert saved.probekit_version == pk.__version__ and saved.created.endswith("Z")


RESAVE = """
import sys
import probekit as pk
from probekit.results import session_file
saved = pk.load_session(sys.argv[1])
session_file.save(sys.argv[2], saved.results, saved.meta)
"""


def test_case27_history_survives_a_restart(tiny_gpt2, tmp_path):
    """A fresh interpreter (a restarted kernel) gets the whole history back, unchanged."""
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=["the cat says"], token_grad=True)
    probe.step(pk.Example("the dog says", " woof"), commit=True)
    probe.step(pk.Example("the cat says", " meow"))
    first = probe.save(tmp_path / "a.probekit.json")
    second = tmp_path / "b.probekit.json"
    subprocess.run(
        [sys.executable, "-c", RESAVE, str(first), str(second)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert second.read_bytes() == first.read_bytes()
    restored = pk.load_session(second)
    for a, b in zip(probe.history, restored.results, strict=True):
        assert same_value(a, b)


def test_the_demo_model_is_named_not_located(tmp_path):
    from probekit.session.saving import describe_model

    model, _ = pk.load_demo(device="cpu")
    info = describe_model(model)
    assert info["source"] == "demo" and info["name"] == "probekit demo"
    assert info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["n_params"] == sum(p.numel() for p in model.parameters())


# -- atomic writes (case 28) ---------------------------------------------------------------
def test_case28_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = session_file.save(tmp_path / "s.json", [make_result()], {})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o600)  # the user's choice for an existing file is kept
        session_file.save(path, [make_result()], {})
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_case28_disk_full_keeps_the_old_file(tmp_path, monkeypatch):
    path = session_file.save(tmp_path / "s.json", [make_result()], {"v": 1})
    old = path.read_bytes()
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, text):
            if self.written + len(text) > 100:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written += len(text)
            return self.f.write(text)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(session_file.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    with pytest.raises(pk.ProbekitError, match=r"No space left.*previous file.*unchanged"):
        session_file.save(path, [make_result(i) for i in range(5)], {"v": 2})
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"], "no temp file left behind"


def test_case28_ctrl_c_during_a_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = session_file.save(tmp_path / "s.json", [make_result()], {"v": 1})
    old = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(session_file.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        session_file.save(path, [make_result(i) for i in range(3)], {"v": 2})
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_case28_a_result_that_breaks_the_schema_is_not_written(tmp_path):
    path = session_file.save(tmp_path / "s.json", [make_result()], {"v": 1})
    old = path.read_bytes()
    bad = make_result(1, status={"not": "a string"})  # type: ignore[arg-type]
    with pytest.raises(pk.ProbekitError, match=r"results\[1\]\.status: expected string"):
        session_file.save(path, [make_result(), bad], {"v": 2})
    with pytest.raises(pk.ProbekitError, match=r"meta\.created: expected string"):
        session_file.save(path, [make_result()], {"created": 5})
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_case28_temp_files_of_a_killed_save_are_removed_by_the_next(tmp_path):
    target = tmp_path / "s.json"
    stale = [
        tmp_path / ".s.json.ab12cd34.probekit-tmp",
        tmp_path / ".s.json.k_3j4h5g",  # the name an older probekit used
    ]
    fresh = tmp_path / ".s.json.zz99zz99.probekit-tmp"  # a save in progress elsewhere
    others = [
        tmp_path / ".s.json.notes",
        tmp_path / ".t.json.ab12cd34.probekit-tmp",
        tmp_path / ".s.json.20260101",  # the user's own backup with a temp-like name
    ]
    for p in [*stale, fresh, *others]:
        p.write_text('{\n "format": "probekit.session", "version": 1, "res')
    others[-1].write_text("my own backup")
    an_hour_ago = time.time() - 3600
    for p in [*stale, *others]:
        os.utime(p, (an_hour_ago, an_hour_ago))
    session_file.save(target, [make_result()], {})
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["s.json", fresh.name, *(p.name for p in others)])


KILLED_SAVE = """
import sys, time
sys.path.insert(0, sys.argv[2])
from probekit.results import session_file
from tests.unit.results.test_session_schema import make_result
results = [make_result(i, "x" * 2000) for i in range(20000)]
print("ready", flush=True)
session_file.save(sys.argv[1], results, {"v": 2})
"""


def test_case28_a_save_killed_midway_leaves_the_old_file_intact(tmp_path):
    target = session_file.save(tmp_path / "s.json", [make_result()], {"v": 1})
    old = target.read_bytes()
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(target), str(REPO)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    for _ in range(600):  # wait until the temp file is being written, then kill
        if any(p.name.endswith(".probekit-tmp") for p in tmp_path.iterdir()):
            break
        time.sleep(0.05)
    child.kill()
    child.wait()
    assert target.read_bytes() == old
    assert pk.load_session(target).meta == {"v": 1}
    leftovers = [p for p in tmp_path.iterdir() if p.name != "s.json"]
    assert leftovers, "the kill should have left a temp file for this test to make sense"
    past = time.time() - 3600
    for p in leftovers:
        os.utime(p, (past, past))
    session_file.save(target, [make_result()], {"v": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


# -- hostile files (case 29) ---------------------------------------------------------------
def _with(path: tuple, value: object) -> dict:
    doc = valid_doc()
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


HOSTILE = {
    "pickle bytes": (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix", "UTF-8"),
    "empty": (b"", "not a JSON object"),
    "not an object": (b"[1, 2]", "not a JSON object"),
    "other format": ({"format": "something else", "version": 1, "results": []}, "not a probekit"),
    "no format": ({"version": 1, "results": []}, "no format"),
    "newer version": (_with(("version",), 2), "version 2; this probekit reads version 1.*upgrade"),
    "string version": (_with(("version",), "1"), 'version "1"'),
    "bool version": (_with(("version",), True), "version true"),
    "NaN literal": ('{"format": "probekit.session", "version": 1, "results": [NaN]}', "NaN"),
    "Infinity literal": (
        '{"format":"probekit.session","version":1,"meta":{"x":-Infinity},"results":[]}',
        "Infinity",
    ),
    "overflowing number": (
        json.dumps(valid_doc()).replace('"loss_before": 5.0', '"loss_before": 1e999'),
        r"results\[0\].*not a finite number",
    ),
    "overflowing number in meta": (
        '{"format":"probekit.session","version":1,"meta":{"x":[1e999]},"results":[]}',
        r"meta\.x\[0\]",
    ),
    "huge integer": (
        json.dumps(valid_doc()).replace('"step": 0', '"step": ' + "9" * 5000),
        "malformed|digits",
    ),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "nested deeper than 64"),
    "deep nesting in meta": (
        json.dumps(_with(("meta", "x"), 1)).replace("1}", "[" * 70 + "]" * 70 + "}"),
        "nested deeper",
    ),
    "unclosed nesting": ("{" * 1000, "nested deeper"),
    "brackets in strings do not count": (
        json.dumps(_with(("meta", "x"), "[[[[" * 100 + '\\"' + "}}}" * 100)),
        None,
    ),
    "truncated": (json.dumps(valid_doc())[:-40], "malformed"),
    "trailing data": (json.dumps(valid_doc()) + " {}", "extra data"),
    "invalid UTF-8": (b'{"format": "probekit.session\xff"}', "not UTF-8"),
    "duplicate results": (
        '{"format":"probekit.session","version":1,"results":[],"results":[]}',
        "duplicate key",
    ),
    "results missing": ({"format": "probekit.session", "version": 1}, "results.*missing"),
    "results is a dict": (_with(("results",), {"0": {}}), "results: expected array, got object"),
    "results is a string": (_with(("results",), "abc"), "results: expected array, got string"),
    "results is null": (_with(("results",), None), "results: expected array, got null"),
    "a result is a list": (_with(("results", 0), [1, 2]), r"results\[0\]: expected object"),
    "dict as prompt": (
        _with(("results", 0, "prompt"), {"a": 1}),
        r"results\[0\]\.prompt: expected string, got object",
    ),
    "string as step": (_with(("results", 0, "step"), "3"), r"results\[0\]\.step: expected integer"),
    "bool as step": (_with(("results", 0, "step"), True), r"results\[0\]\.step: expected integer"),
    "negative step": (_with(("results", 0, "step"), -1), r"results\[0\]\.step: -1 is out of range"),
    "fractional count": (
        _with(("results", 0, "tensors", 0, "numel"), 1.5),
        r"results\[0\]\.tensors\[0\]\.numel: expected integer",
    ),
    "number as token": (
        _with(("results", 0, "target_tokens", 1), 7),
        r"results\[0\]\.target_tokens\[1\]: expected string, got integer",
    ),
    "string as number": (
        _with(("results", 0, "watch", 0, "kl"), "0.5"),
        r"results\[0\]\.watch\[0\]\.kl: expected number or null, got string",
    ),
    "top-k pair of three": (
        _with(("results", 0, "watch", 0, "topk_after", 0), ["a", 0.5, 1]),
        r"topk_after\[0\]",
    ),
    "missing field": (_with(("results", 0), {"step": 0}), "required property"),
    "unexpected result field": (
        _with(("results", 0, "__class__"), "os.system"),
        r"results\[0\]: unexpected field\(s\) \"__class__\"",
    ),
    "unexpected top-level field": (_with(("pickle",), "gASV"), "unexpected top-level"),
    "huge array": (
        _with(("results", 0, "watch", 0, "topk_before"), [["t", 0.1]] * 1025),
        r"topk_before: more than the limit of 1,024 items",
    ),
    "huge string": (
        _with(("results", 0, "prompt"), "x" * (1024**2 + 1)),
        r"prompt: more than the limit of 1,048,576 characters",
    ),
    "huge meta": (_with(("meta",), {str(i): i for i in range(300)}), "limit of 256 keys"),
    "meta model of the wrong type": (_with(("meta", "model"), 5), r"meta\.model"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_case29_hostile_or_corrupt_files_are_rejected_clearly(tmp_path, case):
    content, message = HOSTILE[case]
    path = write(tmp_path / "bad.probekit.json", content)
    if message is None:  # a valid file that only looks suspicious
        pk.load_session(path)
        return
    with pytest.raises(pk.ProbekitError, match=message) as error:
        pk.load_session(path)
    assert str(path) in str(error.value)
    assert len(str(error.value)) < 600, "messages stay short even for huge values"


def test_case29_size_limit_is_read_not_trusted(tmp_path):
    path = write(tmp_path / "s.json", valid_doc())
    size = path.stat().st_size
    with pytest.raises(pk.ProbekitError, match=f"limit of {size - 1:,} bytes"):
        pk.load_session(path, max_bytes=size - 1)
    assert len(pk.load_session(path, max_bytes=size)) == 1
    assert len(pk.load_session(path, max_bytes=None)) == 1
    saved = session_file.save(tmp_path / "saved.json", [make_result(), make_result(1)], {})
    size = saved.stat().st_size  # the line-by-line reader counts the same way
    with pytest.raises(pk.ProbekitError, match=f"limit of {size - 1:,} bytes.*max_bytes=None"):
        pk.load_session(saved, max_bytes=size - 1)
    assert len(pk.load_session(saved, max_bytes=size)) == 2
    assert len(pk.load_session(saved, max_bytes=None)) == 2
    with path.open("rb") as f:  # a file object is read the same bounded way
        assert len(pk.load_session(f, max_bytes=size)) == 1


def test_case29_dev_zero_is_refused_at_once():
    with deadline(10), pytest.raises(pk.ProbekitError, match="not a regular file"):
        pk.load_session("/dev/zero")
    with (
        deadline(10),
        open("/dev/zero", "rb") as f,  # as a stream: the byte limit holds
        pytest.raises(pk.ProbekitError, match="limit of 1,000 bytes"),
    ):
        pk.load_session(f, max_bytes=1000)


def test_case29_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "session.probekit.json"
    os.mkfifo(fifo)
    with deadline(10), pytest.raises(pk.ProbekitError, match="not a regular file"):
        pk.load_session(fifo)


def test_case29_folders_and_missing_files_get_probekit_errors(tmp_path):
    with pytest.raises(pk.ProbekitError, match="cannot read"):
        pk.load_session(tmp_path / "missing.json")
    with pytest.raises(pk.ProbekitError, match=r"cannot read|not a regular file"):
        pk.load_session(tmp_path)


def test_case29_keys_in_any_order_still_load(tmp_path):
    doc = valid_doc()
    reordered = {k: doc[k] for k in ("results", "meta", "version", "format")}
    assert len(pk.load_session(write(tmp_path / "s.json", reordered))) == 1
    bad = {**reordered, "version": 7}
    with pytest.raises(pk.ProbekitError, match="version 7"):  # not a field error
        pk.load_session(write(tmp_path / "s.json", bad))


def test_case29_files_written_before_the_schema_still_load(tmp_path):
    """The version-1 layout of earlier releases (indented, no settings) reads unchanged."""
    doc = valid_doc()
    doc["meta"] = {"model": "probekit demo", "lr": 0.3}
    for raw in doc["results"]:
        del raw["input_tokens"], raw["token_grad"]  # fields older files did not have
    path = write(tmp_path / "old.json", json.dumps(doc, indent=1, ensure_ascii=False))
    saved = pk.load_session(path)
    assert saved.model == {"name": "probekit demo"} and saved.results[0].token_grad == ()


# -- data only (case 30) ---------------------------------------------------------------------
CASE30 = """
import sys
import probekit as pk
saved = pk.load_session(sys.argv[1])
print(saved.model["name"], saved.meta["trust_remote_code"], len(saved))
print(sorted(m for m in ("torch", "transformers", "huggingface_hub") if m in sys.modules))
"""


def test_case30_a_model_named_in_a_file_is_never_loaded(tmp_path):
    doc = valid_doc()
    doc["meta"] = {
        "model": {"name": "attacker/remote-code-model", "revision": "main", "source": "hub"},
        "trust_remote_code": True,
        "settings": {"trust_remote_code": True, "optimizer": "sgd", "lr": 0.1, "steps": 1},
    }
    path = write(tmp_path / "s.json", doc)
    out = subprocess.run(
        [sys.executable, "-c", CASE30, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
        timeout=120,
    ).stdout.splitlines()
    assert out == ["attacker/remote-code-model True 1", "[]"], "nothing model-related imported"
