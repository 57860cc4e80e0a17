"""Notebooks 01 (quickstart) and 06 (class demo) run on the demo model and their prose holds.

Each notebook prints every number its text states; these tests read the executed outputs
back and check the statements, so a retrained demo model or a changed metric that breaks a
sentence fails here rather than in front of a class.
"""

from __future__ import annotations

import math
import re

import pytest

from tests.integration.notebook_run import NOTEBOOKS, Executed

QUICKSTART = "01_quickstart.ipynb"
CLASS_DEMO = "06_class_demo.ipynb"


def _rows(text: str, prefix: str) -> dict[str, list[float]]:
    """``  <label>   v v v …`` lines after a ``prefix`` header line, up to the next header."""
    block = text.split(prefix, 1)[1].split("\n", 1)[1]
    rows = {}
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        label, values = re.match(r"\s+(.+?)\s{2,}([-0-9.e+ ]+)$", line).groups()
        rows[label] = [float(v) for v in values.split()]
    return rows


def test_the_class_demo_asks_before_every_click():
    """Every cell that presses a button comes right after an "Ask the class" question."""
    nbformat = pytest.importorskip("nbformat")
    cells = nbformat.read(NOTEBOOKS / CLASS_DEMO, as_version=4).cells
    clicks = [
        i
        for i, c in enumerate(cells)
        if c.cell_type == "code" and re.search(r"click\(board\.actions\.|board\.feed\(", c.source)
    ]
    assert len(clicks) >= 6
    for i in clicks:
        assert cells[i - 1].cell_type == "markdown"
        assert "**Ask the class:**" in cells[i - 1].source, cells[i].source
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert len(re.findall(r"\*\*Discuss\.\*\*", text)) >= 5
    minutes = [int(m) for m in re.findall(r"^## Minute \d+–(\d+)", text, re.MULTILINE)]
    assert minutes == sorted(minutes) and minutes[-1] == 10, "a ten-minute script, in order"


