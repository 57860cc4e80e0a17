"""Examples become token ids the way the model sees them; bad input fails early and clearly."""

from __future__ import annotations

import warnings

import pytest

import probekit as pk
from probekit.core.inputs import as_example, encode


def _enc(tok, prompt, target=None, max_length=32, **kw):
    return encode(tok, pk.Example(prompt, target), max_length=max_length, vocab_size=len(tok), **kw)


def test_prompt_and_target_are_split_at_the_boundary(tiny_tokenizer):
    e = _enc(tiny_tokenizer, "the cat says", " meow")
    assert tiny_tokenizer.decode(list(e.prompt_ids)) == "the cat says"
    assert e.target_tokens == ("meow",)
    assert e.input_ids == e.prompt_ids + e.target_ids
    assert e.target_positions == (len(e.prompt_ids) - 1,)


def test_multi_token_target_positions(tiny_tokenizer):
    e = _enc(tiny_tokenizer, "alice lives in", " paris .")
    assert len(e.target_ids) == 2
    assert e.target_positions == (2, 3)


@pytest.mark.parametrize("prompt", ["", "   ", "\n"])
def test_empty_prompt(tiny_tokenizer, prompt):
    with pytest.raises(pk.InputError, match="prompt has no tokens"):
        _enc(tiny_tokenizer, prompt, " meow")


@pytest.mark.parametrize("target", ["", " ", "\t\n"])
def test_empty_target(tiny_tokenizer, target):
    with pytest.raises(pk.InputError, match="target has no tokens"):
        _enc(tiny_tokenizer, "the cat says", target)


def test_step_needs_a_target(tiny_tokenizer):
    with pytest.raises(pk.InputError, match="no target"):
        _enc(tiny_tokenizer, "the cat says", require_target=True)


def test_too_long_prompt_is_truncated_from_the_left_never_the_target(tiny_tokenizer):
    prompt = " ".join(["cat"] * 40) + " says"
    with pytest.warns(UserWarning, match="truncated from the left"):
        e = _enc(tiny_tokenizer, prompt, " meow", max_length=16)
    assert len(e.input_ids) == 16 and e.truncated == 26
    assert e.target_tokens == ("meow",)
    assert tiny_tokenizer.decode(list(e.prompt_ids)).endswith("cat says")


def test_too_long_with_error_policy(tiny_tokenizer):
    with pytest.raises(pk.InputError, match="context holds 8"):
        _enc(tiny_tokenizer, " ".join(["cat"] * 10), " meow", max_length=8, truncation="error")


def test_target_longer_than_context_is_an_error(tiny_tokenizer):
    with pytest.raises(pk.InputError, match="context holds 4"):
        _enc(tiny_tokenizer, "the", " cat cat cat cat cat", max_length=4)


def test_ids_outside_the_embedding_table(tiny_tokenizer):
    with pytest.raises(pk.InputError, match="outside the model's embedding table"):
        encode(tiny_tokenizer, pk.Example("the cat", " says"), max_length=32, vocab_size=5)


def test_special_token_strings_are_plain_text(tiny_tokenizer):
    e = _enc(tiny_tokenizer, "the [EOS] cat", " says")
    assert tiny_tokenizer.eos_token_id not in e.prompt_ids


def test_hostile_text_never_crashes(tiny_tokenizer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text in [
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "😀 مرحبا \u200b\x00 cat",
        ]:
            e = _enc(tiny_tokenizer, text, " " + text)
            assert e.target_ids


def test_target_that_decodes_differently_warns(tiny_tokenizer):
    with pytest.warns(UserWarning, match="decodes to"):
        _enc(tiny_tokenizer, "the cat says", " purr")  # not in the vocabulary -> [UNK]


def test_as_example_accepts_strings_and_pairs():
    assert as_example("the cat") == pk.Example("the cat")
    assert as_example(("the cat", " says")) == pk.Example("the cat", " says")
    with pytest.raises(pk.InputError):
        as_example(42)  # type: ignore[arg-type]
