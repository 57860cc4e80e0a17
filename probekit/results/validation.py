"""The JSON Schemas of probekit's file formats, and checking data against them.

The schemas are plain JSON Schema (draft-07) files shipped in ``probekit/results/schema/``
so that any reader (the JupyterLab extension too) validates against the same text.
Checking runs a compiled yes/no check first (``compiled_schema``: a large session file
holds millions of values); when it rejects something, the reference validator
(jsonschema) names the offending field and the rule it breaks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from probekit.errors import ProbekitError
from probekit.results.compiled_schema import compile_schema

SCHEMAS = ("session", "board", "result")


@cache
def schema(name: str) -> dict[str, Any]:
    """The parsed schema ``name`` (``"session"``, ``"board"`` or ``"result"``)."""
    if name not in SCHEMAS:
        raise ValueError(f"unknown schema {name!r}; one of {SCHEMAS}")
    text = resources.files("probekit.results").joinpath("schema", f"{name}.schema.json")
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


def subschema(name: str, definition: str | None) -> dict[str, Any]:
    """The whole schema, or one of its ``definitions`` as a standalone schema."""
    whole = schema(name)
    if definition is None:
        return whole
    return {
        "$schema": whole["$schema"],
        "definitions": whole["definitions"],
        "$ref": f"#/definitions/{definition}",
    }


@cache
def _fast(name: str, definition: str | None) -> Callable[[Any], bool]:
    whole = schema(name)
    return compile_schema(whole, subschema(name, definition))


@cache
def _reference(name: str, definition: str | None) -> Any:
    from jsonschema import Draft7Validator

    return Draft7Validator(subschema(name, definition))


def check(
    value: Any,
    name: str,
    definition: str | None = None,
    *,
    where: Sequence[str | int] = (),
    what: str = "file",
) -> None:
    """Raise :class:`ProbekitError` naming the field if ``value`` breaks the schema."""
    if _fast(name, definition)(value):
        return
    message = explain(value, name, definition, where=where)
    raise ProbekitError(f"{what}: {message}")


def errors(value: Any, name: str, definition: str | None = None) -> list[Any]:
    """Every violation the reference validator finds (empty when ``value`` is valid)."""
    return list(_reference(name, definition).iter_errors(value))


def explain(
    value: Any, name: str, definition: str | None = None, *, where: Sequence[str | int] = ()
) -> str:
    """One sentence on what is wrong with ``value``: the field's path and the broken rule."""
    from jsonschema.exceptions import best_match

    error = best_match(_reference(name, definition).iter_errors(value))
    if error is None:  # cannot happen while the two checks agree (the tests hold them to it)
        return f"{field_path([*where])}: does not match the schema"
    return f"{field_path([*where, *error.absolute_path])}: {_rule(error)}"


def field_path(parts: Sequence[str | int]) -> str:
    """``["results", 3, "prompt"]`` → ``results[3].prompt`` (``<top level>`` when empty)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _rule(error: Any) -> str:
    kind, limit, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        wanted = " or ".join(limit) if isinstance(limit, list) else limit
        return f"expected {wanted}, got {json_type(instance)}"
    if kind in ("maxLength", "maxItems", "maxProperties"):
        unit = {"maxLength": "characters", "maxItems": "items", "maxProperties": "keys"}[kind]
        return f"more than the limit of {limit:,} {unit} ({len(instance):,})"
    if kind in ("minimum", "maximum"):
        return f"{short(instance)} is out of range ({kind} {limit})"
    if kind in ("const", "enum"):
        allowed = [limit] if kind == "const" else limit
        return f"{short(instance)} is not one of {', '.join(short(a) for a in allowed)}"
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in known)[:5]
        return f"unexpected field(s) {', '.join(short(k) for k in extra)}"
    return str(error.message)[:300]


def short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=True, allow_nan=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
