"""Cost of probekit's integrated gradients vs a direct Captum call doing the same work.

On the demo model and on a GPT-2-small-shaped random model (124M parameters, CPU): a
16-token prompt and a one-token target. The baseline is one plain
``LayerIntegratedGradients`` call on the input embeddings with the same forward function
(log p of the target at the last position), pad baseline, ``n_steps`` and internal batch
size. The two are timed alternately in one run; the medians and their ratio are printed.

    python bench/attribution.py [--repeats 8] [--n-steps 32]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

import probekit as pk
from bench.common import gpt2_small, sentence, word_tokenizer
from probekit.core.attribution import attribute, auto_batch_size

DEMO_PROMPT = "the cat says meow . the dog says woof . the cow says moo . the cat says"


def direct_ig(model: Any, tok: Any, prompt: str, target: str, n_steps: int, batch: int) -> None:
    """What a user would write: one LayerIntegratedGradients call, delta included."""
    from captum.attr import LayerIntegratedGradients

    ids = tok(prompt + target, return_tensors="pt")["input_ids"]
    inputs, target_id = ids[:, :-1], int(ids[0, -1])

    def forward(x: torch.Tensor) -> torch.Tensor:
        mask = torch.ones_like(x)
        out = model(input_ids=x, attention_mask=mask, use_cache=False, logits_to_keep=1)
        return torch.log_softmax(out.logits[:, -1].float(), -1)[:, target_id]

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    lig.attribute(
        inputs,
        baselines=torch.full_like(inputs, tok.pad_token_id),
        n_steps=n_steps,
        internal_batch_size=batch,
        return_convergence_delta=True,
    )


def alternate(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each function, interleaved so drift hits all alike."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up
    names = list(fns)
    for i in range(repeats):
        for name in names if i % 2 == 0 else names[::-1]:  # ABBA: no side always goes first
            fn = fns[name]
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
        for name, ts in times.items()
    }


def compare(label: str, model: Any, tok: Any, prompt: str, target: str, args: Any) -> None:
    model.eval()
    n_tokens = len(tok(prompt)["input_ids"])
    batch = auto_batch_size(model, n_tokens + 1, args.n_steps)
    medians = alternate(
        {
            "probekit": lambda: attribute(model, tok, prompt, target, n_steps=args.n_steps),
            "captum": lambda: direct_ig(model, tok, prompt, target, args.n_steps, batch),
        },
        args.repeats,
    )
    (pk_wall, pk_cpu), (ref_wall, ref_cpu) = medians["probekit"], medians["captum"]
    print(
        f"{label}: {n_tokens}-token prompt, n_steps {args.n_steps}, batch {batch}: "
        f"probekit {pk_wall:.3f} s (cpu {pk_cpu:.3f}), captum {ref_wall:.3f} s (cpu {ref_cpu:.3f})"
    )
    print(f"RATIO ig {label} probekit/captum wall = {pk_wall / ref_wall:.3f}")
    print(f"RATIO ig {label} probekit/captum cpu = {pk_cpu / ref_cpu:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=32)
    args = parser.parse_args()
    torch.set_grad_enabled(True)

    model, tok = pk.load_demo(device="cpu")
    compare("demo", model, tok, DEMO_PROMPT, " meow", args)

    rng = random.Random(0)
    small, words = gpt2_small(), word_tokenizer()
    compare("gpt2-small", small, words, sentence(16, rng), " " + sentence(1, rng), args)


if __name__ == "__main__":
    main()
