"""What a sweep computes: the model to load, the probe's update rule and the map's method.

The options travel to every worker (they are plain data) and are recorded, with the
dataset and watch hashes and the probekit version, in the manifest of the output
folder and in the metadata of every Parquet file. A resumed sweep must be given the
same settings as the one it continues. With ``lora_r`` the sweep probes LoRA adapters
attached to the model (a :class:`~probekit.LoraProbe`, seeded with ``lora_seed`` so that
every worker and every resumed run starts from the same adapters) instead of its weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from probekit.errors import InputError

Method = Literal["exact", "first_order", "loop"]
DEMO = "demo"


@dataclass(frozen=True)
class SweepOptions:
    """Model, probe and map settings; everything that decides the numbers."""

    model: str = DEMO  # hub id, local folder, or "demo" for the embedded demo model
    revision: str | None = None
    dtype: str | None = None  # None: float32
    device: str | None = None  # None: CUDA when available, else CPU
    optimizer: str = "sgd"
    lr: float = 1e-3
    steps: int = 1
    momentum: float = 0.0
    weight_decay: float | None = None
    layers: tuple[int | str, ...] | None = None
    pattern: str | None = None
    method: Method = "exact"
    check: int = 8  # first_order: examples per shard checked against the exact path
    shard_size: int = 256
    watch_matrix: bool = False  # also write the per-(example, watch item) table
    lora_r: int | None = None  # probe LoRA adapters of this rank instead of the weights
    lora_alpha: float | None = None  # None: 2·r
    lora_target: tuple[str, ...] | None = None  # None: peft's default modules for the model
    lora_seed: int = 0  # the adapters' random initialisation
    check_memory: bool = True  # refuse a probe whose step will not fit in free memory

    def __post_init__(self) -> None:
        if self.method not in ("exact", "first_order", "loop"):
            raise InputError(f"unknown method {self.method!r}; use exact, first_order or loop")
        if self.shard_size < 1:
            raise InputError(f"shard size must be a positive integer, got {self.shard_size}")
        if self.steps < 1:
            raise InputError(f"steps must be a positive integer, got {self.steps}")
        if self.check < 0:
            raise InputError(f"check must be 0 or more, got {self.check}")
        if self.lora_r is None and (self.lora_alpha is not None or self.lora_target is not None):
            raise InputError("--lora-alpha and --lora-target need --lora-r (the adapters' rank)")
        if self.lora_r is not None and (isinstance(self.lora_r, bool) or self.lora_r < 1):
            raise InputError(f"--lora-r must be a positive integer, got {self.lora_r}")
        if self.lora_target is not None and not self.lora_target:
            raise InputError("--lora-target needs at least one module name, e.g. q_proj,v_proj")

    def numbers(self) -> dict[str, Any]:
        """The settings that decide the numbers (the device and the memory check do not)."""
        out = asdict(self)
        out.pop("device")
        out.pop("check_memory")
        out["layers"] = list(self.layers) if self.layers is not None else None
        out["lora_target"] = list(self.lora_target) if self.lora_target is not None else None
        if self.lora_r is None:
            out["lora_seed"] = None  # no adapters to initialise
        if self.method != "first_order":
            out["check"] = None  # only the first-order path is checked
        return out


def parse_layers(text: str | None) -> tuple[int | str, ...] | None:
    """``"0,1,h.2"`` -> ``(0, 1, "h.2")``: block indices, or labels as given."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise InputError("--layers needs at least one block index or label, e.g. --layers 0,1")
    return tuple(int(p) if p.lstrip("-").isdigit() else p for p in parts)


def parse_names(text: str | None) -> tuple[str, ...] | None:
    """``"q_proj, v_proj"`` -> ``("q_proj", "v_proj")``; None stays None."""
    if text is None:
        return None
    return tuple(p.strip() for p in text.split(",") if p.strip())


def load_model(options: SweepOptions) -> Any:
    """The model and tokenizer the options name (``demo``: the embedded demo model)."""
    from probekit.core.loading import load, load_demo

    if options.model == DEMO:
        if options.revision is not None or options.dtype not in (None, "fp32", "float32"):
            raise InputError("the demo model has no revisions and runs in float32 only")
        return load_demo(device=options.device)
    return load(
        options.model, device=options.device, dtype=options.dtype, revision=options.revision
    )
