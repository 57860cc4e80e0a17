"""The reliability promise on the input side: bad input fails clearly before any work,
hostile text is shown literally, and nothing from data or a model folder is executed.

Test names carry the numbers of the reliability cases they cover.
"""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import torch

import probekit as pk
from probekit.core import loading, placement
from probekit.core.inputs import as_example, encode
from probekit.results import session_file
from tests import tiny

EXAMPLE = pk.Example("the dog says", " woof")
WATCH = ["the cat says", pk.Example("alice lives in", " paris")]
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</script><script>alert(2)</script>",
    "😀 مرحبا עולם \u200b\u200d\u202e cat \x00 says",
]


def _probe(model, tok, **kw):
    kw.setdefault("lr", 0.05)
    kw.setdefault("watch", WATCH)
    return pk.Probe(model, tok, **kw)


def _enc(tok, prompt, target=None, max_length=32, **kw):
    return encode(tok, pk.Example(prompt, target), max_length=max_length, vocab_size=len(tok), **kw)


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- cases 1 and 2: empty prompt or target, and a bad example anywhere in a sequence ------------
@pytest.mark.parametrize("prompt", ["", "   ", "\n"])
def test_case1_empty_prompt(tiny_tokenizer, prompt):
    with pytest.raises(pk.InputError, match="prompt has no tokens"):
        _enc(tiny_tokenizer, prompt, " meow")


@pytest.mark.parametrize("target", ["", " ", "\t\n"])
def test_case2_empty_target(tiny_tokenizer, target):
    with pytest.raises(pk.InputError, match="target has no tokens"):
        _enc(tiny_tokenizer, "the cat says", target)
    with pytest.raises(pk.InputError, match="no target"):
        _enc(tiny_tokenizer, "the cat says", require_target=True)


@pytest.mark.parametrize(
    ("example", "message"),
    [
        (pk.Example("", " woof"), "prompt has no tokens"),
        (pk.Example("the dog says", "  "), "target has no tokens"),
        (pk.Example("the dog says"), "no target"),
    ],
)
def test_case1_2_bad_examples_fail_before_any_work(tiny_gpt2, example, message):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    before = probe.fingerprint()
    with pytest.raises(pk.InputError, match=message):
        probe.step(example)
    assert probe.fingerprint().differences(before) == []
    assert probe.history == []


SEQUENCE_RUNNERS = {
    "run": lambda probe, items: probe.run(items),
    "race": lambda probe, items: pk.race(probe, items, orders=["given", "hard_to_easy"]),
    "dataset_map": lambda probe, items: pk.dataset_map(probe, items, passes=1),
    "isolated_map_loop": lambda probe, items: pk.isolated_map(probe, items, method="loop"),
    "isolated_map_exact": lambda probe, items: pk.isolated_map(probe, items),
}


@pytest.mark.parametrize("runner", SEQUENCE_RUNNERS)
@pytest.mark.parametrize("bad", [pk.Example("the cow says", " "), pk.Example("   ", " moo")])
def test_case1_2_a_bad_third_example_fails_before_the_first_step(tiny_gpt2, runner, bad):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    steps: list[object] = []
    probe.subscribe(steps.append)
    start = probe.fingerprint()
    items = [EXAMPLE, pk.Example("the cat says", " meow"), bad]
    with pytest.raises(pk.InputError, match="has no tokens"):
        SEQUENCE_RUNNERS[runner](probe, items)
    if runner != "isolated_map_exact":
        with pytest.raises(pk.InputError, match=r"^example 2: "):
            SEQUENCE_RUNNERS[runner](probe, items)
    assert steps == [], "no step may run before every example was checked"
    assert probe.history == [] and probe.committed == ()
    assert probe.fingerprint().differences(start) == []


# -- case 3: longer than the context -------------------------------------------------------------
def test_case3_prompt_longer_than_the_context_is_truncated_from_the_left(tiny_gpt2):
    model, tok = tiny_gpt2
    long_prompt = " ".join(["cat"] * 60) + " says"
    with pytest.warns(UserWarning, match="truncated"):
        r = _probe(model, tok).step(pk.Example(long_prompt, " meow"))
    assert r.ok and any("truncated" in n for n in r.notes)
    assert r.target_tokens == ("meow",)
    with pytest.raises(pk.InputError, match="context holds"):
        _probe(model, tok, truncation="error").step(pk.Example(long_prompt, " meow"))


