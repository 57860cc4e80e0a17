"""probekit — how far does one example move a language model, where, and what does it disturb?

The public API is small and loads lazily: ``import probekit`` imports neither torch,
transformers, Captum nor any widget library; each name is imported on first use.

>>> import probekit as pk
>>> model, tok = pk.load_demo()                                    # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "load": "probekit.core.loading",
    "load_demo": "probekit.core.loading",
    "ModelPair": "probekit.core.loading",
    "Example": "probekit.core.inputs",
    "Probe": "probekit.session.probe",
    "LoraProbe": "probekit.session.lora",
    "ProbeResult": "probekit.results.probe",
    "Trajectory": "probekit.results.trajectory",
    "load_session": "probekit.results.session_reader",
    "SavedSession": "probekit.results.session_reader",
    "attribute": "probekit.core.attribution",
    "token_grad": "probekit.core.attribution",
    "TokenAttribution": "probekit.results.attribution",
    "AttributionShift": "probekit.results.attribution",
    "race": "probekit.session.race",
    "dataset_map": "probekit.session.dataset_map",
    "isolated_map": "probekit.session.dataset_map",
    "RaceResult": "probekit.results.race",
    "DatasetMap": "probekit.results.dataset_map",
    "IsolatedMap": "probekit.results.dataset_map",
    "estimate_memory": "probekit.core.memory",
    "MemoryEstimate": "probekit.core.memory",
    "fingerprint": "probekit.core.fingerprint",
    "Fingerprint": "probekit.core.fingerprint",
    "ProbekitError": "probekit.errors",
    "InputError": "probekit.errors",
    "ModelLoadError": "probekit.errors",
    "ModelNotAvailableError": "probekit.errors",
    "VocabMismatchError": "probekit.errors",
    "UnsupportedModelError": "probekit.errors",
    "NonFiniteError": "probekit.errors",
    "StateError": "probekit.errors",
    "OutOfMemoryError": "probekit.errors",
    "CausalLM": "probekit.core.protocols",
    "Tokenizer": "probekit.core.protocols",
    "ProbeBoard": "probekit.widgets.board",
    "board": "probekit.widgets.board",
}

__all__ = [*sorted(_LAZY), "__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from probekit.core.attribution import attribute, token_grad
    from probekit.core.fingerprint import Fingerprint, fingerprint
    from probekit.core.inputs import Example
    from probekit.core.loading import ModelPair, load, load_demo
    from probekit.core.memory import MemoryEstimate, estimate_memory
    from probekit.core.protocols import CausalLM, Tokenizer
    from probekit.errors import (
        InputError,
        ModelLoadError,
        ModelNotAvailableError,
        NonFiniteError,
        OutOfMemoryError,
        ProbekitError,
        StateError,
        UnsupportedModelError,
        VocabMismatchError,
    )
    from probekit.results.attribution import AttributionShift, TokenAttribution
    from probekit.results.dataset_map import DatasetMap, IsolatedMap
    from probekit.results.probe import ProbeResult
    from probekit.results.race import RaceResult
    from probekit.results.session_reader import SavedSession, load_session
    from probekit.results.trajectory import Trajectory
    from probekit.session.dataset_map import dataset_map, isolated_map
    from probekit.session.lora import LoraProbe
    from probekit.session.probe import Probe
    from probekit.session.race import race
    from probekit.widgets.board import ProbeBoard, board


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt extension (for `jupyter labextension develop`)."""
    return [{"src": "labextension", "dest": "probekit"}]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'probekit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
