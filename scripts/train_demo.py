"""Retrain the embedded demo model and rewrite its model card.

    python scripts/train_demo.py [--out DIR] [--threads N] [--card PATH]

Trains the shipped configuration (``DemoTrainConfig()``), saves it into
``probekit/demo/weights/`` (or ``--out``), prints the per-family accuracy and the wall
time, and writes ``probekit/demo/MODEL_CARD.md``. The same configuration and thread
count reproduce the shipped weights bit for bit.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from probekit.demo import WEIGHTS_DIR, corpus  # noqa: E402
from probekit.demo.training import DemoTrainConfig, save, train  # noqa: E402

DEFAULT_CARD = WEIGHTS_DIR.parent / "MODEL_CARD.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="where to save the model")
    parser.add_argument(
        "--threads",
        type=int,
        default=DemoTrainConfig().threads,
        help="torch CPU threads (the weights are reproducible per thread count)",
    )
    parser.add_argument("--card", type=Path, default=DEFAULT_CARD, help="model card to write")
    return parser.parse_args(argv)


def directory_size(path: Path) -> int:
    """Total bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def accuracy_table(accuracy: dict[str, float], seed: int) -> list[str]:
    """Markdown rows: fact count, held-out flag and accuracy per family."""
    rows = ["| family | facts | held out | top-1 accuracy |", "|---|---:|:---:|---:|"]
    for family in (*corpus.FAMILIES, *corpus.HELD_OUT_FAMILIES):
        held = family in corpus.HELD_OUT_FAMILIES
        n = len(corpus.held_out(family) if held else corpus.facts(family, seed))
        rows.append(f"| `{family}` | {n} | {'yes' if held else 'no'} | {accuracy[family]:.1%} |")
    return rows


def family_examples(seed: int) -> list[str]:
    """Markdown rows: one probe, training sentence and contradiction per family."""
    rows = [
        "| family | probe (prompt → target) | a training sentence | contradiction |",
        "|---|---|---|---|",
    ]
    for family in (*corpus.FAMILIES, *corpus.HELD_OUT_FAMILIES):
        held = family in corpus.HELD_OUT_FAMILIES
        fact = (corpus.held_out(family) if held else corpus.facts(family, seed))[7]
        sentence = "— (never trained)" if held else f"`{corpus.sentences(family, seed)[22]}`"
        wrong = corpus.contradiction(fact, seed).target
        rows.append(
            f"| `{family}` | `{fact.prompt}` → `{fact.target!r}` | {sentence} | `{wrong!r}` |"
        )
    return rows


def card_header(report: dict[str, Any]) -> list[str]:
    """Title and corpus description."""
    cfg = report["config"]
    return [
        "# probekit demo model",
        "",
        "A small word-level GPT-2 trained from scratch, offline, on a synthetic world of facts "
        "(`probekit/demo/corpus.py`). It ships inside the package so that probes run anywhere "
        "in seconds: `probekit.load_demo()`.",
        "",
        "## Corpus",
        "",
        f"{report['sentences']} lowercase sentences (world seed {cfg['world_seed']}): every fact "
        "of the four known families written in three templates, e.g. `alice lives in paris .`, "
        "`in paris lives alice .`, `alice has a home in paris .`. Who lives where depends on the "
        "world seed (20 people, 10 cities, two people per city); animal sounds and colours are "
        "the everyday ones. A probe is always `prompt + target`, the target being one word "
        "with a leading space. The held-out families never appear in training; their words "
        "(`minus`, every number 0..40) are in the vocabulary, so they can be probed and taught.",
        "",
    ]


def card_architecture(report: dict[str, Any]) -> list[str]:
    """Model and tokenizer description."""
    cfg = report["config"]
    return [
        "## Architecture",
        "",
        f"- `GPT2LMHeadModel`: {cfg['n_layer']} layers, {cfg['n_head']} heads, width "
        f"{cfg['n_embd']}, context {cfg['n_positions']}, tied input/output embeddings, "
        f"dropout {cfg['dropout']} (resid/embd/attn).",
        f"- **{report['parameters']:,} parameters**; files {report['size_bytes'] / 1e6:.2f} MB.",
        f"- Tokenizer: `tokenizers` WordLevel, {report['vocab_size']} tokens (`[PAD]` 0, `[UNK]` "
        "1, `[BOS]` 2, `[EOS]` 3, then the words), Lowercase normaliser, Whitespace "
        "pre-tokenizer; anything unknown becomes `[UNK]`. Encoding adds no special tokens.",
        "",
    ]


def card_training(report: dict[str, Any]) -> list[str]:
    """Training settings, time and how to retrain."""
    cfg = report["config"]
    settings = ", ".join(f"{k}={v}" for k, v in cfg.items())
    return [
        "## Training",
        "",
        f"- {cfg['steps']} AdamW steps of {cfg['batch_size']} sentences (each followed by "
        f"`[EOS]`), lr {cfg['lr']} with warm-up and cosine decay; seed {cfg['seed']}.",
        f"- Wall time: {report['wall_seconds']:.0f} s on {cfg['threads']} CPU threads "
        f"({platform.machine()}, torch {report['torch']}); it varies with the machine and load.",
        f"- Final training loss: {report['losses'][-1][1]:.4f}.",
        f"- Full config: `{settings}`.",
        "- Reproducible: the same config and thread count give bit-identical weights.",
        "",
        "## Retrain",
        "",
        "```",
        "python scripts/train_demo.py            # or: make retrain-demo",
        "```",
        "",
    ]


def model_card(report: dict[str, Any]) -> str:
    """The whole model card (Markdown) from a training report."""
    seed = report["config"]["world_seed"]
    lines = [
        *card_header(report),
        "## Families",
        "",
        *family_examples(seed),
        "",
        "## Accuracy (greedy top-1 of the target after the prompt)",
        "",
        *accuracy_table(report["accuracy"], seed),
        "",
        "The held-out families are expected to be low: they measure what a probe can teach.",
        "",
        *card_architecture(report),
        *card_training(report),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Train, save, print the accuracy and write the model card."""
    args = parse_args(argv)
    config = dataclasses.replace(DemoTrainConfig(), threads=args.threads)
    started = time.perf_counter()
    model, tokenizer, report = train(config)
    out = save(model, tokenizer, args.out)
    report["wall_seconds"] = time.perf_counter() - started
    report["size_bytes"] = directory_size(out)
    report["torch"] = sys.modules["torch"].__version__
    for family, value in report["accuracy"].items():
        tag = " (held out)" if family in corpus.HELD_OUT_FAMILIES else ""
        print(f"{family:>16}: {value:6.1%}{tag}")
    print(f"parameters: {report['parameters']:,}  saved: {out} ({report['size_bytes']:,} bytes)")
    print(f"wall time: {report['wall_seconds']:.1f} s")
    args.card.write_text(model_card(report), encoding="utf-8")
    print(f"model card: {args.card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