def test_case3_truncation_keeps_the_target_and_the_end_of_the_prompt(tiny_tokenizer):
    prompt = " ".join(["cat"] * 40) + " says"
    with pytest.warns(UserWarning, match="truncated from the left"):
        e = _enc(tiny_tokenizer, prompt, " meow", max_length=16)
    assert len(e.input_ids) == 16 and e.truncated == 26
    assert e.target_tokens == ("meow",)
    assert tiny_tokenizer.decode(list(e.prompt_ids)).endswith("cat says")
    with pytest.raises(pk.InputError, match="context holds 8"):
        _enc(tiny_tokenizer, " ".join(["cat"] * 10), " meow", max_length=8, truncation="error")
    with pytest.raises(pk.InputError, match="context holds 4"):
        _enc(tiny_tokenizer, "the", " cat cat cat cat cat", max_length=4)


# -- case 4: tokenizer / model vocabulary mismatch -----------------------------------------------
def test_case4_vocab_mismatch_at_load_time_names_both_sizes(tmp_path):
    small_tok = tiny.make_tokenizer(tiny.WORDS[:10])
    big_tok = tiny.make_tokenizer()
    model = tiny.make_gpt2(small_tok)
    model.save_pretrained(tmp_path / "m")
    big_tok.save_pretrained(tmp_path / "m")
    with pytest.raises(pk.VocabMismatchError) as info:
        pk.load(tmp_path / "m", device="cpu")
    assert str(len(big_tok)) in str(info.value) and str(len(small_tok)) in str(info.value)


def test_case4_probe_attribute_and_token_grad_check_the_vocabulary():
    small_tok = tiny.make_tokenizer(tiny.WORDS[:10])
    model = tiny.make_gpt2(small_tok)
    big_tok = tiny.make_tokenizer()  # same first ids: "the cat says" would embed fine
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(pk.VocabMismatchError, match=f"{len(big_tok)} tokens"):
        pk.Probe(model, big_tok)
    with pytest.raises(pk.VocabMismatchError, match=f"embeds only {len(small_tok)}"):
        pk.attribute(model, big_tok, "the cat", " says", method="grad_x_input")
    with pytest.raises(pk.VocabMismatchError):
        pk.token_grad(model, big_tok, "the cat", " says")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(pk.InputError, match="outside the model's embedding table"):
        encode(small_tok, pk.Example("the cat", " says"), max_length=32, vocab_size=5)


# -- case 5: target boundary, and prompts that do not survive tokenisation ----------------------
def test_case5_target_boundary_is_reported(tiny_gpt2, tiny_tokenizer):
    model, tok = tiny_gpt2
    with pytest.warns(UserWarning, match="decodes to"):
        r = _probe(model, tok).step(pk.Example("the dog says", " purr"))
    assert r.target_tokens == ("[UNK]",)
    e = _enc(tiny_tokenizer, "the cat says", " meow")
    assert tiny_tokenizer.decode(list(e.prompt_ids)) == "the cat says"
    assert e.target_tokens == ("meow",) and e.input_ids == e.prompt_ids + e.target_ids
    assert e.target_positions == (len(e.prompt_ids) - 1,)


def test_case5_a_prompt_whose_words_are_dropped_is_reported(tiny_gpt2):
    model, tok = tiny_gpt2
    with pytest.warns(UserWarning, match="read back as 'the cat'"):
        r = _probe(model, tok).step(pk.Example("the cat purrs loudly", " meow"))
    assert any("prompt 'the cat purrs loudly'" in n for n in r.notes)
    with pytest.warns(UserWarning, match="dropped or replaced"):
        _probe(model, tok, watch=["the wolf howls"])


def test_case5_normal_tokenizer_normalisation_is_not_reported(demo, tiny_tokenizer):
    from probekit.demo import corpus

    _, tok = demo
    facts = corpus.facts() + [f for fam in corpus.HELD_OUT_FAMILIES for f in corpus.held_out(fam)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fact in facts:
            encode(tok, pk.Example(fact.prompt, fact.target), max_length=64, vocab_size=len(tok))
        # case folding and spacing around punctuation are the tokenizer's own normalisation
        _enc(tiny_tokenizer, "Alice lives in Paris, the dog says", " woof")


# -- case 6: multi-token targets -----------------------------------------------------------------
def test_case6_multi_token_target_loss_is_the_mean_token_nll(tiny_gpt2):
    model, tok = tiny_gpt2
    r = _probe(model, tok).step(pk.Example("alice lives in", " paris ."))
    assert r.target_tokens == ("paris", ".") and len(r.token_nll_before) == 2
    assert _enc(tok, "alice lives in", " paris .").target_positions == (2, 3)
    assert r.loss_before == pytest.approx(sum(r.token_nll_before) / 2, rel=1e-6)
    model.eval()  # the oracle: one forward, log-softmax at the positions that predict the target
    prompt = tok("alice lives in")["input_ids"]
    target = tok(" paris .", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([prompt + target])).logits[0].double(), -1)
    nll = [-logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(target)]
    assert r.token_nll_before == pytest.approx(nll, rel=1e-5)


