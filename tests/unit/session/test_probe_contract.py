"""The probe contract: what code built on a probe may use; probekit's own code uses only it."""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import threading
import warnings

import pytest

import probekit as pk

SESSION = pathlib.Path(pk.__file__).parent / "session"
CONTRACT = {
    # reading
    "model", "tokenizer", "entries", "spec", "history", "committed", "watch", "watch_labels",
    "steps", "top_k", "influence", "linearize", "token_grad", "truncation", "max_length",
    # user-facing operations
    "step", "undo", "reset", "run", "checkpoint", "evaluate", "attribute", "attribution_shift",
    "fingerprint", "subscribe", "save",
    # for code built on a probe
    "encode", "exclusive", "quiet", "record", "watch_outputs", "functional", "commit_step",
    "snapshot_back",
}  # fmt: skip
LORA = {"base_model", "lora_settings", "adapters", "close"}  # pk.LoraProbe's own public API
EXAMPLE = pk.Example("the dog says", " woof")


def _probe_attributes(path: pathlib.Path) -> set[str]:
    """Attributes read from a variable called ``probe`` in a module."""
    tree = ast.parse(path.read_text())
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "probe"
    }


@pytest.mark.parametrize("module", sorted(p.name for p in SESSION.glob("*.py")))
def test_session_modules_use_only_the_contract(module):
    if module == "probe.py":
        return
    used = _probe_attributes(SESSION / module)
    allowed = CONTRACT | LORA
    assert used <= allowed, f"{module} reaches past the contract: {sorted(used - allowed)}"


def test_the_lora_names_are_public_and_documented():
    for name in LORA - {"base_model"}:  # base_model is set per instance
        assert not name.startswith("_") and getattr(pk.LoraProbe, name).__doc__, name
    assert "base_model" in pk.LoraProbe.__doc__


def test_the_contract_exists_and_is_documented():
    doc = pk.Probe.__doc__ or ""
    contract_doc = (SESSION.parents[1] / "docs" / "probe-contract.md").read_text()
    for name in CONTRACT:
        assert hasattr(pk.Probe, name) or name in {"model", "tokenizer", "entries", "spec",
                                                   "history", "steps", "top_k", "influence",
                                                   "linearize", "token_grad", "truncation",
                                                   "max_length"}, name  # fmt: skip
        assert f"`{name}" in contract_doc, name
    for name in ("encode", "exclusive", "quiet", "record"):
        assert name in doc, name


def test_encode_is_what_a_step_uses(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.01)
    encoded = probe.encode(EXAMPLE)
    assert probe.encode(("the dog says", " woof")) == encoded
    assert probe.step(EXAMPLE).target_tokens == encoded.target_tokens
    assert probe.encode("the dog says", require_target=False).target_ids == ()
    with pytest.raises(pk.InputError):
        probe.encode("the dog says")


def test_exclusive_refuses_steps_inside(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.01)
    refused: list[BaseException] = []

    def other_thread() -> None:
        try:
            probe.step(EXAMPLE)
        except pk.StateError as exc:
            refused.append(exc)

    with probe.exclusive():
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join(60)
        assert probe.step(EXAMPLE).ok  # the holding thread may still call the probe
    assert len(refused) == 1 and "already running" in str(refused[0])
    assert probe.step(EXAMPLE).ok  # released on exit


def test_quiet_pauses_listeners_and_keeps_history(tiny_gpt2):
    model, tok = tiny_gpt2
    heard: list[pk.ProbeResult] = []
    late: list[pk.ProbeResult] = []
    probe = pk.Probe(model, tok, lr=0.01, on_result=heard.append)
    with probe.quiet():
        probe.step(EXAMPLE)
        probe.subscribe(late.append)
    assert heard == [] and len(probe.history) == 1
    probe.step(EXAMPLE)
    assert len(heard) == 1 and len(late) == 1  # both listeners are back


def test_record_numbers_appends_and_notifies_without_touching_the_model(tiny_gpt2):
    model, tok = tiny_gpt2
    heard: list[pk.ProbeResult] = []
    probe = pk.Probe(model, tok, lr=0.01, on_result=heard.append)
    with probe.quiet(), probe.checkpoint():
        made = probe.step(EXAMPLE, commit=True)
    start = probe.fingerprint()
    probe.step(EXAMPLE)
    recorded = probe.record(dataclasses.replace(made, committed=False))
    assert recorded.step == 1 and probe.history[-1] == recorded and heard[-1] == recorded
    assert probe.committed == () and not probe.fingerprint().differences(start)
    with pytest.raises(pk.StateError, match="committed=False"):
        probe.record(made)  # it says committed, but the model does not hold that step


def test_a_failing_listener_is_a_warning(tiny_gpt2):
    model, tok = tiny_gpt2

    def broken(result):
        raise ValueError("boom")

    probe = pk.Probe(model, tok, lr=0.01, on_result=broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe.record(_made(probe))
    assert any("boom" in str(w.message) for w in caught)


def _made(probe: pk.Probe) -> pk.ProbeResult:
    with probe.quiet():
        return probe.step(EXAMPLE)
