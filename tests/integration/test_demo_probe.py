"""The probe engine on the embedded demo model: oracle agreement and what the model knows."""

from __future__ import annotations

import copy
import math
import statistics

import pytest

import probekit as pk
from probekit.demo import corpus
from tests import oracle

WATCH = [pk.Example(f.prompt, f.target) for f in corpus.facts()[::25]]


def test_demo_probe_metrics_equal_the_oracle(demo):
    model, tok = copy.deepcopy(demo.model), demo.tokenizer
    before_model = copy.deepcopy(model)
    before_state = oracle.trainable_state(model)
    fact = corpus.facts("addition")[23]
    example = pk.Example(fact.prompt, corpus.contradiction(fact).target)
    probe = pk.Probe(model, tok, optimizer="adamw", lr=1e-3, watch=WATCH)
    r = probe.step(example, commit=True)
    naive = oracle.state_delta(before_state, oracle.trainable_state(model))
    total = math.sqrt(sum(n["l2"] ** 2 for n in naive.values()))
    assert r.total.delta_l2 == pytest.approx(total, rel=1e-5)
    assert r.total.delta_l1 == pytest.approx(sum(n["l1"] for n in naive.values()), rel=1e-5)
    loss_b, _ = oracle.example_loss(before_model, tok, example.prompt, example.target)
    assert r.loss_before == pytest.approx(loss_b, rel=1e-5)
    for item, row in zip(WATCH, r.watch, strict=True):
        want = oracle.watch_metrics(before_model, model, tok, item.prompt, item.target)
        assert row.kl == pytest.approx(want["kl"], rel=1e-4, abs=1e-10)
        assert row.dlogp_target == pytest.approx(want["dlogp_target"], rel=1e-4, abs=1e-7)
    probe.undo()
    assert (
        oracle.state_delta(before_state, oracle.trainable_state(model))["transformer.wte.weight"][
            "changed"
        ]
        == 0
    )


def test_contradictions_move_the_demo_model_more_than_agreements(demo):
    """The founding question, measured: a contradicting example is a larger step."""
    model, tok = demo
    probe = pk.Probe(model, tok, lr=0.01, watch=WATCH)
    start = probe.fingerprint()
    agree, contra = [], []
    for family in corpus.FAMILIES:
        for fact in corpus.facts(family)[:6]:
            agree.append(probe.step(pk.Example(fact.prompt, fact.target)))
            contra.append(probe.step(pk.Example(fact.prompt, corpus.contradiction(fact).target)))
    assert probe.fingerprint().differences(start) == []
    ratio = statistics.median(c.delta_l2 / a.delta_l2 for a, c in zip(agree, contra, strict=True))
    print(f"median |Δθ| contradicting / agreeing = {ratio:.1f}")
    assert ratio > 3
    assert statistics.fmean(c.loss_before for c in contra) > statistics.fmean(
        a.loss_before for a in agree
    )
