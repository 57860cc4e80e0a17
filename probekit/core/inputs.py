"""Examples and watch items, and how they become token ids — validated before any work.

A prompt and its target are tokenised *together* (exactly the tokens the model sees
for ``prompt + target``) and split at the character boundary, so a target such as
``" Paris"`` keeps the leading-space token the model was trained on. Special-token
strings typed by the user are treated as plain text.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from probekit.errors import InputError

TruncationPolicy = Literal["left", "error"]


@dataclass(frozen=True)
class Example:
    """One prompt and (optionally, for watch items) the target continuation to score.

    The target is scored token by token after the prompt; include the leading space
    a tokenizer expects (``Example("the capital of france is", " paris")``).
    """

    prompt: str
    target: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise InputError(f"prompt must be a string, got {type(self.prompt).__name__}")
        if self.target is not None and not isinstance(self.target, str):
            raise InputError(f"target must be a string or None, got {type(self.target).__name__}")
        _check_text(self.prompt, "prompt")
        if self.target is not None:
            _check_text(self.target, "target")


def _check_text(text: str, what: str) -> None:
    """Refuse strings that are not valid Unicode text (a lone surrogate cannot be tokenised)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{what} contains {text[exc.start]!r} at character {exc.start}, half of a UTF-16 "
            "surrogate pair, which is not valid text; remove it or decode the source text "
            "properly (e.g. bytes.decode('utf-8'))"
        ) from None


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one example, split into prompt and target, plus what was adjusted."""

    example: Example
    prompt_ids: tuple[int, ...]
    target_ids: tuple[int, ...]
    target_tokens: tuple[str, ...]
    truncated: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def input_ids(self) -> tuple[int, ...]:
        return self.prompt_ids + self.target_ids

    @property
    def target_positions(self) -> tuple[int, ...]:
        """Positions whose logits predict the target tokens (or the next token, if none)."""
        start = len(self.prompt_ids) - 1
        return tuple(range(start, start + max(len(self.target_ids), 1)))


def as_example(item: Example | str | tuple[str, str]) -> Example:
    """Accept an :class:`Example`, a bare prompt string, or a ``(prompt, target)`` pair."""
    if isinstance(item, Example):
        return item
    if isinstance(item, str):
        return Example(item)
    if isinstance(item, tuple) and len(item) == 2:
        return Example(item[0], item[1])
    raise InputError(
        f"cannot use {item!r} as an example: pass pk.Example(prompt, target), a prompt string "
        "or a (prompt, target) tuple"
    )


def as_watch(
    items: Iterable[Example | str | tuple[str, str]] | Example | str,
) -> tuple[Example, ...]:
    """A watch set from a list of items, or from one prompt string or one :class:`Example`.

    A plain string is one prompt (never its characters); an item that appears twice is
    measured twice, with a warning.
    """
    if isinstance(items, Example | str):
        return (as_example(items),)
    if not isinstance(items, Iterable):
        raise InputError(
            f"watch must be a list of prompts or pk.Example(prompt, target)s, got {items!r}"
        )
    examples = tuple(as_example(i) for i in items)
    repeated = [e for e, n in Counter(examples).items() if n > 1]
    if repeated:
        shown = ", ".join(
            repr(e.prompt if e.target is None else (e.prompt, e.target)) for e in repeated[:3]
        )
        warnings.warn(
            f"the watch set holds {shown} more than once; each copy is measured separately "
            "(labelled #2, #3, …) — remove the repeats unless you meant them",
            UserWarning,
            stacklevel=3,
        )
    return examples


def encode(
    tokenizer: Any,
    example: Example,
    *,
    max_length: int,
    vocab_size: int,
    require_target: bool = False,
    truncation: TruncationPolicy = "left",
    warn: bool = True,
) -> EncodedExample:
    """Tokenise and validate one example; ``warn=False`` keeps the notes without warning."""
    if require_target and example.target is None:
        raise InputError("this example has no target; a step needs Example(prompt, target)")
    if not example.prompt.strip():
        raise InputError("prompt has no tokens: give a non-empty prompt")
    if example.target is not None and not example.target.strip():
        raise InputError(
            f"target has no tokens ({example.target!r}): give the text the model should produce"
        )
    prompt_ids, target_ids = _split_tokens(tokenizer, example)
    if not _content_ids(tokenizer, prompt_ids):
        raise InputError(f"prompt has no tokens: {example.prompt!r} tokenises to nothing")
    if example.target is not None and not target_ids:
        raise InputError(f"target has no tokens: {example.target!r} tokenises to nothing")
    _check_ids(prompt_ids + target_ids, vocab_size)
    notes = _prompt_notes(tokenizer, example, prompt_ids)
    prompt_ids, dropped = _fit_context(prompt_ids, target_ids, max_length, truncation, tokenizer)
    tokens = tuple(tokenizer.convert_ids_to_tokens(list(target_ids)))
    notes += _boundary_notes(tokenizer, example, target_ids)
    if dropped:
        notes += (f"prompt truncated from the left by {dropped} tokens to fit {max_length}",)
    for note in notes if warn else ():
        warnings.warn(note, UserWarning, stacklevel=3)
    return EncodedExample(example, prompt_ids, target_ids, tokens, dropped, notes)


def _split_tokens(tokenizer: Any, example: Example) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Tokenise ``prompt + target`` once and split at the prompt's last character."""
    target = example.target or ""
    text = example.prompt + target
    kwargs: dict[str, Any] = {"split_special_tokens": True}
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, return_offsets_mapping=True, **kwargs)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        boundary = len(example.prompt)
        first_target = next(
            (i for i, (s, e) in enumerate(offsets) if e > s and s >= boundary), len(ids)
        )
        straddles = any(s < boundary < e for s, e in offsets)
        if not straddles:
            # trailing special tokens some tokenizers append (EOS) belong to neither part
            end = 1 + max((i for i, (s, e) in enumerate(offsets) if e > s), default=-1)
            if not target:
                return tuple(ids[:end]), ()
            return tuple(ids[:first_target]), tuple(ids[first_target:end])
    prompt_ids = tokenizer(example.prompt, **kwargs)["input_ids"]
    target_ids = (
        tokenizer(target, add_special_tokens=False, **kwargs)["input_ids"] if target else []
    )
    return tuple(prompt_ids), tuple(target_ids)


