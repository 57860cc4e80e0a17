"""Probing on one GPU: latency against the bare work, isolated maps, IG, peak memory.

Two randomly initialised shapes in bfloat16: GPT-2 small (124M parameters) and Qwen2
0.5B (494M). For each, in one run:

* ``probe.step`` (isolated SGD, default metrics) vs the bare loop of
  ``bench/probe_step.py`` (snapshot, forward+backward+step, watch forward, restore):
  median latencies and their ratio;
* ``isolated_map`` exact and first_order vs the naive loop of
  ``bench/isolated_map.py`` (copy, step, measure, restore per example): examples/s
  and speed-ups;
* integrated gradients with 50 steps: latency;
* peak memory of a probe step and of the exact isolated map, beyond the loaded
  model, as a multiple of the parameter bytes, and the probe's own estimate of it
  (``pk.estimate_memory``) against the measured peak;
* a LoRA probe (``pk.LoraProbe``, rank 16 on peft's default layers): isolated-step
  latency against the full-parameter step, and its peak memory.

Sized to finish in well under 5 minutes on one GPU. ``--smoke`` runs the same code at
tiny sizes on whatever device is there (the CPU here) to show the script works.

    python bench/gpu.py            # on a GPU
    python bench/gpu.py --smoke    # anywhere, seconds
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import random
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

import probekit as pk
from bench.common import rss_peak, rss_peak_reset, sentence, word_tokenizer
from bench.isolated_map import LR as MAP_LR
from bench.isolated_map import naive_loop
from bench.probe_step import LR, bare_step


@dataclass(frozen=True)
class Sizes:
    repeats: int  # timed probe steps (median)
    map_examples: int  # examples of the isolated maps
    ig_steps: int
    prompt_words: int


FULL = Sizes(repeats=9, map_examples=64, ig_steps=50, prompt_words=28)
SMOKE = Sizes(repeats=2, map_examples=4, ig_steps=4, prompt_words=8)


def gpt2_small(smoke: bool) -> Any:
    if smoke:
        return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128))
    return GPT2LMHeadModel(GPT2Config())


def qwen2_half_b(smoke: bool) -> Any:
    """Qwen2-0.5B's shape (24 layers, d=896, GQA 14/2 heads, 151,936-token vocabulary)."""
    shape: dict[str, Any] = dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
    )
    if smoke:
        shape.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, vocab_size=1024,
                     max_position_embeddings=128)  # fmt: skip
    return Qwen2ForCausalLM(Qwen2Config(**shape))


class Device:
    """Synchronised timing and peak-memory counters for CUDA or the CPU."""

    def __init__(self, name: str) -> None:
        self.device = torch.device(name)
        self.cuda = self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def time(self, fn: Callable[[], object]) -> float:
        self.sync()
        start = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - start

    def peak_extra(self, fn: Callable[[], object]) -> int:
        """Peak memory while ``fn`` runs, beyond what was held before it."""
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            self.sync()
            start = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            fn()
            self.sync()
            return torch.cuda.max_memory_allocated(self.device) - start
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        start = rss_peak_reset()
        fn()
        return rss_peak() - start


@dataclass
class Case:
    """One model under test, with what every measurement shares."""

    label: str
    model: Any
    tok: Any
    dev: Device
    sizes: Sizes
    rng: random.Random
    watch: list[pk.Example]
    param_bytes: int
    t_probe: float = math.nan
    failures: list[str] = field(default_factory=list)

    def guarded(self, name: str, measure: Callable[[Case], None]) -> None:
        """Run one measurement; a failure is printed and the next one still runs."""
        try:
            measure(self)
        except Exception as err:  # one broken measurement must not waste the GPU slot
            self.failures.append(f"{self.label} {name}")
            print(f"FAILED {self.label} {name}: {type(err).__name__}: {str(err)[:500]}")
            traceback.print_exc(limit=4, file=sys.stdout)
            if self.dev.cuda:
                torch.cuda.empty_cache()


