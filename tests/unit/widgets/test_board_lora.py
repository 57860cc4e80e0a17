"""A board on a ``pk.LoraProbe``: its snapshots and session files carry the adapters' setup."""

from __future__ import annotations

import copy
import json

import pytest

import probekit as pk
from probekit.errors import ProbekitError
from probekit.results.snapshot import validate_snapshot
from probekit.widgets import export
from probekit.widgets.board import ProbeBoard
from tests import tiny

pytest.importorskip("peft")


@pytest.fixture
def lora_board(tiny_tokenizer):
    probe = pk.LoraProbe(
        tiny.make_gpt2(tiny_tokenizer), tiny_tokenizer, r=4, lr=0.1, seed=3, watch=["the cat says"]
    )
    board = ProbeBoard(probe, prompt="the dog says", target=" woof")
    yield board
    board.wait(30)
    board.close()
    probe.close()


def _snapshot(board: ProbeBoard, monkeypatch) -> dict:
    shown: dict = {}
    monkeypatch.setattr(export, "publish", lambda image, data, text: shown.update(data=data))
    board.actions.probe.click()
    assert board.wait(60), "the board did not become idle"
    board.snapshot()
    return shown["data"]


def test_a_snapshot_carries_the_lora_configuration(lora_board, monkeypatch):
    data = _snapshot(lora_board, monkeypatch)
    lora = data["settings"]["lora"]
    assert lora == lora_board.probe.lora_settings()
    assert (lora["r"], lora["alpha"], lora["seed"]) == (4, 8.0, 3)
    assert lora["target_modules"]  # the modules peft resolved for the architecture
    assert validate_snapshot(json.dumps(data, allow_nan=False))["settings"]["lora"] == lora


def test_a_plain_probe_snapshot_has_no_lora(tiny_gpt2):
    model, tok = tiny_gpt2
    board = ProbeBoard(pk.Probe(model, tok, lr=0.1))
    try:
        assert "lora" not in board.settings_dict()
    finally:
        board.close()


def test_the_schema_checks_the_lora_settings(lora_board, monkeypatch):
    data = _snapshot(lora_board, monkeypatch)
    for field, bad in [("r", 0), ("dropout", 2.0), ("rank_pattern", {"q": "big"})]:
        broken = copy.deepcopy(data)
        broken["settings"]["lora"][field] = bad
        with pytest.raises(ProbekitError, match=field):
            validate_snapshot(broken)
    missing = copy.deepcopy(data)
    del missing["settings"]["lora"]["alpha"]
    with pytest.raises(ProbekitError, match="alpha"):
        validate_snapshot(missing)


def test_the_boards_session_file_carries_it_too(lora_board, tmp_path):
    lora_board.actions.probe.click()
    assert lora_board.wait(60)
    lora_board.save_path.value = str(tmp_path / "s.probekit.json")
    lora_board.save.click()
    assert lora_board.wait(60)
    saved = pk.load_session(tmp_path / "s.probekit.json")
    assert saved.lora == lora_board.probe.lora_settings()
    assert len(saved.results) == 1


def test_applying_new_settings_keeps_the_adapters(lora_board):
    board = lora_board
    old = board.probe
    board.actions.probe.click()
    assert board.wait(60)
    board.settings.lr.value = 0.5
    board.settings.apply.click()
    assert board.wait(60), "the board did not become idle"
    new = board.probe
    assert new is not old and new.spec.lr == 0.5 and len(new.history) == 1
    assert new.model is old.model and new.lora_settings() == old.lora_settings()
    board.actions.probe.click()
    assert board.wait(60)
    assert new.history[-1].ok and new.history[-1].lr == 0.5
    new.close()  # the fixture closes the old probe: a no-op now
