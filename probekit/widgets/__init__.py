"""The widget layer: ``ProbeBoard`` and the streaming chart it is drawn with.

The only part of probekit that imports ipywidgets or IPython; nothing here imports torch
(the probe does the work). Imported on first use of ``pk.ProbeBoard`` / ``pk.board``.
"""

from __future__ import annotations

try:
    import ipywidgets  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the probekit board needs ipywidgets 8: pip install 'ipywidgets>=8,<9' (and use "
        "JupyterLab 4 to see it)"
    ) from exc
