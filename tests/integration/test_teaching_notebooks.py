"""The teaching notebooks run on the demo model, and every number their prose states still holds.

Each notebook prints the numbers its text relies on; these tests read them back from the
executed outputs and check the statements (a retrained demo model or a changed method that
breaks a sentence of the prose fails here, not in front of a class).
"""

from __future__ import annotations

import re

import pytest

from tests.integration.notebook_run import NOTEBOOKS
from tests.integration.notebook_run import number as _number
from tests.integration.notebook_run import run as _run


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebooks_are_stored_without_outputs_and_end_with_try_this(name):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs"
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and "## Try this" in last.source
    assert len(re.findall(r"^\d+\. ", last.source, re.MULTILINE)) >= 3


@pytest.mark.slow
def test_token_attribution_notebook_supports_its_text(tmp_path, monkeypatch):
    text, outputs = _run("04_token_attribution.ipynb", tmp_path, monkeypatch)
    assert "largest: says" in text, "'says' carries the most (pad baseline)"
    d2 = _number(r"\|delta\| at 2 steps: ([0-9.e+-]+)", text)
    d200 = _number(r"at 200 steps: ([0-9.e+-]+)", text)
    share2 = _number(r"n_steps=  2: .*\(([0-9.]+)% of", text)
    share50 = _number(r"n_steps= 50: .*\(([0-9.]+)% of", text)
    share10 = _number(r"n_steps= 10: .*\(([0-9.]+)% of", text)
    share20 = _number(r"n_steps= 20: .*\(([0-9.]+)% of", text)
    assert d2 > 1 and share2 > 100 / 3, "2 steps miss by more than a nat, over a third"
    assert share50 < 0.2, "about 0.1% at 50 steps"
    assert d200 < 1e-5, "a few millionths at 200 steps"
    assert share20 > share10, "the decrease is not monotone"
    assert re.search(r"\s+pad: .*\| largest: says \|", text)
    assert re.search(r"\s+unk: .*\| largest: says \|", text)
    assert re.search(r"zeros: .*\| largest: lion \|", text), "zeros puts 'lion' first"
    pad_delta = abs(_number(r"\s+pad: .*delta ([+-][0-9.]+)", text))
    zeros_delta = abs(_number(r"zeros: .*delta ([+-][0-9.]+)", text))
    assert zeros_delta > 10 * pad_delta, "the zeros path converges tens of times worse"
    assert "score of 'rome' in the row of 'rome': 0.0" in text
    assert "sequence = sum of rows: True" in text
    dot_row = [float(v) for v in re.search(r"row\s+'\.': (.+)", text).group(1).split(", ")]
    assert max(range(len(dot_row)), key=dot_row.__getitem__) == 1, "'.' rests mostly on 'lives'"
    assert _number(r"l1 ratio contradicting / agreeing = ([0-9]+)x", text) > 1000
    says = re.search(r"'says' before / after the contradicting step: ([0-9.]+) -> ([0-9.]+)", text)
    assert 0.3 < float(says.group(2)) / float(says.group(1)) < 0.7, "'says' roughly halves"
    assert "model unchanged: True" in text
    assert re.findall(r"^largest: (\w+)$", text, re.MULTILINE)[-1] == "lion", "token_grad: lion"
    assert _number(r"step vs pk.token_grad, largest difference: ([0-9.e+-]+)", text) < 1e-4
    assert "per-target rows during a step: ((nan, nan, nan),)" in text
    assert any("text/html" in o.get("data", {}) for o in outputs), "the heatmap renders"


@pytest.mark.slow
def test_your_own_model_notebook_supports_its_text(tmp_path, monkeypatch):
    text, _ = _run("05_your_own_model.ipynb", tmp_path, monkeypatch)
    assert "ModelNotAvailableError: model 'openai-community/gpt2'" in text
    assert "save_pretrained" in text, "the message says what to do instead"
    assert "device cpu, dtype torch.float32, eval mode: True" in text
    assert "largest logit difference from the demo model: 0.0" in text
    step = r"delta_l2 ([0-9.]+), changed ([0-9.]+)% .*lost_updates ([0-9,]+)"
    fp32 = re.search(r" float32: .*" + step, text)
    bf16 = re.search(r"bfloat16: .*" + step, text)
    assert fp32 and bf16
    assert abs(float(fp32.group(1)) / float(bf16.group(1)) - 1) < 0.05, "about as far in both"
    assert float(bf16.group(2)) < 10 < 80 < float(fp32.group(2)), "a tenth vs nine in ten"
    assert int(bf16.group(3).replace(",", "")) > int(fp32.group(3).replace(",", ""))
    full = _number(r"all parameters: delta_l2 ([0-9.]+)", text)
    last = _number(r"\{'layers': \[-1\]\}: delta_l2 ([0-9.]+), layers \('block\.3',\)", text)
    assert 6 < full / last < 11, "the last block alone moves about eight times less"
    attn = re.search(r"\{'pattern': 'attn'\}: .*layers \((.+)\)", text).group(1)
    assert attn == "'block.0', 'block.1', 'block.2', 'block.3'", "attention in every block"
    assert text.count("embeddings+lm_head") >= 1