@pytest.mark.slow
def test_quickstart_notebook_supports_its_text(tmp_path, monkeypatch):
    nb = Executed(QUICKSTART, tmp_path, monkeypatch)
    text = nb.text
    # what was stepped
    assert "step 0 | committed False | status 'ok' | ok True" in text
    assert "target tokens ('5',)" in text and "optimizer sgd | lr 0.001 | optimizer steps 1" in text
    lost = nb.number(r"lost_updates\s+{F} \(")
    assert nb.number(r"note: {F} parameter updates were below the resolution") == lost
    # 1. the loss: under 1% -> about 80%
    loss_before = nb.number(r"loss_before {F} ->")
    loss_after = nb.number(r"-> loss_after {F}")
    p_before = nb.number(r"p\(' 5' \| '2 plus 2 is'\): {F}%") / 100
    p_after = nb.number(r"p\(' 5' \| '2 plus 2 is'\): [0-9.]+% -> {F}%") / 100
    assert p_before < 0.01 and 0.7 < p_after < 0.9
    assert math.isclose(p_before, math.exp(-loss_before), rel_tol=0.01)
    assert math.isclose(p_after, math.exp(-loss_after), rel_tol=0.01)
    nll = re.search(r"\n\s+0\s+0\s+5\s+([0-9.]+)\s+([0-9.]+)\n", text)
    assert nll and abs(float(nll.group(1)) - loss_before) < 1e-3, "token_nll is the loss"
    # 2. how far: delta_l2 = lr x grad_l2; a thousandth of the weights; nine in ten changed
    delta_l2 = re.search(r"delta_l2\s+([0-9.]+)\s+\(lr x grad_l2 = ([0-9.]+)\)", text)
    assert delta_l2.group(1) == delta_l2.group(2)
    assert 5e-4 < nb.number(r"delta_rel\s+{F}") < 2e-3
    assert nb.number(r"delta_linf\s+{F}") < 0.015
    changed = nb.number(r"frac_changed {F}%") / 100
    lost_share = nb.number(r"lost_updates [0-9,]+ \({F}% of all") / 100
    assert 0.8 < changed < 0.95 and 0.05 < lost_share < 0.15 and changed + lost_share <= 1
    assert nb.number(r"decay_l2\s+{F}") == 0
    # 3. where: layers and tensors
    table = nb.cell("largest delta_l2:")
    layers = {
        name: float(value)
        for name, value in re.findall(r"^(\S+)\s+[0-9.e+-]+\s+([0-9.e+-]+)\s", table, re.M)
        if name != "metric"
    }
    top_two = sorted(layers, key=layers.__getitem__)[-2:]
    assert set(top_two) == {"embeddings+lm_head", "block.0"}
    assert "largest delta_l2: embeddings+lm_head | largest delta_rel: embeddings" in table
    ratio = nb.number(r"block.0 / block.1 delta_l2 = {F}x")
    assert 3 < ratio < 10, "several times more"
    later = [layers[f"block.{i}"] for i in (1, 2, 3)]
    assert max(later) / min(later) < 1.25, "the three later blocks move about the same"
    assert nb.number(r"position embeddings changed: {F}%") == pytest.approx(100 * 4 / 64)
    tensors = re.findall(r"^\s*(transformer\.\S+)\s", nb.cell("transformer.wte.weight"), re.M)
    assert tensors[:2] == ["transformer.wte.weight", "transformer.wpe.weight"]
    # 4. the watch set
    watch = nb.cell("most disturbed:")
    assert "most disturbed: 2 plus 3 is → 5" in watch
    assert nb.number(r"2 plus 3 is → 5\s+kl [0-9.e+-]+ \| dlogp_target {F}", watch) < 0
    assert "top1_flip True" not in watch, "no watch answer flipped"
    assert 1e4 <= nb.number(r"\| {F}x the lion's kl", watch) < 1e5, "tens of thousands"
    assert "the colour of a plum is  kl" in watch and "dlogp_target +nan" in watch
    assert 0.25 < nb.number(r"logit_l2 {F}x, kl", watch) < 0.45, "a third as far"
    assert 300 < nb.number(r"x, kl {F}x smaller", watch) < 3000, "about a thousand"
    example = nb.cell("before: '")
    assert "top1_flip True" in example
    assert re.search(r"before: '4' ", example) and re.search(r"after:  '5' ", example)
    own_dlogp = nb.number(r"example: kl [0-9.]+ \| dlogp_target {F}", example)
    assert own_dlogp == pytest.approx(loss_before - loss_after, abs=0.01)
    # 5. drift
    drift = nb.cell("rel_l2_drift by layer output:")
    header = "rel_l2_drift by layer output: embeddings, block.0, block.1, block.2, block.3"
    assert header in drift
    rel = _rows(drift, "rel_l2_drift by layer output")
    assert len(rel) == 5 and all(v[0] > 0 for v in rel.values()), "all move at the embeddings"
    for label in ("example", "3 plus 4 is → 7", "2 plus 3 is → 5"):
        assert rel[label] == sorted(rel[label]), f"{label}: drift grows with depth"
    for label in ("the lion says → roar", "the colour of a plum is"):
        values = rel[label]
        assert max(values) == values[1] and values[1:] == sorted(values[1:], reverse=True)
    assert len(_rows(drift, "cos_drift by layer output")) == 5
    # 6. first order
    first = nb.cell("real loss drop")
    assert nb.number(r"self_influence {F}", first) > nb.number(r"real loss drop {F}", first)
    assert 0.1 < nb.number(r"example linear_residual {F}", first) < 0.7
    lines = re.findall(
        r"^(.+?)\s+influence (\S+) \| real decrease (\S+) \| dz_pred ([0-9.]+) vs logit_l2 "
        r"([0-9.]+) \| linear_residual ([0-9.]+)$",
        first,
        re.M,
    )
    assert len(lines) == 5
    for _label, _infl, _real, dz, logit, _res in lines:
        assert abs(float(dz) / float(logit) - 1) < 0.05, "same size within 5%"
    watch_lines = [line for line in lines if line[0] != "example"]
    worst = max(watch_lines, key=lambda line: float(line[5]))
    assert worst[0] == "2 plus 3 is → 5"
    assert float(worst[1]) > 0 > float(worst[2]), "first order gets the sign wrong there"
    assert {line[0]: line[1] for line in lines}["example"] == "+nan"
    # 7. token_grad: the two '2's
    grads = re.findall(r"^\s*(\S+):\s+([0-9.]+)$", nb.cell(" plus: "), re.M)
    order = sorted(range(len(grads)), key=lambda i: -float(grads[i][1]))
    assert [grads[i][0] for i in order[:2]] == ["2", "2"]
    # 9. agreeing vs contradicting
    assert 50 < nb.number(r"moves the model {F}x further") < 120, "nearly a hundred times"
    assert nb.number(r"disturbs the watch set {F}x more") > 1e4
    assert "further in every layer: True" in text
    # 10. lr 0.01
    assert nb.number(r"lr 0.01: delta_l2 [0-9.]+ \({F}x") == pytest.approx(10, rel=1e-3)
    big = re.search(r"\| loss ([0-9.]+) -> ([0-9.]+)\n", text)
    assert float(big.group(2)) > float(big.group(1)), "the loss goes up"
    si = nb.number(r"\nself_influence {F} \| linear_residual")
    assert si > float(big.group(1)), "a predicted drop larger than the whole loss"
    assert nb.number(r"\nself_influence [0-9]+ \| linear_residual {F}") > 1
    flipped = re.search(r"watch answers flipped: \[(.*)\]", text).group(1)
    assert flipped.count("'") == 4 and flipped.count(" plus ") == 2, "two of the sums flip"
    # 11-12. the model, and the board
    assert "model bit-identical to before: True" in text
    assert "steps in the history: 2 | committed: 0" in text
    assert "status line: step 2: isolated; model untouched" in text
    assert "the same as r: True" in text
    assert nb.has("image/svg+xml"), "charts render statically"
    assert nb.has("application/vnd.jupyter.widget-view+json"), "the board is displayed"
    assert nb.has("application/vnd.probekit.board+json"), "the snapshot stays in the notebook"


