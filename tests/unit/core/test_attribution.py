"""Token attribution against direct Captum calls and hand-written autograd oracles."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

import probekit as pk
from probekit.charts.tokens import token_heatmap
from probekit.core.attribution import attribute, auto_batch_size, token_grad
from probekit.results.attribution import AttributionShift, TokenAttribution
from tests import tiny

PROMPT, TARGET = "alice lives in", " paris rome"
MODELS = ["tiny_gpt2", "tiny_llama"]


def _ids(tok, prompt=PROMPT, target=TARGET):
    full = tok(prompt + target)["input_ids"]
    n_prompt = len(tok(prompt)["input_ids"])
    return full[:n_prompt], full[n_prompt:]


def _logprob(model, target_id, key="input_ids"):
    def forward(x):
        logits = model(**{key: x}, use_cache=False).logits[:, -1].float()
        return torch.log_softmax(logits, -1)[:, target_id]

    return forward


def _direct_lig(model, tok, n_steps, baseline_id):
    """One plain LayerIntegratedGradients call per target token, as a user would write it."""
    from captum.attr import LayerIntegratedGradients

    model.eval()
    p, t = _ids(tok)
    rows, deltas = [], []
    for k, tid in enumerate(t):
        ids = torch.tensor([p + t[:k]])
        lig = LayerIntegratedGradients(_logprob(model, tid), model.get_input_embeddings())
        attr, delta = lig.attribute(
            ids,
            baselines=torch.full_like(ids, baseline_id),
            n_steps=n_steps,
            internal_batch_size=n_steps,
            return_convergence_delta=True,
        )
        rows.append(attr.sum(-1)[0])
        deltas.append(float(delta))
    return rows, deltas


@pytest.mark.parametrize("name", MODELS)
def test_ig_equals_direct_layer_integrated_gradients(name, request):
    model, tok = request.getfixturevalue(name)
    got = attribute(model, tok, PROMPT, TARGET, n_steps=16, internal_batch_size=16)
    rows, deltas = _direct_lig(model, tok, 16, tok.pad_token_id)
    for k, row in enumerate(rows):
        assert got.scores[k][: len(row)] == pytest.approx(row.tolist(), abs=1e-6)
        assert all(v == 0.0 for v in got.scores[k][len(row) :])
    assert got.convergence_delta == pytest.approx(deltas, abs=1e-6)
    assert got.sequence == pytest.approx([sum(c) for c in zip(*got.scores, strict=True)], abs=1e-9)
    assert got.n_steps == 16 and got.baseline == "pad" and got.method == "ig"


@pytest.mark.parametrize("name", MODELS)
def test_ig_completeness_and_delta_shrinks(name, request):
    model, tok = request.getfixturevalue(name)
    model.eval()
    p, t = _ids(tok)
    full = torch.tensor([p])
    with torch.no_grad():
        f_x = float(_logprob(model, t[0])(full))
        f_b = float(_logprob(model, t[0])(torch.full_like(full, tok.pad_token_id)))
    coarse = attribute(model, tok, PROMPT, TARGET, n_steps=5)
    fine = attribute(model, tok, PROMPT, TARGET, n_steps=200)
    for result in (coarse, fine):
        gap = sum(result.scores[0]) - (f_x - f_b)
        assert abs(gap) == pytest.approx(abs(result.convergence_delta[0]), abs=1e-5)
    assert abs(fine.convergence_delta[0]) < abs(coarse.convergence_delta[0])
    # below ~1e-6 both deltas are float32 rounding noise, not integration error
    assert abs(fine.sequence_delta) < max(abs(coarse.sequence_delta), 1e-6)


def test_ig_zeros_baseline_is_integrated_gradients_on_embeddings(tiny_gpt2):
    from captum.attr import IntegratedGradients

    model, tok = tiny_gpt2
    got = attribute(model, tok, PROMPT, TARGET, baseline="zeros", n_steps=10)
    model.eval()
    p, t = _ids(tok)
    embeds = model.get_input_embeddings()(torch.tensor([p])).detach()
    ig = IntegratedGradients(_logprob(model, t[0], "inputs_embeds"))
    attr = ig.attribute(embeds, baselines=torch.zeros_like(embeds), n_steps=10)
    assert got.scores[0][: len(p)] == pytest.approx(attr.sum(-1)[0].tolist(), abs=1e-6)
    assert got.baseline == "zeros"


def _autograd_rows(model, tok):
    """log p of each target token and the input embeddings, by hand (full sequence)."""
    model.eval()
    p, t = _ids(tok)
    embeds = model.get_input_embeddings()(torch.tensor([p + t[:-1]])).detach().requires_grad_()
    logits = model(inputs_embeds=embeds).logits[0, len(p) - 1 :]
    logp = torch.log_softmax(logits, -1)[range(len(t)), t]
    return embeds, logp


@pytest.mark.parametrize("name", MODELS)
def test_grad_x_input_equals_autograd(name, request):
    model, tok = request.getfixturevalue(name)
    got = attribute(model, tok, PROMPT, TARGET, "grad_x_input")
    embeds, logp = _autograd_rows(model, tok)
    for k in range(len(logp)):
        (g,) = torch.autograd.grad(logp[k], embeds, retain_graph=True)
        assert got.scores[k] == pytest.approx((g * embeds).sum(-1)[0].tolist(), abs=1e-6)
    (g,) = torch.autograd.grad(logp.sum(), embeds)
    assert got.sequence == pytest.approx((g * embeds).sum(-1)[0].tolist(), abs=1e-6)
    assert all(math.isnan(d) for d in got.convergence_delta)


@pytest.mark.parametrize("name", MODELS)
def test_token_grad_equals_autograd(name, request):
    model, tok = request.getfixturevalue(name)
    got = token_grad(model, tok, PROMPT, TARGET)
    embeds, logp = _autograd_rows(model, tok)
    (g,) = torch.autograd.grad(-logp.mean(), embeds, retain_graph=True)
    assert got.sequence == pytest.approx(g.norm(dim=-1)[0].tolist(), abs=1e-6)
    (g0,) = torch.autograd.grad(-logp[0], embeds)
    assert got.scores[0] == pytest.approx(g0.norm(dim=-1)[0].tolist(), abs=1e-6)
    assert got.method == "token_grad"


def test_ablation_equals_replacing_each_token(tiny_gpt2):
    model, tok = tiny_gpt2
    got = attribute(model, tok, PROMPT, TARGET, "ablation", baseline="unk")
    model.eval()
    p, t = _ids(tok)
    for k, tid in enumerate(t):
        inputs = p + t[:k]
        f = _logprob(model, tid)
        with torch.no_grad():
            base = float(f(torch.tensor([inputs])))
            for i in range(len(inputs)):
                ablated = list(inputs)
                ablated[i] = tok.unk_token_id
                assert got.scores[k][i] == pytest.approx(
                    base - float(f(torch.tensor([ablated]))), abs=1e-5
                )


@pytest.mark.parametrize("name", MODELS)
def test_ablation_first_token_equals_captum_llm_attribution(name, request):
    """Captum's wrapper agrees on the first target token; later rows are checked by hand."""
    from captum.attr import FeatureAblation, LLMAttribution, TextTokenInput

    model, tok = request.getfixturevalue(name)
    got = attribute(model, tok, PROMPT, TARGET, "ablation")
    model.eval()
    llm = LLMAttribution(FeatureAblation(model), tok)
    ref = llm.attribute(TextTokenInput(PROMPT, tok, baselines=tok.pad_token), target=TARGET)
    assert got.scores[0][: len(ref.input_tokens)] == pytest.approx(
        ref.token_attr[0].tolist(), abs=1e-5
    )


