"""Right-padded batches of encoded examples and the forward pass that reads them.

Right padding with an explicit attention mask and position ids keeps every real
token's computation identical to running the item alone (causal attention never
looks right), so batched results equal one-by-one results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from probekit.core.inputs import EncodedExample


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


def forward(model: Any, batch: Batch) -> Outputs:
    """Run the model on ``batch``; logits in float32 at read positions, hidden states at tokens."""
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        output_hidden_states=True,
        use_cache=False,
    )
    logits = out.logits[batch.read_rows, batch.read_cols].float()
    real = batch.attention_mask.bool()
    hidden = tuple(h[real] for h in out.hidden_states)
    return Outputs(logits=logits, hidden=hidden)


def target_nll(outputs: Outputs, batch: Batch) -> torch.Tensor:
    """Per-read-position NLL of the target token (N,), float32; NaN where there is no target."""
    logp = torch.log_softmax(outputs.logits, dim=-1)
    safe = batch.targets.clamp(min=0)
    nll = -logp.gather(1, safe[:, None]).squeeze(1)
    return torch.where(batch.targets >= 0, nll, torch.full_like(nll, float("nan")))


def detach(outputs: Outputs) -> Outputs:
    return Outputs(outputs.logits.detach(), tuple(h.detach() for h in outputs.hidden))
