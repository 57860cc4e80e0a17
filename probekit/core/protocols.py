"""What probekit needs of a model and a tokenizer, as structural types.

Any Hugging Face causal LM (a ``PreTrainedModel`` with an LM head) and its tokenizer
(``PreTrainedTokenizerBase``) fit; so does any PyTorch module that offers the same few
methods. These protocols document the requirement in signatures; they are not checked at
run time (the loaders and :func:`probekit.core.loading.check_vocab` check what matters).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import torch


class CausalLM(Protocol):
    """A causal language model: ``model(input_ids=…, attention_mask=…).logits`` is (B, T, V)."""

    training: bool

    @property
    def config(self) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def forward(self, *args: Any, **kwargs: Any) -> Any: ...

    def get_input_embeddings(self) -> Any: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, torch.nn.Parameter]]: ...

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, torch.Tensor]]: ...

    def modules(self) -> Iterator[torch.nn.Module]: ...

    def named_modules(
        self, memo: Any = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, torch.nn.Module]]: ...

    def eval(self) -> Any: ...

    def register_forward_pre_hook(self, hook: Any, *args: Any, **kwargs: Any) -> Any: ...


class Tokenizer(Protocol):
    """A tokenizer: ``tokenizer(text)["input_ids"]``, ``decode`` and the special token ids."""

    @property
    def pad_token_id(self) -> int | None: ...

    @property
    def eos_token_id(self) -> int | None: ...

    @property
    def unk_token_id(self) -> int | None: ...

    def __call__(self, text: str, *args: Any, **kwargs: Any) -> Any: ...

    def decode(self, token_ids: Sequence[int], *args: Any, **kwargs: Any) -> str: ...

    def convert_ids_to_tokens(self, ids: Any, *args: Any, **kwargs: Any) -> Any: ...