# -- case 7: special-token strings are plain text ------------------------------------------------
def test_case7_special_token_strings_in_user_text_are_plain_text(tiny_gpt2):
    model, tok = tiny_gpt2
    with _quiet():  # "[EOS]" is not a word of this vocabulary: it reads back as unknown tokens
        e = _enc(tok, "the [EOS] cat [PAD] says", " [BOS]")
    specials = {tok.eos_token_id, tok.pad_token_id, tok.bos_token_id}
    assert specials.isdisjoint(e.input_ids)
    with _quiet():
        r = _probe(model, tok, watch=["the [EOS] cat"]).step(pk.Example("the [PAD] dog", " woof"))
    assert r.ok


# -- case 8: watch prompts of different lengths --------------------------------------------------
def test_case8_batched_watch_equals_one_by_one(tiny_gpt2):
    model, tok = tiny_gpt2
    items = ["the cat", "alice lives in paris . bob lives in rome . the dog says",
             pk.Example("bob lives in", " rome .")]  # fmt: skip
    together = _probe(model, tok, watch=items).step(EXAMPLE).watch
    for i, item in enumerate(items):
        alone_watch = _probe(model, tok, watch=[item]).step(EXAMPLE).watch
        (alone,) = [w for w in alone_watch if not w.is_example]
        row = [w for w in together if not w.is_example][i]
        assert (row.label, row.top1_flip) == (alone.label, alone.top1_flip)
        for field in ("kl", "logit_l2", "dlogp_target"):
            a, b = getattr(row, field), getattr(alone, field)
            assert a == pytest.approx(b, rel=1e-4, abs=1e-6, nan_ok=True), (item, field)
        assert [t for t, _ in row.topk_after] == [t for t, _ in alone.topk_after]


# -- case 9: emoji, RTL, zero-width, NUL; lone surrogates ---------------------------------------
def test_case9_unusual_text_never_crashes_and_round_trips_byte_for_byte(tiny_gpt2, tmp_path):
    model, tok = tiny_gpt2
    with _quiet():
        probe = _probe(model, tok, watch=HOSTILE)
        results = [probe.step(pk.Example(text, " " + text)) for text in HOSTILE]
        pk.attribute(model, tok, HOSTILE[-1], " cat", method="grad_x_input")
    assert all(r.ok for r in results)
    first = session_file.save(tmp_path / "a.json", results, {"note": HOSTILE[-1]})
    loaded, meta = session_file.load(first)
    assert [r.prompt for r in loaded] == HOSTILE and meta["note"] == HOSTILE[-1]
    assert [w.label for w in loaded[0].watch] == [w.label for w in results[0].watch]
    second = session_file.save(tmp_path / "b.json", loaded, meta)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("where", ["prompt", "target", "watch", "attribute"])
def test_case9_a_lone_surrogate_is_a_clear_input_error(tiny_gpt2, where):
    model, tok = tiny_gpt2
    bad = "the cat \ud83d says"
    with pytest.raises(pk.InputError, match="surrogate"):
        if where == "prompt":
            _probe(model, tok).step(pk.Example(bad, " meow"))
        elif where == "target":
            _probe(model, tok).step(("the cat says", " me\udc00ow"))
        elif where == "watch":
            _probe(model, tok, watch=[bad])
        else:
            pk.token_grad(model, tok, bad, " meow")


# -- case 10: HTML and script in labels, in everything exported as HTML -------------------------
class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def _hostile_results(model, tok):
    with _quiet():
        probe = _probe(model, tok, watch=HOSTILE[:3])
        isolated = [
            ("agrees", probe.step(pk.Example(HOSTILE[0], " meow"))),
            ("contradicts", probe.step(pk.Example(HOSTILE[2], " " + HOSTILE[1]))),
        ]
        committed = [probe.step(pk.Example(HOSTILE[1], " woof"), commit=True)]
    return isolated, committed


