"""The batched isolated map (torch.func) equals the probe-step loop; first-order equals TracIn."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import probekit as pk
from probekit.core import update_rule
from probekit.core.optimizer import OptimizerSpec
from probekit.core.per_example import Functional

EXAMPLES = [
    pk.Example("the dog says", " woof"),
    pk.Example("the cat says", " meow ."),
    pk.Example("alice lives in", " paris"),
    pk.Example("the dog says", " moo"),
    pk.Example("bob lives in", " rome . paris"),
]
WATCH = ["the cow says", pk.Example("bob lives in", " rome"), pk.Example("the cat", " says meow")]

SETTINGS = [
    {"optimizer": "sgd", "lr": 0.05},
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "steps": 2},
    {"optimizer": "adam", "lr": 1e-3},
    {"optimizer": "adamw", "lr": 1e-3, "steps": 2},
]


def _matrix_close(a, b, atol):
    for row_a, row_b in zip(a, b, strict=True):
        for x, y in zip(row_a, row_b, strict=True):
            close = x == pytest.approx(y, rel=1e-5, abs=atol)
            assert (math.isnan(x) and math.isnan(y)) or close, (x, y)


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
@pytest.mark.parametrize(
    "settings", SETTINGS, ids=lambda s: f"{s['optimizer']}-{s.get('steps', 1)}"
)
def test_exact_batched_equals_the_loop(model_name, settings, request):
    model, tok = request.getfixturevalue(model_name)
    probe = pk.Probe(model, tok, watch=WATCH, **settings)
    probe.step(EXAMPLES[0], commit=True)  # optimizer state that the isolated steps start from
    start = probe.fingerprint()
    exact = pk.isolated_map(probe, EXAMPLES, method="exact", chunk_size=2)
    assert probe.fingerprint().differences(start) == []
    loop = pk.isolated_map(probe, EXAMPLES, method="loop")
    assert exact.method == "exact" and loop.method == "loop"
    assert exact.watch_labels == loop.watch_labels
    for a, b in zip(exact.rows, loop.rows, strict=True):
        assert a.label == b.label
        assert a.update_size == pytest.approx(b.update_size, rel=1e-4)
        assert a.loss_before == pytest.approx(b.loss_before, rel=1e-5)
        assert a.loss_drop == pytest.approx(b.loss_drop, abs=1e-4 * b.loss_before)
        assert a.disturbance == pytest.approx(b.disturbance, rel=1e-3, abs=1e-7)
    _matrix_close(exact.kl, loop.kl, atol=1e-6)
    _matrix_close(exact.dlogp, loop.dlogp, atol=1e-5)


def test_chunking_and_order_do_not_change_the_numbers(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=WATCH)
    frames = [pk.isolated_map(probe, EXAMPLES, chunk_size=size).to_frame() for size in (1, 3, None)]
    for frame in frames[1:]:
        assert frame.label.tolist() == frames[0].label.tolist()
        for column in ("update_size", "loss_before", "loss_drop", "disturbance"):
            assert frame[column].tolist() == pytest.approx(frames[0][column].tolist(), rel=1e-5)


def test_first_order_equals_tracin_by_hand(tiny_gpt2):
    """Predicted Δlog p(o) = ∇log p(o)·(−η∇L(u)), each gradient from its own backward."""
    model, tok = tiny_gpt2
    lr = 1e-3
    probe = pk.Probe(model, tok, lr=lr, watch=WATCH)
    start = probe.fingerprint()
    result = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=3)
    assert probe.fingerprint().differences(start) == []
    params = [p for p in model.parameters()]
    model.eval()

    def grad_of(prompt: str, target: str) -> list[torch.Tensor]:
        ids = tok(prompt + target, return_tensors="pt")["input_ids"]
        n_target = len(tok(prompt + target)["input_ids"]) - len(tok(prompt)["input_ids"])
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), -1)
        picked = logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]][-n_target:]
        return list(torch.autograd.grad(picked.sum(), params)), n_target

    for i, ex in enumerate(EXAMPLES):
        g_u, n_u = grad_of(ex.prompt, ex.target)  # ∇ log p = −n·∇L(u)
        size = lr / n_u * math.sqrt(sum(float(g.double().square().sum()) for g in g_u))
        assert result.rows[i].update_size == pytest.approx(size, rel=1e-4)
        assert result.rows[i].loss_drop == pytest.approx(size**2 / lr, rel=1e-4)
        assert math.isnan(result.rows[i].disturbance)
        for j, item in enumerate(probe.watch):
            if not item.target:
                assert math.isnan(result.dlogp[i][j])
                continue
            g_o, _ = grad_of(item.prompt, item.target)
            want = (
                lr
                / n_u
                * sum(float((a.double() * b.double()).sum()) for a, b in zip(g_o, g_u, strict=True))
            )
            assert result.dlogp[i][j] == pytest.approx(want, rel=1e-3, abs=1e-9)
    residual = result.residual
    assert residual is not None and len(residual.indices) == 3
    exact = pk.isolated_map(probe, EXAMPLES, method="exact")
    pred, true = [], []
    for k, i in enumerate(residual.indices):
        _matrix_close([residual.exact[k]], [exact.dlogp[i]], atol=1e-9)
        _matrix_close([residual.predicted[k]], [result.dlogp[i]], atol=0)
        pairs = [
            (p, t)
            for p, t in zip(result.dlogp[i], exact.dlogp[i], strict=True)
            if not math.isnan(t)
        ]
        pred += [p for p, _ in pairs]
        true += [t for _, t in pairs]
    by_hand = math.dist(pred, true) / math.hypot(*true)
    assert residual.relative == pytest.approx(by_hand, rel=1e-9)
    assert residual.max_abs == pytest.approx(
        max(abs(p - t) for p, t in zip(pred, true, strict=True))
    )


def test_first_order_residual_grows_with_the_step(tiny_gpt2):
    model, tok = tiny_gpt2
    small = pk.isolated_map(pk.Probe(model, tok, lr=1e-4, watch=WATCH), EXAMPLES,
                            method="first_order", sample=5)  # fmt: skip
    large = pk.isolated_map(pk.Probe(model, tok, lr=1.0, watch=WATCH), EXAMPLES,
                            method="first_order", sample=5)  # fmt: skip
    assert small.residual.relative < large.residual.relative


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_update_rule_equals_torch_optim(name):
    torch.manual_seed(0)
    theta = torch.randn(40, 3)
    spec = OptimizerSpec(name, lr=0.01, momentum=0.9 if name == "sgd" else 0.0, weight_decay=0.1)
    param = torch.nn.Parameter(theta.clone())
    optimizer = torch.optim.SGD([param], lr=0.01, momentum=0.9, weight_decay=0.1) if name == "sgd" \
        else (torch.optim.Adam if name == "adam" else torch.optim.AdamW)(
            [param], lr=0.01, weight_decay=0.1)  # fmt: skip
    grads = torch.randn(3, 40, 3)
    state = update_rule.TensorState()
    current = theta
    for g in grads:  # three rounds: the state carries over
        param.grad = g.clone()
        optimizer.step()
        current, state = update_rule.apply(spec, current, g[None], state)
        torch.testing.assert_close(current[0], param.detach(), rtol=1e-6, atol=1e-7)
        current = current[0]
        state = update_rule.TensorState.of(
            {k: v[0] if torch.is_tensor(v) and v.dim() == 3 else v for k, v in vars(state).items()}
        )


def test_falls_back_to_the_loop_when_vmap_cannot_trace(tiny_gpt2, monkeypatch):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=WATCH)

    def refuse(*args, **kwargs):
        raise RuntimeError("vmap: It looks like you're calling .item() on a Tensor")

    monkeypatch.setattr(Functional, "grads", refuse)
    with pytest.warns(RuntimeWarning, match="one probe step per example"):
        result = pk.isolated_map(probe, EXAMPLES[:2])
    assert result.method == "loop" and len(result.rows) == 2


@pytest.mark.parametrize(
    ("kwargs", "examples", "message"),
    [
        ({}, [], "at least one example"),
        ({"method": "second_order"}, EXAMPLES, "unknown method"),
        ({"chunk_size": 0}, EXAMPLES, "chunk_size"),
        ({}, ["no target here"], "target"),
    ],
)
def test_bad_input_is_refused(tiny_gpt2, kwargs, examples, message):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=WATCH)
    with pytest.raises(pk.errors.InputError, match=message):
        pk.isolated_map(probe, examples, **kwargs)


def test_contradictions_move_the_demo_model_further(demo):
    from probekit.demo import corpus

    model, tok = demo
    facts = corpus.facts("lives_in")[:6]
    agree = [pk.Example(f.prompt, f.target) for f in facts]
    disagree = [pk.Example(corpus.contradiction(f).prompt, corpus.contradiction(f).target)
                for f in facts]  # fmt: skip
    probe = pk.Probe(model, tok, lr=0.01, watch=[pk.Example(f.prompt, f.target) for f in
                                                corpus.facts("colour")[:4]])  # fmt: skip
    result = pk.isolated_map(probe, agree + disagree).to_frame()
    ok, bad = result.iloc[:6], result.iloc[6:]
    assert bad.update_size.min() > 10 * ok.update_size.max()
    assert bad.disturbance.mean() > 10 * ok.disturbance.mean()


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
def test_ghost_products_equal_materialised_gradients(model_name, request):
    """‖∇L_i‖² and ∇L_i·∇log p(o) from factors == from per-example autograd gradients."""
    from probekit.core import ghost, isolated
    from probekit.core.per_example import stack

    model, tok = request.getfixturevalue(model_name)
    probe = pk.Probe(model, tok, lr=0.1, watch=WATCH)
    encoded = [probe._encode(e, require_target=True) for e in EXAMPLES]
    watch = [e for e in probe.watch_outputs().items if e.target_ids]
    with probe.functional() as setup:
        ex, wt = stack(encoded, 0, torch.device("cpu")), stack(watch, 0, torch.device("cpu"))
        mine, _ = ghost.factors(model, setup.entries, ex.ids, isolated._mean_nll(ex.targets),
                                verify=True)  # fmt: skip
        theirs, _ = ghost.factors(model, setup.entries, wt.ids,
                                  isolated._target_logp(wt.targets), verify=True)  # fmt: skip
        norms = ghost.self_products(mine, len(encoded))
        cross = ghost.cross_products(mine, theirs, len(encoded), len(watch))
        params = [e.param for e in setup.entries]

        def grad(stacked, row, scale):
            ids = stacked.ids[row : row + 1]
            with torch.enable_grad():
                logits = model(input_ids=ids).logits.float()
                value = isolated._mean_nll(stacked.targets[row : row + 1])(logits) * scale
                return torch.autograd.grad(value.sum(), params)

        for i in range(len(encoded)):
            g = grad(ex, i, 1.0)
            assert float(norms[i]) == pytest.approx(
                sum(float(t.double().square().sum()) for t in g), rel=1e-4
            )
            for j, item in enumerate(watch):
                h = grad(wt, j, -float(len(item.target_ids)))
                want = sum(
                    float((a.double() * b.double()).sum()) for a, b in zip(g, h, strict=True)
                )
                assert float(cross[i, j]) == pytest.approx(want, rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
def test_first_order_sgd_never_materialises_per_example_gradients(model_name, request, monkeypatch):
    model, tok = request.getfixturevalue(model_name)
    probe = pk.Probe(model, tok, lr=0.01, watch=WATCH)
    expected = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=0)

    def refuse(*args, **kwargs):
        raise AssertionError("per-example gradients were materialised")

    monkeypatch.setattr(Functional, "grads", refuse)
    monkeypatch.setattr(Functional, "logp_grads", refuse)
    again = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=0)
    assert again.rows == expected.rows
    _matrix_close(again.dlogp, expected.dlogp, atol=0)


def test_unsupported_modules_fall_back_to_materialised_gradients(tiny_gpt2, monkeypatch):
    from probekit.core import ghost

    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.01, watch=WATCH)
    ghosted = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=0)
    real_kind = ghost._kind
    monkeypatch.setattr(ghost, "_kind", lambda m: None if isinstance(m, torch.nn.LayerNorm)
                        else real_kind(m))  # fmt: skip
    fallback = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=0)
    for a, b in zip(ghosted.rows, fallback.rows, strict=True):
        assert a.update_size == pytest.approx(b.update_size, rel=1e-4)
        assert a.loss_drop == pytest.approx(b.loss_drop, rel=1e-4)
    _matrix_close(ghosted.dlogp, fallback.dlogp, atol=1e-6)


def test_factors_that_miss_a_use_are_caught(tiny_gpt2, monkeypatch):
    """A parameter used outside the factor rules is detected by the gradient check."""
    from probekit.core import ghost, isolated
    from probekit.core.per_example import stack

    model, tok = tiny_gpt2
    real_rules = ghost._rules  # dropping nn.Linear loses the tied head's share of the embedding
    monkeypatch.setattr(ghost, "_rules", lambda m, x, d: [] if isinstance(m, torch.nn.Linear)
                        else real_rules(m, x, d))  # fmt: skip
    probe = pk.Probe(model, tok, lr=0.01)
    encoded = [probe._encode(e, require_target=True) for e in EXAMPLES]
    with probe.functional() as setup:
        ex = stack(encoded, 0, torch.device("cpu"))
        with pytest.raises(ghost.Unsupported, match="do not reproduce"):
            ghost.factors(model, setup.entries, ex.ids, isolated._mean_nll(ex.targets), verify=True)


@pytest.mark.parametrize("method", ["exact", "first_order"])
def test_watch_order_does_not_change_the_rows(tiny_gpt2, method):
    model, tok = tiny_gpt2
    a = pk.isolated_map(pk.Probe(model, tok, lr=0.05, watch=WATCH), EXAMPLES, method=method)
    b = pk.isolated_map(pk.Probe(model, tok, lr=0.05, watch=WATCH[::-1]), EXAMPLES, method=method)
    for x, y in zip(a.rows, b.rows, strict=True):
        assert x.update_size == pytest.approx(y.update_size, rel=1e-6)
        assert x.loss_drop == pytest.approx(y.loss_drop, rel=1e-6)
        assert x.disturbance == pytest.approx(y.disturbance, rel=1e-6, nan_ok=True)
    _matrix_close(a.dlogp, [row[::-1] for row in b.dlogp], atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_half_precision_models(tiny_gpt2, dtype, optimizer, monkeypatch):
    model, tok = tiny_gpt2
    model.to(dtype)
    lr = 0.05 if optimizer == "sgd" else 1e-3
    probe = pk.Probe(model, tok, optimizer=optimizer, lr=lr, watch=WATCH)
    exact = pk.isolated_map(probe, EXAMPLES[:3])
    loop = pk.isolated_map(probe, EXAMPLES[:3], method="loop")
    for a, b in zip(exact.rows, loop.rows, strict=True):
        assert a.update_size == pytest.approx(b.update_size, rel=1e-2)
        assert a.disturbance == pytest.approx(b.disturbance, rel=5e-2, abs=1e-4)
    if optimizer == "sgd":  # the ghost path copes with half-precision gradients too
        monkeypatch.setattr(Functional, "grads", lambda *a, **k: pytest.fail("materialised"))
    fast = pk.isolated_map(probe, EXAMPLES[:3], method="first_order", sample=0)
    for a, b in zip(fast.rows, exact.rows, strict=True):
        assert a.update_size == pytest.approx(b.update_size, rel=1e-2)


def test_progress_counts_every_example_once(tiny_gpt2, monkeypatch):
    import tqdm.auto

    counted = []

    class Bar:
        def __init__(self, total, **kwargs):
            counted.append(total)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            counted.append(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=WATCH)
    pk.isolated_map(probe, EXAMPLES, chunk_size=2, progress=True, method="first_order", sample=2)
    assert counted == [5, 2, 2, 1], "the bar's total, then one update per chunk"
    counted.clear()
    pk.isolated_map(probe, EXAMPLES, chunk_size=2)  # few examples: no bar by default
    assert counted == []


def _tiny_qwen3(tok):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    return Qwen3ForCausalLM(config).eval()


def test_ghost_factors_cover_per_head_norms(tiny_tokenizer, monkeypatch):
    """Qwen3's q_norm/k_norm see (rows, T, heads, d) inputs: the ghost path takes them."""
    model = _tiny_qwen3(tiny_tokenizer)
    probe = pk.Probe(model, tiny_tokenizer, lr=0.01, watch=WATCH)
    materialised = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=0)

    def refuse(*args, **kwargs):
        raise AssertionError("per-example gradients were materialised")

    from probekit.core import isolated

    monkeypatch.setattr(isolated, "_first_order_materialised", refuse)
    ghosted = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=0)
    for a, b in zip(ghosted.rows, materialised.rows, strict=True):
        assert a.update_size == pytest.approx(b.update_size, rel=1e-4)
        assert a.loss_drop == pytest.approx(b.loss_drop, rel=1e-4)
    _matrix_close(ghosted.dlogp, materialised.dlogp, atol=1e-6)


