"""``LoraProbe``: probe LoRA adapters on a model whose own weights stay as they are.

>>> with pk.LoraProbe(model, tok, r=8, lr=1e-3) as probe:           # doctest: +SKIP
...     r = probe.step(pk.Example("2 plus 2 is", " 5"))              # steps only the adapters
>>> # the adapters are gone again; the model is bit-identical to before

The adapters are attached with peft when the probe is built (the base weights are
frozen meanwhile, so only the adapters are stepped) and removed — never merged — by
:meth:`LoraProbe.close`, at the end of a ``with`` block, or when a probe that was
never closed is garbage-collected; the model's
``requires_grad`` flags and the RNG state (adapter initialisation draws from it) are
put back; ``seed=`` makes that initialisation the same in every process. A model that
already carries adapters needs no ``LoraProbe``: ``pk.Probe(peft_model, tok)`` steps
exactly its trainable adapters. :meth:`LoraProbe.lora_settings` is the adapters'
configuration as plain JSON values (a saved session records it).
"""

from __future__ import annotations

import copy
import warnings
import weakref
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import torch

from probekit.core import placement
from probekit.core.lock import exclusive
from probekit.core.protocols import CausalLM, Tokenizer
from probekit.errors import InputError, StateError, UnsupportedModelError
from probekit.session.probe import Probe


