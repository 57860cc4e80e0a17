"""The dynamics notebooks (02 agreeing vs contradicting, 03 curriculum) support their text.

Each notebook prints every number its prose relies on; these tests execute it on the demo
model, read the numbers back from the outputs and check each statement. A retrained demo
model or a changed method that breaks a sentence fails here, not in front of a class.
"""

from __future__ import annotations

import re

import pytest

from tests.integration.notebook_run import number as _number
from tests.integration.notebook_run import run as _run

AGREE = "02_compatible_vs_contradictory.ipynb"
CURRICULUM = "03_curriculum.ipynb"


def _svg_charts(outputs: list) -> int:
    return sum("image/svg+xml" in o.get("data", {}) for o in outputs)


@pytest.mark.slow
def test_compatible_vs_contradictory_notebook_supports_its_text(tmp_path, monkeypatch):
    text, outputs = _run(AGREE, tmp_path, monkeypatch)
    # 1. one step on "2 plus 3 is": " 5" vs " 7"
    assert _number(r"' 5': loss ([0-9.]+) ->", text) < 0.1, "a loss near zero"
    assert _number(r"' 7': loss ([0-9.]+) ->", text) > 10, "over ten nats"
    assert 10 < _number(r"update size ratio wrong / right = ([0-9]+)x", text) < 100, "dozens"
    assert text.count("model unchanged: True") == 1
    lost = re.findall(r"^' [57]': delta_l2 .*lost_updates ([0-9,]+)$", text, re.MULTILINE)
    assert int(lost[0].replace(",", "")) > int(lost[1].replace(",", "")), "more lost when small"
    layer_shares = {
        name: (float(a), float(b))
        for name, a, b in re.findall(
            r"^ +([\w.+]+): agrees +([0-9.]+)%, contradicts +([0-9.]+)%$", text, re.MULTILINE
        )
    }
    assert len(layer_shares) >= 5 and max(abs(a - b) for a, b in layer_shares.values()) < 2
    for name in ("embeddings+lm_head", "block.0"):
        assert all(30 < v < 50 for v in layer_shares[name]), f"{name}: about four tenths"
    assert all(10 < v < 30 for v in layer_shares["embeddings"]), "most of the rest"
    assert _number(r"kl on the arithmetic watch items / on the others = ([0-9]+)x", text) > 1000
    flipped = re.search(r"top-1 answer flipped: \[(.*)\]", text).group(1)
    assert flipped.count("→") == 1 and " plus " in flipped, "one sum loses its answer"
    # 2. update size
    assert _number(r"contradicting / agreeing = ([0-9]+)x", text) > 100
    assert _number(r"largest agreeing update = ([0-9.]+)x", text) > 1, "no overlap"
    assert 1 < _number(r"new / contradicting = ([0-9.]+)", text) < 2, "as far, slightly more"
    familiar = re.search(r"within 10x of the known ones: 2: (.*)$", text, re.MULTILINE)
    assert familiar, "two new facts step like known ones"
    for prompt, answer, loss in re.findall(r"(\d+ minus \d+) is → (\d+) \(loss ([0-9.]+)\)", text):
        assert answer in prompt.split() and float(loss) < 0.1, "a number of the prompt, low loss"
    assert familiar.group(1).count("minus") == 2
    # 3. watch-set disturbance
    assert _number(r"agrees: mean kl ([0-9.e+-]+)", text) < 1e-6
    assert _number(r"mean kl contradicting / agreeing = ([0-9.e+]+)", text) > 1e6
    assert _number(r"agrees: .*watch answers lost ([0-9.]+)%", text) == 0
    lost_bad = _number(r"contradicts: .*watch answers lost ([0-9.]+)%", text)
    assert lost_bad > 0 and _number(r"contradicts: .*median dlogp_target ([0-9.e+-]+)", text) < 0
    assert _number(r"other families = ([0-9]+)x", text) > 100, "over a hundred times, local"
    kl_new = _number(r"new: mean kl ([0-9.e+-]+)", text)
    assert kl_new > _number(r"contradicts: mean kl ([0-9.e+-]+)", text), "new: more, on the mean"
    residuals = [float(v) for v in re.findall(r"first-order residual ([0-9.]+)", text)]
    assert residuals[0] < 0.1 < 0.5 < residuals[1], "first order holds for known facts only"
    # 4. volatility over a run
    streams = {
        m: dict(re.findall(r"(\w+) ([0-9.e+-]+)", line))
        for m, line in re.findall(r"^\s*(\w+): (agrees .*)$", text, re.MULTILINE)
    }
    path = {g: float(v) for g, v in streams["path_length"].items()}
    direction = {g: float(v) for g, v in streams["direction_volatility"].items()}
    magnitude = {g: float(v) for g, v in streams["magnitude_volatility"].items()}
    assert path["contradicts"] > 100 * path["agrees"], "hundreds of times longer"
    assert direction["contradicts"] > direction["agrees"]
    assert magnitude["agrees"] > magnitude["contradicts"], "magnitude points the other way"
    # 5. dataset map
    maps = {}
    for lr, block in re.findall(r"^lr ([0-9.]+):\n((?:  .*\n){3})", text, re.MULTILINE):
        maps[lr] = {
            g: (float(c), float(v), float(f))
            for g, c, v, f in re.findall(
                r"(\w+): confidence ([0-9.]+), variability ([0-9.]+), forgetting events ([0-9.]+)",
                block,
            )
        }
    gentle, rough = maps["0.003"], maps["0.01"]
    assert max(gentle, key=lambda g: gentle[g][0]) == "agrees", "known facts: most confident"
    assert min(gentle, key=lambda g: gentle[g][1]) == "agrees", "... and least variable"
    assert max(gentle, key=lambda g: gentle[g][1]) == "contradicts", "most variable group"
    assert max(rough, key=lambda g: rough[g][1]) == "agrees", "at lr 0.01: known facts"
    assert rough["agrees"][2] > 1, "more than one forgetting event each on average"
    assert "model unchanged after everything above: True" in text
    variable = re.search(r"most variable at lr 0.003:\n((?:  .*\n){5})", text).group(1)
    groups = re.findall(r"(agrees|contradicts|new): confidence", variable)
    assert set(groups) == {"agrees", "contradicts", "new"}, "all three groups, known included"
    known = re.findall(r"^  (.*?) +agrees: confidence", variable, re.MULTILINE)
    assert known and all(" plus " in label for label in known), "the known ones are sums"
    least = re.search(r"least confident at lr 0.003:\n((?:  .*\n?){5})", text).group(1)
    rows = re.findall(r"(\w+): confidence ([0-9.]+), variability ([0-9.]+)", least)
    assert rows[0][0] == "new" and [g for g, _, _ in rows].count("new") >= 3
    assert all(float(c) < 0.05 and float(v) < 0.05 for g, c, v in rows if g == "new")
    assert _svg_charts(outputs) >= 4, "the charts render statically"


