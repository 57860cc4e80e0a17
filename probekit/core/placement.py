"""Where a model's weights live, and whether a probe can step them.

A probe writes the weights it steps and restores them bit-exactly, so those weights
must be real, floating-point tensors on one device. Models loaded with
``device_map`` (sharded over several devices, or partly offloaded to the CPU or
disk), models whose weights were never loaded (the ``meta`` device), and quantized
models (int8/4-bit weights) break that: a full-parameter probe is refused with the
alternatives — a parameter subset (``layers=``/``pattern=``) or LoRA adapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from probekit.core.params import ParamEntry
from probekit.core.protocols import CausalLM
from probekit.errors import UnsupportedModelError

# hf_device_map values that mean "not resident on the compute device".
_OFFLOAD = frozenset({"cpu", "disk"})
# Parameter classes of quantization libraries (bitsandbytes, torchao, …), by name.
_QUANT_CLASSES = ("Params4bit", "Int8Params", "QTensor", "AffineQuantizedTensor", "Float8Tensor")
_ALTERNATIVES = (
    "Probe a part that is resident in floating point instead: a parameter subset such as "
    "layers=[-1] or pattern=r'lm_head' (on one device), or LoRA adapters: "
    "pk.LoraProbe(model, tok, r=8) steps only adapters and never changes the base weights "
    "(a model already wrapped by peft is probed the same way by pk.Probe)."
)


@dataclass(frozen=True)
class Placement:
    """What was found about a model's weights (empty fields: nothing unusual)."""

    meta: tuple[str, ...]  # parameters on the meta device (weights not materialised)
    devices: tuple[str, ...]  # distinct devices holding parameters (meta excluded)
    mapped: tuple[str, ...]  # distinct compute devices of hf_device_map
    offloaded: tuple[str, ...]  # hf_device_map entries placed on the CPU or disk beside others
    quantized: str | None  # how the model is quantized, if it is

    @property
    def sharded(self) -> bool:
        return len(self.mapped) > 1 or len(self.devices) > 1

    @property
    def dispatched(self) -> bool:
        """Loaded with a device map, so accelerate's hooks move weights in at forward time."""
        return bool(self.mapped or self.offloaded)

    def problems(self) -> list[str]:
        found = []
        if self.meta and not self.dispatched:
            found.append(
                f"{len(self.meta)} of its tensors are on the meta device, i.e. never loaded "
                f"(e.g. {self.meta[0]})"
            )
        if self.sharded:
            where = ", ".join(self.mapped or self.devices)
            found.append(f"it is sharded over several devices ({where})")
        if self.offloaded:
            found.append(f"part of it is offloaded ({', '.join(self.offloaded[:3])})")
        if self.quantized:
            found.append(f"it is quantized ({self.quantized})")
        return found


def inspect(model: CausalLM) -> Placement:
    """Look at a model's parameters, ``hf_device_map`` and quantization markers."""
    meta, devices = [], set()
    for name, param in model.named_parameters():
        if param.device.type == "meta":
            meta.append(name)
        else:
            devices.add(str(param.device))
    device_map = getattr(model, "hf_device_map", None)
    mapped: set[str] = set()
    offloaded: list[str] = []
    if isinstance(device_map, Mapping):
        places = {str(k): _device_name(v) for k, v in device_map.items()}
        mapped = {v for v in places.values() if v not in _OFFLOAD}
        # without an accelerator in the map the CPU computes: only the disk is "away"
        away = _OFFLOAD if mapped else {"disk"}
        offloaded = [f"{k or 'model'} → {v}" for k, v in places.items() if v in away]
        offloaded.sort(key=lambda item: not item.endswith("disk"))
    return Placement(
        meta=tuple(meta),
        devices=tuple(sorted(devices)),
        mapped=tuple(sorted(mapped)),
        offloaded=tuple(offloaded),
        quantized=_quantization(model),
    )


def check_probe(model: CausalLM, entries: Sequence[ParamEntry], *, subset: bool) -> None:
    """Refuse a probe whose stepped parameters cannot be written and restored exactly.

    ``subset`` says the user chose the parameters (``layers``/``pattern``) or the model
    carries adapters (PEFT); otherwise any unusual placement refuses the probe.
    """
    placement = inspect(model)
    problems = placement.problems()
    if placement.meta and not placement.dispatched:
        raise UnsupportedModelError(
            f"the model cannot be probed: {problems[0]}; load its weights first "
            "(from_pretrained, or load_state_dict(state, assign=True))"
        )
    if problems and not (subset or is_adapted(model)):
        raise UnsupportedModelError(
            f"a full-parameter probe cannot run on this model: {'; '.join(problems)}. "
            + _ALTERNATIVES
        )
    bad = [e.name for e in entries if e.param.device.type == "meta"]
    if bad:
        raise UnsupportedModelError(
            f"the selected parameter {bad[0]} is not resident on a device (meta: offloaded or "
            f"not loaded){_more(bad)}; choose parameters that stay on the compute device. "
            + _ALTERNATIVES
        )
    bad = [e.name for e in entries if not _floating(e.param)]
    if bad:
        raise UnsupportedModelError(
            f"the selected parameter {bad[0]} is quantized ({_kind(entries, bad[0])}){_more(bad)}; "
            "a step needs floating-point weights. " + _ALTERNATIVES
        )
    devices = sorted({str(e.param.device) for e in entries})
    if len(devices) > 1:
        raise UnsupportedModelError(
            f"the selected parameters are spread over {', '.join(devices)}; a probe steps "
            "parameters on one device. " + _ALTERNATIVES
        )


def is_adapted(model: CausalLM) -> bool:
    """A PEFT model (LoRA or another adapter method): its trainable part is the adapters."""
    return bool(getattr(model, "peft_config", None)) or any(
        "lora_" in name for name, _ in model.named_modules()
    )


def _quantization(model: CausalLM) -> str | None:
    config = getattr(model, "config", None)
    qconfig: Any = getattr(config, "quantization_config", None)
    if qconfig is not None:
        method = (
            qconfig.get("quant_method") if isinstance(qconfig, Mapping)
            else getattr(qconfig, "quant_method", None)
        )  # fmt: skip
        return f"quantization_config: {getattr(method, 'value', method) or 'unknown method'}"
    for flag in ("is_loaded_in_8bit", "is_loaded_in_4bit", "is_quantized"):
        if getattr(model, flag, False) is True:
            return flag
    for name, param in model.named_parameters():
        if not _floating(param):
            return f"{name} is {type(param).__name__} of {param.dtype}"
    return None


def _floating(param: torch.Tensor) -> bool:
    cls = type(param).__name__
    data_cls = type(getattr(param, "data", param)).__name__
    quantized_class = any(q in (cls, data_cls) for q in _QUANT_CLASSES)
    return param.is_floating_point() and not quantized_class


def _kind(entries: Sequence[ParamEntry], name: str) -> str:
    param = next(e.param for e in entries if e.name == name)
    return f"{type(param).__name__} of {param.dtype}"


def _device_name(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"cuda:{value}"
    return str(torch.device(value)) if isinstance(value, torch.device) else str(value)


def _more(names: list[str]) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""