CALLS = {
    "ig": lambda m, t: attribute(m, t, PROMPT, TARGET, n_steps=4),
    "ig_zeros": lambda m, t: attribute(m, t, PROMPT, TARGET, baseline="zeros", n_steps=4),
    "grad_x_input": lambda m, t: attribute(m, t, PROMPT, TARGET, "grad_x_input"),
    "ablation": lambda m, t: attribute(m, t, PROMPT, TARGET, "ablation"),
    "token_grad": lambda m, t: token_grad(m, t, PROMPT, TARGET),
}


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_model_untouched(call, train, tiny_gpt2):
    model, tok = tiny_gpt2
    model.train(train)
    model.transformer.h[0].mlp.c_fc.weight.grad = torch.ones_like(
        model.transformer.h[0].mlp.c_fc.weight
    )
    model.lm_head.requires_grad_(True)
    model.transformer.wpe.weight.requires_grad_(False)
    before = pk.fingerprint(model)
    CALLS[call](model, tok)
    assert before.differences(pk.fingerprint(model)) == []


@pytest.mark.parametrize("call", sorted(CALLS))
def test_frozen_model_works_and_stays_frozen(call, tiny_llama):
    model, tok = tiny_llama
    model.requires_grad_(False)
    before = pk.fingerprint(model)
    result = CALLS[call](model, tok)
    assert before.differences(pk.fingerprint(model)) == []
    assert any(v != 0 for v in result.sequence)


HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "🦜🔥", "[EOS]"]


def _hostile_pair():
    """A tokenizer splitting at `` | `` whose vocabulary holds the hostile strings as tokens."""
    words = [*tiny.SPECIALS, "say", *HOSTILE[:3], "ok"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(" | ", "removed")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )
    return tiny.make_gpt2(tok), tok


@pytest.mark.filterwarnings("ignore:target .* is tokenised as")
def test_hostile_tokens_stay_literal():
    model, tok = _hostile_pair()
    prompt = " | ".join(["say", *HOSTILE])
    result = attribute(model, tok, prompt, " | ok", n_steps=4)
    assert result.input_tokens == ("say", *HOSTILE)
    frame = result.to_frame()
    assert set(HOSTILE) <= set(frame["token"])
    spec = token_heatmap(frame).to_dict()
    values = json.dumps(spec["datasets"], ensure_ascii=False)
    for token in HOSTILE:
        assert json.dumps(token, ensure_ascii=False)[1:-1] in values


def test_frame_shape_and_shift(tiny_gpt2):
    model, tok = tiny_gpt2
    before = attribute(model, tok, PROMPT, TARGET, "grad_x_input")
    frame = before.to_frame()
    assert list(frame.columns) == [
        "target_position",
        "target_token",
        "position",
        "token",
        "score",
        "method",
    ]
    n_in, n_target = len(before.input_tokens), len(before.target_tokens)
    assert len(frame) == n_in * (n_target + 1)
    seq = frame[frame["target_position"] == -1]
    assert set(seq["target_token"]) == {"(sequence)"}
    assert seq["score"].tolist() == list(before.sequence)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(1.5)
    after = attribute(model, tok, PROMPT, TARGET, "grad_x_input")
    shift = AttributionShift(before, after)
    assert shift.l1 == pytest.approx(
        sum(abs(a - b) for a, b in zip(after.sequence, before.sequence, strict=True))
    )
    assert 0 < shift.cosine_distance <= 2
    assert AttributionShift(before, before).cosine_distance == pytest.approx(0.0, abs=1e-12)
    assert set(shift.to_frame()["when"]) == {"before", "after"}


def test_results_hold_plain_python_values(tiny_gpt2):
    result = attribute(*tiny_gpt2, PROMPT, TARGET, n_steps=4)
    assert isinstance(result, TokenAttribution)
    flat = [*result.sequence, *result.convergence_delta, *(v for r in result.scores for v in r)]
    assert all(type(v) is float for v in flat)


@pytest.mark.parametrize(("prompt", "target"), [("", " paris"), ("   ", " paris"), (PROMPT, "")])
def test_empty_inputs_raise(prompt, target, tiny_gpt2):
    model, tok = tiny_gpt2
    with pytest.raises(pk.InputError):
        attribute(model, tok, prompt, target, n_steps=2)
    with pytest.raises(pk.InputError):
        token_grad(model, tok, prompt, target)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "shap"},
        {"baseline": "mean"},
        {"n_steps": 0},
        {"internal_batch_size": 0},
        {"method": "ablation", "baseline": "zeros"},
    ],
)
def test_bad_options_raise(kwargs, tiny_gpt2):
    with pytest.raises(pk.InputError):
        attribute(*tiny_gpt2, PROMPT, TARGET, **kwargs)


def test_auto_batch_size_on_cpu(tiny_gpt2):
    model, _ = tiny_gpt2
    assert auto_batch_size(model, 10, 50) == 16
    assert auto_batch_size(model, 10, 5) == 5