def test_case10_chart_html_export_shows_hostile_labels_literally(tiny_gpt2):
    from probekit import charts
    from probekit.charts.export import to_html

    model, tok = tiny_gpt2
    _, committed = _hostile_results(model, tok)
    frame = committed[0].to_frame()
    built = {
        "watch_shift": charts.watch_shift(frame),
        "topk": charts.topk_bars(committed[0].topk_frame(), committed[0].watch[1].label),
        "drift": charts.hidden_drift(frame),
        "map": charts.update_vs_disturbance(pd.DataFrame(
            [{"label": label, "update_size": 1.0, "disturbance": 0.1, "loss_before": 2.0}
             for label in HOSTILE]
        )),
    }  # fmt: skip
    benign = _parse(charts.watch_shift(_probe(model, tok).step(EXAMPLE).to_frame()).to_html())
    for name, chart in {**built, "layered (helper)": built["watch_shift"] + built["drift"]}.items():
        page = to_html(chart) if "helper" in name else chart.to_html()
        parsed = _parse(page)
        assert [t for t, _ in parsed.tags] == [t for t, _ in benign.tags], name
        assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs), name
        spec = json.loads(re.search(r"var spec = (\{.*?\});\n", page, re.S).group(1))
        assert spec == chart.to_dict(), f"{name}: the page does not carry the chart's spec"
        values = json.dumps(spec, ensure_ascii=False)
        assert any(text in values for text in HOSTILE[:3]), f"{name}: labels not literal"
    # the chart's own data keeps every label exactly (no escaping of data, only of the page)
    data = built["watch_shift"].to_dict()["datasets"]
    labels = {row["label"] for rows in data.values() for row in rows}
    assert set(HOSTILE[:3]) <= labels


def test_case10_demo_report_html_shows_hostile_labels_literally(tiny_gpt2, tmp_path):
    from probekit import showcase

    model, tok = tiny_gpt2
    isolated, committed = _hostile_results(model, tok)
    summary = showcase._summary(isolated)
    index = showcase._write_report(tmp_path, summary, isolated, committed, {"facts": 1.0}, True)
    parsed = _parse(index.read_text(encoding="utf-8"))
    tags = {t for t, _ in parsed.tags}
    assert not tags & {"script", "img", "iframe", "object"}, tags
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    assert parsed.scripts == []
    text = "".join(parsed.text)
    assert HOSTILE[2] + " meow" in text or HOSTILE[2] in text


# -- case 23: sharded, offloaded, quantized and meta-device models -------------------------------
def _refused(model, tok, match, **kw):
    before = [p.detach().clone() for p in model.parameters() if p.device.type != "meta"]
    with pytest.raises(pk.UnsupportedModelError, match=match) as info:
        pk.Probe(model, tok, **kw)
    after = [p for p in model.parameters() if p.device.type != "meta"]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    return str(info.value)


def test_case23_meta_device_model_is_refused(tiny_tokenizer):
    with torch.device("meta"):
        model = tiny.make_gpt2(tiny_tokenizer)
    message = _refused(model, tiny_tokenizer, "meta device")
    assert "transformer.wte.weight" in message
    _refused(model, tiny_tokenizer, "meta device", layers=[-1])


@pytest.mark.parametrize(
    ("device_map", "match"),
    [
        ({"transformer.wte": 0, "transformer.h": 1, "transformer.ln_f": 1, "lm_head": 0},
         r"sharded over several devices \(cuda:0, cuda:1\)"),
        ({"transformer": 0, "lm_head": "cpu"}, r"offloaded \(lm_head → cpu\)"),
        ({"": "disk"}, "offloaded"),
    ],
)  # fmt: skip
def test_case23_sharded_and_offloaded_models_refuse_a_full_parameter_probe(
    tiny_gpt2, device_map, match
):
    model, tok = tiny_gpt2
    model.hf_device_map = device_map
    message = _refused(model, tok, match)
    assert "layers=" in message and "pattern=" in message and "LoRA" in message
    probe = _probe(model, tok, pattern=r"ln_f")  # a subset resident on one device still works
    assert probe.step(EXAMPLE).ok


