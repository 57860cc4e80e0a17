"""Which parameters a probe steps: distinct storages, their names, their layers.

Tied tensors (GPT-2's ``wte`` and ``lm_head``) share one storage and appear once,
under their first name, with the other names kept as aliases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from probekit.core.protocols import CausalLM
from probekit.errors import InputError, UnsupportedModelError

_BLOCK = re.compile(r"(?:^|\.)(?:h|layers|layer|blocks|block)\.(\d+)\.")
_EMBED = re.compile(r"(wte|wpe|embed|embedding)", re.IGNORECASE)
_HEAD = re.compile(r"(lm_head|embed_out|output_layer)", re.IGNORECASE)
_FINAL_NORM = re.compile(r"(ln_f|final_layer_norm|norm)\.", re.IGNORECASE)


@dataclass(frozen=True)
class ParamEntry:
    """One distinct trainable storage."""

    name: str
    aliases: tuple[str, ...]
    layer: str
    param: torch.nn.Parameter

    @property
    def tied(self) -> bool:
        return bool(self.aliases)


def layer_of(name: str, aliases: Sequence[str] = ()) -> str:
    """Layer label of a parameter: ``embeddings``, ``block.N``, ``final_norm``, ``lm_head``."""
    block = _BLOCK.search(name)
    if block:
        return f"block.{int(block.group(1))}"
    if _EMBED.search(name):
        return "embeddings+lm_head" if any(_HEAD.search(a) for a in aliases) else "embeddings"
    if _HEAD.search(name):
        return "lm_head"
    if _FINAL_NORM.search(name + "."):
        return "final_norm"
    return "other"


def distinct_parameters(
    model: CausalLM,
) -> list[tuple[str, tuple[str, ...], torch.nn.Parameter]]:
    """Every parameter storage once, with all names that refer to it."""
    seen: dict[int, int] = {}
    out: list[tuple[str, list[str], torch.nn.Parameter]] = []
    for name, param in model.named_parameters(remove_duplicate=False):
        key = id(param)
        if key in seen:
            out[seen[key]][1].append(name)
            continue
        seen[key] = len(out)
        out.append((name, [], param))
    return [(n, tuple(a), p) for n, a, p in out]


def select(
    model: CausalLM,
    layers: Iterable[int | str] | None = None,
    pattern: str | None = None,
) -> list[ParamEntry]:
    """The trainable storages a probe may step, optionally restricted by layer or name regex.

    ``layers`` takes block indices (``0``, ``-1``) and layer labels (``"embeddings"``,
    ``"final_norm"``, ``"lm_head"``). Frozen parameters are never selected.
    """
    entries = [
        ParamEntry(name, aliases, layer_of(name, aliases), param)
        for name, aliases, param in distinct_parameters(model)
        if param.requires_grad
    ]
    if not entries:
        raise UnsupportedModelError(
            "the model has no trainable parameters (every requires_grad is False); unfreeze "
            "the part you want to probe, e.g. model.lm_head.requires_grad_(True)"
        )
    everything = entries
    if layers is not None:
        wanted = _layer_labels(layers, entries)
        entries = [e for e in entries if e.layer in wanted or wanted & _split_tied(e.layer)]
    if pattern is not None:
        regex = re.compile(pattern)
        entries = [e for e in entries if any(regex.search(n) for n in (e.name, *e.aliases))]
    if not entries:
        labels = ", ".join(dict.fromkeys(e.layer for e in everything))
        raise InputError(
            f"no trainable parameter matches layers={layers!r} pattern={pattern!r}; the "
            f"layers are {labels} and the names look like {everything[0].name!r} (all of "
            "them: [n for n, p in model.named_parameters() if p.requires_grad])"
        )
    return entries


def _split_tied(label: str) -> set[str]:
    return set(label.split("+"))


def _layer_labels(layers: Iterable[int | str], entries: list[ParamEntry]) -> set[str]:
    n_blocks = len({e.layer for e in entries if e.layer.startswith("block.")})
    labels: set[str] = set()
    for item in layers:
        if isinstance(item, int):
            index = item + n_blocks if item < 0 else item
            if not 0 <= index < max(n_blocks, 1):
                raise InputError(f"layer {item} is out of range: the model has {n_blocks} blocks")
            labels.add(f"block.{index}")
        else:
            labels.add(str(item))
    return labels