def test_factor_shape_errors_decline_through_unsupported(tiny_gpt2, monkeypatch):
    """A shape the factor rules do not expect is declined (typed), never raised raw."""
    from probekit.core import ghost, isolated
    from probekit.core.per_example import stack

    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.01, watch=WATCH)
    expected = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=0)

    def misfit(module, x, d):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (1x4 and 16x8)")

    monkeypatch.setattr(ghost, "_rules", misfit)
    encoded = [probe._encode(e, require_target=True) for e in EXAMPLES]
    with probe.functional() as setup:
        ex = stack(encoded, 0, torch.device("cpu"))
        with pytest.raises(isolated.Unsupported, match="do not fit"):
            ghost.factors(model, setup.entries, ex.ids, isolated._mean_nll(ex.targets), verify=True)
    fallback = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=0)
    assert fallback.method == "first_order"
    _matrix_close(fallback.dlogp, expected.dlogp, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_first_order_without_vmap_stays_first_order(tiny_gpt2, optimizer, monkeypatch):
    """When vmap cannot run the model, the same predictions are computed one at a time."""
    model, tok = tiny_gpt2
    lr = 0.01 if optimizer == "sgd" else 1e-3
    probe = pk.Probe(model, tok, optimizer=optimizer, lr=lr, watch=WATCH)
    expected = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=2)

    real_grads = Functional.grads

    def vmap_refuses(self, *args, **kwargs):
        if not self.loop:
            raise RuntimeError("vmap: It looks like you're calling .item() on a Tensor")
        return real_grads(self, *args, **kwargs)

    monkeypatch.setattr(Functional, "grads", vmap_refuses)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        again = pk.isolated_map(probe, EXAMPLES, method="first_order", sample=2)
    caught = [str(w.message) for w in records]
    assert again.method == "first_order"
    if optimizer == "adam":  # the plain-SGD prediction needs no vmap; its check falls back quietly
        assert any("one example at a time" in m and "first-order" in m for m in caught)
    for a, b in zip(again.rows, expected.rows, strict=True):
        assert a.update_size == pytest.approx(b.update_size, rel=1e-4)
        assert a.loss_drop == pytest.approx(b.loss_drop, rel=1e-4, abs=1e-9)
    _matrix_close(again.dlogp, expected.dlogp, atol=1e-6)
    assert again.residual.relative == pytest.approx(expected.residual.relative, rel=1e-3)


def test_residual_explains_why_it_is_nan(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.01, watch=["the cow says", "bob lives in"])
    strings = pk.isolated_map(probe, EXAMPLES[:2], method="first_order", sample=2)
    assert math.isnan(strings.residual.relative)
    assert "no watch item has a target" in strings.residual.note
    assert math.isfinite(strings.residual.loss_drop_relative)
    unchecked = pk.isolated_map(probe, EXAMPLES[:2], method="first_order", sample=0)
    assert math.isnan(unchecked.residual.relative) and "sample=0" in unchecked.residual.note
    probe.watch = WATCH
    checked = pk.isolated_map(probe, EXAMPLES[:2], method="first_order", sample=2)
    assert math.isfinite(checked.residual.relative) and checked.residual.note == ""