def test_case23_a_really_disk_offloaded_model_is_detected(tiny_gpt2, tmp_path):
    pytest.importorskip("accelerate")
    from transformers import AutoModelForCausalLM

    model, tok = tiny_gpt2
    model.save_pretrained(tmp_path / "m")
    on_cpu = dict.fromkeys(["transformer.wte", "transformer.wpe", "transformer.h.0",
                            "transformer.ln_f", "lm_head"], "cpu")  # fmt: skip
    with _quiet():
        offloaded = AutoModelForCausalLM.from_pretrained(
            tmp_path / "m", device_map={**on_cpu, "transformer.h.1": "disk"},
            offload_folder=tmp_path / "offload",
        )  # fmt: skip
    assert placement.inspect(offloaded).meta, "accelerate keeps disk-offloaded weights on meta"
    _refused(offloaded, tok, r"offloaded \(transformer\.h\.1 → disk\)")
    _refused(offloaded, tok, "not resident", pattern=r"h\.1\.mlp")
    before = {n: p.detach().clone() for n, p in offloaded.named_parameters() if not p.is_meta}
    assert _probe(offloaded, tok, pattern=r"ln_f").step(EXAMPLE).ok
    after = dict(offloaded.named_parameters())
    assert all(torch.equal(v, after[n]) for n, v in before.items())


def test_case23_quantized_models_refuse_a_full_parameter_probe(tiny_gpt2):
    model, tok = tiny_gpt2
    model.config.quantization_config = {"quant_method": "bitsandbytes", "load_in_8bit": True}
    assert "bitsandbytes" in _refused(model, tok, "quantized")
    del model.config.quantization_config
    mlp = model.transformer.h[0].mlp.c_fc
    mlp.weight = torch.nn.Parameter(mlp.weight.detach().to(torch.int8), requires_grad=False)
    assert "torch.int8" in _refused(model, tok, "quantized")
    with pytest.raises(pk.UnsupportedModelError, match="quantized"):
        placement.check_probe(
            model, [placement.ParamEntry("w", (), "block.0", mlp.weight)], subset=True
        )
    assert placement.inspect(model).quantized is not None


def test_case23_selected_parameters_on_two_devices_are_refused(tiny_gpt2):
    model, tok = tiny_gpt2
    entries = pk.Probe(model, tok).entries[:2]
    moved = [placement.ParamEntry(e.name, e.aliases, e.layer, e.param) for e in entries]
    object.__setattr__(moved[1], "param", torch.nn.Parameter(torch.zeros(1, device="meta")))
    with pytest.raises(pk.UnsupportedModelError, match="not resident"):
        placement.check_probe(model, moved, subset=True)


# -- case 24: PEFT-wrapped models ------------------------------------------------------------------
def _lora(tok, **overrides):
    peft = pytest.importorskip("peft")
    base = tiny.make_gpt2(tok)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True,
                             init_lora_weights=False)  # fmt: skip
    with _quiet():
        return base, peft.get_peft_model(base, config)


def test_case24_lora_probe_steps_adapters_and_never_merges_or_mutates_the_base(tiny_tokenizer):
    base, model = _lora(tiny_tokenizer)
    base_weights = {k: v.clone() for k, v in base.state_dict().items() if "lora_" not in k}
    probe = _probe(model, tiny_tokenizer)
    assert probe.entries and all("lora_" in e.name for e in probe.entries)
    start = probe.fingerprint()
    r = probe.step(EXAMPLE)
    assert r.ok and r.delta_l2 > 0 and probe.fingerprint().differences(start) == []
    committed = probe.step(EXAMPLE, commit=True)
    assert committed.committed and all("lora_" in t.name for t in committed.tensors)
    assert not any(getattr(m, "merged", False) for m in model.modules()), "adapters merged"
    assert all(torch.equal(base_weights[k], v) for k, v in base.state_dict().items()
               if "lora_" not in k), "the base model changed"  # fmt: skip
    probe.undo()
    assert probe.fingerprint().differences(start) == []


def test_case23_24_lora_on_a_quantized_base_is_allowed(tiny_tokenizer):
    _, model = _lora(tiny_tokenizer)
    model.config.quantization_config = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    assert placement.is_adapted(model)
    assert _probe(model, tiny_tokenizer).step(EXAMPLE).ok


