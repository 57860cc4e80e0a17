"""A fast yes/no check of parsed JSON against one of our schemas.

A session file can hold millions of values, and a general validator spends tens of
microseconds on each. This compiles the subset of JSON Schema (draft-07) that our
schema files use into nested Python closures that only answer "valid or not"; the
reference validator (jsonschema) then explains a failure. Keywords outside the subset
make compilation fail, so a schema can never rely on a rule this check skips.
The tests hold it to the reference validator's verdicts on random and hostile data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "definitions", "$comment"})
SUPPORTED = frozenset(
    {
        "$ref",
        "type",
        "const",
        "enum",
        "anyOf",
        "properties",
        "required",
        "additionalProperties",
        "maxProperties",
        "propertyNames",
        "items",
        "additionalItems",
        "minItems",
        "maxItems",
        "maxLength",
        "minimum",
        "maximum",
    }
)


def compile_schema(root: dict[str, Any], schema: dict[str, Any] | None = None) -> Check:
    """A function ``value -> bool`` equivalent to validating against ``schema`` (in ``root``)."""
    cache: dict[str, Check] = {}
    return _compile(root, root if schema is None else schema, cache)


def _compile(root: dict[str, Any], schema: Any, cache: dict[str, Check]) -> Check:
    if schema is True or schema == {}:
        return _anything
    if schema is False:
        return _nothing
    unknown = set(schema) - SUPPORTED - ANNOTATIONS
    if unknown:
        raise ValueError(f"schema keyword(s) {sorted(unknown)} are not supported by this check")
    kind = schema.get("type")
    checks: list[Check] = []
    if "$ref" in schema:
        checks.append(_ref(root, schema["$ref"], cache))
    if "const" in schema:
        checks.append(_enum([schema["const"]]))
    if "enum" in schema:
        checks.append(_enum(schema["enum"]))
    if "anyOf" in schema:
        options = [_compile(root, s, cache) for s in schema["anyOf"]]
        checks.append(lambda v: any(o(v) for o in options))
    # A single type folds into the checks of its own keywords (one call, not two).
    folded = False
    if "maxLength" in schema:
        n, folded = schema["maxLength"], kind == "string"
        if folded:
            checks.append(lambda v: isinstance(v, str) and len(v) <= n)
        else:
            checks.append(lambda v: not isinstance(v, str) or len(v) <= n)
    if "minimum" in schema or "maximum" in schema:
        folded = kind in ("integer", "number")
        checks.append(
            _range(schema.get("minimum"), schema.get("maximum"), kind if folded else None)
        )
    if any(k in schema for k in ("items", "minItems", "maxItems")):
        folded = kind == "array"
        checks.append(_array(root, schema, cache, strict=folded))
    if any(k in schema for k in _OBJECT_KEYWORDS):
        folded = kind == "object"
        checks.append(_object(root, schema, cache, strict=folded))
    if kind is not None and not folded:
        checks.insert(0, _type(kind))
    return _all(checks)


_OBJECT_KEYWORDS = (
    "properties",
    "required",
    "additionalProperties",
    "maxProperties",
    "propertyNames",
)


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _anything
    if len(checks) == 1:
        return checks[0]
    first, rest = checks[0], _all(checks[1:])
    return lambda v: first(v) and rest(v)


def _anything(value: Any) -> bool:
    return True


def _nothing(value: Any) -> bool:
    return False


def _ref(root: dict[str, Any], ref: str, cache: dict[str, Check]) -> Check:
    if not ref.startswith("#/definitions/"):
        raise ValueError(f"only local references into definitions are supported, not {ref!r}")
    if ref in cache:
        return cache[ref]
    slot: list[Check] = []
    cache[ref] = lambda v: slot[0](v)  # used only by a reference to itself (recursion)
    compiled = _compile(root, root["definitions"][ref.removeprefix("#/definitions/")], cache)
    slot.append(compiled)
    cache[ref] = compiled
    return compiled


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _number_or_null(value: Any) -> bool:
    kind = type(value)
    return kind is float or kind is int or value is None or _is_number(value)


_TYPES: dict[str, Check] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": _is_integer,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _type(names: str | list[str]) -> Check:
    wanted = [names] if isinstance(names, str) else list(names)
    checks = [_TYPES[n] for n in wanted]
    if sorted(wanted) == ["null", "number"]:  # the most common type in our files
        return _number_or_null
    if len(checks) == 1:
        return checks[0]
    return lambda v: any(c(v) for c in checks)


def _enum(values: list[Any]) -> Check:
    def same(a: Any, b: Any) -> bool:  # JSON equality: 1 == 1.0, but true != 1
        if isinstance(a, bool) or isinstance(b, bool):
            return type(a) is type(b) and a == b
        if _is_number(a) and _is_number(b):
            return bool(a == b)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        return type(a) is type(b) and a == b

    return lambda v: any(same(v, e) for e in values)


def _range(low: float | None, high: float | None, kind: str | None) -> Check:
    lo = -math.inf if low is None else low
    hi = math.inf if high is None else high
    if kind == "integer":
        return lambda v: (type(v) is int or _is_integer(v)) and lo <= v <= hi
    if kind == "number":
        return lambda v: _is_number(v) and lo <= v <= hi
    return lambda v: not _is_number(v) or lo <= v <= hi


def _array(
    root: dict[str, Any], schema: dict[str, Any], cache: dict[str, Check], *, strict: bool
) -> Check:
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    items = schema.get("items", True)
    if isinstance(items, list):
        heads = [_compile(root, s, cache) for s in items]
        extra = _compile(root, schema.get("additionalItems", True), cache)

        def each(v: list[Any]) -> bool:
            return all(heads[i](x) if i < len(heads) else extra(x) for i, x in enumerate(v))
    else:
        one = _compile(root, items, cache)

        def each(v: list[Any]) -> bool:
            return all(map(one, v))

    def check(v: Any) -> bool:
        if not isinstance(v, list):
            return not strict
        if len(v) < low or (high is not None and len(v) > high):
            return False
        return each(v)

    return check


def _object(
    root: dict[str, Any], schema: dict[str, Any], cache: dict[str, Check], *, strict: bool
) -> Check:
    props = {k: _compile(root, s, cache) for k, s in schema.get("properties", {}).items()}
    required = frozenset(schema.get("required", ()))
    extra_schema = schema.get("additionalProperties", True)
    closed = extra_schema is False
    extra = _compile(root, extra_schema, cache)
    most = schema.get("maxProperties")
    names = _compile(root, schema.get("propertyNames", True), cache)
    known = frozenset(props)

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return not strict
        keys = v.keys()
        if (most is not None and len(v) > most) or not required <= keys:
            return False
        if closed:
            if not keys <= known:
                return False
            for key, value in v.items():
                if not props[key](value):
                    return False
            return names is _anything or all(map(names, keys))
        for key, value in v.items():
            own = props.get(key)
            if not (own(value) if own is not None else extra(value)):
                return False
        return names is _anything or all(map(names, keys))

    return check
