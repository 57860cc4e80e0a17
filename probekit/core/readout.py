"""Turning before/after outputs of a batch into :class:`WatchRow` results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import torch

from probekit.core.batch import Batch, Outputs
from probekit.core.inputs import EncodedExample
from probekit.core.metrics import hidden_drift, logit_shift
from probekit.core.protocols import Tokenizer
from probekit.results.probe import LayerDrift, WatchRow


def split(outputs: Outputs, first: Batch) -> tuple[Outputs, Outputs]:
    """Split the outputs of a batch whose leading rows are ``first``'s rows from the rest."""
    n_read, n_tok = sum(first.read_counts), sum(first.token_counts)
    head = Outputs(outputs.logits[:n_read], tuple(h[:n_tok] for h in outputs.hidden))
    tail = Outputs(outputs.logits[n_read:], tuple(h[n_tok:] for h in outputs.hidden))
    return head, tail


@dataclass(frozen=True)
class Part:
    """Items of one batch with their outputs before and after a step, to read out together."""

    labels: Sequence[str]
    items: Sequence[EncodedExample]
    before: Outputs
    after: Outputs
    batch: Batch
    is_example: bool = False


def rows(
    labels: Sequence[str],
    items: Sequence[EncodedExample],
    before: Outputs,
    after: Outputs,
    batch: Batch,
    top_k: int,
    is_example: bool = False,
) -> list[WatchRow]:
    """One :class:`WatchRow` per item of ``batch`` (top-k tokens still as ids)."""
    return rows_of([Part(labels, items, before, after, batch, is_example)], top_k)


def rows_of(parts: Sequence[Part], top_k: int) -> list[WatchRow]:
    """The rows of several batches (the watch set and the example) in one vectorised pass."""
    if len(parts) == 1:
        before, after = parts[0].before, parts[0].after
        targets = parts[0].batch.targets
    else:
        before, after = _joined([p.before for p in parts]), _joined([p.after for p in parts])
        targets = torch.cat([p.batch.targets for p in parts])
    read_counts = tuple(c for p in parts for c in p.batch.read_counts)
    token_counts = tuple(c for p in parts for c in p.batch.token_counts)
    shift = logit_shift.logit_shift(before.logits, after.logits, targets, read_counts, top_k)
    top_b, top_a = shift.topk_before, shift.topk_after
    cos, rel = hidden_drift.drift(before.hidden, after.hidden, token_counts)
    names = hidden_drift.layer_labels(len(before.hidden))
    labels = [label for p in parts for label in p.labels]
    items = [item for p in parts for item in p.items]
    examples = [p.is_example for p in parts for _ in p.items]
    return [
        WatchRow(
            label=labels[i],
            prompt=items[i].example.prompt,
            target=items[i].example.target,
            is_example=examples[i],
            kl=shift.kl[i],
            dlogp_target=shift.dlogp_target[i],
            top1_flip=shift.top1_flip[i],
            logit_l2=shift.logit_l2[i],
            topk_before=tuple(zip(map(str, top_b[i][0]), top_b[i][1], strict=True)),
            topk_after=tuple(zip(map(str, top_a[i][0]), top_a[i][1], strict=True)),
            drift=tuple(LayerDrift(n, c, r) for n, c, r in zip(names, cos[i], rel[i], strict=True)),
        )
        for i in range(len(items))
    ]


def _joined(outputs: Sequence[Outputs]) -> Outputs:
    """Outputs of several batches as one: read positions, then tokens, in batch order."""
    logits = torch.cat([o.logits for o in outputs])
    hidden = tuple(torch.cat(layer) for layer in zip(*(o.hidden for o in outputs), strict=True))
    return Outputs(logits, hidden)


class TokenTexts:
    """The text of single tokens, decoded once each (``decode`` costs a call per id).

    Keeps at most ``limit`` ids; starts over when the tokenizer's length changes (tokens
    added to it).
    """

    def __init__(self, tokenizer: Tokenizer, limit: int = 4096) -> None:
        self.tokenizer = tokenizer
        self.limit = limit
        self._texts: dict[int, str] = {}
        self._size = token_count(tokenizer)

    def of(self, ids: Iterable[int]) -> dict[int, str]:
        """``{id: text}`` for ``ids``."""
        size = token_count(self.tokenizer)
        if size != self._size or len(self._texts) > self.limit:
            self._texts, self._size = {}, size
        texts = self._texts
        for i in ids:
            if i not in texts:
                texts[i] = str(self.tokenizer.decode([int(i)]))
        return texts


def token_count(tokenizer: Tokenizer) -> int | None:
    """``len(tokenizer)`` (added tokens included), or None for one without a length."""
    try:
        return len(tokenizer)  # type: ignore[arg-type]
    except TypeError:
        return None


def with_token_text(watch: Sequence[WatchRow], tokenizer: Tokenizer | TokenTexts) -> list[WatchRow]:
    """Replace token ids in the top-k lists by their text (decoded, shown literally)."""
    ids = {int(i) for r in watch for pairs in (r.topk_before, r.topk_after) for i, _ in pairs}
    texts = (tokenizer if isinstance(tokenizer, TokenTexts) else TokenTexts(tokenizer)).of(ids)

    def text(pairs: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
        return tuple((texts[int(i)], p) for i, p in pairs)

    return [
        replace(r, topk_before=text(r.topk_before), topk_after=text(r.topk_after)) for r in watch
    ]