def _wins(text: str) -> dict[tuple[str, str], dict[str, int]]:
    """{(lr, metric): {order: draws in which it was best}} from the count lines."""
    found = re.findall(r"^lr ([0-9.]+) +(\w+): best in 5 draws: (.*)$", text, re.MULTILINE)
    return {
        (lr, metric): {o: int(n) for o, n in re.findall(r"(\w+) (\d+)", counts)}
        for lr, metric, counts in found
    }


@pytest.mark.slow
def test_curriculum_notebook_supports_its_text(tmp_path, monkeypatch):
    text, outputs = _run(CURRICULUM, tmp_path, monkeypatch)
    assert text.count("model back at its start: True") == 3
    start = _number(r"starting loss: .*mean ([0-9.]+)", text)
    end = re.search(
        r"at the end: easy_to_hard ([0-9.]+), hard_to_easy ([0-9.]+), shuffled ([0-9.]+)", text
    )
    assert all(float(v) < start - 3 for v in end.groups()), "the losses fall by several nats"
    for order, rising in (("easy_to_hard", True), ("hard_to_easy", False)):
        first = _number(rf"{order}: mean loss before its own step, first half ([0-9.]+)", text)
        second = _number(rf"{order}: mean loss .*second half ([0-9.]+)", text)
        assert (second > first) == rising, f"{order}: the loss before each step climbs / falls"
    # 1. the close look at one draw (lr 0.003)
    closer = {
        name: (int(kept), int(right), float(rise))
        for name, kept, right, rise in re.findall(
            r"(\w+): watch answers kept (\d+)/8, examples right at the end (\d+)/16, "
            r"loss rise after own step: mean ([0-9.+-]+)",
            text,
        )
    }
    assert set(closer) == {"easy_to_hard", "hard_to_easy", "shuffled"}
    assert all(kept == 8 for kept, _, _ in closer.values()), "no watch fact was lost"
    assert all(right <= 2 for _, right, _ in closer.values()), "almost no answer on top"
    assert closer["easy_to_hard"][2] > 0, "easy→hard: later steps undid earlier ones"
    assert closer["hard_to_easy"][2] < 0 and closer["shuffled"][2] < 0, "transfer"
    # 2. several draws
    wins = _wins(text)
    assert len(wins) == 8 and all(sum(w.values()) == 5 for w in wins.values())
    for lr in ("0.01", "0.003"):
        loss = wins[(lr, "final_loss")]
        assert max(loss.values()) < 5, "no order reliably wins on final loss"
        assert max(loss, key=loss.__getitem__) == "shuffled", "shuffled best most often"
        assert sum(n > 0 for n in loss.values()) >= 2, "the others won some draws too"
        for metric in ("path_length", "straightness"):
            assert wins[(lr, metric)]["easy_to_hard"] == 3, "easy→hard 3 of 5, never all"
        assert max(wins[(lr, "final_kl")].values()) < 5, "no order forgot least every time"
        between_orders = _number(
            rf"lr {lr}: final loss spread between orders \(same draw\) ([0-9.]+)", text
        )
        between_draws = _number(rf"lr {lr}: .*between draws \(same order\) ([0-9.]+)", text)
        assert between_draws > between_orders, "the draw matters more than the order"
    assert wins[("0.01", "final_loss")] == {"easy_to_hard": 2, "hard_to_easy": 0, "shuffled": 3}
    assert wins[("0.003", "final_loss")] == {"easy_to_hard": 0, "hard_to_easy": 1, "shuffled": 4}
    assert wins[("0.003", "final_kl")]["shuffled"] == 4
    assert wins[("0.01", "final_kl")]["shuffled"] == 2
    ratios = re.findall(r"mean final KL at lr 0.01 / at lr 0.003 = ([0-9]+)x \(([0-9.]+) vs", text)
    assert len(ratios) == 3 and all(float(r) > 5 for r, _ in ratios), "more than five times"
    assert all(2 < float(kl) < 4 for _, kl in ratios), "about 3 nats at lr 0.01"
    assert _svg_charts(outputs) >= 2, "the charts render statically"
