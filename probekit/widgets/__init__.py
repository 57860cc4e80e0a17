"""probekit's Jupyter widgets (the live board and its charts).

Everything here needs ipywidgets; ``import probekit`` never imports this package, and this
package imports its modules on first use. Nothing here imports torch: the maths stays in the
session and core layers.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

if find_spec("ipywidgets") is None:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "probekit's widgets need ipywidgets, which is not installed. "
        "Install it with `pip install 'ipywidgets>=8,<9'` (it comes with `pip install probekit`), "
        "then restart the kernel."
    )

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "StreamChart": "probekit.widgets.stream_chart",
    "ProbeBoard": "probekit.widgets.board",
    "board": "probekit.widgets.board",
}

__all__ = ["ProbeBoard", "StreamChart", "board"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from probekit.widgets.board import ProbeBoard, board
    from probekit.widgets.stream_chart import StreamChart


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'probekit.widgets' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