def step_latency(case: Case) -> None:
    """probe.step vs the bare loop of bench/probe_step.py, alternated, medians."""
    model, tok, dev, rng = case.model, case.tok, case.dev, case.rng
    params = list(dict.fromkeys(model.parameters()))
    prompt, target = sentence(case.sizes.prompt_words, rng), " " + sentence(4, rng)
    example = pk.Example(prompt, target)
    probe = pk.Probe(model, tok, optimizer="sgd", lr=LR, watch=case.watch)
    ex_ids = torch.tensor([tok(prompt + target)["input_ids"]], device=dev.device)
    n_prompt = len(tok(prompt)["input_ids"])
    enc = tok([w.prompt for w in case.watch], padding=True, return_tensors="pt").to(dev.device)

    def bare() -> None:
        bare_step(model, params, ex_ids, n_prompt, enc["input_ids"], enc["attention_mask"])

    def probed() -> None:
        probe.step(example)

    for fn in (bare, probed, bare, probed):  # warm-up: allocator, kernels
        fn()
    bare_times, probe_times = [], []
    for _ in range(case.sizes.repeats):  # alternate; the first probe call after a bare one
        bare()  # recomputes the watch baseline (the bare loop wrote the weights), so untimed
        bare_times.append(dev.time(bare))
        probed()
        probe_times.append(dev.time(probed))
    t_bare, case.t_probe = statistics.median(bare_times), statistics.median(probe_times)
    print(f"  probe.step {case.t_probe * 1e3:8.1f} ms   bare loop {t_bare * 1e3:8.1f} ms")
    print(f"RATIO {case.label} probe.step / bare loop = {case.t_probe / t_bare:.3f}")
    peak = dev.peak_extra(probed)
    print(
        f"MEMORY {case.label} probe.step peak extra / parameter bytes = "
        f"{peak / case.param_bytes:.2f}  (parameters {case.param_bytes / 2**20:.0f} MiB)"
    )
    watch_tokens = sum(len(tok(w.prompt + (w.target or ""))["input_ids"]) for w in case.watch)
    estimate = pk.estimate_memory(probe, tokens=ex_ids.shape[1], watch_tokens=watch_tokens)
    print(
        f"MEMORY {case.label} estimate / measured peak = {estimate.need / max(peak, 1):.2f}"
        f"  (estimate {estimate.need / 2**20:.0f} MiB, measured {peak / 2**20:.0f} MiB)"
    )


def lora_probe(case: Case) -> None:
    """An isolated step of a rank-16 LoRA probe vs the full-parameter step; its peak memory."""
    prompt, target = sentence(case.sizes.prompt_words, case.rng), " " + sentence(4, case.rng)
    example = pk.Example(prompt, target)
    with pk.LoraProbe(case.model, case.tok, r=16, lr=LR, watch=case.watch) as probe:
        stepped = sum(e.param.numel() for e in probe.entries)

        def probed() -> None:
            probe.step(example)

        for _ in range(2):
            probed()
        t_lora = statistics.median(case.dev.time(probed) for _ in range(case.sizes.repeats))
        peak = case.dev.peak_extra(probed)
        tokens = len(case.tok(prompt + target)["input_ids"])
        watch_tokens = sum(
            len(case.tok(w.prompt + (w.target or ""))["input_ids"]) for w in case.watch
        )
        estimate = pk.estimate_memory(probe, tokens=tokens, watch_tokens=watch_tokens).need
    print(f"  LoRA probe.step {t_lora * 1e3:8.1f} ms  ({stepped / 1e6:.2f}M adapter parameters)")
    print(f"RATIO {case.label} LoRA probe.step / full probe.step = {t_lora / case.t_probe:.3f}")
    print(
        f"MEMORY {case.label} LoRA probe.step peak extra / parameter bytes = "
        f"{peak / case.param_bytes:.2f}  (estimate / measured = {estimate / max(peak, 1):.2f})"
    )


