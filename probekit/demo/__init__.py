"""The embedded demo model: a small word-level GPT-2 trained on a synthetic world of facts.

Importing this package is cheap (no torch): ``WEIGHTS_DIR`` points at the shipped files,
``probekit.demo.corpus`` describes the world, ``probekit.demo.training`` retrains it.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR: Path = Path(__file__).resolve().parent / "weights"
"""Directory holding the shipped model and tokenizer (``save_pretrained`` layout)."""

__all__ = ["WEIGHTS_DIR"]
