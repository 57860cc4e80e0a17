"""``Probe``: single fine-tune steps on single examples — isolated or committed, undoable.

>>> probe = pk.Probe(model, tok, optimizer="sgd", lr=1e-3, watch=["the cat says"])  # doctest: +SKIP
>>> r = probe.step(pk.Example("2 plus 2 is", " 5"))               # the model is untouched
>>> r = probe.step(pk.Example("2 plus 2 is", " 4"), commit=True)  # the model keeps the step
>>> probe.undo(); probe.reset()                                   # bit-exact
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

import torch

from probekit.core import batch as batching
from probekit.core import isolated, memory, placement, readout
from probekit.core.attribution import Method
from probekit.core.descent import GradObserver
from probekit.core.evaluation import Evaluation, evaluate
from probekit.core.fingerprint import Fingerprint, fingerprint
from probekit.core.inputs import (
    EncodedExample,
    Example,
    TruncationPolicy,
    as_example,
    as_watch,
    encode,
)
from probekit.core.loading import check_vocab, context_length
from probekit.core.lock import exclusive, guarded
from probekit.core.optimizer import OptimizerName, OptimizerSpec, Updater
from probekit.core.params import ParamEntry, select
from probekit.core.per_example import Functional
from probekit.core.protocols import CausalLM, Tokenizer
from probekit.core.sandbox import (
    WeightSnapshot,
    grad_enabled,
    memory_released,
    preserved,
)
from probekit.core.step import StepOutcome, StepRequest, Watched, take_step
from probekit.errors import InputError, StateError
from probekit.results.attribution import AttributionShift, TokenAttribution
from probekit.results.labels import unique_labels
from probekit.results.probe import ProbeResult
from probekit.results.trajectory import Trajectory
from probekit.session import settings
from probekit.session.baseline import Baseline
from probekit.session.undo import UNDO_BUDGET_BYTES, Commit, UndoStack, default_depth

WatchItem = Example | str | tuple[str, str]
ENCODING_CACHE = 256  # encoded examples kept (the cache starts over when full)
_P = ParamSpec("_P")
Listener = Callable[[ProbeResult], None]


def _holding_model(
    init: Callable[Concatenate[Any, Any, _P], None],
) -> Callable[Concatenate[Any, Any, _P], None]:
    """Build a probe while holding its model: refused while another thread works on it."""

    @functools.wraps(init)
    def held(self: Any, model: Any, *args: _P.args, **kwargs: _P.kwargs) -> None:
        with exclusive(model, "building a Probe"):
            init(self, model, *args, **kwargs)

    return held


class Probe:
    """Take measured fine-tune steps on one example at a time.

    ``optimizer`` is ``"sgd"``, ``"adam"`` or ``"adamw"`` with ``lr`` (and ``momentum``,
    ``weight_decay``); ``steps`` optimizer steps are taken on the same example per
    probe. ``layers`` (block indices or labels) or ``pattern`` (regex on names) limit
    the stepped parameters; frozen parameters are never stepped. ``watch`` items are
    prompts (or ``Example``s with targets) whose predictions are compared before and
    after every step. ``influence=True`` adds TracIn influence on each watch item and
    ``linearize=True`` the JVP-predicted logit change with its residual (both cost
    extra passes); ``token_grad=True`` records ‖∂L/∂eᵢ‖ per input token from the step's
    own backward (free). ``on_result`` is called with every new result. What each number
    means: docs/metrics.md; what is guaranteed about the model: docs/guarantees.md. A
    probe whose step will not fit in the free memory is refused before any work
    (``pk.estimate_memory`` shows the estimate; ``check_memory=False`` builds it anyway).

    The contract that trajectories, races, maps, attribution and widgets build on (and
    nothing else of the probe's internals; see docs/probe-contract.md):

    * reading: ``model``, ``tokenizer``, ``entries`` (the stepped parameters), ``spec``
      (the update rule), ``history``, ``committed``, ``watch``, ``watch_labels``;
    * :meth:`encode` — an example tokenized the probe's way (context, truncation, checks);
    * :meth:`exclusive` — hold the model: other threads' requests are refused inside;
    * :meth:`quiet` — listeners hear nothing inside the block (results still go to history);
    * :meth:`record` — add a result made outside :meth:`step` to history and tell listeners;
    * :meth:`watch_outputs` — the watch set's outputs at the current weights (cached);
    * :meth:`functional` — the model as a pure function of the stepped parameters;
    * :meth:`commit_step` — a committed step that shows its gradient to an observer;
    * :meth:`snapshot_back` — the weights from ``width`` commits ago, if undo holds them.
    """

    @_holding_model
    def __init__(
        self,
        model: CausalLM,
        tokenizer: Tokenizer,
        *,
        optimizer: OptimizerName = "sgd",
        lr: float = 1e-3,
        steps: int = 1,
        watch: Iterable[WatchItem] | Example | str = (),
        layers: Iterable[int | str] | None = None,
        pattern: str | None = None,
        momentum: float = 0.0,
        weight_decay: float | None = None,
        top_k: int = 5,
        influence: bool = False,
        linearize: bool = False,
        token_grad: bool = False,
        truncation: TruncationPolicy = "left",
        max_undo: int | None = None,
        on_result: Listener | None = None,
        check_memory: bool = True,
    ) -> None:
        check_vocab(model, tokenizer)
        settings.check(
            optimizer=optimizer, lr=lr, steps=steps, momentum=momentum,
            weight_decay=weight_decay, top_k=top_k, truncation=truncation, max_undo=max_undo,
            flags={"influence": influence, "linearize": linearize, "token_grad": token_grad,
                   "check_memory": check_memory},
            on_result=on_result, vocab_size=int(model.get_input_embeddings().num_embeddings),
            layers=layers, pattern=pattern,
        )  # fmt: skip
        self.model, self.tokenizer = model, tokenizer
        self.max_length = context_length(model, tokenizer)
        self.spec = OptimizerSpec(optimizer, float(lr), momentum, weight_decay)
        self.entries: list[ParamEntry] = select(model, layers, pattern)
        placement.check_probe(model, self.entries, subset=layers is not None or pattern is not None)
        if check_memory:  # before the Updater allocates float32 masters
            memory.check_fits(model, self.entries, self.spec)
        self._updater = Updater(self.entries, self.spec)
        self.steps = _positive(steps, "steps")
        self.top_k = _positive(top_k, "top_k")
        self.influence = influence
        self.linearize = linearize
        self.token_grad = token_grad
        self.truncation: TruncationPolicy = truncation
        self.history: list[ProbeResult] = []
        self._undo = (
            UndoStack(default_depth(self.entries, self.spec, UNDO_BUDGET_BYTES), UNDO_BUDGET_BYTES)
            if max_undo is None
            else UndoStack(max_undo, None)
        )
        self._listeners: list[Listener] = [on_result] if on_result else []
        self._cache = Baseline(model)  # the watch outputs while the weights are unchanged
        self._watch_items: tuple[Example, ...] = ()
        self._texts: readout.TokenTexts | None = None
        self._batches = batching.Batches()
        self._encodings: dict[tuple[Any, ...], EncodedExample] = {}
        self._encoded_by: Tokenizer | None = None
        self.watch = watch
        self._warn_about_user_hooks()

    # -- the watch set -------------------------------------------------------------
    @property
    def watch(self) -> tuple[Example, ...]:
        return self._watch_items

    @watch.setter
    def watch(self, items: Iterable[WatchItem] | Example | str) -> None:
        examples = as_watch(items)
        encoded = tuple(self._encode(e, require_target=False) for e in examples)
        with self._exclusive("changing the watch set"):
            self._watch_items = examples
            self._cache.watch(encoded, _labels(examples))

    # -- stepping ------------------------------------------------------------------
    def step(
        self,
        example: WatchItem,
        *,
        commit: bool = False,
        steps: int | None = None,
        influence: bool | None = None,
        linearize: bool | None = None,
        token_grad: bool | None = None,
    ) -> ProbeResult:
        """Take ``steps`` optimizer steps on ``example`` and measure what moved.

        Isolated (default): the model, optimizer state and RNG are bit-identical
        afterwards. ``commit=True`` keeps the step (undo with :meth:`undo`).
        """
        encoded = self._encode(as_example(example), require_target=True)
        request = StepRequest(
            example=encoded,
            steps=_positive(steps if steps is not None else self.steps, "steps"),
            commit=commit,
            top_k=self.top_k,
            influence=self.influence if influence is None else influence,
            linearize=self.linearize if linearize is None else linearize,
            token_grad=self.token_grad if token_grad is None else token_grad,
        )
        return self._take(encoded, request)

    def commit_step(self, example: WatchItem, grad_observer: GradObserver) -> ProbeResult:
        """A committed step that also shows the gradient at θ to ``grad_observer``."""
        encoded = self._encode(as_example(example), require_target=True)
        request = StepRequest(
            example=encoded, steps=self.steps, commit=True, top_k=self.top_k,
            influence=self.influence, linearize=self.linearize, grad_observer=grad_observer,
            token_grad=self.token_grad,
        )  # fmt: skip
        return self._take(encoded, request)

    # -- the contract for code built on a probe ------------------------------------
    def encode(
        self, item: WatchItem, *, require_target: bool = True, warn: bool = True
    ) -> EncodedExample:
        """``item`` tokenized the probe's way: its context length, truncation and checks.

        ``warn=False`` keeps the notes (boundary, dropped words) on the result without
        warning, for validating a whole list before any work.
        """
        return self._encode(as_example(item), require_target=require_target, warn=warn)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the model: a request from another thread inside the block is refused.

        The lock is one per model (shared by every probe on it) and re-entrant, so code
        holding it can still call the probe's own methods on its thread.
        """
        with self._exclusive():
            yield

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Listeners are not called for results made inside the block (history still is).

        For work whose intermediate results are not news, e.g. a step rolled back by
        :meth:`checkpoint`; :meth:`record` then reports what should be heard.
        """
        listeners, self._listeners = self._listeners, []
        try:
            yield
        finally:
            self._listeners = listeners + self._listeners  # keep any subscribed meanwhile

    def record(self, result: ProbeResult) -> ProbeResult:
        """Append ``result`` (made outside :meth:`step`) to history, numbered, and tell listeners.

        The result is renumbered to its place in history; it does not change the model,
        the undo stack or ``committed``, so a result marked committed is refused (it would
        claim a step the model does not hold). Returns the result as recorded.
        """
        if result.committed:
            raise StateError(
                "record() adds results whose step is not applied to the model; pass "
                "dataclasses.replace(result, committed=False)"
            )
        recorded = dataclasses.replace(result, step=len(self.history))
        self.history.append(recorded)
        self._notify(recorded)
        return recorded

    def run(
        self,
        examples: Iterable[WatchItem],
        *,
        window: int = 8,
        ema_beta: float = 0.9,
        progress: bool | None = None,
    ) -> Trajectory:
        """Commit one step per example and measure the path travelled (see docs/metrics.md §4).

        ``window`` steps are used for the volatility and spike metrics (at most
        ``max_undo``); ``ema_beta`` smooths past gradients for ``grad_consistency``.
        Ctrl-C stops the run and keeps the steps done so far.
        """
        from probekit.session.trajectory import run

        if not isinstance(window, int) or window < 1:
            raise InputError(f"window must be a positive integer, got {window!r}")
        with self._exclusive("a run"):
            return run(self, examples, window=min(window, self._undo.depth), ema_beta=ema_beta,
                       progress=progress)  # fmt: skip

    def snapshot_back(self, width: int) -> WeightSnapshot | None:
        """The weights from ``width`` commits ago, if undo still holds them contiguously."""
        return self._undo.back(width)

    def _take(self, encoded: EncodedExample, request: StepRequest) -> ProbeResult:
        with self._exclusive(), memory_released("the step"), grad_enabled():
            self._check_selection()
            baseline = self._cache.current(self.entries, self._pad_id())
            reuse = self._cache.theta_sq if self._fused(request) else None
            outcome = take_step(
                self.model,
                self._token_texts(),
                self.entries,
                self._updater,
                baseline,
                dataclasses.replace(request, theta_sq=reuse),
                self._pad_id(),
                self._batches,
            )
            result = self._record(encoded, request, outcome)
        self._notify(result)
        return result

    def undo(self) -> ProbeResult:
        """Revert the last committed step bit-exactly; returns the result that was undone."""
        with self._exclusive("undo"):
            last = self._undo.pop()
            last.snapshot.restore()
            self._updater.load_state(last.optimizer_state)
            self._cache.invalidate()
            return last.result

    def reset(self) -> None:
        """Restore the weights and optimizer state from before the first commit; clear history."""
        with self._exclusive("reset"):
            origin = self._undo.origin
            if origin is not None:
                origin.snapshot.restore()
                self._updater.load_state(origin.optimizer_state)
            self._undo.clear()
            self.history.clear()
            self._cache.invalidate()

    @contextmanager
    def checkpoint(self) -> Iterator[None]:
        """Everything committed inside the block is rolled back on exit, bit-exactly.

        Weights, optimizer state, the undo stack and the history return to what they
        were on entry — also after an exception or Ctrl-C. The model is held for the
        whole block: another thread's request is refused until it ends.
        """
        with exclusive(self.model, "a checkpoint"):
            with self._exclusive("a checkpoint"):
                snapshot = WeightSnapshot(self.entries)
                optimizer_state = self._updater.save_state()
                undo, history = self._undo.mark(), len(self.history)
            interrupted = False
            try:
                yield
            finally:
                while True:  # a Ctrl-C during the rollback restarts it (every part is idempotent)
                    try:
                        with self._exclusive("a checkpoint"):
                            snapshot.restore()
                            self._updater.load_state(optimizer_state)
                            self._undo.rewind(undo)
                            del self.history[history:]
                            self._cache.invalidate()
                        break
                    except KeyboardInterrupt:
                        interrupted = True
                if interrupted:
                    raise KeyboardInterrupt

    def attribute(
        self, prompt: str, target: str, method: Method = "ig", **options: Any
    ) -> TokenAttribution:
        """Token attribution of ``target`` after ``prompt`` at the probe's current weights.

        The options are those of :func:`probekit.attribute` (``baseline``, ``n_steps``,
        ``internal_batch_size``).
        """
        from probekit.session.attribution import attribute

        return attribute(self, prompt, target, method, **options)

    def attribution_shift(
        self,
        prompt: str,
        target: str,
        example: WatchItem,
        *,
        commit: bool = False,
        method: Method = "ig",
        **options: Any,
    ) -> AttributionShift:
        """How one step on ``example`` changes the attribution of ``target`` after ``prompt``.

        Attributes at the current weights, steps on ``example`` (isolated by default: the
        step is undone after the second attribution, and recorded in ``history`` as an
        isolated step; ``commit=True`` keeps it), attributes again. The step's result is
        ``shift.step``.
        """
        from probekit.session.attribution import attribution_shift

        return attribution_shift(self, prompt, target, example, commit=commit, method=method,
                                 **options)  # fmt: skip

    def evaluate(self, examples: Iterable[WatchItem]) -> Evaluation:
        """Loss, p(target) and top-1 correctness of each example at the current weights."""
        encoded = [self._encode(as_example(e), require_target=True) for e in examples]
        with self._exclusive("an evaluation"):
            return evaluate(self.model, self.entries, encoded, self._pad_id())

    def watch_outputs(self) -> Watched:
        """The watch set's outputs at the current weights (cached while they are unchanged)."""
        with self._exclusive():
            return self._cache.current(self.entries, self._pad_id())

    @property
    def watch_labels(self) -> tuple[str, ...]:
        """The watch items as shown in results and charts, in order."""
        assert self._cache.watched is not None
        return self._cache.watched.labels

    @contextmanager
    def functional(self, chunk_size: int | None = None) -> Iterator[isolated.Setup]:
        """The model as a pure function of the stepped parameters, for batched isolated work.

        Holds the probe (no step can run meanwhile), puts the model in eval mode with
        gradients off, and restores everything on exit; the live weights are only read.
        """
        watched = self._cache.watched
        assert watched is not None
        with self._exclusive("an isolated map"):
            self._check_selection()
            with preserved(self.model, self.entries), torch.no_grad():
                yield isolated.Setup(
                    fn=Functional(self.model, self.entries),
                    entries=self.entries,
                    spec=self.spec,
                    state=self._updater.save_state(),
                    steps=self.steps,
                    watch=watched.items,
                    pad_id=self._pad_id(),
                    chunk_size=chunk_size,
                )

    @property
    def committed(self) -> tuple[ProbeResult, ...]:
        """The committed steps currently applied to the model, oldest first."""
        return self._undo.results()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the history to a session file (strict JSON, atomic); read it with
        ``pk.load_session(path)``. The model is recorded by name only, never its weights."""
        from probekit.session.saving import save_probe

        return save_probe(self, path)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(result)`` after every new result (its exceptions become warnings)."""
        self._listeners.append(listener)

    def fingerprint(self) -> Fingerprint:
        """A bit-level fingerprint of the model and this probe's optimizer state."""
        with exclusive(self.model, "a fingerprint"):
            return fingerprint(self.model, self._updater.optimizer)

    # -- internals -----------------------------------------------------------------
    def _encode(
        self, example: Example, *, require_target: bool, warn: bool = True
    ) -> EncodedExample:
        """Tokenized and checked; an example encoded before without notes comes from a cache.

        The cache is keyed by everything the encoding depends on (the example, the probe's
        settings, the tokenizer object and its length: added tokens start it over).
        Encodings with notes are redone, so their warnings are given every time.
        """
        vocab = int(self.model.get_input_embeddings().num_embeddings)
        key = (example, require_target, self.truncation, self.max_length, vocab,
               readout.token_count(self.tokenizer))  # fmt: skip
        if self._encoded_by is not self.tokenizer or len(self._encodings) >= ENCODING_CACHE:
            self._encodings, self._encoded_by = {}, self.tokenizer
        found = self._encodings.get(key)
        if found is not None:
            return found
        encoded = encode(
            self.tokenizer,
            example,
            max_length=self.max_length,
            vocab_size=vocab,
            require_target=require_target,
            truncation=self.truncation,
            warn=warn,
        )
        if not encoded.notes:
            self._encodings[key] = encoded
        return encoded

    def _token_text(self, encoded: EncodedExample) -> tuple[str, ...]:
        """The input tokens a step's ``token_grad`` scores: prompt + target[:-1]."""
        return tuple(str(self.tokenizer.decode([i])) for i in encoded.input_ids[:-1])

    def _token_texts(self) -> readout.TokenTexts:
        """The probe's cache of decoded tokens (for top-k lists), for its current tokenizer."""
        if self._texts is None or self._texts.tokenizer is not self.tokenizer:
            self._texts = readout.TokenTexts(self.tokenizer)
        return self._texts

    def _pad_id(self) -> int:
        for token_id in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0):
            if token_id is not None:
                return int(token_id)
        return 0

    def _record(
        self, encoded: EncodedExample, request: StepRequest, outcome: StepOutcome
    ) -> ProbeResult:
        committed = request.commit and outcome.status == "ok"
        result = ProbeResult(
            step=len(self.history),
            committed=committed,
            status=outcome.status,
            prompt=encoded.example.prompt,
            target=encoded.example.target or "",
            target_tokens=encoded.target_tokens,
            optimizer=self.spec.name,
            lr=self.spec.lr,
            steps=request.steps,
            loss_before=outcome.loss_before,
            loss_after=outcome.loss_after,
            token_nll_before=tuple(outcome.nll_before),
            token_nll_after=tuple(outcome.nll_after),
            tensors=tuple(outcome.tensors),
            watch=tuple(outcome.watch),
            self_influence=outcome.self_influence,
            notes=tuple(encoded.notes) + tuple(outcome.notes),
            input_tokens=self._token_text(encoded) if outcome.token_grad else (),
            token_grad=tuple(outcome.token_grad or ()),
        )
        self.history.append(result)
        if committed:
            assert outcome.snapshot is not None and outcome.optimizer_state is not None
            self._undo.push(Commit(outcome.snapshot, outcome.optimizer_state, result))
            self._cache.after_commit(outcome)
        else:
            fused = self._fused(request) and outcome.tensors
            theta_sq = tuple(t.theta_sq for t in outcome.tensors) if fused else None
            self._cache.after_isolated(theta_sq)
        if request.commit and not committed:
            warnings.warn(f"step not committed: {'; '.join(outcome.notes)}", stacklevel=3)
        return result

    def undo_bytes(self) -> int:
        """Memory held by the undo stack: weight snapshots and optimizer states."""
        return self._undo.nbytes()

    @property
    def _theta_sq(self) -> tuple[float, ...] | None:
        """Σ θ² per stepped tensor, kept for the next fused step on these weights."""
        return self._cache.theta_sq

    def _fused(self, request: StepRequest) -> bool:
        """Whether the step's statistics come from the fused plain-SGD pass (Σ θ² reusable)."""
        return self._updater.plain_sgd and request.steps == 1

    def _check_selection(self) -> None:
        """Refuse to step parameters the user has frozen since the probe was built."""
        frozen = [e.name for e in self.entries if not e.param.requires_grad]
        if frozen:
            shown = ", ".join(frozen[:3]) + (
                f" and {len(frozen) - 3} more" if len(frozen) > 3 else ""
            )
            raise StateError(
                f"{shown} {'was' if len(frozen) == 1 else 'were'} frozen after this Probe was "
                "built and would still be stepped; build a new Probe for the new selection, or "
                "set requires_grad back to True"
            )

    def _exclusive(self, what: str = "a probe step") -> Any:
        """Hold the model (one lock per model, shared by every probe on it), Ctrl-C deferred."""
        return guarded(self.model, what)

    def _notify(self, result: ProbeResult) -> None:
        for listener in list(self._listeners):
            try:
                listener(result)
            except Exception as exc:  # a chart callback must never break the probe
                warnings.warn(f"on_result listener failed: {exc!r}", stacklevel=3)

    def _warn_about_user_hooks(self) -> None:
        hooked = [
            name or type(self.model).__name__
            for name, m in self.model.named_modules()
            if any(
                _user_hook(h)
                for h in (
                    *m._forward_hooks.values(),
                    *m._forward_pre_hooks.values(),
                    *m._backward_hooks.values(),
                )
            )
        ]
        if hooked:
            warnings.warn(
                f"the model has hooks of its own on {', '.join(hooked[:3])}; probekit leaves "
                "them in place and they may affect the results",
                stacklevel=3,
            )


def _user_hook(hook: object) -> bool:
    """Hooks transformers installs for its own output capture are not the user's."""
    return "output_capturing_hook" not in getattr(hook, "__qualname__", "")


def _labels(examples: Sequence[Example]) -> tuple[str, ...]:
    return unique_labels((e.prompt, e.target) for e in examples)


def _positive(value: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value
