"""LoraProbe: only adapters are stepped; the base model is never merged into nor changed."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import probekit as pk
from tests import oracle, tiny

peft = pytest.importorskip("peft")

EXAMPLE = pk.Example("alice lives in", " paris")
WATCH = [pk.Example("the cat says", " meow"), "bob lives in"]


def _base_bits(model) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    """The base weights (the same objects stay inside peft's wrappers) and their values."""
    return [(p, p.detach().clone()) for p in model.parameters() if not p.is_meta]


def _same_bits(before: list[tuple[torch.nn.Parameter, torch.Tensor]], model) -> bool:
    live = {id(p) for p in model.parameters()}
    return all(id(p) in live and torch.equal(p.detach(), v) for p, v in before)


def _no_merge(probe: pk.LoraProbe) -> bool:
    return not any(getattr(m, "merged", False) for m in probe.model.modules())


@pytest.mark.parametrize("make", [tiny.make_gpt2, tiny.make_llama])
def test_an_isolated_step_moves_only_adapters_and_leaves_everything_bit_identical(
    tiny_tokenizer, make
):
    model = make(tiny_tokenizer)
    base = _base_bits(model)
    with pk.LoraProbe(model, tiny_tokenizer, r=4, lr=0.1, watch=WATCH) as probe:
        assert probe.entries and all("lora_" in e.name for e in probe.entries)
        assert probe.base_model is model
        start = probe.fingerprint()  # base and adapters, flags, hooks, optimizer, RNG
        r = probe.step(EXAMPLE)
        assert r.ok and r.delta_l2 > 0 and r.loss_after < r.loss_before
        assert probe.fingerprint().differences(start) == []
        assert _same_bits(base, model) and _no_merge(probe)
        assert len(r.watch) == 2 and all(w.kl > 0 for w in r.watch)
        frame = r.to_frame()
        tensors = set(frame.query("scope == 'tensor'")["label"])
        assert tensors == {e.name for e in probe.entries}
        assert set(frame.query("scope == 'layer'")["label"]) == {"block.0", "block.1"}
        assert {"cos_drift", "kl"} <= set(frame["metric"])


def test_committed_steps_change_only_adapters_and_undo_restores_them(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    base = _base_bits(model)
    with pk.LoraProbe(model, tiny_tokenizer, r=4, optimizer="adam", lr=0.01) as probe:
        start, adapters = probe.fingerprint(), probe.adapters()
        first = probe.step(EXAMPLE, commit=True)
        second = probe.step(EXAMPLE, commit=True)
        assert first.committed and second.committed and second.loss_before < first.loss_before
        assert _same_bits(base, model) and _no_merge(probe)
        moved = probe.adapters()
        assert any(not torch.equal(moved[n], adapters[n]) for n in adapters)
        probe.undo()
        probe.undo()
        assert probe.fingerprint().differences(start) == []
        probe.step(EXAMPLE, commit=True)
        probe.reset()
        assert probe.fingerprint().differences(start) == []


def test_the_numbers_match_a_hand_written_sgd_step_on_the_adapters(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"],
                             fan_in_fan_out=True, init_lora_weights=False)  # fmt: skip
    with pk.LoraProbe(model, tiny_tokenizer, config, lr=0.05, watch=[WATCH[0]]) as probe:
        before = oracle.trainable_state(probe.model)
        stepped = oracle.sgd_stepped(probe.model, tiny_tokenizer, "alice lives in", " paris", 0.05)
        r = probe.step(EXAMPLE)
        loss_before, _ = oracle.example_loss(
            probe.model, tiny_tokenizer, "alice lives in", " paris"
        )
        loss_after, _ = oracle.example_loss(stepped, tiny_tokenizer, "alice lives in", " paris")
        assert math.isclose(r.loss_before, loss_before, rel_tol=1e-5)
        assert math.isclose(r.loss_after, loss_after, rel_tol=1e-5)
        naive = oracle.state_delta(before, oracle.trainable_state(stepped))
        for t in r.tensors:
            assert math.isclose(math.sqrt(t.sum_sq), naive[t.name]["l2"], rel_tol=1e-4,
                                abs_tol=1e-9), t.name  # fmt: skip
        watch = oracle.watch_metrics(probe.model, stepped, tiny_tokenizer, "the cat says", " meow")
        assert math.isclose(r.watch[0].kl, watch["kl"], rel_tol=1e-3, abs_tol=1e-9)


def test_closing_removes_the_adapters_and_restores_the_model_exactly(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    model.transformer.wte.requires_grad_(False)  # the user's own choice, kept
    start, attributes = pk.fingerprint(model), set(vars(model))
    probe = pk.LoraProbe(model, tiny_tokenizer, r=4, lr=0.1)
    assert any("lora_" in n for n, _ in model.named_modules())  # attached for its lifetime
    probe.step(EXAMPLE, commit=True)
    kept = probe.adapters()
    probe.close()
    probe.close()  # idempotent
    assert pk.fingerprint(model).differences(start) == []  # flags, hooks and RNG too
    assert set(vars(model)) == attributes and not any(
        "lora_" in n for n, _ in model.named_modules()
    )
    assert kept and all("lora_" in n for n in kept)
    refused = {
        "step": lambda: probe.step(EXAMPLE),
        "undo": probe.undo,
        "reset": probe.reset,
        "evaluate": lambda: probe.evaluate([EXAMPLE]),
        "attribute": lambda: probe.attribute("alice lives in", " paris", method="grad_x_input"),
        "isolated_map": lambda: pk.isolated_map(probe, [EXAMPLE], progress=False),
        "adapters": probe.adapters,
    }
    for name, call in refused.items():
        with pytest.raises(pk.StateError, match="closed"):
            call()
            pytest.fail(f"{name} ran on a closed LoraProbe")
    assert pk.fingerprint(model).differences(start) == []


def test_an_error_inside_the_block_or_while_building_still_removes_the_adapters(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    start = pk.fingerprint(model)
    with pytest.raises(RuntimeError, match="boom"), pk.LoraProbe(model, tiny_tokenizer, r=4):
        raise RuntimeError("boom")
    assert pk.fingerprint(model).differences(start) == []
    with pytest.raises(pk.InputError, match="lr"):
        pk.LoraProbe(model, tiny_tokenizer, r=4, lr="fast")
    assert pk.fingerprint(model).differences(start) == []


def test_bad_settings_and_a_model_that_already_has_adapters_are_refused(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    with pytest.raises(pk.InputError, match="rank"):
        pk.LoraProbe(model, tiny_tokenizer, r=0)
    start, attributes = pk.fingerprint(model), set(vars(model))
    with pytest.raises(pk.InputError, match="target_modules"):
        pk.LoraProbe(model, tiny_tokenizer, target_modules=["no_such_layer"])
    assert pk.fingerprint(model).differences(start) == [] and set(vars(model)) == attributes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = peft.get_peft_model(tiny.make_gpt2(tiny_tokenizer), peft.LoraConfig(
            r=2, target_modules=["c_attn"], fan_in_fan_out=True))  # fmt: skip
    with pytest.raises(pk.InputError, match=r"pk.Probe\(model, tok\)"):
        pk.LoraProbe(wrapped, tiny_tokenizer)


def test_a_lora_probe_needs_a_fraction_of_the_memory_of_a_full_one(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    full = pk.estimate_memory(model, optimizer="adam")
    with pk.LoraProbe(model, tiny_tokenizer, r=2, optimizer="adam") as probe:
        lora = pk.estimate_memory(probe)
        assert lora.stepped < full.stepped / 10
        state = lora.gradients + lora.saved_copy + lora.optimizer_state + lora.workspace
        assert state < (full.gradients + full.saved_copy + full.optimizer_state) / 10


def test_the_full_parameter_refusal_points_to_the_lora_probe(tiny_gpt2):
    model, tok = tiny_gpt2
    model.config.quantization_config = {"quant_method": "bitsandbytes", "load_in_8bit": True}
    with pytest.raises(pk.UnsupportedModelError, match=r"pk\.LoraProbe\(model, tok, r=8\)"):
        pk.Probe(model, tok)


# -- a model dispatched by accelerate (device_map), one block offloaded to disk ----------------
def test_a_lora_probe_on_a_disk_offloaded_model_adapts_the_resident_layers(
    tiny_tokenizer, tmp_path
):
    pytest.importorskip("accelerate")
    _, offloaded = tiny.offloaded_gpt2(tiny_tokenizer, tmp_path)
    start, base = pk.fingerprint(offloaded), _base_bits(offloaded)
    with pytest.warns(UserWarning, match=r"no adapters on offloaded modules \(transformer\.h\.1"):
        probe = pk.LoraProbe(offloaded, tiny_tokenizer, r=4, lr=0.1, watch=WATCH)
    with probe:
        assert {e.layer for e in probe.entries} == {"block.0"}
        assert all(not e.param.is_meta for e in probe.entries)
        inner = probe.fingerprint()
        r = probe.step(EXAMPLE)
        assert r.ok and r.delta_l2 > 0 and len(r.watch) == 2
        assert probe.fingerprint().differences(inner) == []
        probe.step(EXAMPLE, commit=True)
        assert _same_bits(base, offloaded) and _no_merge(probe)
        probe.undo()
        assert probe.fingerprint().differences(inner) == []
        attribution = probe.attribute("alice lives in", " paris", method="grad_x_input")
        assert all(math.isfinite(v) for v in attribution.sequence)
    assert pk.fingerprint(offloaded).differences(start) == []


def test_without_peft_the_lora_probe_says_how_to_get_it(tiny_gpt2, monkeypatch):
    import sys

    model, tok = tiny_gpt2
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft → ImportError
    with pytest.raises(pk.UnsupportedModelError, match="pip install peft"):
        pk.LoraProbe(model, tok)


def test_isolated_maps_of_adapters_agree_with_one_probe_step_per_example(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    examples = [EXAMPLE, pk.Example("bob lives in", " rome"), pk.Example("the cat says", " meow")]
    with pk.LoraProbe(model, tiny_tokenizer, r=4, lr=0.1, watch=WATCH) as probe:
        start = probe.fingerprint()
        loop = pk.isolated_map(probe, examples, method="loop", progress=False)
        exact = pk.isolated_map(probe, examples, method="exact", progress=False)
        assert probe.fingerprint().differences(start) == []
        with probe.checkpoint():
            trajectory = probe.run(examples)
            assert len(trajectory.steps) == 3 and len(probe.committed) == 3
        assert probe.fingerprint().differences(start) == []
    for a, b in zip(exact.rows, loop.rows, strict=True):
        assert math.isclose(a.update_size, b.update_size, rel_tol=1e-4)
        assert math.isclose(a.loss_drop, b.loss_drop, rel_tol=1e-3, abs_tol=1e-6)
        assert math.isclose(a.disturbance, b.disturbance, rel_tol=1e-3, abs_tol=1e-9)


def test_the_adapted_model_projects_only_the_positions_that_are_read(tiny_tokenizer):
    from probekit.core import batch

    model = tiny.make_gpt2(tiny_tokenizer)
    assert batch.accepts_logits_to_keep(model)
    with pk.LoraProbe(model, tiny_tokenizer, r=4) as probe:
        assert batch.accepts_logits_to_keep(probe.model)  # peft passes logits_to_keep through


def test_a_lora_probe_dropped_without_closing_still_removes_its_adapters(tiny_tokenizer):
    import gc

    model = tiny.make_gpt2(tiny_tokenizer)
    start = pk.fingerprint(model)
    probe = pk.LoraProbe(model, tiny_tokenizer, r=4, lr=0.1)
    probe.step(EXAMPLE, commit=True)
    del probe
    gc.collect()
    assert not any("lora_" in n for n, _ in model.named_modules())
    assert pk.fingerprint(model).differences(start) == []


def test_closing_is_refused_while_another_thread_holds_the_probe(tiny_tokenizer):
    import threading

    model = tiny.make_gpt2(tiny_tokenizer)
    probe = pk.LoraProbe(model, tiny_tokenizer, r=4)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with probe.exclusive():
            held.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    held.wait(10)
    try:
        with pytest.raises(pk.StateError, match="already running"):
            probe.close()
    finally:
        release.set()
        worker.join()
    probe.close()
    assert not any("lora_" in n for n, _ in model.named_modules())


def test_device_map_auto_with_the_blocks_on_disk(tiny_tokenizer, tmp_path):
    pytest.importorskip("accelerate")
    from transformers import AutoModelForCausalLM

    original = tiny.make_gpt2(tiny_tokenizer).eval()
    original.save_pretrained(tmp_path / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(
            tmp_path / "m", device_map="auto", max_memory={"cpu": 80_000},
            offload_folder=tmp_path / "offload",
        )  # fmt: skip
    assert model.hf_device_map["transformer.h"] == "disk"
    start = pk.fingerprint(model)
    got = pk.token_grad(model, tiny_tokenizer, "alice lives in", " paris")
    want = pk.token_grad(original, tiny_tokenizer, "alice lives in", " paris")
    assert got.sequence == pytest.approx(want.sequence, rel=1e-5)
    with (
        pytest.raises(pk.InputError, match="offloaded by the device map"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        pk.LoraProbe(model, tiny_tokenizer, r=4)  # peft's layers are all in the blocks
    assert pk.fingerprint(model).differences(start) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = pk.LoraProbe(model, tiny_tokenizer, r=4, lr=0.1, target_modules=["lm_head"])
    with probe:
        inner = probe.fingerprint()
        r = probe.step(EXAMPLE)
        assert r.ok and r.delta_l2 > 0 and {t.layer for t in r.tensors} == {"lm_head"}
        assert probe.fingerprint().differences(inner) == []
    assert pk.fingerprint(model).differences(start) == []


def test_a_saved_session_records_the_adapters_configuration(tiny_tokenizer, tmp_path):
    import json

    from probekit.results import validation

    model = tiny.make_gpt2(tiny_tokenizer)
    size = sum(p.numel() for p in model.parameters())
    config = peft.LoraConfig(r=4, lora_alpha=12, target_modules=["c_fc", "c_attn"],
                             lora_dropout=0.05, fan_in_fan_out=True)  # fmt: skip
    with pk.LoraProbe(model, tiny_tokenizer, config, lr=0.05, watch=WATCH, seed=7) as probe:
        probe.step(EXAMPLE)
        path = probe.save(tmp_path / "lora.probekit.json")
        recorded = probe.lora_settings()
    assert probe.lora_settings() == recorded  # still readable once closed
    saved = pk.load_session(path)  # checked against the schema as it is read
    assert saved.lora == recorded
    assert {k: saved.lora[k] for k in ("r", "alpha", "target_modules", "dropout", "seed")} == {
        "r": 4, "alpha": 12.0, "target_modules": ["c_attn", "c_fc"], "dropout": 0.05, "seed": 7
    }  # fmt: skip
    assert saved.lora["fan_in_fan_out"] is True and saved.lora["exclude_modules"] is None
    assert saved.model["name"] == "GPT2LMHeadModel"  # the model passed in, not peft's wrapper
    assert saved.model["n_params"] == size  # its own numbers, without the adapters'
    document = json.loads(path.read_text(encoding="utf-8"))
    assert validation.errors(document, "session") == []
    assert json.loads(json.dumps(saved.lora)) == saved.lora  # plain JSON values only

    plain = pk.Probe(model, tiny_tokenizer, lr=0.05)
    plain.step(EXAMPLE)
    assert pk.load_session(plain.save(tmp_path / "plain.probekit.json")).lora is None

    for change, message in [
        ({"r": 0}, "minimum"),
        ({"r": "4"}, "integer"),
        ({"dropout": 1.5}, "maximum"),
        ({"target_modules": [1]}, "target_modules"),
        ({"seed": 1.5}, "seed"),
    ]:
        broken = json.loads(json.dumps(document))
        broken["meta"]["settings"]["lora"].update(change)
        assert validation.errors(broken, "session"), change
        (tmp_path / "broken.json").write_text(json.dumps(broken), encoding="utf-8")
        with pytest.raises(pk.ProbekitError, match=message):
            pk.load_session(tmp_path / "broken.json")
    del document["meta"]["settings"]["lora"]["alpha"]
    assert validation.errors(document, "session")


def test_a_seed_gives_the_same_adapters_in_any_rng_state_and_puts_the_rng_back(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    found = []
    for seed, draws in [(3, 0), (3, 5), (4, 0)]:
        torch.manual_seed(100)
        torch.rand(draws)
        state = torch.get_rng_state()
        with pk.LoraProbe(model, tiny_tokenizer, r=4, seed=seed) as probe:
            assert torch.equal(torch.get_rng_state(), state)
            found.append(probe.adapters())
            assert probe.lora_settings()["seed"] == seed
    a = [n for n in found[0] if "lora_A" in n]
    assert a and all(torch.equal(found[0][n], found[1][n]) for n in found[0])
    assert not all(torch.equal(found[0][n], found[2][n]) for n in a)
    with pytest.raises(pk.InputError, match="seed must be an integer"):
        pk.LoraProbe(model, tiny_tokenizer, r=4, seed="1")  # type: ignore[arg-type]
    assert not any("lora_" in n for n, _ in model.named_parameters())


def test_with_options_hands_the_same_adapters_to_a_probe_with_other_options(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    base, original = _base_bits(model), pk.fingerprint(model)
    old = pk.LoraProbe(model, tiny_tokenizer, r=4, lr=0.1, seed=1, watch=WATCH)
    adapters = old.adapters()
    with pytest.raises(pk.InputError):
        old.with_options(lr="fast")  # refused: nothing changes, the old probe stays open
    assert old.step(EXAMPLE).ok
    new = old.with_options(optimizer="adam", lr=0.01, watch=WATCH)
    assert new.model is old.model and new.base_model is model
    assert new.lora_settings() == old.lora_settings()
    assert new.adapters().keys() == adapters.keys()
    assert all(torch.equal(new.adapters()[n], v) for n, v in adapters.items()), "same weights"
    with pytest.raises(pk.StateError, match="handed"):
        old.step(EXAMPLE)
    old.close()  # a no-op: the adapters belong to the new probe now
    r = new.step(EXAMPLE, commit=True)
    assert r.ok and r.optimizer == "adam" and r.delta_l2 > 0
    with pytest.raises(pk.StateError, match="undo"):
        new.with_options(lr=0.1)
    new.reset()
    new.close()
    assert _same_bits(base, model) and pk.fingerprint(model).differences(original) == []
