"""What the model will be trained on: the exact target tokens of a typed example, and why not.

The one place the board asks the probe to tokenise an example without stepping.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import probekit
from probekit.errors import ProbekitError


@dataclass(frozen=True)
class Preview:
    """Target tokens (as the tokenizer spells them), notes (boundary warnings), or an error."""

    tokens: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"cannot step on this: {self.error}"
        shown = " ".join(repr(t) for t in self.tokens)
        return f"trained on {len(self.tokens)} target token(s): {shown}"


def encode_example(probe: Any, example: Any) -> Any:
    """The probe's encoding of ``example`` (the tokens a step would use).

    Uses ``probe.encode`` where the probe has it, else its internal encoder.
    """
    encode = getattr(probe, "encode", None)
    if callable(encode):
        return encode(example)
    return probe._encode(example, require_target=True)


def preview(probe: Any, prompt: str, target: str) -> Preview:
    """Tokenise ``prompt`` + ``target`` as a step would; never raises for bad input."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoded = encode_example(probe, probekit.Example(prompt, target))
    except ProbekitError as exc:
        return Preview(error=str(exc))
    return Preview(tuple(encoded.target_tokens), tuple(encoded.notes))
