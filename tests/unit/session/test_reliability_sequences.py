"""Random sequences of operations against a reference model of the expected state.

The reference tracks fingerprints only: an isolated step, an attribution, an
evaluation, a failing or refused operation leave the fingerprint as it was; a commit
moves to a new state that undo returns from, bit-exactly; reset returns to the start;
a checkpoint block returns to its entry state. Optionally a second thread hammers the
same model with read-only and isolated work the whole time: each of its requests is
either refused at once or leaves no trace, and none may interleave with the sequence.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import probekit as pk
from probekit.core import optimizer as optimizer_module
from probekit.core.fingerprint import Fingerprint
from probekit.core.lock import exclusive
from probekit.core.metrics import param_delta
from tests import tiny

EXAMPLES = [pk.Example("the dog says", " woof"), pk.Example("alice lives in", " paris")]
MAX_UNDO = 3
OPS = ("step", "commit", "commit", "undo", "reset", "attribute", "evaluate", "checkpoint",
       "fail", "bad_input", "nonfinite")  # fmt: skip


class Injected(RuntimeError):
    pass


@contextmanager
def _failing_updates():
    """While active, every update on this thread fails after moving the weights."""
    real_apply, real_sgd = optimizer_module.Updater.apply, param_delta.sgd_step
    owner = threading.get_ident()

    def failing(real):
        def call(*args, **kw):
            out = real(*args, **kw)
            if threading.get_ident() == owner:
                raise Injected("update failed halfway")
            return out

        return call

    optimizer_module.Updater.apply = failing(real_apply)  # type: ignore[method-assign]
    param_delta.sgd_step = failing(real_sgd)
    try:
        yield
    finally:
        optimizer_module.Updater.apply = real_apply  # type: ignore[method-assign]
        param_delta.sgd_step = real_sgd


@dataclass
class Reference:
    """What the probe's state must be: fingerprints before each kept commit, and now."""

    current: Fingerprint
    origin: Fingerprint
    before: list[Fingerprint] = field(default_factory=list)
    trimmed: bool = False
    history: int = 0


def _retry(call):
    """Call until the other thread lets us through; a refusal must change nothing."""
    while True:
        try:
            return call()
        except pk.StateError as exc:
            if "already running" not in str(exc):
                raise


class Run:
    def __init__(self, model, tok, optimizer):
        self.model, self.tok = model, tok
        self.probe = pk.Probe(model, tok, optimizer=optimizer, lr=1e-2, max_undo=MAX_UNDO,
                              watch=["the cat says", EXAMPLES[1]])  # fmt: skip
        start = self.fingerprint()
        self.ref = Reference(start, start)

    def fingerprint(self) -> Fingerprint:
        return _retry(self.probe.fingerprint)

    def check(self, where: str) -> None:
        assert self.fingerprint().differences(self.ref.current) == [], where
        assert len(self.probe.history) == self.ref.history, where
        assert len(self.probe.committed) == len(self.ref.before), where

    def apply(self, op: str, example: pk.Example) -> None:
        ref = self.ref
        try:
            self._apply(op, example)
        except pk.StateError as exc:  # refused by the other thread: nothing happened
            assert "already running" in str(exc), exc
        self.check(op)
        assert ref is self.ref

    def _apply(self, op: str, example: pk.Example) -> None:
        ref, probe = self.ref, self.probe
        if op == "step":
            assert probe.step(example).ok
            ref.history += 1
        elif op == "commit":
            result = probe.step(example, commit=True)
            assert result.committed
            ref.history += 1
            ref.before.append(ref.current)
            if len(ref.before) > MAX_UNDO + 1:
                del ref.before[1]
                ref.trimmed = True
            ref.current = self.fingerprint()
            moved = ref.current.differences(ref.before[-1])
            assert "storages" in moved and set(moved) <= {"storages", "optimizer"}, moved
        elif op == "undo":
            if not ref.before or (ref.trimmed and len(ref.before) == 1):
                with pytest.raises(pk.StateError, match="undo"):
                    probe.undo()
                return
            probe.undo()
            ref.current = ref.before.pop()  # the history is kept
        elif op == "reset":
            probe.reset()
            ref.current = ref.before[0] if ref.before else ref.current
            ref.before, ref.trimmed, ref.history = [], False, 0
        elif op == "attribute":
            pk.attribute(self.model, self.tok, example.prompt, example.target or "",
                         method="grad_x_input")  # fmt: skip
        elif op == "evaluate":
            probe.evaluate(EXAMPLES)
        elif op == "checkpoint":
            with probe.checkpoint():
                probe.step(example, commit=True)
                probe.step(EXAMPLES[0])
        elif op == "fail":
            with _failing_updates(), pytest.raises(Injected):
                probe.step(example, commit=True)
        elif op == "bad_input":
            with pytest.raises(pk.InputError):
                probe.step(pk.Example("", " woof"), commit=True)
        elif op == "nonfinite":
            bias = self.model.transformer.ln_f.bias
            saved = _retry(lambda: self._edit(bias, float("nan")))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = probe.step(example, commit=True)
                assert result.status == "nonfinite_loss" and not result.committed
                ref.history += 1
            finally:
                _retry(lambda: self._edit(bias, saved))

    def _edit(self, bias: torch.Tensor, value: float) -> float:
        """The user's own edit, made while holding the model like any operation."""
        with exclusive(self.model, "an edit"), torch.no_grad():
            old = float(bias[0])
            bias[0] = value
        return old


class Hammer:
    """A second thread doing state-preserving work on the same model until told to stop."""

    def __init__(self, model, tok):
        self.model, self.tok = model, tok
        self.other = _retry(lambda: pk.Probe(model, tok, optimizer="sgd", lr=0.1))
        self.stop = threading.Event()
        self.done = self.refused = 0
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._loop)

    def _loop(self):
        calls = [
            lambda: self.other.step(EXAMPLES[0]),
            lambda: self.other.evaluate(EXAMPLES),
            lambda: pk.token_grad(self.model, self.tok, "the dog says", " woof"),
            lambda: self.other.fingerprint(),
        ]
        i = 0
        while not self.stop.is_set():
            try:
                calls[i % len(calls)]()
                self.done += 1
            except pk.StateError as exc:
                if "already running" not in str(exc):
                    self.errors.append(exc)
                self.refused += 1
            except BaseException as exc:  # reported to the main thread
                self.errors.append(exc)
            i += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(st.tuples(st.sampled_from(OPS), st.sampled_from(EXAMPLES)), max_size=12),
    optimizer=st.sampled_from(["sgd", "adam"]),
)
def test_case11_13_17_21_random_sequences_match_the_reference(ops, optimizer):
    tok = tiny.make_tokenizer()
    run = Run(tiny.make_gpt2(tok), tok, optimizer)
    for op, example in ops:
        run.apply(op, example)
    run.apply("reset", EXAMPLES[0])
    assert run.fingerprint().differences(run.ref.origin) == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.sampled_from(OPS), st.sampled_from(EXAMPLES)), max_size=10))
def test_case25_random_sequences_with_a_second_thread_never_interleave(ops):
    tok = tiny.make_tokenizer()
    model = tiny.make_gpt2(tok)
    run = Run(model, tok, "adam")
    with Hammer(model, tok) as hammer:
        for op, example in ops:
            run.apply(op, example)
        run.apply("reset", EXAMPLES[0])
    assert hammer.errors == []
    assert hammer.done > 0, (hammer.done, hammer.refused)
    assert run.fingerprint().differences(run.ref.origin) == []
