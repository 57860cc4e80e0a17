"""Token attributions as inert data: which input tokens a target's log-probability rests on.

Nothing here refers to a model: tokens are plain strings (the literal text each token
decodes to) and scores are plain floats. ``nan`` marks a value that was not measured
(the per-target-token rows of a probe step's ``token_grad``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probekit.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from probekit.results.probe import ProbeResult

FRAME_COLUMNS = ("target_position", "target_token", "position", "token", "score", "method")
SEQUENCE_POSITION = -1
SEQUENCE_LABEL = "(sequence)"


@dataclass(frozen=True)
class TokenAttribution:
    """Scores of every input token for every target token, plus the whole-target row.

    ``scores[t][i]`` is the attribution of input token ``i`` for target token ``t``;
    target token ``t`` sees only the prompt and the target tokens before it, so later
    positions score ``0.0``. ``sequence`` attributes the whole target (for ``ig``,
    ``grad_x_input`` and ``ablation`` the sum of the rows; for ``token_grad`` the norm of
    the mean loss's gradient). ``convergence_delta[t]`` is ``Σᵢ scores[t][i] − (F(x) − F(b))``
    for integrated gradients; it is empty for the methods that have no such check.
    Every attribution has the same shape: one row per target token and the sequence row.
    """

    method: str
    prompt: str
    target: str
    input_tokens: tuple[str, ...]
    target_tokens: tuple[str, ...]
    scores: tuple[tuple[float, ...], ...]
    sequence: tuple[float, ...]
    convergence_delta: tuple[float, ...]
    n_steps: int | None = None
    baseline: str | None = None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """A text summary and the ``application/vnd.probekit.result+json`` charts bundle."""
        from probekit.results.result_bundle import mimebundle

        return mimebundle(self)

    @property
    def sequence_delta(self) -> float:
        """Convergence delta of the sequence row (the sum of the per-token deltas); ``nan``
        for a method without one."""
        return math.fsum(self.convergence_delta) if self.convergence_delta else math.nan

    def to_frame(self) -> pd.DataFrame:
        """Long tidy frame, one row per (target token, input token), plus the sequence row."""
        import pandas as pd

        return pd.DataFrame(list(self._records()), columns=list(FRAME_COLUMNS))

    def _records(self) -> Iterable[tuple[Any, ...]]:
        rows = [
            *zip(range(len(self.scores)), self.target_tokens, self.scores, strict=True),
            (SEQUENCE_POSITION, SEQUENCE_LABEL, self.sequence),
        ]
        for target_position, target_token, row in rows:
            for position, (token, score) in enumerate(zip(self.input_tokens, row, strict=True)):
                yield (target_position, target_token, position, token, score, self.method)


@dataclass(frozen=True)
class AttributionShift:
    """The same attribution taken before and after a probe step, and how far it moved.

    ``step`` is the probe step taken in between, when the shift came from a probe.
    """

    before: TokenAttribution
    after: TokenAttribution
    step: ProbeResult | None = None

    def __post_init__(self) -> None:
        if len(self.before.sequence) != len(self.after.sequence):
            raise InputError(
                "before and after attributions cover different tokens "
                f"({len(self.before.sequence)} vs {len(self.after.sequence)}); attribute the "
                "same prompt and target with the same method"
            )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """A text summary and the ``application/vnd.probekit.result+json`` charts bundle."""
        from probekit.results.result_bundle import mimebundle

        return mimebundle(self)

    @property
    def cosine_distance(self) -> float:
        """1 − cosine similarity of the sequence rows (``nan`` if either row is all zero)."""
        a, b = self.before.sequence, self.after.sequence
        norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
        if norm == 0:
            return math.nan
        return 1.0 - math.fsum(x * y for x, y in zip(a, b, strict=True)) / norm

    @property
    def l1(self) -> float:
        """Σᵢ |after − before| over the sequence rows."""
        pairs = zip(self.before.sequence, self.after.sequence, strict=True)
        return math.fsum(abs(y - x) for x, y in pairs)

    def to_frame(self) -> pd.DataFrame:
        """Both attributions' frames stacked, with a ``when`` column (``before``/``after``)."""
        import pandas as pd

        frames = [self.before.to_frame(), self.after.to_frame()]
        for frame, when in zip(frames, ("before", "after"), strict=True):
            frame["when"] = when
        return pd.concat(frames, ignore_index=True)