class LoraProbe(Probe):
    """A :class:`Probe` of LoRA adapters attached to ``model`` for the probe's lifetime.

    ``config`` is a ``peft.LoraConfig``; without one, ``r``, ``alpha`` (default ``2·r``)
    and ``target_modules`` (default: peft's choice for the architecture, e.g. the
    attention projections) build it, with the usual initialisation (B = 0: the adapted
    model starts equal to the base). ``seed`` seeds the adapters' random initialisation
    (default: the global RNG as it is; it is put back either way). Every other keyword
    is a :class:`Probe` option (``optimizer``, ``lr``, ``watch``, ``layers``, ``pattern``
    …). ``model`` is the
    adapted model (a ``peft.PeftModel``) and ``base_model`` the one passed in, whose
    weights never change. Results measure the adapters: ``delta_l2`` and the per-layer
    and per-tensor rows are those of the ``lora_A``/``lora_B`` tensors.
    """

    def __init__(
        self,
        model: CausalLM,
        tokenizer: Tokenizer,
        config: Any = None,
        *,
        r: int = 8,
        alpha: float | None = None,
        target_modules: Iterable[str] | str | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> None:
        peft = _peft()
        if placement.is_adapted(model):
            raise InputError(
                "this model already carries adapters; pk.Probe(model, tok) steps exactly its "
                "trainable adapters (a LoraProbe would add a second set)"
            )
        config = config if config is not None else _config(peft, model, r, alpha, target_modules)
        config = _resident_only(config, model)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise InputError(f"seed must be an integer or None, got {seed!r}")
        self.base_model = model
        self._closed = False
        with exclusive(model, "attaching LoRA adapters"):
            # by name: accelerate swaps the parameter objects of offloaded modules at forward
            flags = {n: p.requires_grad for n, p in model.named_parameters()}
            attributes = set(vars(model))
            self._adapted = _attach(peft, model, config, seed)
        self._lora_settings = {**describe_config(_attached_config(self._adapted)), "seed": seed}
        # a probe dropped without close() still takes its adapters out of the model
        self._detach_args = (self._adapted, model, flags, attributes)
        self._finalizer = weakref.finalize(self, _detach, *self._detach_args)
        self._finalizer.atexit = False
        try:
            super().__init__(self._adapted, tokenizer, **options)
        except BaseException:
            self.close()
            raise

    def adapters(self) -> dict[str, torch.Tensor]:
        """A copy of the adapter weights as they are now (e.g. after committed steps)."""
        self._check_open()
        return {e.name: e.param.detach().clone() for e in self.entries}

    def lora_settings(self) -> dict[str, Any]:
        """The adapters' configuration as plain JSON values (also after :meth:`close`).

        ``r``, ``alpha``, ``target_modules`` (as peft resolved them: a sorted list of
        module names, or peft's pattern string), ``dropout``, ``bias``,
        ``fan_in_fan_out``, ``use_rslora``, ``use_dora``, ``exclude_modules`` (with
        offloaded modules), ``rank_pattern``/``alpha_pattern`` (per-module overrides,
        ``{}`` when none) and the ``seed`` of their initialisation (``None``: not seeded).
        """
        return copy.deepcopy(self._lora_settings)

    def with_options(self, **options: Any) -> LoraProbe:
        """A LoraProbe on these same adapters (their weights as they are) with other options.

        ``options`` are :class:`Probe` options (``optimizer``, ``lr``, ``layers`` …). The
        adapters are handed over, not rebuilt: the new probe owns them and removes them when
        it is closed, and this probe is closed without removing them. Refused while committed
        steps are on the adapters (only this probe can undo them). If the options are
        refused, nothing changes and this probe stays open.
        """
        self._check_open()
        if self.committed:
            raise StateError(
                f"{len(self.committed)} committed step(s) are on the adapters and only this "
                "probe can undo them; undo() or reset() first, then change the options"
            )
        new = object.__new__(type(self))
        new.base_model, new._closed = self.base_model, False
        new._adapted, new._detach_args = self._adapted, self._detach_args
        new._lora_settings = copy.deepcopy(self._lora_settings)
        Probe.__init__(new, self._adapted, self.tokenizer, **options)
        self._finalizer.detach()  # the adapters now belong to the new probe
        self._closed = True
        new._finalizer = weakref.finalize(new, _detach, *new._detach_args)
        new._finalizer.atexit = False
        return new

    def close(self) -> None:
        """Remove the adapters without merging them; the base model is as it was before.

        Idempotent. The probe cannot step afterwards; keep what the adapters learned with
        :meth:`adapters` first.
        """
        if self._closed:
            return
        _detach(*self._detach_args)
        self._finalizer.detach()
        self._closed = True

    def __enter__(self) -> LoraProbe:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _exclusive(self, what: str = "a probe step") -> Any:
        self._check_open()
        return super()._exclusive(what)

    def _check_open(self) -> None:
        if getattr(self, "_closed", False):
            raise StateError(
                "this LoraProbe is closed: its adapters were removed from the model or handed "
                "to the probe with_options() made; build a new one to probe adapters again"
            )


def _detach(adapted: Any, base: Any, flags: dict[str, bool], attributes: set[str]) -> None:
    """Unload the adapters (no merge) and put back what peft changed on ``base``."""
    with exclusive(adapted, "removing LoRA adapters"), exclusive(base, "removing LoRA adapters"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adapted.base_model.unload()
        for name, param in base.named_parameters():
            param.requires_grad_(flags.get(name, param.requires_grad))
        for name in set(vars(base)) - attributes:
            delattr(base, name)  # what peft set on the model (peft_config)


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise UnsupportedModelError(
            "a LoRA probe needs peft: pip install peft (or pip install 'probekit[test]')"
        ) from None
    return peft


def _config(
    peft: Any, model: CausalLM, r: int, alpha: float | None, targets: Iterable[str] | str | None
) -> Any:
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise InputError(f"r (the adapters' rank) must be a positive integer, got {r!r}")
    chosen = [targets] if isinstance(targets, str) else None if targets is None else list(targets)
    return peft.LoraConfig(
        r=r,
        lora_alpha=2 * r if alpha is None else alpha,
        target_modules=chosen,
        lora_dropout=0.0,
        fan_in_fan_out=_conv1d_targets(model, chosen),
    )


def _conv1d_targets(model: CausalLM, targets: list[str] | None) -> bool:
    """GPT-2-style ``Conv1D`` layers store their weight transposed (peft must be told)."""
    convs = [n for n, m in model.named_modules() if type(m).__name__ == "Conv1D"]
    if not convs:
        return False
    if targets is None:
        return True  # peft's defaults for such models are their Conv1D attention layers
    return any(n == t or n.endswith(f".{t}") for n in convs for t in targets)


def _resident_only(config: Any, model: CausalLM) -> Any:
    """Leave out modules whose weights are offloaded (on the meta device until a forward
    loads them): an adapter there would have no storage to step."""
    away = [n for n, m in model.named_modules() if any(p.is_meta for p in m.parameters(False))]
    if not away:
        return config
    excluded = getattr(config, "exclude_modules", None)
    excluded = [excluded] if isinstance(excluded, str) else list(excluded or ())
    shown = ", ".join(away[:3]) + (f" and {len(away) - 3} more" if len(away) > 3 else "")
    warnings.warn(
        f"no adapters on offloaded modules ({shown}): their weights are not resident",
        UserWarning,
        stacklevel=3,
    )
    config = copy.copy(config)
    config.exclude_modules = excluded + away
    return config


def describe_config(config: Any) -> dict[str, Any]:
    """A ``peft.LoraConfig`` as plain JSON values (names sorted; see ``lora_settings``)."""

    def names(value: Any) -> str | list[str] | None:
        if value is None or isinstance(value, str):
            return value
        return sorted(str(v) for v in value)

    def numbers(value: Any) -> dict[str, float]:
        return {str(k): float(v) for k, v in sorted(dict(value or {}).items())}

    return {
        "r": int(config.r),
        "alpha": float(config.lora_alpha),
        "target_modules": names(config.target_modules),
        "dropout": float(config.lora_dropout),
        "bias": str(config.bias),
        "fan_in_fan_out": bool(config.fan_in_fan_out),
        "use_rslora": bool(getattr(config, "use_rslora", False)),
        "use_dora": bool(getattr(config, "use_dora", False)),
        "exclude_modules": names(getattr(config, "exclude_modules", None)),
        "rank_pattern": numbers(getattr(config, "rank_pattern", None)),
        "alpha_pattern": numbers(getattr(config, "alpha_pattern", None)),
    }


def _attached_config(adapted: Any) -> Any:
    """The config peft keeps for the adapters it attached (target modules resolved)."""
    configs = getattr(adapted, "peft_config", {})
    return configs.get("default") or next(iter(configs.values()))


def _attach(peft: Any, model: CausalLM, config: Any, seed: int | None = None) -> Any:
    """``peft.get_peft_model`` with the RNG put back (adapter initialisation draws from it,
    seeded with ``seed`` when one is given)."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if seed is not None:  # only the generators fork_rng puts back
            torch.default_generator.manual_seed(seed)
            for device in devices:
                torch.cuda.default_generators[device].manual_seed(seed)
        try:
            return peft.get_peft_model(model, config)
        except ValueError as exc:
            offloaded = any(p.is_meta for p in model.parameters())
            raise InputError(
                f"LoRA adapters could not be attached: {str(exc).rstrip('.')}. Name the layers "
                "to adapt with target_modules=[...] (e.g. ['q_proj', 'v_proj'])"
                + (
                    "; layers offloaded by the device map get no adapters, so keep more of "
                    "the model resident (max_memory) or adapt resident layers"
                    if offloaded
                    else ""
                )
            ) from None
