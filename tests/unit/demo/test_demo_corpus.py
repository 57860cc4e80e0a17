"""The demo corpus: deterministic, no held-out leaks, sound contradictions, one-word targets."""

from __future__ import annotations

import os

import pytest

from probekit.demo import corpus
from probekit.demo.corpus import FAMILIES, HELD_OUT_FAMILIES, Fact

os.environ["HF_HUB_OFFLINE"] = "1"

ALL_FAMILIES = FAMILIES + HELD_OUT_FAMILIES


def _family_facts(family: str, seed: int = 0) -> list[Fact]:
    return corpus.held_out(family) if family in HELD_OUT_FAMILIES else corpus.facts(family, seed)


def _windows(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_same_seed_same_world_and_corpus():
    assert corpus.world(0) == corpus.world(0)
    assert corpus.training_text(0) == corpus.training_text(0)
    assert corpus.facts(seed=3) == corpus.facts(seed=3)
    assert corpus.vocabulary(0) == corpus.vocabulary(0)


def test_seed_changes_who_lives_where_but_not_everyday_facts():
    assert corpus.world(0).homes != corpus.world(1).homes
    assert corpus.facts("animal_sound", 0) == corpus.facts("animal_sound", 1)
    assert corpus.training_text(0) != corpus.training_text(1)


def test_each_city_is_home_to_two_people():
    homes = dict(corpus.world(0).homes)
    assert sorted(homes) == sorted(corpus.PEOPLE)
    assert all(list(homes.values()).count(city) == 2 for city in corpus.CITIES)


def test_family_sizes_and_examples():
    sizes = {family: len(_family_facts(family)) for family in ALL_FAMILIES}
    assert sizes == {
        "lives_in": 20,
        "animal_sound": 12,
        "colour": 12,
        "addition": 100,
        "addition_large": 341,
        "subtraction": 231,
    }
    assert Fact("animal_sound", "the cat says", " meow") in corpus.facts("animal_sound")
    assert Fact("colour", "the colour of the sky is", " blue") in corpus.facts("colour")
    assert Fact("addition", "3 plus 4 is", " 7") in corpus.facts("addition")
    assert Fact("subtraction", "9 minus 4 is", " 5") in corpus.held_out("subtraction")
    assert Fact("addition_large", "12 plus 3 is", " 15") in corpus.held_out("addition_large")


def test_facts_without_family_is_every_known_family():
    assert {fact.family for fact in corpus.facts()} == set(FAMILIES)


def test_held_out_arithmetic_ranges():
    large = corpus.held_out("addition_large")
    assert all(max(int(w) for w in f.prompt.split() if w.isdigit()) >= 10 for f in large)
    assert max(int(f.word) for f in large) == 40
    assert all(int(f.word) >= 0 for f in corpus.held_out("subtraction"))


def test_families_are_routed_to_the_right_function():
    with pytest.raises(ValueError, match="held out"):
        corpus.facts("subtraction")
    with pytest.raises(ValueError, match="not held out"):
        corpus.held_out("colour")
    with pytest.raises(ValueError, match="unknown family"):
        corpus.facts("astronomy")


def test_every_known_fact_is_in_the_training_text():
    text = set(corpus.training_text(0))
    assert all(f"{fact.text} ." in text for fact in corpus.facts(seed=0))


def test_no_held_out_fact_leaks_into_training():
    sentences = [s.split() for s in corpus.training_text(0)]
    assert not any("minus" in words for words in sentences)
    held = [f.text.split() for family in HELD_OUT_FAMILIES for f in corpus.held_out(family)]
    for words in sentences:
        for n in {len(h) for h in held}:
            windows = _windows(words, n)
            leaked = [h for h in held if tuple(h) in windows]
            assert not leaked, (words, leaked)


def test_training_addends_stay_below_ten():
    for sentence in corpus.training_text(0):
        words = sentence.split()
        for i, word in enumerate(words):
            if word == "plus":
                assert int(words[i - 1]) <= 9 and int(words[i + 1]) <= 9, sentence


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_contradictions_are_wrong_but_of_the_same_kind(family):
    pool = set(corpus.answers(family))
    for fact in _family_facts(family):
        wrong = corpus.contradiction(fact)
        assert wrong.prompt == fact.prompt and wrong.family == fact.family
        assert wrong.target.startswith(" ") and wrong.word != fact.word
        assert wrong.word in pool
        assert wrong == corpus.contradiction(fact), "contradictions must be deterministic"


def test_numeric_contradictions_are_near_the_truth():
    for fact in corpus.facts("addition"):
        assert abs(int(corpus.contradiction(fact).word) - int(fact.word)) <= 3


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_every_target_is_a_single_known_word(family):
    vocab = set(corpus.vocabulary(0))
    for fact in _family_facts(family):
        assert fact.target.startswith(" ") and fact.target == " " + fact.word
        assert len(fact.target.split()) == 1 and fact.word in vocab
        assert fact.word in corpus.answers(family)
        assert all(word in vocab for word in fact.prompt.split())


def test_vocabulary_covers_numbers_and_is_lowercase():
    vocab = corpus.vocabulary(0)
    assert vocab[:41] == [str(n) for n in range(41)]
    assert len(vocab) == len(set(vocab))
    assert all(word == word.lower() for word in vocab)
    assert {w for s in corpus.training_text(0) for w in s.split()} <= set(vocab)
