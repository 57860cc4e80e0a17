"""Races restore the start bit-exactly; dataset maps equal naive loops; evaluate/checkpoint."""

from __future__ import annotations

import copy
import itertools
import math
import statistics

import pytest
import torch

import probekit as pk
from tests import oracle

EXAMPLES = [
    pk.Example("the dog says", " woof"),
    pk.Example("the cat says", " meow ."),
    pk.Example("alice lives in", " paris"),
    pk.Example("the dog says", " moo"),
]
WATCH = ["the cow says", pk.Example("bob lives in", " rome")]


def test_evaluate_equals_one_by_one_losses(tiny_gpt2):
    model, tok = tiny_gpt2
    ev = pk.Probe(model, tok).evaluate(EXAMPLES)
    for ex, loss, prob, correct in zip(EXAMPLES, ev.loss, ev.prob, ev.correct, strict=True):
        want, nll = oracle.example_loss(model, tok, ex.prompt, ex.target)
        assert loss == pytest.approx(want, rel=1e-5)
        assert prob == pytest.approx(math.exp(-sum(nll)), rel=1e-4)
        logits, _, t = oracle.run_one(model, tok, ex.prompt, ex.target)
        assert correct == bool((logits.argmax(-1) == torch.tensor(t)).all())


def test_checkpoint_rolls_back_commits_history_and_optimizer(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer="adam", lr=1e-2)
    probe.step(EXAMPLES[0], commit=True)
    before = probe.fingerprint()
    with pytest.raises(KeyboardInterrupt), probe.checkpoint():
        probe.step(EXAMPLES[1], commit=True)
        probe.step(EXAMPLES[2], commit=True)
        raise KeyboardInterrupt
    assert probe.fingerprint().differences(before) == []
    assert len(probe.history) == 1 and len(probe.committed) == 1
    probe.undo()  # the undo stack from before the block still works


def test_race_restores_the_start_and_matches_separate_runs(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer="adam", lr=1e-2, watch=WATCH)
    start = probe.fingerprint()
    reference = copy.deepcopy(model)
    result = pk.race(probe, EXAMPLES, window=3)
    assert probe.fingerprint().differences(start) == []
    assert result.orders == ("given", "shuffled", "easy_to_hard", "hard_to_easy")
    losses = result.start_loss
    assert [losses[i] for i in result.permutations[2]] == sorted(losses)
    assert [losses[i] for i in result.permutations[3]] == sorted(losses, reverse=True)
    # each order equals a fresh probe running that order by hand
    for name, perm, traj, final in zip(
        result.orders, result.permutations, result.trajectories, result.final_loss, strict=True
    ):
        model2 = copy.deepcopy(reference)
        alone = pk.Probe(model2, tok, optimizer="adam", lr=1e-2, watch=WATCH)
        by_hand = alone.run([EXAMPLES[i] for i in perm], window=3)
        assert traj.path_length == pytest.approx(by_hand.path_length, rel=1e-6), name
        assert final == pytest.approx(statistics.fmean(alone.evaluate(EXAMPLES).loss), rel=1e-6)
        kls = []
        for item in WATCH:
            ex = item if isinstance(item, pk.Example) else pk.Example(item)
            kls.append(oracle.watch_metrics(reference, model2, tok, ex.prompt, ex.target)["kl"])
        assert result.final_kl[result.orders.index(name)] == pytest.approx(
            statistics.fmean(kls), rel=1e-4, abs=1e-10
        )
    summary = result.summary()
    assert list(summary["order"]) == list(result.orders)
    assert set(result.to_frame()["metric"]) >= {"path_length", "final_loss", "final_kl"}
    assert set(result.steps_frame()["order"]) == set(result.orders)


def test_race_orders_are_validated(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok)
    with pytest.raises(pk.InputError, match="not a permutation"):
        pk.race(probe, EXAMPLES, orders={"bad": [0, 0, 1, 2]})
    with pytest.raises(pk.InputError, match="unknown order"):
        pk.race(probe, EXAMPLES, orders=["sideways"])
    result = pk.race(probe, EXAMPLES, orders={"mine": [3, 2, 1, 0]}, window=2)
    assert result.orders == ("mine",)


def test_dataset_map_equals_a_naive_loop(tiny_gpt2):
    model, tok = tiny_gpt2
    reference = copy.deepcopy(model)
    probe = pk.Probe(model, tok, lr=0.1)
    start = probe.fingerprint()
    result = pk.dataset_map(probe, EXAMPLES, passes=3)
    assert probe.fingerprint().differences(start) == []
    naive = pk.Probe(reference, tok, lr=0.1)
    correct = [naive.evaluate(EXAMPLES).correct]
    probs, updates = [], [[] for _ in EXAMPLES]
    for _ in range(3):
        for i, ex in enumerate(EXAMPLES):
            updates[i].append(naive.step(ex, commit=True).delta_l2)
        ev = naive.evaluate(EXAMPLES)
        probs.append(ev.prob)
        correct.append(ev.correct)
    for i, row in enumerate(result.rows):
        series = [p[i] for p in probs]
        assert row.confidence == pytest.approx(statistics.fmean(series), rel=1e-6)
        assert row.variability == pytest.approx(statistics.pstdev(series), rel=1e-6, abs=1e-12)
        assert row.correctness == pytest.approx(statistics.fmean(float(c[i]) for c in correct[1:]))
        flips = sum(1 for a, b in itertools.pairwise(correct) if a[i] and not b[i])
        assert row.forgetting_events == flips
        assert row.mean_update == pytest.approx(statistics.fmean(updates[i]), rel=1e-6)
    assert list(result.to_frame().columns)[:3] == ["label", "confidence", "variability"]


def test_isolated_map_loop_matches_single_probes(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=WATCH)
    start = probe.fingerprint()
    result = pk.isolated_map(probe, EXAMPLES, method="loop")
    assert probe.fingerprint().differences(start) == []
    for ex, row in zip(EXAMPLES, result.rows, strict=True):
        r = pk.Probe(model, tok, lr=0.05, watch=WATCH).step(ex)
        assert row.update_size == pytest.approx(r.delta_l2, rel=1e-9)
        assert row.loss_drop == pytest.approx(r.loss_before - r.loss_after, rel=1e-9)
        assert row.disturbance == pytest.approx(statistics.fmean(w.kl for w in r.watch))


def test_watch_order_does_not_change_race_summaries(tiny_gpt2):
    model, tok = tiny_gpt2
    a = pk.race(pk.Probe(model, tok, lr=0.05, watch=WATCH), EXAMPLES, orders=["given"])
    b = pk.race(pk.Probe(model, tok, lr=0.05, watch=WATCH[::-1]), EXAMPLES, orders=["given"])
    assert a.final_kl[0] == pytest.approx(b.final_kl[0], rel=1e-6)
    assert a.trajectories[0].path_length == b.trajectories[0].path_length
