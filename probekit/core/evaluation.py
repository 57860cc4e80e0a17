"""Scoring examples at the current weights: loss, p(target) and top-1 correctness."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from probekit.core import batch as batching
from probekit.core.inputs import EncodedExample
from probekit.core.logprob import segment_sum
from probekit.core.params import ParamEntry
from probekit.core.protocols import CausalLM
from probekit.core.sandbox import preserved


@dataclass(frozen=True)
class Evaluation:
    """Per example: mean target-token NLL, p(target) = Π p(token), all target tokens top-1."""

    loss: tuple[float, ...]
    prob: tuple[float, ...]
    correct: tuple[bool, ...]


def evaluate(
    model: CausalLM, entries: Sequence[ParamEntry], encoded: Sequence[EncodedExample], pad_id: int
) -> Evaluation:
    """One batched forward in eval mode (the model's flags restored afterwards)."""
    if not encoded:
        return Evaluation((), (), ())
    batch = batching.make_batch(encoded, pad_id, entries[0].param.device)
    with preserved(model, entries), torch.no_grad():
        out = batching.forward(model, batch)
    nll = batching.target_nll(out, batch).double()
    hits = (out.logits.argmax(-1) == batch.targets).double()
    counts = batch.read_counts
    total = segment_sum(nll, counts)
    n_hits = segment_sum(hits, counts).tolist()
    return Evaluation(
        loss=tuple((total / torch.tensor(counts, dtype=total.dtype)).tolist()),
        prob=tuple(torch.exp(-total).tolist()),
        correct=tuple(h == c for h, c in zip(n_hits, counts, strict=True)),
    )
