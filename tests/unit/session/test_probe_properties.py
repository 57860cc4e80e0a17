"""Property tests: whatever the example, lr and optimizer, probes leave no trace."""

from __future__ import annotations

import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import probekit as pk
from tests import tiny

TOKENIZER = tiny.make_tokenizer()
VOCAB = [w for w in tiny.WORDS if w.isalnum()]
MODEL = tiny.make_gpt2(TOKENIZER)

words = st.lists(st.sampled_from(VOCAB), min_size=1, max_size=8).map(" ".join)
examples = st.builds(pk.Example, words, words.map(lambda w: " " + w))
optimizers = st.sampled_from(["sgd", "adam", "adamw"])
lrs = st.one_of(st.just(0.0), st.floats(1e-6, 1.0), st.just(1e30))
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _probe(optimizer: str, lr: float) -> pk.Probe:
    return pk.Probe(MODEL, TOKENIZER, optimizer=optimizer, lr=lr, watch=["the cat says"])


@SETTINGS
@given(examples, optimizers, lrs, st.integers(1, 3))
def test_isolated_probe_leaves_the_fingerprint_identical(example, optimizer, lr, steps):
    probe = _probe(optimizer, lr)
    before = probe.fingerprint()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe.step(example, steps=steps)
    assert probe.fingerprint().differences(before) == []


@SETTINGS
@given(st.lists(examples, min_size=1, max_size=4), optimizers, lrs)
def test_commit_then_undo_restores_each_state(sequence, optimizer, lr):
    probe = _probe(optimizer, lr)
    states = [probe.fingerprint()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for example in sequence:
            if probe.step(example, commit=True).committed:
                states.append(probe.fingerprint())
    while probe.committed:
        probe.undo()
        states.pop()
        assert probe.fingerprint().differences(states[-1]) == []


@SETTINGS
@given(st.lists(examples, min_size=1, max_size=5), optimizers, st.floats(1e-4, 0.5))
def test_reset_after_commits_restores_the_start(sequence, optimizer, lr):
    probe = _probe(optimizer, lr)
    start = probe.fingerprint()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, example in enumerate(sequence):
            probe.step(example, commit=i % 2 == 0)
    probe.reset()
    assert probe.fingerprint().differences(start) == []