# -- case 30: a model id or trust_remote_code from a file is never acted on ----------------------
def _custom_code_folder(path: Path, tok, marker: Path) -> Path:
    tiny.make_gpt2(tok).save_pretrained(path)
    tok.save_pretrained(path)
    config = json.loads((path / "config.json").read_text())
    config["model_type"] = "probekit_custom"
    config["auto_map"] = {"AutoConfig": "modeling_custom.CustomConfig",
                          "AutoModelForCausalLM": "modeling_custom.CustomModel"}  # fmt: skip
    (path / "config.json").write_text(json.dumps(config))
    (path / "modeling_custom.py").write_text(
        f"open({str(marker)!r}, 'w').write('executed')\n"
        "from transformers import GPT2Config as CustomConfig, GPT2LMHeadModel as CustomModel\n"
    )
    return path


def test_case30_a_model_folder_with_code_is_never_run_nor_asked_about(
    tiny_tokenizer, tmp_path, monkeypatch
):
    marker = tmp_path / "EXECUTED"
    folder = _custom_code_folder(tmp_path / "custom", tiny_tokenizer, marker)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\ny\ny\n"))  # would answer a prompt "yes"
    with pytest.raises(pk.ModelLoadError, match="trust_remote_code=True"):
        pk.load(folder, device="cpu")
    assert not marker.exists(), "the folder's Python file was executed"
    assert sys.stdin.read() == "y\ny\ny\n", "transformers asked on stdin"


def test_case30_trust_remote_code_is_explicitly_false_unless_asked(
    tiny_gpt2, tmp_path, monkeypatch
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = tiny_gpt2
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    seen: list[dict] = []

    def spy(real):
        def wrapper(*args, **kwargs):
            seen.append(dict(kwargs))
            return real(*args, **kwargs)

        return wrapper

    for cls in (AutoModelForCausalLM, AutoTokenizer):
        monkeypatch.setattr(cls, "from_pretrained", spy(cls.from_pretrained))
    pk.load(tmp_path / "m", device="cpu")
    assert len(seen) == 2 and all(kw["trust_remote_code"] is False for kw in seen)
    seen.clear()
    pk.load(tmp_path / "m", device="cpu", trust_remote_code=True)
    assert len(seen) == 2 and all(kw["trust_remote_code"] is True for kw in seen)
    with pytest.raises(pk.InputError, match="trust_remote_code"):
        pk.load(tmp_path / "m", device="cpu", trust_remote_code="yes")  # type: ignore[arg-type]


def test_case30_a_session_file_naming_a_model_loads_nothing(tiny_gpt2, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = tiny_gpt2
    r = _probe(model, tok).step(EXAMPLE)
    meta = {"model": "evil/remote-code-model", "trust_remote_code": True, "revision": "main"}
    path = session_file.save(tmp_path / "s.json", [r], meta)

    def forbidden(*args, **kwargs):
        raise AssertionError("loading a session file must not load a model")

    for target in (AutoModelForCausalLM, AutoTokenizer):
        monkeypatch.setattr(target, "from_pretrained", forbidden)
    monkeypatch.setattr(loading, "load", forbidden)
    results, loaded_meta = session_file.load(path)
    assert loaded_meta == meta and results[0].prompt == EXAMPLE.prompt


# -- settings and watch items: checked when the probe is built ----------------------------------
@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"optimizer": "lion"}, "unknown optimizer"),
        ({"lr": float("inf")}, "lr must be"),
        ({"lr": "0.1"}, "lr must be a finite number"),
        ({"lr": float("nan")}, "lr must be"),
        ({"lr": -1e-3}, "lr must be"),
        ({"lr": True}, "lr must be"),
        ({"momentum": float("nan")}, "momentum must be"),
        ({"weight_decay": float("nan")}, "weight_decay must be"),
        ({"weight_decay": "0.01"}, "weight_decay must be"),
        ({"truncation": "right"}, "truncation must be 'left'"),
        ({"max_undo": -1}, "max_undo must be a positive integer"),
        ({"max_undo": 0}, "max_undo must be"),
        ({"top_k": 0}, "top_k must be"),
        ({"top_k": 10_000}, "more than the model's"),
        ({"steps": 0}, "steps must be"),
        ({"steps": 1.5}, "steps must be"),
        ({"influence": "yes"}, "influence must be True or False"),
        ({"on_result": 3}, "on_result must be"),
        ({"layers": "lm_head"}, "layers must be a list"),
        ({"layers": 5}, "layers must be a list"),
        ({"layers": [1.5]}, "layers must be a list"),
        ({"pattern": "("}, "not a valid regular expression"),
        ({"pattern": 3}, "pattern must be"),
        ({"watch": 5}, "watch must be a list"),
        ({"watch": [None]}, "cannot use None"),
    ],
)
def test_settings_are_refused_when_the_probe_is_built(tiny_gpt2, setting, match):
    model, tok = tiny_gpt2
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(pk.InputError, match=match):
        pk.Probe(model, tok, **setting)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_max_undo_minus_one_no_longer_fails_after_a_recorded_step(tiny_gpt2):
    model, tok = tiny_gpt2
    with pytest.raises(pk.InputError, match="max_undo"):
        pk.Probe(model, tok, max_undo=-1)
    probe = pk.Probe(model, tok, max_undo=1)
    probe.step(EXAMPLE, commit=True)
    probe.step(EXAMPLE, commit=True)
    assert len(probe.committed) == 2 and len(probe.history) == 2


