"""Right-padded batches of encoded examples and the forward pass that reads them.

Right padding with an explicit attention mask and position ids keeps every real
token's computation identical to running the item alone (causal attention never
looks right), so batched results equal one-by-one results.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from probekit.core.inputs import EncodedExample
from probekit.core.logprob import target_nll as _target_nll
from probekit.core.protocols import CausalLM


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, T)
    read_rows: torch.Tensor  # (N,) batch row of each read position
    read_cols: torch.Tensor  # (N,) position whose logits predict a target token
    targets: torch.Tensor  # (N,) the token to predict there, -1 without a target
    read_counts: tuple[int, ...]  # read positions per item
    token_counts: tuple[int, ...]  # real tokens per item

    @property
    def size(self) -> int:
        return len(self.read_counts)


@dataclass(frozen=True)
class Outputs:
    """What a forward pass yields for metrics: logits at read positions, hidden states."""

    logits: torch.Tensor  # (N, V) float32
    hidden: tuple[torch.Tensor, ...]  # per layer: (N_tokens, d) at real tokens, row-major


def make_batch(items: Sequence[EncodedExample], pad_id: int, device: torch.device) -> Batch:
    """Pad ``items`` on the right into one batch and index the positions to read."""
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    rows: list[int] = []
    cols: list[int] = []
    targets: list[int] = []
    for b, e in enumerate(items):
        ids[b, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[b, : len(e.input_ids)] = 1
        positions = e.target_positions
        rows += [b] * len(positions)
        cols += list(positions)
        targets += list(e.target_ids) if e.target_ids else [-1]
    positions_ids = torch.arange(width).expand(len(items), width).clone()
    return Batch(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions_ids.to(device),
        read_rows=torch.tensor(rows, device=device),
        read_cols=torch.tensor(cols, device=device),
        targets=torch.tensor(targets, device=device),
        read_counts=tuple(len(e.target_positions) for e in items),
        token_counts=tuple(len(e.input_ids) for e in items),
    )


class Batches:
    """Batches made before, found again by the identity of their items.

    A probe's encodings of a repeated example (and its watch items) are the same
    objects, so the batch of a repeated step is made once. Holds the items it keys by
    (so their ids stay theirs) and at most ``limit`` batches.
    """

    def __init__(self, limit: int = 8) -> None:
        self.limit = limit
        self._found: dict[tuple[Any, ...], tuple[tuple[EncodedExample, ...], Batch]] = {}

    def make(self, items: Sequence[EncodedExample], pad_id: int, device: torch.device) -> Batch:
        """:func:`make_batch`, or the batch made before of these very items."""
        key = (tuple(id(e) for e in items), pad_id, device)
        hit = self._found.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], items, strict=True)):
            return hit[1]
        batch = make_batch(items, pad_id, device)
        if len(self._found) >= self.limit:
            self._found.clear()
        self._found[key] = (tuple(items), batch)
        return batch


def forward(model: CausalLM, batch: Batch) -> Outputs:
    """Run the model on ``batch``; logits in float32 at read positions, hidden states at tokens.

    Where the model supports ``logits_to_keep``, the LM head projects only the read
    positions (the vocabulary projection is a large share of a forward pass).
    """
    kwargs: dict[str, Any] = {}
    keep = read_mask(model, batch)
    if keep is not None:
        kwargs["logits_to_keep"] = keep
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        output_hidden_states=True,
        use_cache=False,
        **kwargs,
    )
    logits = out.logits
    if keep is not None and logits.dim() == 2 and logits.shape[0] == batch.read_rows.numel():
        logits = logits.float()
    else:
        logits = logits[batch.read_rows, batch.read_cols].float()
    return Outputs(logits=logits, hidden=_real_tokens(out.hidden_states, batch))


def _real_tokens(hidden_states: tuple[torch.Tensor, ...], batch: Batch) -> tuple[torch.Tensor, ...]:
    """Hidden states (detached) at real tokens, row-major; a view when nothing is padded."""
    if all(n == batch.input_ids.shape[1] for n in batch.token_counts):
        return tuple(h.detach().reshape(-1, h.shape[-1]) for h in hidden_states)
    real = batch.attention_mask.bool()
    return tuple(h.detach()[real] for h in hidden_states)


def read_mask(model: CausalLM, batch: Batch) -> torch.Tensor | None:
    """A (B, T) boolean mask of the read positions, if the model can take ``logits_to_keep``."""
    if not accepts_logits_to_keep(model):
        return None
    keep = torch.zeros_like(batch.attention_mask, dtype=torch.bool)
    keep[batch.read_rows, batch.read_cols] = True
    return keep


_LOGITS_TO_KEEP: dict[type, bool] = {}


def accepts_logits_to_keep(model: CausalLM) -> bool:
    base = getattr(model, "get_base_model", None)  # a PEFT wrapper passes keywords through
    model = base() if callable(base) else model
    cls = type(model)
    if cls not in _LOGITS_TO_KEEP:
        try:
            _LOGITS_TO_KEEP[cls] = "logits_to_keep" in inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            _LOGITS_TO_KEEP[cls] = False
    return _LOGITS_TO_KEEP[cls]


def target_nll(outputs: Outputs, batch: Batch) -> torch.Tensor:
    """Per-read-position NLL of the target token (N,), float32; NaN where there is no target."""
    return _target_nll(outputs.logits, batch.targets)


def detach(outputs: Outputs) -> Outputs:
    return Outputs(outputs.logits.detach(), tuple(h.detach() for h in outputs.hidden))
