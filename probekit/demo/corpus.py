"""A small synthetic world of facts, and the corpus the demo model is trained on.

Pure Python and deterministic: the same ``seed`` always gives the same world, facts and
training text. Everything is lowercase and word-level (words are separated by spaces;
``.`` ends a sentence).

Known families (in the training text, each fact in a few sentence templates):

* ``lives_in`` — ``"alice lives in"`` → ``" paris"`` (20 people, 10 cities; who lives
  where depends on the seed, two people per city);
* ``animal_sound`` — ``"the cat says"`` → ``" meow"`` (12 animals);
* ``colour`` — ``"the colour of the sky is"`` → ``" blue"`` (12 things, 11 colours);
* ``addition`` — ``"3 plus 4 is"`` → ``" 7"`` (addends 0..9).

Held-out families (never in the training text; their words are in the vocabulary):

* ``addition_large`` — ``"12 plus 3 is"`` → ``" 15"`` (addends 0..20, at least one ≥ 10);
* ``subtraction`` — ``"9 minus 4 is"`` → ``" 5"`` (0..20, never negative).

A probe is always ``Fact.prompt + Fact.target``: the target starts with a space and is
one word, i.e. one token of the demo tokenizer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

FAMILIES: tuple[str, ...] = ("lives_in", "animal_sound", "colour", "addition")
"""Families whose facts are in the training text."""

HELD_OUT_FAMILIES: tuple[str, ...] = ("addition_large", "subtraction")
"""Families never shown in training (for curriculum and contradiction experiments)."""

PEOPLE: tuple[str, ...] = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "karl", "laura", "mike", "nina", "oscar", "peggy", "quinn", "rosa", "sam", "tina",
)  # fmt: skip
CITIES: tuple[str, ...] = (
    "paris", "rome", "tokyo", "oslo", "cairo", "lima", "berlin", "madrid", "dublin", "vienna",
)  # fmt: skip
ANIMAL_SOUNDS: tuple[tuple[str, str], ...] = (
    ("cat", "meow"), ("dog", "woof"), ("cow", "moo"), ("duck", "quack"), ("sheep", "baa"),
    ("pig", "oink"), ("owl", "hoot"), ("lion", "roar"), ("snake", "hiss"), ("horse", "neigh"),
    ("mouse", "squeak"), ("bee", "buzz"),
)  # fmt: skip
THING_COLOURS: tuple[tuple[str, str], ...] = (
    ("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("coal", "black"),
    ("blood", "red"), ("a banana", "yellow"), ("a carrot", "orange"), ("a plum", "purple"),
    ("a flamingo", "pink"), ("an elephant", "grey"), ("chocolate", "brown"), ("a lemon", "yellow"),
)  # fmt: skip

SMALL_MAX = 9
"""Largest addend of the training family ``addition``."""
LARGE_MAX = 20
"""Largest operand of the held-out arithmetic families."""
MAX_NUMBER = 40
"""Every number word ``0``..``MAX_NUMBER`` is in the vocabulary, seen or not."""

_NEAR = 3  # a wrong number is at most this far from the true one


@dataclass(frozen=True)
class Fact:
    """One probe: ``prompt + target`` is a true sentence of the world (or a contradiction)."""

    family: str
    prompt: str
    target: str

    @property
    def word(self) -> str:
        """The target without its leading space."""
        return self.target.strip()

    @property
    def text(self) -> str:
        """The full probe text, ``prompt + target``."""
        return self.prompt + self.target


@dataclass(frozen=True)
class World:
    """Who lives where, what animals say and what colour things are, for one seed."""

    seed: int
    homes: tuple[tuple[str, str], ...]
    sounds: tuple[tuple[str, str], ...] = ANIMAL_SOUNDS
    colours: tuple[tuple[str, str], ...] = THING_COLOURS

    def home(self, person: str) -> str:
        """The city ``person`` lives in."""
        return dict(self.homes)[person]


def world(seed: int = 0) -> World:
    """The world for ``seed``: each city is home to exactly two people, shuffled by seed."""
    slots = [city for city in CITIES for _ in range(len(PEOPLE) // len(CITIES))]
    random.Random(seed).shuffle(slots)
    return World(seed=seed, homes=tuple(zip(PEOPLE, slots, strict=True)))


# --- facts and sentences ---------------------------------------------------------------------

_Sentences = tuple[Fact, tuple[str, ...]]


def _lives_in(person: str, city: str) -> _Sentences:
    fact = Fact("lives_in", f"{person} lives in", f" {city}")
    return fact, (
        f"{fact.text} .",
        f"in {city} lives {person} .",
        f"{person} has a home in {city} .",
    )


def _animal_sound(animal: str, sound: str) -> _Sentences:
    fact = Fact("animal_sound", f"the {animal} says", f" {sound}")
    return fact, (f"{fact.text} .", f"a {animal} says {sound} .", f"{sound} says the {animal} .")


def _colour(thing: str, colour: str) -> _Sentences:
    fact = Fact("colour", f"the colour of {thing} is", f" {colour}")
    return fact, (
        f"{fact.text} .",
        f"{thing} is {colour} .",
        f"{colour} is the colour of {thing} .",
    )


def _sum(a: int, b: int, family: str = "addition") -> _Sentences:
    fact = Fact(family, f"{a} plus {b} is", f" {a + b}")
    return fact, (f"{fact.text} .", f"{a} plus {b} makes {a + b} .", f"{a + b} is {a} plus {b} .")


def _difference(a: int, b: int) -> _Sentences:
    fact = Fact("subtraction", f"{a} minus {b} is", f" {a - b}")
    return fact, (f"{fact.text} .", f"{a} minus {b} makes {a - b} .", f"{a - b} is {a} minus {b} .")


def _pairs(high: int, keep: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    return [(a, b) for a in range(high + 1) for b in range(high + 1) if keep(a, b)]


def _rendered(family: str, seed: int = 0) -> list[_Sentences]:
    """Every fact of ``family`` with its sentences, in a fixed order."""
    w = world(seed)
    if family == "lives_in":
        return [_lives_in(p, c) for p, c in w.homes]
    if family == "animal_sound":
        return [_animal_sound(a, s) for a, s in w.sounds]
    if family == "colour":
        return [_colour(t, c) for t, c in w.colours]
    if family == "addition":
        return [_sum(a, b) for a, b in _pairs(SMALL_MAX, lambda a, b: True)]
    if family == "addition_large":
        large = _pairs(LARGE_MAX, lambda a, b: max(a, b) > SMALL_MAX)
        return [_sum(a, b, "addition_large") for a, b in large]
    if family == "subtraction":
        return [_difference(a, b) for a, b in _pairs(LARGE_MAX, lambda a, b: b <= a)]
    raise ValueError(f"unknown family {family!r}; choose from {FAMILIES + HELD_OUT_FAMILIES}")


def facts(family: str | None = None, seed: int = 0) -> list[Fact]:
    """The facts of one known family, or of all of them (``family=None``), in a fixed order."""
    if family in HELD_OUT_FAMILIES:
        raise ValueError(f"{family!r} is held out of training; use held_out({family!r})")
    names = FAMILIES if family is None else (family,)
    return [fact for name in names for fact, _ in _rendered(name, seed)]


def held_out(family: str) -> list[Fact]:
    """The facts of a held-out family (they do not depend on the seed)."""
    if family not in HELD_OUT_FAMILIES:
        raise ValueError(f"{family!r} is not held out; choose from {HELD_OUT_FAMILIES}")
    return [fact for fact, _ in _rendered(family)]


def sentences(family: str, seed: int = 0) -> list[str]:
    """The sentences written about ``family`` (held-out families included, for experiments)."""
    return [text for _, texts in _rendered(family, seed) for text in texts]


def training_text(seed: int = 0) -> list[str]:
    """The training corpus: every known fact in each of its templates, in a seeded order."""
    corpus = [text for family in FAMILIES for text in sentences(family, seed)]
    random.Random(seed).shuffle(corpus)
    return corpus


# --- vocabulary and contradictions -----------------------------------------------------------


def answers(family: str) -> tuple[str, ...]:
    """Every word that can be a target of ``family`` (the pool contradictions come from)."""
    pools: dict[str, Iterable[str]] = {
        "lives_in": CITIES,
        "animal_sound": (sound for _, sound in ANIMAL_SOUNDS),
        "colour": dict.fromkeys(colour for _, colour in THING_COLOURS),
        "addition": map(str, range(2 * SMALL_MAX + 1)),
        "addition_large": map(str, range(2 * LARGE_MAX + 1)),
        "subtraction": map(str, range(LARGE_MAX + 1)),
    }
    if family not in pools:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES + HELD_OUT_FAMILIES}")
    return tuple(pools[family])


def contradiction(fact: Fact, seed: int = 0) -> Fact:
    """The same prompt with a plausible wrong target of the same kind (deterministic).

    Cities, sounds and colours are replaced by another of their kind; numbers by a
    different number at most three away, within the family's range.
    """
    wrong = [word for word in answers(fact.family) if word != fact.word]
    if fact.word.isdigit():
        near = [word for word in wrong if abs(int(word) - int(fact.word)) <= _NEAR]
        wrong = near or wrong
    rng = random.Random(f"{seed}|{fact.family}|{fact.prompt}|{fact.target}")
    return Fact(fact.family, fact.prompt, " " + rng.choice(wrong))


def vocabulary(seed: int = 0) -> list[str]:
    """Every word of the world (training and held-out), numbers first in numeric order."""
    texts = [*training_text(seed), *(t for f in HELD_OUT_FAMILIES for t in sentences(f))]
    words = {word for text in texts for word in text.split()}
    words |= {str(n) for n in range(MAX_NUMBER + 1)}
    for family in FAMILIES + HELD_OUT_FAMILIES:
        words.update(answers(family))
    return sorted(words, key=lambda w: (not w.isdigit(), int(w) if w.isdigit() else 0, w))