def test_slips_in_settings_warn(tiny_gpt2):
    model, tok = tiny_gpt2
    with pytest.warns(UserWarning, match="far above fine-tuning rates"):
        pk.Probe(model, tok, lr=1e6)
    with pytest.warns(UserWarning, match="momentum=0.9 is ignored by adam"):
        pk.Probe(model, tok, optimizer="adam", momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pk.Probe(model, tok, lr=0.5, momentum=0.9)


def test_watch_takes_one_string_or_one_example_as_one_item(tiny_gpt2):
    model, tok = tiny_gpt2
    assert pk.Probe(model, tok, watch="cat").watch == (pk.Example("cat"),)
    assert pk.Probe(model, tok, watch="the cat says").watch == (pk.Example("the cat says"),)
    single = pk.Example("alice lives in", " paris")
    probe = pk.Probe(model, tok, watch=single)
    assert probe.watch == (single,)
    probe.watch = "the dog says"
    assert probe.watch_labels == ("the dog says",)
    assert as_example(("the cat", " says")) == pk.Example("the cat", " says")


def test_repeated_watch_items_warn_and_stay_apart(tiny_gpt2):
    model, tok = tiny_gpt2
    with pytest.warns(UserWarning, match="more than once"):
        probe = pk.Probe(model, tok, watch=["the cat says", "the dog says", "the cat says"])
    assert probe.watch_labels == ("the cat says", "the dog says", "the cat says #2")


# -- Ctrl-C in a race ----------------------------------------------------------------------------
def test_ctrl_c_in_a_race_stops_it_and_restores_the_start(tiny_gpt2, monkeypatch):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam", lr=1e-2)
    start = probe.fingerprint()
    real, calls = probe.commit_step, []

    def interrupted_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(probe, "commit_step", interrupted_on_the_third)
    examples = [EXAMPLE, pk.Example("the cat says", " meow"), pk.Example("the cow says", " moo")]
    with pytest.raises(KeyboardInterrupt):
        pk.race(probe, examples, orders=["given", "shuffled", "hard_to_easy"])
    assert len(calls) == 3, "the race went on with the remaining orders"
    assert probe.fingerprint().differences(start) == []
    assert probe.history == [] and probe.committed == ()


# -- loading: offline, and folders without a tokenizer -------------------------------------------
def test_an_unreachable_hub_fails_fast_from_the_cache_and_names_hf_hub_offline(
    tmp_path, monkeypatch
):
    from transformers import AutoTokenizer

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy",
                 "ALL_PROXY", "all_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the connection is refused at once
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    seen: list[dict] = []
    real = AutoTokenizer.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", spy)
    with pytest.raises(pk.ModelNotAvailableError, match="HF_HUB_OFFLINE=1"):
        pk.load("probekit-tests/no-such-model", device="cpu")
    assert seen and seen[0]["local_files_only"] is True


def test_hub_reachability_is_a_quick_connection_check(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert loading.hub_reachable(timeout=2.0)
    monkeypatch.setenv("HF_ENDPOINT", "not a url")
    assert not loading.hub_reachable(timeout=0.5)


def test_a_folder_without_tokenizer_files_gets_probekits_words(tiny_gpt2, tmp_path):
    model, _ = tiny_gpt2
    model.save_pretrained(tmp_path / "m")
    with pytest.raises(pk.ModelLoadError, match=r"no tokenizer files.*tokenizer\.save_pretrained"):
        pk.load(tmp_path / "m", device="cpu")
