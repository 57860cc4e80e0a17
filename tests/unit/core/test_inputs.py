"""Examples become token ids the way the model sees them; bad input fails early and clearly."""

from __future__ import annotations

import pytest

import probekit as pk
from probekit.core.inputs import as_example, encode


def _enc(tok, prompt, target=None, max_length=32, **kw):
    return encode(tok, pk.Example(prompt, target), max_length=max_length, vocab_size=len(tok), **kw)


def test_as_example_accepts_strings_and_pairs():
    assert as_example("the cat") == pk.Example("the cat")
    assert as_example(("the cat", " says")) == pk.Example("the cat", " says")
    with pytest.raises(pk.InputError):
        as_example(42)  # type: ignore[arg-type]