def _content_ids(tokenizer: Any, ids: tuple[int, ...]) -> list[int]:
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    return [i for i in ids if i not in special or i == tokenizer.unk_token_id]


def _check_ids(ids: tuple[int, ...], vocab_size: int) -> None:
    bad = [i for i in ids if not 0 <= i < vocab_size]
    if bad:
        raise InputError(
            f"token id {bad[0]} is outside the model's embedding table (size {vocab_size}): the "
            "tokenizer does not belong to this model; load both from the same checkpoint"
        )


def _fit_context(
    prompt_ids: tuple[int, ...],
    target_ids: tuple[int, ...],
    max_length: int,
    truncation: TruncationPolicy,
    tokenizer: Any,
) -> tuple[tuple[int, ...], int]:
    """Drop prompt tokens from the left (keeping a leading BOS) to fit; never the target."""
    total = len(prompt_ids) + len(target_ids)
    if total <= max_length:
        return prompt_ids, 0
    overflow = total - max_length
    keep_bos = bool(prompt_ids) and prompt_ids[0] == getattr(tokenizer, "bos_token_id", None)
    head = prompt_ids[:1] if keep_bos else ()
    body = prompt_ids[len(head) :]
    if truncation == "error" or len(body) - overflow < 1:
        raise InputError(
            f"prompt + target is {total} tokens but the model's context holds {max_length}; "
            f"shorten the prompt (the target alone is {len(target_ids)} tokens)"
        )
    return head + body[overflow:], overflow


def _prompt_notes(tokenizer: Any, example: Example, prompt_ids: tuple[int, ...]) -> tuple[str, ...]:
    """A warning when the prompt's tokens do not read back as the prompt (words dropped).

    Whitespace, letter case and Unicode compatibility forms are compared loosely
    (tokenizers normalise them on purpose); special tokens the tokenizer adds, and the
    unknown token standing in for text it cannot represent, do not read back as text.
    """
    decoded = tokenizer.decode(list(prompt_ids), skip_special_tokens=True)
    if _loose(decoded) == _loose(example.prompt):
        return ()
    return (
        f"prompt {_short(example.prompt)} is tokenised as {len(prompt_ids)} tokens that read back "
        f"as {_short(decoded)}: the tokenizer dropped or replaced part of it (words outside its "
        "vocabulary?); the model is probed on those tokens",
    )


def _loose(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _boundary_notes(
    tokenizer: Any, example: Example, target_ids: tuple[int, ...]
) -> tuple[str, ...]:
    """Warnings for targets that do not tokenise the way they read (RELIABILITY case 5)."""
    if example.target is None:
        return ()
    notes = []
    decoded = tokenizer.decode(list(target_ids))
    if decoded.strip() != example.target.strip():
        notes.append(
            f"target {example.target!r} is tokenised as {list(target_ids)} which decodes to "
            f"{decoded!r}; the model is scored on those tokens"
        )
    joined = example.prompt.endswith((" ", "\n", "\t")) or example.target.startswith((" ", "\n"))
    if not joined and _space_matters(tokenizer, example.target):
        notes.append(
            f"target {example.target!r} has no leading space and the prompt ends without one; "
            f"most tokenizers expect {' ' + example.target!r} after a prompt"
        )
    return tuple(notes)


def _space_matters(tokenizer: Any, text: str) -> bool:
    word = text.strip()
    plain = tokenizer(word, add_special_tokens=False)["input_ids"]
    spaced = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    return bool(plain != spaced)
