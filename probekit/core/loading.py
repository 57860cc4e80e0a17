"""Loading causal language models and their tokenizers, with the checks probing needs.

``load`` takes a Hugging Face hub id or a local directory; ``load_demo`` loads the
small GPT-2 that ships inside the package and works fully offline.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import torch

from probekit.core.device import resolve_device, resolve_dtype
from probekit.errors import (
    InputError,
    ModelLoadError,
    ModelNotAvailableError,
    ProbekitError,
    UnsupportedModelError,
    VocabMismatchError,
)

# Config attributes that hold the context length, in the order models use them.
_CONTEXT_ATTRS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_seq_len")
# Files any saved tokenizer leaves in its folder (one is enough).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt",
                    "tokenizer.model", "spiece.model", "sentencepiece.bpe.model")  # fmt: skip
# Seconds to wait for a TCP connection to the hub before treating it as unreachable.
HUB_TIMEOUT = 3.0
# Tokenizers report this huge number when they do not know their limit.
_UNKNOWN_TOKENIZER_LIMIT = 10**9


class ModelPair(NamedTuple):
    """A causal LM and its tokenizer; unpacks as ``model, tokenizer = pk.load(...)``."""

    model: Any
    tokenizer: Any


def load(
    name_or_path: str | os.PathLike[str],
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    local_files_only: bool | None = None,
    **model_kwargs: Any,
) -> ModelPair:
    """Load a Hugging Face causal LM and its tokenizer, ready for probing.

    ``name_or_path`` is a hub id (``"gpt2"``) or a local directory. ``device``
    defaults to CUDA when available, else CPU; ``dtype`` defaults to float32 (pass
    ``"bf16"``/``"fp16"`` for half precision). The model is returned in eval mode.
    Remote code is never trusted unless ``trust_remote_code=True`` is passed.
    When the hub cannot be reached and the model is not cached, a
    :class:`ModelNotAvailableError` says so.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not isinstance(trust_remote_code, bool):
        raise InputError(f"trust_remote_code must be True or False, got {trust_remote_code!r}")
    source = _resolve_source(name_or_path)
    local = Path(source).is_dir()
    offline = local_files_only if local_files_only is not None else _hub_offline()
    if not (local or offline) and not hub_reachable():
        offline = True  # fail fast from the cache instead of retrying for a minute
    # Always explicit: left unset, transformers may ask on stdin whether to run a folder's code.
    common: dict[str, Any] = {
        "revision": revision,
        "local_files_only": offline,
        "trust_remote_code": trust_remote_code,
    }
    torch_dtype = resolve_dtype(dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **common)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, **common, **model_kwargs
        )
    except (OSError, ValueError) as exc:  # hub errors derive from OSError
        raise _explain_load_failure(str(name_or_path), source, offline, exc) from exc
    return prepare(model, tokenizer, device=resolve_device(device))


