"""Token attribution: which input tokens the target's log-probability rests on.

Every method scores the input tokens ``prompt + target[:-1]`` for each target token
``t``, whose log-probability ``log p(target[t] | prompt + target[:t])`` is the function
attributed; the sequence row attributes ``log p(target)`` (the sum of those rows).

- ``ig``: integrated gradients at the input embeddings (Captum
  ``LayerIntegratedGradients``), summed over the embedding dimension, with Captum's
  convergence delta Σ attributions − (F(x) − F(baseline)) per row (the other methods
  have no such check: their ``convergence_delta`` is empty).
- ``grad_x_input``: (∂ log p / ∂eᵢ) · eᵢ, summed over the embedding dimension.
- ``ablation``: log p(x) − log p(x with token i replaced by the baseline token)
  (Captum ``FeatureAblation``, one token per feature).
- :func:`token_grad`: ‖∂L/∂eᵢ‖₂ with L the probe's loss (the mean target-token NLL).

Baselines: ``"pad"`` replaces every input token by the pad token (else EOS, else UNK),
``"unk"`` by the UNK token, ``"zeros"`` uses all-zero embeddings (integrated gradients
then run on the embeddings themselves; not available for ``ablation``).

The model is used inside :func:`~probekit.core.sandbox.preserved` in eval mode: its
train/eval flags, ``requires_grad``, ``.grad``, hooks and the RNG are as before.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any, Literal

import torch

from probekit.core.batch import accepts_logits_to_keep
from probekit.core.inputs import EncodedExample, Example, encode
from probekit.core.loading import check_vocab, context_length
from probekit.core.lock import guarded
from probekit.core.logprob import target_logp
from probekit.core.params import ParamEntry
from probekit.core.protocols import CausalLM, Tokenizer
from probekit.core.sandbox import grad_enabled, preserved
from probekit.errors import InputError, OutOfMemoryError
from probekit.results.attribution import TokenAttribution

Method = Literal["ig", "grad_x_input", "ablation"]
Baseline = Literal["pad", "unk", "zeros"]
METHODS: tuple[str, ...] = ("ig", "grad_x_input", "ablation")
BASELINES: tuple[str, ...] = ("pad", "unk", "zeros")
CPU_BATCH = 16
Rows = tuple[list[list[float]], list[float]]  # per-target-token rows, convergence deltas


def attribute(
    model: CausalLM,
    tokenizer: Tokenizer,
    prompt: str,
    target: str,
    method: Method = "ig",
    *,
    baseline: Baseline = "pad",
    n_steps: int = 50,
    internal_batch_size: int | None = None,
) -> TokenAttribution:
    """Attribute ``log p(target | prompt)`` to the input tokens (see the module docstring).

    ``internal_batch_size=None`` picks a batch of interpolation steps that fits: 16 on
    the CPU, and on a GPU as many as a quarter of the free memory holds. If the GPU still
    runs out of memory, the memory is released and integrated gradients are retried once
    with half the batch; after that :class:`~probekit.errors.OutOfMemoryError` says what
    to change. The model is unchanged either way.
    """
    _check_options(method, baseline, n_steps, internal_batch_size)
    enc = _encode(model, tokenizer, prompt, target)
    with guarded(model, "an attribution"), grad_enabled(), preserved(model, _entries(model)):
        if method == "ig":
            batch = internal_batch_size or auto_batch_size(model, len(enc.input_ids), n_steps)
            rows, deltas = _with_memory_retry(
                lambda b: _ig(model, tokenizer, enc, baseline, n_steps, b), batch
            )
        elif method == "grad_x_input":
            rows, deltas = _gradient_rows(model, enc, "grad_x_input")
        else:
            rows, deltas = _ablation(model, tokenizer, enc, baseline)
    sequence = [sum(col) for col in zip(*rows, strict=True)]
    steps = n_steps if method == "ig" else None
    base = None if method == "grad_x_input" else baseline
    return _result(tokenizer, enc, method, rows, sequence, deltas, steps, base)


def token_grad(model: CausalLM, tokenizer: Tokenizer, prompt: str, target: str) -> TokenAttribution:
    """‖∂L/∂eᵢ‖₂ per input token: which tokens drive a training step on this example.

    The sequence row uses L = the mean target-token NLL (the probe's loss); row ``t``
    uses that token's own NLL.
    """
    enc = _encode(model, tokenizer, prompt, target)
    with guarded(model, "token_grad"), grad_enabled(), preserved(model, _entries(model)):
        rows, deltas = _gradient_rows(model, enc, "token_grad")
        sequence = _loss_grad_norms(model, enc)
    return _result(tokenizer, enc, "token_grad", rows, sequence, deltas, None, None)


def auto_batch_size(model: CausalLM, n_tokens: int, n_steps: int) -> int:
    """Interpolation steps per forward: 16 on the CPU, from free memory on a GPU."""
    device = _device(model)
    if device.type != "cuda":
        return min(n_steps, CPU_BATCH)
    free, _ = torch.cuda.mem_get_info(device)
    config = getattr(model, "config", None)
    width = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 1024))
    layers = int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 24))
    vocab = model.get_input_embeddings().num_embeddings
    # activations kept for backward (~32 floats of width per token and layer) + one logit row
    per_step = 4 * (32 * n_tokens * width * layers + 2 * vocab)
    return max(1, min(n_steps, free // 4 // per_step))


def _with_memory_retry(run: Callable[[int], Rows], batch: int) -> Rows:
    """``run(batch)``; on CUDA out-of-memory, free memory and retry once with half the batch."""
    try:
        return run(batch)
    except torch.cuda.OutOfMemoryError:
        pass  # outside the handler, the failed attempt's frames and tensors can be freed
    _release_memory()
    smaller = max(1, batch // 2)
    try:
        return run(smaller)
    except torch.cuda.OutOfMemoryError:
        pass
    _release_memory()
    raise OutOfMemoryError(
        f"the GPU ran out of memory for integrated gradients, also with internal_batch_size="
        f"{smaller} (first tried {batch}); pass a smaller internal_batch_size (1 is the "
        "least memory), fewer n_steps, a shorter prompt, or move the model to the CPU "
        "with model.to('cpu'). The model is unchanged."
    )


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _check_options(method: str, baseline: str, n_steps: int, batch: int | None) -> None:
    if method not in METHODS:
        raise InputError(f"unknown attribution method {method!r}; use one of {METHODS}")
    if baseline not in BASELINES:
        raise InputError(f"unknown baseline {baseline!r}; use one of {BASELINES}")
    if method == "ablation" and baseline == "zeros":
        raise InputError("ablation replaces tokens by a token: use baseline 'pad' or 'unk'")
    if not isinstance(n_steps, int) or n_steps < 1:
        raise InputError(f"n_steps must be a positive integer, got {n_steps!r}")
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise InputError(f"internal_batch_size must be a positive integer, got {batch!r}")


def _encode(model: CausalLM, tokenizer: Tokenizer, prompt: str, target: str) -> EncodedExample:
    if not isinstance(target, str):
        raise InputError(f"target must be a string, got {type(target).__name__}")
    check_vocab(model, tokenizer)
    return encode(
        tokenizer,
        Example(prompt, target),
        max_length=context_length(model, tokenizer),
        vocab_size=model.get_input_embeddings().num_embeddings,
        require_target=True,
    )


def _entries(model: CausalLM) -> list[ParamEntry]:
    """The parameters left trainable while attributing: those that already were.

    Attribution needs no parameter gradient, but freezing every weight measured slower
    on the CPU (GPT-2-small shape), so the flags stay as the user set them.
    """
    params = dict.fromkeys(model.parameters())
    return [ParamEntry("", (), "", p) for p in params if p.requires_grad]


def _device(model: CausalLM) -> torch.device:
    return torch.device(model.get_input_embeddings().weight.device)


def _ids(enc: EncodedExample, model: CausalLM) -> torch.Tensor:
    """The input ids every row is scored over: ``prompt + target[:-1]``, shape (1, T)."""
    return torch.tensor([enc.input_ids[:-1]], device=_device(model))


def _row_inputs(enc: EncodedExample, ids: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
    """(input ids (1, Tₜ), target token id) for each target token."""
    start = len(enc.prompt_ids)
    return [(ids[:, : start + t], tid) for t, tid in enumerate(enc.target_ids)]


def _pad(row: torch.Tensor, width: int) -> list[float]:
    values: list[float] = row.detach().double().cpu().tolist()
    return values + [0.0] * (width - len(values))


def _logprob_fn(
    model: CausalLM, target_id: int, embeds: bool = False
) -> Callable[..., torch.Tensor]:
    """F(x) = log p(target_id | x) at the last position, per batch row (float32)."""
    kwargs: dict[str, Any] = {"use_cache": False}
    if accepts_logits_to_keep(model):
        kwargs["logits_to_keep"] = 1
    key = "inputs_embeds" if embeds else "input_ids"

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(inputs.shape[:2], dtype=torch.long, device=inputs.device)
        logits = model(**{key: inputs}, attention_mask=mask, **kwargs).logits[:, -1].float()
        targets = torch.full(logits.shape[:1], target_id, device=logits.device)
        return target_logp(torch.log_softmax(logits, dim=-1), targets)

    return forward


def baseline_id(tokenizer: Tokenizer, baseline: str) -> int:
    """The token a ``"pad"`` or ``"unk"`` baseline puts at every position."""
    names = ("pad_token_id", "eos_token_id", "unk_token_id") if baseline == "pad" else ()
    for name in (*names, "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    raise InputError(
        f"the tokenizer has no token for the {baseline!r} baseline; use baseline='zeros'"
    )


def _ig(
    model: CausalLM,
    tokenizer: Tokenizer,
    enc: EncodedExample,
    baseline: str,
    n_steps: int,
    batch: int,
) -> Rows:
    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    ids = _ids(enc, model)
    layer = model.get_input_embeddings()
    rows, deltas = [], []
    for inputs, tid in _row_inputs(enc, ids):
        if baseline == "zeros":
            ig = IntegratedGradients(_logprob_fn(model, tid, embeds=True))
            embeds = layer(inputs).detach()
            attr, delta = ig.attribute(
                embeds,
                baselines=torch.zeros_like(embeds),
                n_steps=n_steps,
                internal_batch_size=batch,
                return_convergence_delta=True,
            )
        else:
            lig = LayerIntegratedGradients(_logprob_fn(model, tid), layer)
            attr, delta = lig.attribute(
                inputs,
                baselines=torch.full_like(inputs, baseline_id(tokenizer, baseline)),
                n_steps=n_steps,
                internal_batch_size=batch,
                return_convergence_delta=True,
            )
        rows.append(_pad(attr.sum(-1)[0], ids.shape[1]))
        deltas.append(float(delta.reshape(-1)[0]))
    return rows, deltas


def _ablation(model: CausalLM, tokenizer: Tokenizer, enc: EncodedExample, baseline: str) -> Rows:
    from captum.attr import FeatureAblation

    ids = _ids(enc, model)
    replacement = baseline_id(tokenizer, baseline)
    rows = []
    for inputs, tid in _row_inputs(enc, ids):
        mask = torch.arange(inputs.shape[1], device=inputs.device)[None]
        with torch.no_grad():
            attr = FeatureAblation(_logprob_fn(model, tid)).attribute(
                inputs, baselines=replacement, feature_mask=mask
            )
        rows.append(_pad(attr[0].float(), ids.shape[1]))
    return rows, []  # ablation has no convergence check


def _target_logprobs(model: CausalLM, enc: EncodedExample) -> tuple[torch.Tensor, torch.Tensor]:
    """Input embeddings (1, T, d) requiring grad, and log p of each target token (n,)."""
    ids = _ids(enc, model)
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds, use_cache=False).logits[0].float()
    start = len(enc.prompt_ids) - 1
    read = logits[start:]
    targets = torch.tensor(enc.target_ids, device=read.device)
    return embeds, target_logp(torch.log_softmax(read, dim=-1), targets)


def _gradient_rows(model: CausalLM, enc: EncodedExample, kind: str) -> Rows:
    """Per target token: grad·input of log p, or the gradient norm of the NLL."""
    with torch.enable_grad():
        embeds, logp = _target_logprobs(model, enc)
        rows = []
        for t in range(logp.shape[0]):
            (grad,) = torch.autograd.grad(logp[t], embeds, retain_graph=t + 1 < logp.shape[0])
            score = (grad * embeds).sum(-1) if kind == "grad_x_input" else grad.norm(dim=-1)
            rows.append(_pad(score[0], embeds.shape[1]))
    return rows, []  # gradient methods have no convergence check


def _loss_grad_norms(model: CausalLM, enc: EncodedExample) -> list[float]:
    """‖∂L/∂eᵢ‖₂ for L the mean target-token NLL."""
    with torch.enable_grad():
        embeds, logp = _target_logprobs(model, enc)
        (grad,) = torch.autograd.grad(-logp.mean(), embeds)
    return _pad(grad.norm(dim=-1)[0], embeds.shape[1])


def _result(
    tokenizer: Tokenizer,
    enc: EncodedExample,
    method: str,
    rows: list[list[float]],
    sequence: list[float],
    deltas: list[float],
    n_steps: int | None,
    baseline: str | None,
) -> TokenAttribution:
    def text(ids: tuple[int, ...]) -> tuple[str, ...]:
        return tuple(str(tokenizer.decode([i])) for i in ids)

    return TokenAttribution(
        method=method,
        prompt=enc.example.prompt,
        target=enc.example.target or "",
        input_tokens=text(enc.input_ids[:-1]),
        target_tokens=text(enc.target_ids),
        scores=tuple(tuple(r) for r in rows),
        sequence=tuple(float(s) for s in sequence),
        convergence_delta=tuple(deltas),
        n_steps=n_steps,
        baseline=baseline,
    )
