"""Charts as HTML that no label can break out of.

Altair writes a chart's spec, data included, into a ``<script>`` block as plain JSON,
where a label such as ``</script><script>…`` ends the block and runs as code. Here
the JSON is written with ``<``, ``>`` and ``&`` as ``\\u`` escapes: the same values
once parsed, with nothing an HTML parser can act on. Every chart probekit builds is a
:class:`Chart`, :class:`LayerChart` or :class:`FacetChart`, whose ``to_html`` and ``save``
do this; :func:`to_html` does it for any Altair chart (concatenated ones too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import altair as alt

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_TABLE = str.maketrans(_ESCAPES)


class ScriptSafeJSON(json.JSONEncoder):
    """JSON that can sit inside an HTML ``<script>`` element (characters escaped, not lost).

    ``<``, ``>`` and ``&`` never occur in JSON outside strings, so escaping them in the
    output text only changes how string contents are spelled.
    """

    def encode(self, o: Any) -> str:
        return super().encode(o).translate(_TABLE)

    def iterencode(self, o: Any, _one_shot: bool = False) -> Iterator[str]:
        for chunk in super().iterencode(o, _one_shot):
            yield chunk.translate(_TABLE)


def _safe(options: dict[str, Any]) -> dict[str, Any]:
    return {**options, "json_kwds": {**(options.get("json_kwds") or {}), "cls": ScriptSafeJSON}}


class _ScriptSafeHTML:
    """``to_html`` and ``save("….html")`` with the script-safe JSON (mixed into the charts)."""

    def to_html(self, *args: Any, **kwargs: Any) -> str:
        return super().to_html(*args, **_safe(kwargs))  # type: ignore[misc]

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **_safe(kwargs))  # type: ignore[misc]


class Chart(_ScriptSafeHTML, alt.Chart):
    """An ``alt.Chart`` whose HTML export (``to_html``, ``save("….html")``) is script-safe."""


class LayerChart(_ScriptSafeHTML, alt.LayerChart):
    """An ``alt.LayerChart`` (marks drawn over each other) with the script-safe HTML export."""


class FacetChart(_ScriptSafeHTML, alt.FacetChart):
    """An ``alt.FacetChart`` (one panel per value of a field) with the script-safe HTML export."""


def to_html(chart: alt.TopLevelMixin, **options: Any) -> str:
    """A standalone HTML page (or, with ``fullhtml=False``, a snippet) for any Altair chart.

    Takes the options of Altair's ``to_html``; labels are shown literally, never run.
    """
    return alt.TopLevelMixin.to_html(chart, **_safe(options))