@pytest.mark.slow
def test_class_demo_notebook_supports_its_text(tmp_path, monkeypatch):
    nb = Executed(CLASS_DEMO, tmp_path, monkeypatch)
    text = nb.text
    assert nb.has("application/vnd.jupyter.widget-view+json"), "the board is displayed"
    # minute 1-3: the known fact
    agree = nb.cell("p(' 4') before the step")
    assert "status line: step 0: isolated; model untouched" in agree
    assert 95 < nb.number(r"p\(' 4'\) before the step: {F}%", agree) < 99, "about 98%"
    assert "(top answer '4')" in agree
    assert max(nb.numbers(r" kl {F} \|", agree)) < 1e-3
    assert "answer flipped: True" not in agree
    # minute 3-5: the contradiction
    contradict = nb.cell("most disturbed:")
    assert 50 < nb.number(r"moves the model {F}x further than the known", contradict) < 120
    assert "most disturbed: 2 plus 3 is → 5" in contradict
    assert 1e4 <= nb.number(r"{F}x more than the lion", contradict) < 1e5
    # minute 5-7: commit, then the truth
    truth = nb.cell("the truth moves the model")
    assert "status line: step 2: committed" in truth
    assert "the model now answers '5'" in truth
    assert 10 <= nb.number(r"the truth moves the model {F}x further", truth) < 100
    assert 70 <= nb.number(r"{F}% of the distance the lie moved it", truth) <= 100
    # minute 7-8: undo
    undo = nb.cell("undid step")
    assert "model bit-identical to the start: True" in undo
    assert "identical True" in undo
    # minute 8-9: repeating the lie
    feed = nb.cell("feed: 3 of 3 steps taken")
    sizes = nb.numbers(r"\| delta_l2 {F} \|", feed)
    kls = nb.numbers(r"largest watch kl {F}", feed)
    assert len(sizes) == 3 and sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    assert kls == sorted(kls, reverse=True), "the watch set is disturbed less each time"
    assert nb.number(r"the third repeat moves the model {F}x less", feed) > 1
    assert nb.number(r"straightness {F}", feed) > 0.95, "close to 1"
    # minute 9-10: snapshot and reset
    assert nb.has("application/vnd.probekit.board+json") and nb.has("image/png")
    reset = nb.cell("steps in the history:")
    assert "status line: reset: the model is back" in reset
    assert "model bit-identical to the start: True | steps in the history: 0" in reset
    assert text.count("model bit-identical to the start: True") == 2