def load_demo(device: str | torch.device | None = None) -> ModelPair:
    """Load the embedded demo model (a small word-level GPT-2) — offline, in about a second.

    See ``probekit/demo/MODEL_CARD.md`` for what it knows and what was held out.
    """
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

    from probekit.demo import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "config.json").is_file():
        raise ModelLoadError(
            f"the demo model's files are missing from {WEIGHTS_DIR}; "
            "reinstall probekit or retrain them with `python scripts/train_demo.py`"
        )
    tokenizer = PreTrainedTokenizerFast.from_pretrained(WEIGHTS_DIR)
    with _quiet_progress():
        model = GPT2LMHeadModel.from_pretrained(WEIGHTS_DIR, dtype=torch.float32)
    return prepare(model, tokenizer, device=resolve_device(device))


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """No weight-loading progress bar for a model that loads in a blink; restored after."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def prepare(model: Any, tokenizer: Any, device: torch.device | None = None) -> ModelPair:
    """Check a model/tokenizer pair, set a pad token safely, move to ``device``, eval mode."""
    check_vocab(model, tokenizer)
    context_length(model, tokenizer)
    ensure_pad_token(tokenizer)
    if device is not None:
        model.to(device)
    model.eval()
    return ModelPair(model, tokenizer)


def check_vocab(model: Any, tokenizer: Any) -> None:
    """Raise :class:`VocabMismatchError` if the tokenizer can emit ids the model cannot embed."""
    embeddings = model.get_input_embeddings()
    if embeddings is None or not hasattr(embeddings, "num_embeddings"):
        raise UnsupportedModelError(
            f"{type(model).__name__} has no token embedding layer; probekit needs a causal LM "
            "whose forward takes input_ids"
        )
    n_model = int(embeddings.num_embeddings)
    n_tok = len(tokenizer)
    if n_tok > n_model:
        raise VocabMismatchError(
            f"the tokenizer has {n_tok} tokens but the model embeds only {n_model}: ids "
            f"{n_model}..{n_tok - 1} would crash the forward pass. Load the tokenizer that was "
            "saved with this model, or resize the model's embeddings "
            "(model.resize_token_embeddings(len(tokenizer)))."
        )


def context_length(model: Any, tokenizer: Any = None) -> int:
    """The longest sequence the model accepts, from its config or else its tokenizer."""
    config = getattr(model, "config", None)
    for attr in _CONTEXT_ATTRS:
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _UNKNOWN_TOKENIZER_LIMIT:
        return limit
    raise UnsupportedModelError(
        f"cannot tell the context length of {type(model).__name__}: its config has none of "
        f"{', '.join(_CONTEXT_ATTRS)} and the tokenizer reports no model_max_length. "
        "Set model.config.max_position_embeddings to the right value."
    )


def ensure_pad_token(tokenizer: Any) -> None:
    """Give the tokenizer a pad token if it has none, reusing EOS (or UNK) — never a new id.

    probekit always passes an attention mask, so the pad token's identity does not
    affect any result; adding a brand-new token would require resizing the model.
    """
    if tokenizer.pad_token is not None:
        return
    for candidate in (tokenizer.eos_token, tokenizer.unk_token, tokenizer.bos_token):
        if candidate is not None:
            tokenizer.pad_token = candidate
            return
    raise UnsupportedModelError(
        "the tokenizer has no pad, eos, unk or bos token to pad with; set tokenizer.pad_token "
        "to an existing token before probing"
    )


def _resolve_source(name_or_path: str | os.PathLike[str]) -> str:
    """A local directory as a string path, or the hub id unchanged; checks local dirs."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    looks_local = path.exists() or text.startswith((".", "/", "~")) or os.sep + os.sep in text
    if not looks_local:
        return text
    if not path.is_dir():
        raise ModelLoadError(f"{text!r} is not a directory; pass a model folder or a hub id")
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{text!r} has no config.json; save the model there with "
            "model.save_pretrained(dir) and tokenizer.save_pretrained(dir)"
        )
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelLoadError(
            f"{text!r} has a model but no tokenizer files (none of {', '.join(_TOKENIZER_FILES)}); "
            "save the tokenizer the model was trained with there: tokenizer.save_pretrained(dir)"
        )
    return str(path)


def _hub_offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(
        os.environ.get(name, "").strip().lower() in truthy
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_reachable(timeout: float = HUB_TIMEOUT) -> bool:
    """Whether a TCP connection to the hub (or the HTTPS proxy) opens within ``timeout`` s.

    Name resolution runs in a helper thread, so a hanging DNS lookup cannot stall this.
    """
    proxy = next(
        (os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
         if os.environ.get(k)), None,
    )  # fmt: skip
    url = urlsplit(proxy or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    if not url.hostname:
        return False
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        return False
    answer: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((url.hostname, port), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    worker = threading.Thread(target=connect, name="probekit-hub-check", daemon=True)
    worker.start()
    worker.join(timeout)
    return answer == [True]


def _explain_load_failure(name: str, source: str, offline: bool, exc: Exception) -> ProbekitError:
    """Turn a hub or transformers stack trace into one error that says what to do."""
    text = str(exc)
    if "trust_remote_code" in text:
        return ModelLoadError(
            f"{name!r} comes with its own Python code (an auto_map in its config); probekit "
            "never runs code from a model folder or hub repository unless you pass "
            "trust_remote_code=True — read that code first"
        )
    if "sentencepiece" in text and "tiktoken" in text:
        return ModelLoadError(
            f"could not build a tokenizer for {name!r}: its tokenizer files are missing or "
            "need the sentencepiece package (pip install sentencepiece); save the tokenizer "
            "the model was trained with beside it: tokenizer.save_pretrained(dir)"
        )
    if Path(source).is_dir():
        return ModelLoadError(f"could not load the model in {source!r}: {exc}")
    if "Unrecognized configuration" in text or "does not recognize this architecture" in text:
        return UnsupportedModelError(f"{name!r} is not a causal language model: {text}")
    unreachable = ("offline", "connect", "cached files", "not a local folder", "Cannot find")
    if offline or any(marker.lower() in text.lower() for marker in unreachable):
        return ModelNotAvailableError(
            f"model {name!r} is not in the local Hugging Face cache and the hub cannot be "
            "reached (offline mode or no network). Download it once on a machine with network "
            "(it lands in the cache), or save it with save_pretrained and pass that directory. "
            "Working offline, set HF_HUB_OFFLINE=1 to skip the network check. "
            "The embedded demo model always works: probekit.load_demo()."
        )
    return ModelLoadError(f"could not load {name!r}: {text}")
