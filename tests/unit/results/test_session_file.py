"""Session files: strict JSON round trip, atomic writes, hostile files rejected."""

from __future__ import annotations

import json
import math

import pytest

import probekit as pk
from probekit.results import session_file


@pytest.fixture
def results(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=["the cat says", "😀 <script>alert(1)</script>"])
    return [
        probe.step(pk.Example("the dog says", " woof"), commit=True),
        probe.step(pk.Example('"><img src=x onerror=alert(1)>', " meow")),
    ]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_round_trip_keeps_every_number_and_string(results, tmp_path):
    path = session_file.save(tmp_path / "s.json", results, {"model": "tiny"})
    loaded, meta = session_file.load(path)
    assert meta == {"model": "tiny"}
    for a, b in zip(results, loaded, strict=True):
        assert a.tensors == b.tensors
        assert a.prompt == b.prompt and a.target_tokens == b.target_tokens
        for wa, wb in zip(a.watch, b.watch, strict=True):
            assert wa.label == wb.label and wa.topk_after == wb.topk_after
            assert _same(wa.dlogp_target, wb.dlogp_target) and wa.drift == wb.drift
        assert a.to_frame().equals(b.to_frame())


def test_file_is_strict_json_without_nan(results, tmp_path):
    text = (session_file.save(tmp_path / "s.json", results, {})).read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"constant {c}"))


def test_failed_write_keeps_the_old_file(results, tmp_path, monkeypatch):
    path = session_file.save(tmp_path / "s.json", results[:1], {"v": 1})
    old = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(session_file.os, "fsync", boom)
    with pytest.raises(pk.ProbekitError, match=r"disk full.*unchanged"):
        session_file.save(path, results, {"v": 2})
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"], "no temp file left behind"


@pytest.mark.parametrize(
    "content",
    [
        b"\x80\x04\x95pickle bytes",
        b'{"format": "probekit.session", "version": 99, "results": []}',
        b'{"format": "something else"}',
        b'{"format": "probekit.session", "version": 1, "results": [{"loss_before": NaN}]}',
        b'{"format": "probekit.session", "version": 1, "results": [{"step": 0}]}',
    ],
)
def test_hostile_or_corrupt_files_are_rejected(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(pk.ProbekitError):
        session_file.load(path)