def isolated_maps(case: Case) -> None:
    """isolated_map exact and first_order vs the naive loop of bench/isolated_map.py."""
    examples = [
        pk.Example(sentence(case.sizes.prompt_words, case.rng), " " + sentence(2, case.rng))
        for _ in range(case.sizes.map_examples)
    ]
    mapper = pk.Probe(case.model, case.tok, optimizer="sgd", lr=MAP_LR, watch=case.watch)
    jobs: dict[str, Callable[[], object]] = {
        "naive": lambda: naive_loop(mapper, examples),
        "exact": lambda: pk.isolated_map(mapper, examples, method="exact", progress=False),
        "first_order": lambda: pk.isolated_map(
            mapper, examples, method="first_order", sample=0, progress=False
        ),
    }
    times = {}
    for name, job in jobs.items():
        job()  # warm-up
        times[name] = case.dev.time(job)
    n = len(examples)
    for name, t in times.items():
        print(f"  isolated map {name:12s} {t:7.3f} s  {n / t:8.1f} examples/s")
    print(
        f"RATIO {case.label} isolated_map speed-up vs naive loop: "
        f"exact {times['naive'] / times['exact']:.2f}x "
        f"first_order {times['naive'] / times['first_order']:.2f}x"
    )
    peak = case.dev.peak_extra(jobs["exact"])
    print(
        f"MEMORY {case.label} isolated_map exact ({n} examples) peak extra / parameter "
        f"bytes = {peak / case.param_bytes:.2f}"
    )


def integrated_gradients(case: Case) -> None:
    prompt, target = sentence(16, case.rng), " " + sentence(1, case.rng)
    steps = case.sizes.ig_steps

    def ig() -> None:
        pk.attribute(case.model, case.tok, prompt, target, n_steps=steps)

    ig()
    t_ig = case.dev.time(ig)
    print(
        f"  IG ({steps} steps, 16-word prompt) {t_ig * 1e3:8.1f} ms "
        f"= {t_ig / case.t_probe:.1f} probe steps"
    )


def bench_model(label: str, model: Any, dev: Device, sizes: Sizes, dtype: torch.dtype) -> Case:
    model = model.to(device=dev.device, dtype=dtype).eval()
    rng = random.Random(0)
    param_bytes = sum(p.numel() * p.element_size() for p in dict.fromkeys(model.parameters()))
    watch = [pk.Example(sentence(12, rng), " " + sentence(1, rng)) for _ in range(8)]
    case = Case(label, model, word_tokenizer(), dev, sizes, rng, watch, param_bytes)
    print(
        f"{label}: {param_bytes / dev_bytes(dtype) / 1e6:.1f}M parameters, {dtype}, "
        f"{dev.device}; example {sizes.prompt_words + 4} words, 8 watch items"
    )
    case.guarded("probe.step", step_latency)
    case.guarded("isolated_map", isolated_maps)
    case.guarded("IG", integrated_gradients)
    case.guarded("LoRA probe", lora_probe)  # last: the adapters are attached meanwhile
    return case


def dev_bytes(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, any device")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--only", choices=["gpt2", "qwen2"], help="one shape only")
    args = parser.parse_args()
    name = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dev = Device(name)
    if not dev.cuda and not args.smoke:
        sys.exit("no GPU here: run with --smoke to check the script at tiny sizes")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    sizes = SMOKE if args.smoke else FULL
    if dev.cuda:
        print(f"GPU: {torch.cuda.get_device_name(dev.device)}, torch {torch.__version__}")
    start = time.perf_counter()
    failures: list[str] = []
    for label, build in (("gpt2-small", gpt2_small), ("qwen2-0.5b", qwen2_half_b)):
        if args.only and not label.startswith(args.only):
            continue
        torch.manual_seed(0)
        with dev.device:  # initialised where it runs: no host copy of a 0.5B model
            model = build(args.smoke)
        failures += bench_model(label, model, dev, sizes, dtype).failures
        del model
        gc.collect()
        if dev.cuda:
            torch.cuda.empty_cache()
    print(f"total {time.perf_counter() - start:.1f} s")
    if failures:
        sys.exit(f"failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
