"""How much memory a probe step needs beyond the weights, and whether the device has it.

A step on the selected parameters (P numbers of ``b`` bytes each) holds, at its peak:

* their gradients (``b·P``), and for half-precision weights float32 master copies and
  master gradients (``8·P``: the update maths runs in float32);
* the saved copy that reverts the step (``b·P``);
* the optimizer state (Adam/AdamW: two moments, SGD with momentum: one buffer; float32
  for half precision), and a copy of it — an isolated step steps a scratch copy, a
  committed one keeps the old state for undo;
* float32 work space: update directions (one copy) and the delta statistics of the
  largest tensor (four copies, the eager bound); for plain SGD also the two scratch
  matrices (gradient and delta) its stacked statistics keep for small float32/float64
  tensors (:mod:`probekit.core.stacked`);
* the activations the backward pass needs, from the lowest stepped layer upwards, for
  an example of ``tokens`` tokens, and the watch set's cached outputs.

The weights themselves are already resident and are reported, not counted as need. A
committed step also keeps an undo entry (the saved copy and the old optimizer state);
``committed`` adds the two entries the undo stack always keeps (origin and newest).
:func:`check_fits` refuses a probe whose isolated step will not fit, naming what does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from probekit.core import stacked
from probekit.core.batch import accepts_logits_to_keep
from probekit.core.free_memory import free_bytes
from probekit.core.optimizer import OptimizerSpec
from probekit.core.params import ParamEntry
from probekit.core.protocols import CausalLM
from probekit.errors import OutOfMemoryError

# Example length assumed when a probe is built (the example is not known yet).
DEFAULT_TOKENS = 128
# Float32 temporaries of the delta statistics of one tensor, taken one tensor at a time
# (θ′ and θ widened, Δ, |Δ|; a compiled kernel needs fewer: this is the eager bound).
_STATS_COPIES = 4
_OWN_PRECISION = (torch.float32, torch.float64)
_GIB = 1024**3


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a probe step needs on ``device``, by part, and what is free there.

    ``need`` is what an isolated step adds to the resident weights; ``committed`` adds
    the undo entries a committed probe keeps. ``free`` is None when it is unknown.
    """

    device: str
    stepped: int  # numbers stepped
    weights: int  # bytes of the model's resident weights (already there, not counted)
    gradients: int
    masters: int  # float32 master copies and their gradients (half-precision weights)
    saved_copy: int  # the copy that reverts the step
    optimizer_state: int  # moments/momentum, and the copy a step works on
    workspace: int  # float32 update directions and delta statistics
    activations: int  # saved for the backward pass, plus the watch set's outputs
    undo_entry: int  # what each kept committed step holds (weights + optimizer state)
    free: int | None
    tokens: int

    @property
    def need(self) -> int:
        """Bytes an isolated step adds to the resident weights."""
        return (
            self.gradients
            + self.masters
            + self.saved_copy
            + self.optimizer_state
            + self.workspace
            + self.activations
        )

    @property
    def committed(self) -> int:
        """Bytes a committed probe needs: a step plus the origin and newest undo entries."""
        return self.need + 2 * self.undo_entry

    @property
    def fits(self) -> bool:
        return self.free is None or self.need <= self.free

    def parts(self) -> dict[str, int]:
        """The counted parts by name, in bytes."""
        skip = {"device", "stepped", "weights", "undo_entry", "free", "tokens"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {_gib(v)}" for k, v in self.parts().items() if v)
        free = "unknown" if self.free is None else _gib(self.free)
        return (
            f"a step on {self.stepped:,} parameters needs {_gib(self.need)} on {self.device} "
            f"beyond the {_gib(self.weights)} of weights ({parts}; {self.tokens} tokens); "
            f"free: {free}"
        )


def estimate(
    model: CausalLM,
    entries: Sequence[ParamEntry],
    spec: OptimizerSpec,
    *,
    tokens: int = DEFAULT_TOKENS,
    watch_tokens: int = 0,
) -> MemoryEstimate:
    """The memory one probe step on ``entries`` with ``spec`` needs (see the module doc)."""
    n_state = _state_tensors(spec)
    # Adam keeps its step count as a tensor (an upper bound for rules that keep none)
    scalars = 4 if n_state and "step" in spec.rule.state_keys else 0
    gradients = masters = saved = state = workspace = undo = largest = 0
    for e in entries:
        n, b = e.param.numel(), e.param.element_size()
        half = e.param.dtype not in _OWN_PRECISION
        wide = 4 if half else b  # the precision the update maths runs in
        gradients += n * b
        masters += 8 * n if half else 0
        saved += n * b
        state += 2 * (n_state * n * wide + scalars)
        workspace += n * max(wide, 4)
        largest = max(largest, n * max(wide, 4))
        if spec.plain_sgd and n < stacked.STACK_BELOW and not half:
            workspace += 2 * n * b  # the stacked scratch matrices, kept between steps
        undo += n * (b + n_state * wide) + scalars
    device = entries[0].param.device if entries else torch.device("cpu")
    return MemoryEstimate(
        device=str(device),
        stepped=sum(e.param.numel() for e in entries),
        weights=_resident_bytes(model, device),
        gradients=gradients,
        masters=masters,
        saved_copy=saved,
        optimizer_state=state,
        workspace=workspace + _STATS_COPIES * largest,
        activations=activation_bytes(model, entries, tokens, watch_tokens),
        undo_entry=undo,
        free=free_bytes(device),
        tokens=tokens,
    )


def activation_bytes(
    model: CausalLM, entries: Sequence[ParamEntry], tokens: int, watch_tokens: int = 0
) -> int:
    """Activations kept for the backward pass (from the lowest stepped layer up) and logits.

    Per token and transformer block the backward keeps about ``12·h + 2·ffn`` numbers
    (attention inputs and outputs, norms, the MLP's intermediate twice), in the weights'
    dtype; eager attention also keeps its ``heads × tokens²`` scores and probabilities.
    One block's attention scores exist for a moment even without a backward. Added: the
    logits in float32, and every layer's hidden states (of the example and the
    watch set) before and after the step with the drift's float32 work on them.
    """
    shape = _shape(model)
    act = _compute_bytes(model)
    blocks = _blocks_in_backward(entries, shape.layers)
    kept = tokens * blocks * (12 * shape.hidden + 2 * shape.ffn) * act
    attention = shape.heads * tokens * tokens * act
    if _eager_attention(model):
        kept += int(2.5 * attention * blocks)
    # hidden states in float32: before and after the step, and the drift's temporaries
    hidden = 6 * (shape.layers + 1) * shape.hidden * 4 * (tokens + watch_tokens)
    # float32 logits, their log-softmax and gradient: at every position, or only at the
    # read ones (taken as a quarter: the targets) where the model projects only those
    rows = tokens + watch_tokens
    rows = rows if not accepts_logits_to_keep(model) else rows // 4 + 1
    logits = 16 * shape.vocab * rows
    return kept + 2 * attention + hidden + logits


def check_fits(
    model: CausalLM,
    entries: Sequence[ParamEntry],
    spec: OptimizerSpec,
    *,
    tokens: int = DEFAULT_TOKENS,
) -> MemoryEstimate:
    """Refuse (``OutOfMemoryError``) a probe whose isolated step will not fit; else the estimate.

    ``tokens`` is capped at the model's context length.
    """
    found = estimate(model, entries, spec, tokens=min(tokens, _shape(model).context))
    if found.fits:
        return found
    assert found.free is not None
    raise OutOfMemoryError(
        f"this probe will not fit: {found}. Step fewer parameters (a subset such as "
        "layers=[-1] or pattern=r'lm_head', or LoRA adapters: pk.LoraProbe(model, tok, r=8)), "
        + ("use optimizer='sgd' (Adam keeps two more copies), " if spec.name != "sgd" else "")
        + "load the model in a smaller dtype (dtype='bf16'), or use a device with more free "
        "memory. pk.estimate_memory(model, ...) shows the estimate; check_memory=False "
        "builds the probe anyway"
    )


# -- model shape -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Shape:
    hidden: int
    ffn: int
    heads: int
    layers: int
    vocab: int
    context: int


def _shape(model: CausalLM) -> _Shape:
    config: Any = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config

    def first(*names: str, default: int) -> int:
        for name in names:
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return default

    hidden = first("hidden_size", "n_embd", "d_model", default=1024)
    return _Shape(
        hidden=hidden,
        ffn=first("intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size", default=4 * hidden),
        heads=first("num_attention_heads", "n_head", "num_heads", default=max(1, hidden // 64)),
        layers=first("num_hidden_layers", "n_layer", "num_layers", default=12),
        vocab=first("vocab_size", default=int(model.get_input_embeddings().num_embeddings)),
        context=first("max_position_embeddings", "n_positions", "seq_length", default=1 << 20),
    )


def _blocks_in_backward(entries: Sequence[ParamEntry], layers: int) -> int:
    """Blocks the backward pass runs through: from the lowest stepped one to the top."""
    labels = {part for e in entries for part in e.layer.split("+")}
    if labels & {"embeddings", "other"}:
        return layers
    blocks = [int(label.split(".")[1]) for label in labels if label.startswith("block.")]
    return layers - min(blocks) if blocks else 0


def _eager_attention(model: CausalLM) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", "eager") in (None, "eager")


def _compute_bytes(model: CausalLM) -> int:
    for p in model.parameters():
        if p.is_floating_point() and not p.is_meta:
            return p.element_size()
    return 4


def _resident_bytes(model: CausalLM, device: torch.device) -> int:
    seen = dict.fromkeys(model.parameters())
    return sum(p.numel() * p.element_size() for p in seen if p.device == device)


def _state_tensors(spec: OptimizerSpec) -> int:
    """Tensors of optimizer state per parameter (the step count is a scalar)."""
    return sum(
        1
        for key in spec.rule.state_keys
        if key != "step" and (key != "momentum_buffer" or spec.momentum)
    )


def _gib(n: int) -> str:
    return f"{n / _GIB:.2f} GiB" if n >= _GIB else f"{n / 1024**2:.1f} MiB"


def estimate_memory(
    model: Any,
    *,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    layers: Sequence[int | str] | None = None,
    pattern: str | None = None,
    tokens: int = DEFAULT_TOKENS,
    watch_tokens: int = 0,
) -> MemoryEstimate:
    """The memory a probe step would need on ``model`` (or on a built ``Probe``) vs what is free.

    ``optimizer``, ``momentum``, ``layers`` and ``pattern`` are the probe's options (a
    ``Probe`` brings its own); ``tokens`` is the example's length and ``watch_tokens``
    the watch set's total. ``print()`` the result for a summary, ``.parts()`` for bytes.
    """
    from probekit.core.params import select

    if hasattr(model, "entries") and hasattr(model, "spec") and hasattr(model, "model"):
        entries, spec, model = model.entries, model.spec, model.model
    else:
        entries, spec = select(model, layers, pattern), OptimizerSpec(optimizer, 1e-3, momentum)
    return estimate(model, entries, spec, tokens=tokens, watch_tokens=watch_tokens)
